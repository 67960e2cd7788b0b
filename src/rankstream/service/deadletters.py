"""Rejected events with their reasons (``GET /dead-letters``), kept across restarts.

The writer thread stores each group's dead letters and rejection counts in the log, in the
same transaction as the group's answers (:mod:`rankstream.log.sqlite`); this is the
in-memory copy the API reads, loaded from the log at start and extended after each commit.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from rankstream.log import DeadLetter

MAX_EVENT_CHARS = 2048


def dead_letter(raw: Any, field: str, reason: str, received: int) -> DeadLetter:
    """The dead letter of a rejected event (``raw``: its JSON bytes or decoded value)."""
    return DeadLetter(received, field, reason, render(raw))


class DeadLetters:
    """The newest ``capacity`` dead letters and the rejection totals by field. Thread-safe."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._items: deque[DeadLetter] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self.totals: Counter[str] = Counter()

    def load(self, letters: Iterable[DeadLetter], totals: Mapping[str, int]) -> None:
        """Replace the contents with what the log kept (oldest letters first)."""
        with self._lock:
            self._items = deque(letters, maxlen=self.capacity)
            self.totals = Counter(totals)

    def extend(self, letters: Iterable[DeadLetter]) -> None:
        """Add letters that were just made durable."""
        with self._lock:
            for letter in letters:
                self._items.append(letter)
                self.totals[letter.field] += 1

    def newest(self, limit: int) -> list[DeadLetter]:
        """Up to ``limit`` dead letters, newest first."""
        with self._lock:
            return list(reversed(self._items))[:limit]

    @property
    def total(self) -> int:
        """Every rejection ever counted."""
        return sum(self.totals.values())

    def __len__(self) -> int:
        return len(self._items)


def render(raw: Any) -> str:
    """A prefix of an event's JSON for people to read (never raises)."""
    if isinstance(raw, bytes | bytearray | memoryview):
        text = bytes(raw).decode("utf-8", "replace")
    else:
        try:
            text = msgspec.json.encode(raw).decode("utf-8", "replace")
        except (TypeError, msgspec.EncodeError):
            text = repr(raw)
    return text[:MAX_EVENT_CHARS]
