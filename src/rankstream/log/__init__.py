"""Durable logs of accepted events: the embedded SQLite log (Kafka arrives with scale-out)."""

from rankstream.log.records import (
    CorruptRecord,
    DeadLetter,
    LoggedBatch,
    decode_events,
    encode_events,
)
from rankstream.log.sqlite import GroupRecord, SqliteEventLog

__all__ = [
    "CorruptRecord",
    "DeadLetter",
    "GroupRecord",
    "LoggedBatch",
    "SqliteEventLog",
    "decode_events",
    "encode_events",
]
