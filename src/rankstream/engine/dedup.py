"""De-duplication of events by ``event_id`` over a horizon of arrival time."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence


class Deduplicator:
    """Remembers accepted ``event_id`` values for ``horizon`` ms of arrival time.

    Ids are remembered per arrival (a batch shares one arrival time), so forgetting is one
    step per batch, not per id. At most ``capacity`` ids are held; beyond that the oldest
    arrivals are forgotten early and counted in ``evicted`` (so an operator can see the
    horizon is shorter than configured).
    """

    def __init__(self, horizon: int, capacity: int) -> None:
        self.horizon = horizon
        self.capacity = capacity
        self.evicted = 0
        self._seen: dict[str, int] = {}  # event_id -> arrival
        self._arrivals: deque[tuple[int, list[str]]] = deque()  # oldest first

    def __len__(self) -> int:
        return len(self._seen)

    def expire(self, arrival: int) -> None:
        """Forget ids that arrived before ``arrival - horizon``."""
        limit = arrival - self.horizon
        while self._arrivals and self._arrivals[0][0] < limit:
            self._forget_oldest()

    def admit(self, event_ids: Sequence[str | None], arrival: int) -> list[int]:
        """Positions of ``event_ids`` already seen (here or earlier in the list); the new
        ones are remembered from now on. ``None`` ids are never duplicates."""
        seen = self._seen
        present = [e for e in event_ids if e is not None]
        distinct = set(present)
        if len(distinct) == len(present) and seen.keys().isdisjoint(distinct):
            # The common case, in C: no id repeats, none seen before.
            seen.update(dict.fromkeys(present, arrival))
            self._remember(present, arrival)
            return []
        duplicates = []
        fresh = []
        for position, event_id in enumerate(event_ids):
            if event_id is None:
                continue
            if event_id in seen:
                duplicates.append(position)
            else:
                seen[event_id] = arrival
                fresh.append(event_id)
        self._remember(fresh, arrival)
        return duplicates

    def _remember(self, fresh: list[str], arrival: int) -> None:
        """Note ``fresh`` ids (already in ``_seen``) under ``arrival``; keep to capacity."""
        if not fresh:
            return
        # One entry per arrival time, however many calls share it, so a group screened
        # request by request and its replay as one batch remember (and forget) alike.
        if self._arrivals and self._arrivals[-1][0] == arrival:
            self._arrivals[-1][1].extend(fresh)
        else:
            self._arrivals.append((arrival, fresh))
        while len(self._seen) > self.capacity and self._arrivals:
            self.evicted += self._forget_oldest()

    def _forget_oldest(self) -> int:
        arrival, ids = self._arrivals.popleft()
        seen = self._seen
        forgotten = 0
        for event_id in ids:
            if seen.get(event_id) == arrival:
                del seen[event_id]
                forgotten += 1
        return forgotten

    def items(self) -> list[tuple[str, int]]:
        """``(event_id, arrival)`` pairs, oldest arrival first."""
        return [(i, arrival) for arrival, ids in self._arrivals for i in ids]

    def load(self, items: list[tuple[str, int]]) -> None:
        """Replace the remembered ids with ``items`` (oldest arrival first)."""
        self._seen = {}
        self._arrivals = deque()
        for event_id, arrival in items:
            if not self._arrivals or self._arrivals[-1][0] != arrival:
                self._arrivals.append((arrival, []))
            self._arrivals[-1][1].append(event_id)
            self._seen[event_id] = arrival

    @property
    def approx_bytes(self) -> int:
        """A rough size of the remembered ids, in O(1): a short id string (~80 B) plus its
        dict and list slots (~110 B). ``/status`` reads it under the engine lock."""
        return 190 * len(self._seen)
