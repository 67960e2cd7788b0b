"""Durable logs of accepted events: the embedded SQLite log (Kafka arrives with scale-out)."""

from rankstream.log.records import LoggedBatch, decode_batch, encode_batch
from rankstream.log.sqlite import SqliteEventLog

__all__ = ["LoggedBatch", "SqliteEventLog", "decode_batch", "encode_batch"]
