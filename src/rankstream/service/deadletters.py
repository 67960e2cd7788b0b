"""A bounded store of rejected events with their reasons (``GET /dead-letters``)."""

from __future__ import annotations

import threading
from collections import Counter, deque
from typing import Any

import msgspec

from rankstream.engine import EventBatch

_MAX_EVENT_CHARS = 2048


class DeadLetter(msgspec.Struct, frozen=True):
    """One rejected event: when it arrived, why it was rejected, and (a prefix of) it."""

    received: int
    reason: str
    event: str


class DeadLetters:
    """The newest ``capacity`` rejected events, kept in memory; older ones are dropped but
    still counted (``totals`` by reason field). Thread-safe."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._items: deque[DeadLetter] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self.totals: Counter[str] = Counter()
        self.invalid_total = 0

    def add_invalid(self, raw: object, reason: str, field: str, received: int) -> None:
        """Record an event that failed validation."""
        self._add(DeadLetter(received, reason, _render(raw)), field)
        self.invalid_total += 1

    def add_too_new(self, batch: EventBatch, row: int, reason: str, received: int) -> None:
        """Record a valid event rejected for a timestamp too far ahead."""
        event = {"video_id": batch.video_ids[row], "timestamp": int(batch.timestamps[row])}
        self._add(DeadLetter(received, reason, _render(event)), "timestamp")

    def _add(self, letter: DeadLetter, field: str) -> None:
        with self._lock:
            self._items.append(letter)
            self.totals[field] += 1

    def newest(self, limit: int) -> list[DeadLetter]:
        """Up to ``limit`` dead letters, newest first."""
        with self._lock:
            return list(reversed(self._items))[:limit]

    def __len__(self) -> int:
        return len(self._items)


def _render(raw: Any) -> str:
    try:
        text = msgspec.json.encode(raw).decode("utf-8", "replace")
    except (TypeError, msgspec.EncodeError):
        text = repr(raw)
    return text[:_MAX_EVENT_CHARS]
