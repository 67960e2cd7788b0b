"""Historical analytics: every accepted event in ClickHouse (chDB, in-process), an hourly
rollup, and exact answers over any range (trend, top-k, growth, breakdown).

- :mod:`.schema`: the tables, declared once, created and migrated at every start;
- :mod:`.store`: the chDB database (parameterised statements, de-duplicated inserts);
- :mod:`.rows`: log records -> rows; :mod:`.loader`: the log -> the store, exactly once;
- :mod:`.periods`: pure time arithmetic (ranges, whole hours, buckets);
- :mod:`.queries`: the questions as SQL; :mod:`.embedded`: all of it for the service;
- scale-out: :mod:`.screened` (a Kafka partition as the workers count it) and
  :mod:`.kafka_loader` (``rankstream analytics-loader``); :mod:`.service`: what the HTTP
  API asks of either.

See docs/ANALYTICS.md.
"""

from rankstream.analytics.embedded import Analytics, open_embedded_analytics
from rankstream.analytics.loader import AnalyticsLoader, LogGone
from rankstream.analytics.queries import AnalyticsQueries
from rankstream.analytics.service import AnalyticsService
from rankstream.analytics.store import AnalyticsError, AnalyticsStore, LoadIntent

__all__ = [
    "Analytics",
    "AnalyticsError",
    "AnalyticsLoader",
    "AnalyticsQueries",
    "AnalyticsService",
    "AnalyticsStore",
    "LoadIntent",
    "LogGone",
    "open_embedded_analytics",
]
