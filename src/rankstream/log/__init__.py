"""Durable logs of accepted events, behind one seam (:class:`EventLog`).

Implementations: :class:`SqliteEventLog` (embedded) and, for scale-out,
``rankstream.log.kafka.KafkaEventLog`` (imported from there: it needs confluent-kafka).
"""

from rankstream.log.position import LogPosition
from rankstream.log.protocol import EventLog, GroupRecord
from rankstream.log.records import (
    CorruptRecord,
    DeadLetter,
    LoggedBatch,
    decode_events,
    encode_events,
)
from rankstream.log.sqlite import SqliteEventLog

__all__ = [
    "CorruptRecord",
    "DeadLetter",
    "EventLog",
    "GroupRecord",
    "LogPosition",
    "LoggedBatch",
    "SqliteEventLog",
    "decode_events",
    "encode_events",
]
