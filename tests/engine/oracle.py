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
    over_capacity: int = 0
    late_dropped: int = 0
    refusals: list[tuple[int, str]] = field(default_factory=list)
    """``(row, field)`` of each over-capacity event of the latest :meth:`decide`."""
    _seen: dict[str, int] = field(default_factory=dict)  # event_id -> arrival

    def decide(self, events: list[ViewEvent], wall_time: int) -> list[int]:
        """Statuses per event (0 accepted, 1 duplicate, 2 too new, 3 over capacity), as if
        ``events`` all arrived at ``wall_time``, in order; changes nothing but
        :attr:`refusals`."""
        config = self.config
        live = {k for k, t in self._seen.items() if t >= wall_time - config.dedup_horizon}
        videos = {e.video_id for e in self.accepted}
        categories = {e.category for e in self.accepted} - {None}
        regions = {e.region for e in self.accepted} - {None}
        cells = {(e.video_id, e.category, e.region) for e in self.accepted}
        statuses = []
        self.refusals = []
        for row, event in enumerate(events):
            cell = (event.video_id, event.category, event.region)
            if event.timestamp > wall_time + config.max_skew:
                statuses.append(2)
                continue
            if event.event_id is not None and event.event_id in live:
                statuses.append(1)
                continue
            refused = None
            if event.video_id not in videos and len(videos) >= config.max_videos:
                refused = "video_id"
            elif event.category not in categories | {None} and (
                len(categories) >= config.max_categories
            ):
                refused = "category"
            elif event.region not in regions | {None} and len(regions) >= config.max_regions:
                refused = "region"
            elif cell not in cells and len(cells) >= config.max_cells:
                refused = "event"
            if refused is not None:
                self.refusals.append((row, refused))
                statuses.append(3)
                continue
            videos.add(event.video_id)
            categories |= {event.category} - {None}
            regions |= {event.region} - {None}
            cells.add(cell)
            if event.event_id is not None:
                live.add(event.event_id)
            statuses.append(0)
        return statuses

    def ingest(self, events: list[ViewEvent], wall_time: int) -> list[int]:
        """:meth:`decide`, then count the accepted events."""
        statuses = self.decide(events, wall_time)
        self.duplicates += statuses.count(1)
        self.rejected_too_new += statuses.count(2)
        self.over_capacity += statuses.count(3)
        self.count([e for e, s in zip(events, statuses, strict=True) if s == 0], wall_time)
        return statuses

    def count(self, kept: list[ViewEvent], wall_time: int) -> None:
        """Count events accepted at ``wall_time`` (no rule applied: the model of replay)."""
        horizon = self.config.dedup_horizon
        self._seen = {k: t for k, t in self._seen.items() if t >= wall_time - horizon}
        self._seen.update((e.event_id, wall_time) for e in kept if e.event_id is not None)
        if kept:
            newest = max(e.timestamp for e in kept)
            self.now = newest if self.now is None else max(self.now, newest)
            hour = 3_600_000
            horizon_start = self.now - self.now % hour - self.config.horizon
            self.late_dropped += sum(e.timestamp < horizon_start for e in kept)
            self.accepted.extend(kept)

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
