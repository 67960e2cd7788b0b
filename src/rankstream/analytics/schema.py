"""The analytics store's ClickHouse schema, declared once.

- ``views``: every accepted event, one row each. MergeTree partitioned by month of the
  event time and ordered by ``(video_id, timestamp)``, so one video's history is one
  contiguous range and whole months go at once when their rows expire (TTL). ``event`` is
  the event's JSON exactly as it was accepted, so every field is kept, unknown ones too
  (``JSONExtract*(event, 'price')`` reads any of them); the design notes' columns
  (``user_id``, ``session_id``, ``device``, ``watch_time_sec``, ``completed``) are
  extracted from it at insert by their ``DEFAULT`` expressions. An absent ``category``,
  ``region``, ``event_id``, ``device``... is ``''`` (events never carry an empty label:
  validation requires 1 or more characters). ``log_partition`` / ``log_offset`` say which
  log record the row came from.
- ``views_hourly``: the hourly rollup per ``(hour, video_id, category, region)`` (views,
  summed watch time, completed views), kept by the materialized view ``views_hourly_mv`` on
  every insert into ``views``. A SummingMergeTree: rows of one key are summed when parts
  merge, so readers always ``sum()`` (never read a row as final). A projection ordered by
  video keeps one video's trend a short range read.
- ``load_progress``: two rows per load batch, one written before the batch's rows (which log
  records it covers), one after them (``done``); ``newest_event`` is the newest event time
  loaded so far. A ReplacingMergeTree by log partition: merges keep only the newest row
  of each partition, so the table stays small (readers pick the newest row themselves).
  See :mod:`rankstream.analytics.loader`.

Both data tables keep the hashes of their recent inserted blocks
(``non_replicated_deduplication_window``): re-inserting a batch with the same
``insert_deduplication_token`` writes nothing twice, in ``views`` and, through the view,
in ``views_hourly``.

:func:`statements` lists the DDL; every statement is idempotent (``IF NOT EXISTS``, or an
``ALTER ... MODIFY`` that sets what is declared), so running them at every start creates a
new store and migrates an existing one.
"""

from __future__ import annotations

DEDUP_WINDOW = 10_000
"""Inserted blocks whose hashes each data table remembers (a replay covers one batch)."""

DAY_SECONDS = 86_400

_TABLE_SETTINGS = (
    f"non_replicated_deduplication_window = {DEDUP_WINDOW},"
    " fsync_after_insert = 1, fsync_part_directory = 1"
)

_VIEWS = f"""
CREATE TABLE IF NOT EXISTS views (
    timestamp DateTime64(3, 'UTC'),
    video_id String,
    category LowCardinality(String),
    region LowCardinality(String),
    event_id String,
    event String CODEC(ZSTD(1)),
    user_id String DEFAULT if(JSONType(event, 'user_id') = 'String',
        JSONExtractString(event, 'user_id'), JSONExtractRaw(event, 'user_id')),
    session_id String DEFAULT JSONExtractString(event, 'session_id'),
    device LowCardinality(String) DEFAULT JSONExtractString(event, 'device'),
    watch_time_sec Float64 DEFAULT JSONExtractFloat(event, 'watch_time_sec'),
    completed UInt8 DEFAULT JSONExtractBool(event, 'completed'),
    log_partition UInt32,
    log_offset UInt64
) ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (video_id, timestamp)
SETTINGS {_TABLE_SETTINGS}
"""

_HOURLY = f"""
CREATE TABLE IF NOT EXISTS views_hourly (
    hour DateTime('UTC'),
    video_id String,
    category LowCardinality(String),
    region LowCardinality(String),
    views UInt64,
    watch_time_sec Float64,
    completed UInt64,
    PROJECTION by_video (SELECT * ORDER BY video_id, hour)
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, video_id, category, region)
SETTINGS {_TABLE_SETTINGS}, deduplicate_merge_projection_mode = 'rebuild'
"""

_HOURLY_VIEW = """
CREATE MATERIALIZED VIEW IF NOT EXISTS views_hourly_mv TO views_hourly AS
SELECT
    toStartOfHour(timestamp) AS hour,
    video_id,
    category,
    region,
    count() AS views,
    sum(watch_time_sec) AS watch_time_sec,
    sum(completed) AS completed
FROM views
GROUP BY hour, video_id, category, region
"""

_PROGRESS = """
CREATE TABLE IF NOT EXISTS load_progress (
    log_partition UInt32,
    start UInt64,
    end UInt64,
    events UInt64,
    newest_event Nullable(DateTime64(3, 'UTC')),
    done UInt8,
    version UInt64 DEFAULT start * 2 + done,
    written DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree(version)
ORDER BY log_partition
"""


TTL_COLUMNS = {"views": "toDateTime(timestamp)", "views_hourly": "hour"}
"""The tables that expire rows, and the event time each expires them by."""


def statements(ttl_days: int, engines: dict[str, str] | None = None) -> list[str]:
    """The DDL creating (or migrating) the store, in order. ``ttl_days`` > 0: raw rows and
    rollup rows whose event hour is older than that many days are dropped (by ClickHouse,
    in the background); 0: kept for ever. ``engines``: the existing tables' engine clauses
    (``system.tables.engine_full``): a TTL already as declared is left alone, since
    changing one rewrites the TTL information of every part."""
    if ttl_days < 0:
        raise ValueError("ttl_days must be >= 0")
    ddl = [_VIEWS, _HOURLY, _HOURLY_VIEW, _PROGRESS]
    for table, column in TTL_COLUMNS.items():
        current = (engines or {}).get(table, "")
        has_ttl = " TTL " in current
        if ttl_days and not (has_ttl and f"toIntervalDay({ttl_days})" in current):
            ddl.append(f"ALTER TABLE {table} MODIFY TTL {column} + INTERVAL {ttl_days} DAY")
        elif not ttl_days and has_ttl:
            ddl.append(f"ALTER TABLE {table} REMOVE TTL")
    return ddl
