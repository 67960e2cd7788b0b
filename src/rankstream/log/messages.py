"""What a Kafka message's timestamp means to rankstream, declared once for the Kafka log
and the workers: the events' arrival time, their wall time when screened.

Consumed messages are screened in runs of equal timestamps, each run at its timestamp, so
a partition replayed from any offset repeats every decision. A message without a timestamp
(a very old producer) is screened at the newest event time of its run, which is in the log
too.
"""

from __future__ import annotations

from typing import Any

from rankstream.engine import EventBatch

NO_TIMESTAMP = -1
_NOT_AVAILABLE = 0  # librdkafka's TIMESTAMP_NOT_AVAILABLE


def arrival_time(message: Any) -> int:
    """A consumed message's timestamp (epoch ms), or :data:`NO_TIMESTAMP`."""
    kind, stamp = message.timestamp()
    return NO_TIMESTAMP if kind == _NOT_AVAILABLE or stamp < 0 else int(stamp)


def screening_time(arrival: int, batch: EventBatch) -> int:
    """The wall time a run of messages that arrived at ``arrival`` is screened at."""
    if arrival != NO_TIMESTAMP:
        return arrival
    return int(batch.timestamps.max()) if len(batch) else 0
