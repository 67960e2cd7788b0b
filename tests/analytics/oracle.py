"""A brute-force model of the analytics answers: keep every event, count on demand."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from rankstream.analytics.queries import RankedCount, Riser, Share, TrendBucket


@dataclass(frozen=True, slots=True)
class Event:
    """What the oracle knows of an accepted event."""

    video_id: str
    timestamp: int
    category: str | None = None
    region: str | None = None
    device: str | None = None
    watch_time_sec: int = 0


def bucket_start(timestamp: int, grain: str) -> int:
    """The UTC calendar bucket of ``timestamp``, by datetime arithmetic (weeks from Monday)."""
    moment = datetime.fromtimestamp(timestamp / 1000, UTC)
    if grain == "minute":
        start = moment.replace(second=0, microsecond=0)
    elif grain == "hour":
        start = moment.replace(minute=0, second=0, microsecond=0)
    else:
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        if grain == "week":
            start -= timedelta(days=start.weekday())
    return int(start.timestamp()) * 1000


@dataclass
class AnalyticsOracle:
    """Every event loaded, and the answers computed by counting them all."""

    events: list[Event] = field(default_factory=list)

    def _within(
        self, start: int, end: int, category: str | None = None, region: str | None = None
    ) -> list[Event]:
        return [
            e
            for e in self.events
            if start <= e.timestamp < end
            and (category is None or e.category == category)
            and (region is None or e.region == region)
        ]

    def counts(
        self, start: int, end: int, category: str | None = None, region: str | None = None
    ) -> Counter[str]:
        """Views per video in ``[start, end)``."""
        return Counter(e.video_id for e in self._within(start, end, category, region))

    def top_k(
        self, start: int, end: int, k: int, category: str | None = None, region: str | None = None
    ) -> list[RankedCount]:
        counts = self.counts(start, end, category, region)
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return [RankedCount(video, views) for video, views in ranked[:k]]

    def growth(
        self, end: int, period: int, k: int, category: str | None = None, region: str | None = None
    ) -> list[Riser]:
        current = self.counts(end - period, end, category, region)
        previous = self.counts(end - 2 * period, end - period, category, region)
        risers = [Riser(video, views, previous.get(video, 0)) for video, views in current.items()]
        risers.sort(key=lambda r: (-r.change, r.video_id))
        return risers[:k]

    def trend(self, video_id: str, start: int, end: int, grain: str) -> list[TrendBucket]:
        views: Counter[int] = Counter()
        watch: Counter[int] = Counter()
        for e in self._within(start, end):
            if e.video_id == video_id:
                views[bucket_start(e.timestamp, grain)] += 1
                watch[bucket_start(e.timestamp, grain)] += e.watch_time_sec
        step = {"minute": 60_000, "hour": 3_600_000, "day": 86_400_000, "week": 604_800_000}
        first = bucket_start(start, grain)
        return [TrendBucket(b, views[b], float(watch[b])) for b in range(first, end, step[grain])]

    def breakdown(self, video_id: str, by: str, start: int, end: int) -> list[Share]:
        labels = Counter(getattr(e, by) for e in self._within(start, end) if e.video_id == video_id)
        shares = [Share(label, views) for label, views in labels.items()]
        shares.sort(key=lambda s: (-s.views, s.label or ""))
        return shares
