"""Every analytics answer equals a brute-force count of the events (tests/analytics/oracle).

Streams cross a month boundary (two partitions), arrive out of order and in several
batches (late events land in hours that already have rollup rows), and ranges start and
end on and off hour boundaries, so both the rollup and the raw edges are exercised.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from rankstream.analytics import AnalyticsQueries, AnalyticsStore
from rankstream.analytics.periods import DAY_MS, HOUR_MS, PERIODS, bucket_count
from tests.analytics.conftest import empty, insert
from tests.analytics.oracle import AnalyticsOracle, Event
from tests.budget import examples

BASE = 1_769_731_200_000  # 2026-01-30T00:00:00Z: the streams run into February
SPAN_HOURS = 4 * 24

videos = st.sampled_from(["a", "b", "c", "é", "video/4", "a" * 40])
labels = st.none() | st.sampled_from(["music", "news", "JP", "US"])
devices = st.none() | st.sampled_from(["mobile", "tv"])


@st.composite
def moments(draw: st.DrawFn) -> int:
    """A time in the span, often on or next to an hour boundary."""
    hour = draw(st.integers(0, SPAN_HOURS))
    offset = draw(st.sampled_from([0, 1, -1, None]))
    if offset is None:
        offset = draw(st.integers(0, HOUR_MS - 1))
    return BASE + hour * HOUR_MS + offset


events = st.builds(
    Event,
    video_id=videos,
    timestamp=moments(),
    category=labels,
    region=labels,
    device=devices,
    watch_time_sec=st.integers(0, 600),
)


@st.composite
def ranges(draw: st.DrawFn) -> tuple[int, int]:
    """``[start, end)`` with start before end."""
    a, b = draw(moments()), draw(moments())
    if a == b:
        b += draw(st.integers(1, 3 * HOUR_MS))
    return min(a, b), max(a, b)


def edge_ranges(stream: list[list[Event]]) -> list[tuple[int, int]]:
    """Ranges starting and ending right at, before and after events of the stream (so
    partial hours at both ends hold events)."""
    stamps = sorted({e.timestamp for batch in stream for e in batch})
    if len(stamps) < 2:
        return []
    low, high = stamps[len(stamps) // 4], stamps[-1 - len(stamps) // 4]
    return [(low, high), (low + 1, high + 1), (low - 1, high), (low, high + 1)]


def load(store: AnalyticsStore, stream: list[list[Event]]) -> AnalyticsOracle:
    empty(store)
    insert(store, stream)
    return AnalyticsOracle([e for batch in stream for e in batch])


streams = st.lists(st.lists(events, max_size=40), min_size=1, max_size=4)


@settings(max_examples=examples(30))
@given(
    stream=streams,
    bounds=st.lists(ranges(), min_size=1, max_size=3),
    k=st.integers(1, 7),
    category=labels,
    region=labels,
)
@example(  # a range of whole hours only, and one inside a single hour
    stream=[[Event("a", BASE + HOUR_MS), Event("b", BASE + 2 * HOUR_MS - 1)]],
    bounds=[(BASE, BASE + 2 * HOUR_MS), (BASE + HOUR_MS + 1, BASE + 2 * HOUR_MS - 1)],
    k=2,
    category=None,
    region=None,
)
def test_top_k_over_any_range(
    store: AnalyticsStore,
    stream: list[list[Event]],
    bounds: list[tuple[int, int]],
    k: int,
    category: str | None,
    region: str | None,
) -> None:
    oracle = load(store, stream)
    queries = AnalyticsQueries(store)
    for start, end in [*bounds, *edge_ranges(stream)]:
        if start >= end:
            continue
        assert queries.top_k(start, end, k) == oracle.top_k(start, end, k)
        assert queries.top_k(start, end, k, category, region) == oracle.top_k(
            start, end, k, category, region
        )


@settings(max_examples=examples(20))
@given(
    stream=streams,
    video=videos,
    bounds=ranges(),
    grain=st.sampled_from(["minute", "hour", "day", "week"]),
    by=st.sampled_from(["region", "category", "device"]),
)
def test_trend_and_breakdown(
    store: AnalyticsStore,
    stream: list[list[Event]],
    video: str,
    bounds: tuple[int, int],
    grain: str,
    by: str,
) -> None:
    oracle = load(store, stream)
    queries = AnalyticsQueries(store)
    start, end = ([*edge_ranges(stream), bounds])[0]
    if grain == "minute" and bucket_count(start, end, grain) > 3000:
        end = start + 3000 * 60_000  # keep the zero-filled answer small
    assert queries.trend(video, start, end, grain) == oracle.trend(video, start, end, grain)
    assert queries.breakdown(video, by, start, end) == oracle.breakdown(video, by, start, end)


@settings(max_examples=examples(20))
@given(
    stream=streams,
    end=moments(),
    period=st.sampled_from(sorted(PERIODS)),
    k=st.integers(1, 7),
    category=labels,
)
def test_growth(
    store: AnalyticsStore,
    stream: list[list[Event]],
    end: int,
    period: str,
    k: int,
    category: str | None,
) -> None:
    oracle = load(store, stream)
    queries = AnalyticsQueries(store)
    length = PERIODS[period]
    assert queries.growth(end, length, k, category) == oracle.growth(end, length, k, category)


def test_ranges_cross_months_and_late_events_join_rolled_up_hours(store: AnalyticsStore) -> None:
    """A late event lands in an hour the rollup already has: both rows are summed."""
    jan31 = BASE + DAY_MS + 23 * HOUR_MS  # 2026-01-31T23:00Z
    first = [Event("a", jan31 + 5), Event("a", jan31 + HOUR_MS + 5)]  # January, February
    late = [Event("a", jan31 + 7), Event("b", jan31 + HOUR_MS - 1)]
    oracle = load(store, [first, late])
    queries = AnalyticsQueries(store)
    for start, end in [(jan31, jan31 + 2 * HOUR_MS), (jan31 + 6, jan31 + HOUR_MS + 6)]:
        assert queries.top_k(start, end, 5) == oracle.top_k(start, end, 5)
    months = store.query("SELECT DISTINCT partition FROM system.parts WHERE table = 'views'")
    assert {row["partition"] for row in months} == {"202601", "202602"}
