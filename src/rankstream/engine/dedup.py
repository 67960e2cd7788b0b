"""De-duplication of events by ``event_id`` over a horizon of arrival time."""

from __future__ import annotations

from collections import OrderedDict


class Deduplicator:
    """Remembers accepted ``event_id`` values for ``horizon`` ms of arrival time.

    At most ``capacity`` ids are held; beyond that the oldest are forgotten early and counted
    in ``evicted`` (so an operator can see the horizon is shorter than configured).
    """

    def __init__(self, horizon: int, capacity: int) -> None:
        self.horizon = horizon
        self.capacity = capacity
        self.evicted = 0
        self._seen: OrderedDict[str, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def expire(self, arrival: int) -> None:
        """Forget ids that arrived before ``arrival - horizon``."""
        seen = self._seen
        limit = arrival - self.horizon
        while seen:
            oldest = next(iter(seen.values()))
            if oldest >= limit:
                break
            seen.popitem(last=False)

    def check_and_add(self, event_id: str, arrival: int) -> bool:
        """``True`` if ``event_id`` is new (and now remembered), ``False`` if a duplicate."""
        seen = self._seen
        if event_id in seen:
            return False
        seen[event_id] = arrival
        if len(seen) > self.capacity:
            seen.popitem(last=False)
            self.evicted += 1
        return True

    def items(self) -> list[tuple[str, int]]:
        """``(event_id, arrival)`` pairs, oldest first."""
        return list(self._seen.items())

    def load(self, items: list[tuple[str, int]]) -> None:
        """Replace the remembered ids (oldest first), as from :meth:`items`."""
        self._seen = OrderedDict(items)

    @property
    def approx_bytes(self) -> int:
        """A rough size of the remembered ids (keys plus ordered-dict overhead)."""
        return sum(len(k) for k in self._seen) + 160 * len(self._seen)
