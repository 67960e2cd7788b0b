"""What the service did with one ingest request, before any wire format is chosen."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """Accepted, rejected and duplicate counts of a request, and ``(index, reason)`` for each
    rejected event, in index order. The accepted events are durable."""

    accepted: int
    rejected: int
    duplicates: int
    errors: list[tuple[int, str]] = field(default_factory=list)
