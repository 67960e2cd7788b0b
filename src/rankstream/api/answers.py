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


class PartitionProgress(msgspec.Struct):
    """Scale-out: one partition's progress, from what its worker last published. Offsets are
    the next ones not yet applied / covered by a checkpoint; ``lag`` is ``end - applied``;
    ``published_age_ms`` how old the newest published ranking is."""

    partition: int
    worker: str | None
    applied: int | None
    checkpointed: int | None
    end: int | None
    lag: int | None
    as_of: int | None
    published_age_ms: int | None


class AnalyticsStatus(msgspec.Struct):
    """The analytics loader and store: the log position loaded up to (partition -> next
    offset), log records not loaded yet, the newest event time loaded (epoch ms), events
    loaded since start, raw rows held, bytes on disk, failed loads since start and the
    last failure (``null`` once a load succeeds again)."""

    loaded: dict[int, int]
    lag_records: int
    loaded_through: int | None
    events_loaded: int
    rows: int
    bytes: int
    failures: int
    problem: str | None


class StatusAnswer(msgspec.Struct, omit_defaults=True):
    """Counters and positions of the running service. The embedded service fills every
    field; a scale-out API replica fills ``partitions`` and its own counters instead of the
    engine's (the workers hold the engines)."""

    mode: str
    events_accepted: int
    events_rejected: int
    queue_depth: int
    storage: str | None
    healthy: bool
    videos_with_metadata: int
    dead_letters: int
    events_applied: int | None = None
    late_dropped: int | None = None
    duplicates: int | None = None
    watermark: int | None = None
    last_checkpoint: CheckpointStatus | None = None
    log: LogStatus | None = None
    recovery: RecoveryStatus | None = None
    queued_bytes: int | None = None
    memory: dict[str, int] | None = None
    failure: str | None = None
    partitions: list[PartitionProgress] | None = None
    analytics: AnalyticsStatus | None = None
