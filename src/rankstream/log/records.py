"""How accepted events are stored in a log record: as received, one JSON array per group.

Keeping the events' own JSON makes the log the faithful source for analytics (every field,
not only the engine's), costs the writer a single ``join``, and replays through the same
:class:`~rankstream.engine.wire.EventDecoder` that accepted them, so a replayed batch is
exactly the batch that was applied.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from rankstream.engine import EventBatch
from rankstream.engine.wire import Decoder
from rankstream.errors import RankstreamError

_raw_list = msgspec.json.Decoder(list[msgspec.Raw])


class CorruptRecord(RankstreamError):
    """A log record does not decode to the events it held; the log file is damaged."""


@dataclass(frozen=True, slots=True)
class LoggedBatch:
    """Events accepted together, screened at ``wall_time``, read back from a log.

    They sit at ``offset`` of log ``partition``; ``next_offset`` is where the record after
    them starts. ``raw`` holds each event's JSON as received. ``duplicates`` / ``rejected``
    (too new) / ``over_capacity`` count the group's events the engine refused, so its
    statistics survive a restart.
    """

    partition: int
    offset: int
    next_offset: int
    wall_time: int
    batch: EventBatch
    raw: list[bytes]
    duplicates: int = 0
    rejected: int = 0
    over_capacity: int = 0


class DeadLetter(msgspec.Struct, frozen=True):
    """A rejected event: when it arrived (epoch ms), the field at fault, why, and (a prefix
    of) its JSON."""

    received: int
    field: str
    reason: str
    event: str


def encode_events(raw: list[bytes]) -> bytes:
    """The payload of a record: the events' JSON as one array."""
    return b"[" + b",".join(raw) + b"]"


def decode_events(payload: bytes, decoder: Decoder) -> tuple[EventBatch, list[bytes]]:
    """The batch and raw events of a payload. Raises :class:`CorruptRecord` if any event
    no longer validates (they all did when logged)."""
    try:
        raws = _raw_list.decode(payload)
    except msgspec.DecodeError as exc:
        raise CorruptRecord(f"log record is not a JSON array: {exc}") from exc
    decoded = decoder.decode(raws)
    if decoded.errors:
        raise CorruptRecord(f"logged event no longer validates: {decoded.errors[0][2]}")
    return decoded.batch, decoded.raw
