"""De-duplication of events by ``event_id`` over a horizon of arrival time."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping


class Deduplicator:
    """Remembers accepted ``event_id`` values for ``horizon`` ms of arrival time.

    Ids are remembered per arrival (a batch shares one arrival time), so forgetting is one
    step per batch, not per id. At most ``capacity`` ids are held; beyond that the oldest
    arrivals are forgotten early and counted in ``evicted`` (so an operator can see the
    horizon is shorter than configured).

    Each arrival is one *entry*, numbered in the order entries were made; an id maps to the
    number of the entry that remembers it. Forgetting always takes the oldest entries, so
    "is this id still remembered after ``expire(t)``?" is one comparison of its entry number
    with :meth:`live_from` ``(t)``, answered without forgetting anything: that is how a
    screening decides duplicates without changing this object (see
    :class:`~rankstream.engine.screening.Screening`).
    """

    def __init__(self, horizon: int, capacity: int) -> None:
        self.horizon = horizon
        self.capacity = capacity
        self.evicted = 0
        self._seen: dict[str, int] = {}  # event_id -> number of the entry remembering it
        self._arrivals: deque[tuple[int, list[str]]] = deque()  # oldest first
        self._first = 0  # the number of _arrivals[0]

    def __len__(self) -> int:
        return len(self._seen)

    @property
    def entries(self) -> Mapping[str, int]:
        """``event_id`` -> entry number, for every remembered id (read only)."""
        return self._seen

    def live_from(self, arrival: int) -> int:
        """The lowest entry number that :meth:`expire` ``(arrival)`` would keep: an id is
        remembered after that call if and only if ``entries.get(id, -1) >= live_from``."""
        limit = arrival - self.horizon
        gone = 0
        for entry_arrival, _ in self._arrivals:
            if entry_arrival >= limit:
                break
            gone += 1
        return self._first + gone

    def expire(self, arrival: int) -> None:
        """Forget ids that arrived before ``arrival - horizon`` (the oldest entries, up to
        the first one that is recent enough)."""
        limit = arrival - self.horizon
        while self._arrivals and self._arrivals[0][0] < limit:
            self._forget_oldest()

    def remember(self, event_ids: list[str], arrival: int) -> None:
        """Remember ``event_ids`` as arrived at ``arrival`` (an id already remembered is
        moved to this arrival); then keep to ``capacity`` by forgetting the oldest entries.
        The list is kept, not copied: the caller must not change it afterwards.

        All ids of one arrival time share one entry, however many calls bring them, so a
        group screened request by request and its replay as one batch remember (and
        forget) alike.
        """
        if not event_ids:
            return
        arrivals = self._arrivals
        if arrivals and arrivals[-1][0] == arrival:
            number = self._first + len(arrivals) - 1
        else:
            number = self._first + len(arrivals)
        fresh = dict.fromkeys(event_ids, number)
        ids = list(fresh) if len(fresh) != len(event_ids) else event_ids
        self._seen.update(fresh)
        if arrivals and arrivals[-1][0] == arrival:
            arrivals[-1][1].extend(ids)
        else:
            arrivals.append((arrival, ids))
        while len(self._seen) > self.capacity and arrivals:
            self.evicted += self._forget_oldest()

    def _forget_oldest(self) -> int:
        _, ids = self._arrivals.popleft()
        number = self._first
        self._first += 1
        seen = self._seen
        forgotten = 0
        for event_id in ids:
            if seen.get(event_id) == number:  # not since moved to a newer entry
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
        self._first = 0
        for event_id, arrival in items:
            if not self._arrivals or self._arrivals[-1][0] != arrival:
                self._arrivals.append((arrival, []))
            self._arrivals[-1][1].append(event_id)
            self._seen[event_id] = len(self._arrivals) - 1

    @property
    def approx_bytes(self) -> int:
        """A rough size of the remembered ids, in O(1): a short id string (~80 B) plus its
        dict and list slots (~110 B). ``/status`` reads it under the engine lock."""
        return 190 * len(self._seen)
