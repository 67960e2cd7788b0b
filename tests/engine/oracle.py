"""A brute-force model of the engine's contract: keep every accepted event, count on demand."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from rankstream.engine import EngineConfig, RankedItem, ViewEvent


@dataclass
class Oracle:
    """Accepts events by the documented rules and ranks by counting them all."""

    config: EngineConfig = field(default_factory=EngineConfig)
    accepted: list[ViewEvent] = field(default_factory=list)
    now: int | None = None
    duplicates: int = 0
    rejected_too_new: int = 0
    late_dropped: int = 0
    _seen: dict[str, int] = field(default_factory=dict)  # event_id -> arrival

    def ingest(self, events: list[ViewEvent], wall_time: int) -> list[int]:
        """Statuses per event: 0 accepted, 1 duplicate, 2 too new."""
        statuses = []
        kept = []
        horizon = self.config.dedup_horizon
        self._seen = {k: t for k, t in self._seen.items() if t >= wall_time - horizon}
        for event in events:
            if event.timestamp > wall_time + self.config.max_skew:
                statuses.append(2)
                self.rejected_too_new += 1
            elif event.event_id is not None and event.event_id in self._seen:
                statuses.append(1)
                self.duplicates += 1
            else:
                if event.event_id is not None:
                    self._seen[event.event_id] = wall_time
                statuses.append(0)
                kept.append(event)
        if kept:
            newest = max(e.timestamp for e in kept)
            self.now = newest if self.now is None else max(self.now, newest)
            hour = 3_600_000
            horizon_start = self.now - self.now % hour - self.config.horizon
            self.late_dropped += sum(e.timestamp < horizon_start for e in kept)
            self.accepted.extend(kept)
        return statuses

    def tick(self, wall_time: int) -> None:
        if self.now is not None:
            self.now = max(self.now, wall_time)

    def top_k(
        self,
        start: int | None,
        end: int | None,
        k: int,
        category: str | None,
        region: str | None,
    ) -> list[RankedItem]:
        counts: Counter[str] = Counter()
        for e in self.accepted:
            if start is not None and end is not None and not start <= e.timestamp < end:
                continue
            if category is not None and e.category != category:
                continue
            if region is not None and e.region != region:
                continue
            counts[e.video_id] += e.quantity
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return [RankedItem(i, v, n) for i, (v, n) in enumerate(ranked[:k], 1) if n > 0]
