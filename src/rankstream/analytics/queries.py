"""The analytics questions, each one parameterised ClickHouse statement over the store.

Every count is exact: the whole hours of a range come from the hourly rollup and the
partial hours at its edges from raw rows (:func:`~rankstream.analytics.periods.split_range`),
so a count over ``[start, end)`` equals a count of the raw events in it. Client values
(video ids, labels, times, k) travel only as query parameters; the SQL text is built from
the constant fragments below.

Orders: rankings by value descending, then ``video_id`` ascending by code point (as
``/views/top-k``: ClickHouse compares strings byte-wise, which for UTF-8 is code point
order); breakdowns by count descending, then label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from rankstream.analytics.periods import (
    GRAINS,
    HOUR_MS,
    SplitRange,
    buckets,
    raw_range,
    split_range,
)
from rankstream.analytics.store import AnalyticsStore, Params

BREAKDOWNS: Final = ("region", "category", "device")
"""What a breakdown may group by (each a column of ``views``)."""

_FILTERS = (
    " AND ({category:String} = '' OR category = {category:String})"
    " AND ({region:String} = '' OR region = {region:String})"
)


def _range_condition(prefix: str) -> tuple[str, str]:
    """The rollup and raw conditions of the range whose pieces are the parameters
    ``{prefix}_start``, ``_head_end``, ``_hours_start``, ``_hours_end``, ``_tail_start``,
    ``_end``."""
    hours = (
        f"hour >= toDateTime(intDiv({{{prefix}_hours_start:Int64}}, 1000), 'UTC')"
        f" AND hour < toDateTime(intDiv({{{prefix}_hours_end:Int64}}, 1000), 'UTC')"
    )

    def piece(low: str, high: str) -> str:
        return (
            f"(timestamp >= fromUnixTimestamp64Milli({{{prefix}_{low}:Int64}}, 'UTC')"
            f" AND timestamp < fromUnixTimestamp64Milli({{{prefix}_{high}:Int64}}, 'UTC'))"
        )

    raw = f"({piece('start', 'head_end')} OR {piece('tail_start', 'end')})"
    return hours, raw


def _range_params(prefix: str, pieces: SplitRange) -> dict[str, int | str]:
    return {
        f"{prefix}_start": pieces.start,
        f"{prefix}_head_end": pieces.head_end,
        f"{prefix}_hours_start": pieces.hours_start,
        f"{prefix}_hours_end": pieces.hours_end,
        f"{prefix}_tail_start": pieces.tail_start,
        f"{prefix}_end": pieces.end,
    }


def _views_by_video(prefix: str) -> str:
    """``(video_id, views)`` over one range, with the category and region filters."""
    hours, raw = _range_condition(prefix)
    return (
        "SELECT video_id, sum(v) AS views FROM ("
        f" SELECT video_id, sum(views) AS v FROM views_hourly WHERE {hours}{_FILTERS}"
        " GROUP BY video_id"
        " UNION ALL"
        f" SELECT video_id, count() AS v FROM views WHERE {raw}{_FILTERS}"
        " GROUP BY video_id"
        ") GROUP BY video_id"
    )


TOP_K_SQL: Final = (
    f"SELECT video_id, views FROM ({_views_by_video('r')})"
    " ORDER BY views DESC, video_id ASC LIMIT {k:UInt32}"
)

GROWTH_SQL: Final = (
    "SELECT cur.video_id AS video_id, cur.views AS current, prev.views AS previous"
    f" FROM ({_views_by_video('c')}) AS cur"
    f" LEFT JOIN ({_views_by_video('p')}) AS prev ON cur.video_id = prev.video_id"
    " ORDER BY toInt64(current) - toInt64(previous) DESC, video_id ASC LIMIT {k:UInt32}"
    " SETTINGS join_use_nulls = 0"
)


def _trend_sql() -> str:
    hours, raw = _range_condition("r")
    bucket = (
        "intDiv({ms} - {{offset:Int64}}, {{length:Int64}}) * {{length:Int64}} + {{offset:Int64}}"
    )
    by_hour = bucket.format(ms="toInt64(toUnixTimestamp(hour)) * 1000")
    by_event = bucket.format(ms="toUnixTimestamp64Milli(timestamp)")
    video = "video_id = {video_id:String}"
    return (
        "SELECT bucket, sum(v) AS views, sum(w) AS watch_time_sec FROM ("
        f" SELECT {by_hour} AS bucket, sum(views) AS v, sum(watch_time_sec) AS w"
        f" FROM views_hourly WHERE {video} AND {hours} GROUP BY bucket"
        " UNION ALL"
        f" SELECT {by_event} AS bucket, count() AS v, sum(watch_time_sec) AS w"
        f" FROM views WHERE {video} AND {raw} GROUP BY bucket"
        ") GROUP BY bucket ORDER BY bucket"
    )


TREND_SQL: Final = _trend_sql()

BREAKDOWN_SQL: Final = {
    by: "SELECT label, count() AS views FROM ("
    f" SELECT {by} AS label FROM views WHERE video_id = {{video_id:String}}"
    " AND timestamp >= fromUnixTimestamp64Milli({start:Int64}, 'UTC')"
    " AND timestamp < fromUnixTimestamp64Milli({end:Int64}, 'UTC')"
    ") GROUP BY label ORDER BY views DESC, label ASC"
    for by in BREAKDOWNS
}


@dataclass(frozen=True, slots=True)
class RankedCount:
    """A video and its views in a range."""

    video_id: str
    views: int


@dataclass(frozen=True, slots=True)
class TrendBucket:
    """Views and summed watch time of one bucket (starting at ``start``) of a trend."""

    start: int
    views: int
    watch_time_sec: float


@dataclass(frozen=True, slots=True)
class Riser:
    """A video's views in the current and previous period."""

    video_id: str
    current: int
    previous: int

    @property
    def change(self) -> int:
        """Absolute change, current minus previous."""
        return self.current - self.previous

    @property
    def relative(self) -> float | None:
        """Change relative to the previous period (``None`` when that had none)."""
        return None if self.previous == 0 else self.change / self.previous


@dataclass(frozen=True, slots=True)
class Share:
    """One label of a breakdown (``None``: events without the field) and its views."""

    label: str | None
    views: int


class AnalyticsQueries:
    """The questions of the analytics API over ``store``. Every method blocks while its
    statement runs; bounds are checked by the caller (``start < end``)."""

    def __init__(self, store: AnalyticsStore) -> None:
        self.store = store

    def top_k(
        self, start: int, end: int, k: int, category: str | None = None, region: str | None = None
    ) -> list[RankedCount]:
        """The ``k`` most viewed videos in ``[start, end)``."""
        params: dict[str, int | str] = {**_range_params("r", split_range(start, end)), "k": k}
        rows = self.store.query(TOP_K_SQL, params | _filters(category, region))
        return [RankedCount(str(r["video_id"]), int(r["views"])) for r in rows]

    def growth(
        self,
        end: int,
        period: int,
        k: int,
        category: str | None = None,
        region: str | None = None,
    ) -> list[Riser]:
        """The ``k`` videos viewed in ``[end - period, end)`` whose views grew most over
        ``[end - 2 period, end - period)`` (absolute change descending, then id)."""
        params: Params = {
            **_range_params("c", split_range(end - period, end)),
            **_range_params("p", split_range(end - 2 * period, end - period)),
            "k": k,
            **_filters(category, region),
        }
        rows = self.store.query(GROWTH_SQL, params)
        return [Riser(str(r["video_id"]), int(r["current"]), int(r["previous"] or 0)) for r in rows]

    def trend(self, video_id: str, start: int, end: int, grain: str) -> list[TrendBucket]:
        """Every ``grain`` bucket overlapping ``[start, end)`` (zero-filled), counting the
        video's events inside the range only (edge buckets are clipped to it)."""
        length, offset = GRAINS[grain]
        pieces = split_range(start, end) if length >= HOUR_MS else raw_range(start, end)
        params: Params = {
            **_range_params("r", pieces),
            "video_id": video_id,
            "length": length,
            "offset": offset,
        }
        found = {
            int(r["bucket"]): (int(r["views"]), float(r["watch_time_sec"]))
            for r in self.store.query(TREND_SQL, params)
        }
        return [TrendBucket(b, *found.get(b, (0, 0.0))) for b in buckets(start, end, grain)]

    def breakdown(self, video_id: str, by: str, start: int, end: int) -> list[Share]:
        """The video's views in ``[start, end)`` by ``by`` (one of :data:`BREAKDOWNS`)."""
        rows = self.store.query(
            BREAKDOWN_SQL[by], {"video_id": video_id, "start": start, "end": end}
        )
        return [Share(str(r["label"]) or None, int(r["views"])) for r in rows]


def _filters(category: str | None, region: str | None) -> dict[str, int | str]:
    """The filter parameters (``''``: no filter; events never carry an empty label)."""
    return {"category": category or "", "region": region or ""}
