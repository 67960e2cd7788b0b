"""How a batch of accepted events is stored in a log: columns in one MessagePack blob."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np

from rankstream.engine import EventBatch


@dataclass(frozen=True, slots=True)
class LoggedBatch:
    """One durable log record: events accepted together at ``wall_time``.

    ``extras`` holds each event's fields beyond the engine's (kept for analytics).
    ``duplicates`` / ``rejected`` count the request's events that were not logged, so
    statistics survive a restart.
    """

    seq: int
    wall_time: int
    batch: EventBatch
    extras: list[dict[str, Any]]
    duplicates: int = 0
    rejected: int = 0


def encode_batch(batch: EventBatch, extras: list[dict[str, Any]]) -> bytes:
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
            "x": extras if any(extras) else None,
        }
    )


def decode_batch(payload: bytes) -> tuple[EventBatch, list[dict[str, Any]]]:
    """The batch and extras :func:`encode_batch` stored."""
    raw = msgspec.msgpack.decode(payload)
    batch = EventBatch(
        video_ids=raw["v"],
        timestamps=np.frombuffer(raw["t"], dtype="<i8").astype(np.int64),
        categories=raw["c"],
        regions=raw["r"],
        event_ids=raw["e"],
        quantities=None if raw["q"] is None else np.frombuffer(raw["q"], "<i8").astype(np.int64),
    )
    extras = raw["x"] if raw["x"] is not None else [{} for _ in range(len(batch))]
    return batch, extras
