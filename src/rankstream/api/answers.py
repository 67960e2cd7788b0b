"""The bodies the API answers with, as msgspec types: encoded straight to JSON and documented
in ``/openapi.json`` from these same definitions."""

from __future__ import annotations

from typing import Literal

import msgspec

from rankstream.service.outcome import IngestOutcome


class RankedVideo(msgspec.Struct, omit_defaults=True):
    """A ranked video with its metadata, when known."""

    rank: int
    video_id: str
    views: int
    title: str | None = None
    channel: str | None = None
    thumbnail_url: str | None = None


class TopKAnswer(msgspec.Struct):
    """An exact ranking: ``views`` counts the accepted events in ``[window_start,
    window_end)`` (epoch ms; both null for ``all``) as of ``as_of`` (the engine clock)."""

    window: str
    window_start: int | None
    window_end: int | None
    as_of: int | None
    k: int
    category: str | None
    region: str | None
    items: list[RankedVideo]


class EventError(msgspec.Struct):
    """Why the event at ``index`` of the request was rejected."""

    index: int
    error: str


class IngestAnswer(msgspec.Struct):
    """The answer to ``POST /views``: the accepted events are durable."""

    accepted: int
    rejected: int
    duplicates: int
    errors: list[EventError]


def encode_ingest_answer(outcome: IngestOutcome) -> bytes:
    """The JSON body of an ingest outcome (stored with its Idempotency-Key, replayed as is)."""
    errors = [EventError(index, message) for index, message in outcome.errors]
    return msgspec.json.encode(
        IngestAnswer(outcome.accepted, outcome.rejected, outcome.duplicates, errors)
    )


class VideoAnswer(msgspec.Struct):
    """A video's metadata."""

    video_id: str
    title: str | None
    channel: str | None
    thumbnail_url: str | None
    duration_s: float | None
    category: str | None


class HealthAnswer(msgspec.Struct):
    """The service is up and can take events."""

    status: Literal["ok"]


class DeadLetterItem(msgspec.Struct):
    """A rejected event: when it arrived (epoch ms), why, and (a prefix of) its JSON."""

    received: int
    reason: str
    event: str


class DeadLettersAnswer(msgspec.Struct):
    """The newest rejected events, newest first, and rejection totals by field at fault
    (kept across restarts)."""

    totals: dict[str, int]
    items: list[DeadLetterItem]


class CheckpointStatus(msgspec.Struct):
    """The newest checkpoint: the log position it covers (partition -> next offset), when,
    how long, how big."""

    position: dict[int, int]
    at: int | None
    seconds: float
    bytes: int


class LogStatus(msgspec.Struct):
    """The durable log: the position applied up to (partition -> next offset) and the bytes
    it holds."""

    applied: dict[int, int]
    bytes: int


class RecoveryStatus(msgspec.Struct):
    """How the last start recovered: the position of the checkpoint restored (partition ->
    next offset; empty if none), the log records replayed after it."""

    restored_from: dict[int, int]
    replayed_batches: int
    replayed_events: int
    seconds: float


class StatusAnswer(msgspec.Struct):
    """Counters and positions of the running service."""

    events_accepted: int
    events_applied: int
    events_rejected: int
    late_dropped: int
    duplicates: int
    watermark: int | None
    last_checkpoint: CheckpointStatus
    log: LogStatus
    recovery: RecoveryStatus
    queue_depth: int
    queued_bytes: int
    memory: dict[str, int]
    storage: str | None
    healthy: bool
    failure: str | None
    videos_with_metadata: int
    dead_letters: int
