"""Time arithmetic of the analytics answers, pure: ranges, whole hours, buckets.

Every time is epoch milliseconds (UTC) and every range is half-open, ``[start, end)``.
A range is answered from the hourly rollup for the whole hours inside it and from raw rows
for the partial hours at its edges (:func:`split_range`); a trend cuts it into buckets of
one grain, aligned in UTC (weeks start on Monday), with every bucket present (zero-filled)
and the edge buckets clipped to the range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

MINUTE_MS: Final = 60_000
HOUR_MS: Final = 60 * MINUTE_MS
DAY_MS: Final = 24 * HOUR_MS
WEEK_MS: Final = 7 * DAY_MS
WEEK_OFFSET_MS: Final = 4 * DAY_MS
"""1970-01-05, the first Monday after the epoch (a Thursday): weeks are aligned on it."""

Grain = Literal["minute", "hour", "day", "week"]
GRAINS: Final[dict[str, tuple[int, int]]] = {
    "minute": (MINUTE_MS, 0),
    "hour": (HOUR_MS, 0),
    "day": (DAY_MS, 0),
    "week": (WEEK_MS, WEEK_OFFSET_MS),
}
"""Each grain's bucket length and alignment offset: a bucket starts at ``offset + n *
length`` for an integer ``n``."""

PERIODS: Final[dict[str, int]] = {"1d": DAY_MS, "7d": 7 * DAY_MS, "30d": 30 * DAY_MS}
"""The growth periods and their lengths."""


@dataclass(frozen=True, slots=True)
class SplitRange:
    """``[start, end)`` as whole hours ``[hours_start, hours_end)`` (empty when equal) and
    the partial hours at its edges, ``[start, head_end)`` and ``[tail_start, end)`` (each
    empty when its bounds are equal). The three never overlap and cover the range."""

    start: int
    head_end: int
    hours_start: int
    hours_end: int
    tail_start: int
    end: int


def split_range(start: int, end: int) -> SplitRange:
    """The whole hours and edge pieces of ``[start, end)`` (``start <= end``)."""
    if start > end:
        raise ValueError("start must not be after end")
    first_hour = -(-start // HOUR_MS) * HOUR_MS
    last_hour = end // HOUR_MS * HOUR_MS
    if first_hour >= last_hour:  # no whole hour inside: all of it is an edge
        return raw_range(start, end)
    return SplitRange(start, first_hour, first_hour, last_hour, last_hour, end)


def raw_range(start: int, end: int) -> SplitRange:
    """``[start, end)`` as one edge piece, no whole hours (for minute buckets, which the
    hourly rollup cannot cut)."""
    return SplitRange(start, end, end, end, end, end)


def bucket_of(timestamp: int, grain: str) -> int:
    """The start of the ``grain`` bucket holding ``timestamp``."""
    length, offset = GRAINS[grain]
    return (timestamp - offset) // length * length + offset


def buckets(start: int, end: int, grain: str) -> list[int]:
    """The starts of every ``grain`` bucket overlapping ``[start, end)``, in order."""
    if start >= end:
        return []
    length, _ = GRAINS[grain]
    return list(range(bucket_of(start, grain), end, length))


def bucket_count(start: int, end: int, grain: str) -> int:
    """How many buckets :func:`buckets` returns, without listing them."""
    if start >= end:
        return 0
    length, _ = GRAINS[grain]
    return (end - 1 - bucket_of(start, grain)) // length + 1
