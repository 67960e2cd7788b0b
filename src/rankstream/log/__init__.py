"""Durable logs of accepted events: the embedded SQLite log (Kafka arrives with scale-out)."""

from rankstream.log.records import CorruptRecord, LoggedBatch, decode_events, encode_events
from rankstream.log.sqlite import GroupRecord, SqliteEventLog

__all__ = [
    "CorruptRecord",
    "GroupRecord",
    "LoggedBatch",
    "SqliteEventLog",
    "decode_events",
    "encode_events",
]
