"""How a batch of accepted events is stored in a log: columns in one MessagePack blob."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import numpy as np

from rankstream.engine import EventBatch


@dataclass(frozen=True, slots=True)
class LoggedBatch:
    """One durable log record: events accepted together at ``wall_time``.

    ``raw`` holds each event's JSON as received (every field, kept for analytics).
    ``duplicates`` / ``rejected`` count the request's events that were not logged, so
    statistics survive a restart.
    """

    seq: int
    wall_time: int
    batch: EventBatch
    raw: list[bytes]
    duplicates: int = 0
    rejected: int = 0


def encode_batch(batch: EventBatch, raw: list[bytes]) -> bytes:
    """The payload of a log record (MessagePack; timestamps as raw int64 bytes)."""
    return msgspec.msgpack.encode(
        {
            "v": list(batch.video_ids),
            "t": np.ascontiguousarray(batch.timestamps, dtype="<i8").tobytes(),
            "c": None if batch.categories is None else list(batch.categories),
            "r": None if batch.regions is None else list(batch.regions),
            "e": None if batch.event_ids is None else list(batch.event_ids),
            "q": None
            if batch.quantities is None
            else np.ascontiguousarray(batch.quantities, dtype="<i8").tobytes(),
            "x": raw,
        }
    )


def decode_batch(payload: bytes) -> tuple[EventBatch, list[bytes]]:
    """The batch and raw events :func:`encode_batch` stored."""
    raw = msgspec.msgpack.decode(payload)
    batch = EventBatch(
        video_ids=raw["v"],
        timestamps=np.frombuffer(raw["t"], dtype="<i8").astype(np.int64),
        categories=raw["c"],
        regions=raw["r"],
        event_ids=raw["e"],
        quantities=None if raw["q"] is None else np.frombuffer(raw["q"], "<i8").astype(np.int64),
    )
    return batch, raw["x"]
