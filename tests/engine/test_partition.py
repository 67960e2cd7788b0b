"""Partitioned engines merge into the exact global ranking."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rankstream.engine import (
    EventBatch,
    TopKEngine,
    ViewEvent,
    merge_top_k,
    partition_of,
    split_batch,
)
from tests.budget import examples

T0 = 1_795_341_600_000


def test_partition_of_is_stable_and_in_range() -> None:
    assert partition_of("video-1", 8) == partition_of("video-1", 8)
    assert {partition_of(f"v{i}", 4) for i in range(100)} == {0, 1, 2, 3}


@settings(max_examples=examples(60), deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(alphabet="abcé😀", min_size=1, max_size=3),
            st.integers(-3 * 3_600_000, 0),
            st.sampled_from([None, "m", "g"]),
        ),
        min_size=1,
        max_size=60,
    ),
    st.integers(1, 5),
    st.integers(1, 8),
)
def test_merged_partition_rankings_equal_the_single_engine(
    raw: list[tuple[str, int, str | None]], partitions: int, k: int
) -> None:
    events = EventBatch.from_events([ViewEvent(v, T0 + off, c) for v, off, c in raw])
    whole = TopKEngine()
    whole.ingest(events, T0)
    whole.tick(T0)
    parts = [TopKEngine() for _ in range(partitions)]
    for engine, part in zip(parts, split_batch(events, partitions), strict=True):
        if len(part):
            engine.ingest(part, T0)
            engine.tick(T0)  # the same clock everywhere, as a live deployment ticks
    for window in ("1h", "24h", "all"):
        for category in (None, "m"):
            merged = merge_top_k((p.top_k(window, k, category=category).items for p in parts), k)
            assert tuple(merged) == whole.top_k(window, k, category=category).items


@settings(max_examples=examples(60), deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(alphabet="abcé😀", min_size=1, max_size=3),
            st.integers(-40 * 86_400_000, 0),
            st.sampled_from([None, "m", "g"]),
            st.sampled_from([None, "us", "jp"]),
        ),
        min_size=1,
        max_size=60,
    ),
    st.integers(1, 4),
    st.integers(1, 6),
)
def test_split_state_answers_exactly_and_keeps_counting(
    raw: list[tuple[str, int, str | None, str | None]], partitions: int, k: int
) -> None:
    events = [ViewEvent(v, T0 + off, c, r) for v, off, c, r in raw]
    half = len(events) // 2
    whole = TopKEngine()
    whole.ingest(EventBatch.from_events(events[: half + 1]), T0)
    parts = whole.split(partitions)

    def compare(step: str) -> None:
        for window in ("1h", "24h", "7d", "30d", "hour", "day", "month", "all"):
            for category, region in ((None, None), ("m", None), (None, "us"), ("g", "jp")):
                expected = whole.top_k(window, k, category=category, region=region)
                answers = [p.top_k(window, k, category=category, region=region) for p in parts]
                assert {(a.start, a.end, a.as_of) for a in answers} == {
                    (expected.start, expected.end, expected.as_of)
                }
                merged = merge_top_k((a.items for a in answers), k)
                assert tuple(merged) == expected.items, (step, window, category, region)

    compare("split")
    later = EventBatch.from_events(events[half + 1 :]) if events[half + 1 :] else None
    if later is not None:
        whole.ingest(later, T0)
        for engine, part in zip(parts, split_batch(later, partitions), strict=True):
            if len(part):
                engine.ingest(part, T0)
    for engine in (whole, *parts):
        engine.tick(T0)
    compare("after more events")
    for moved in (30 * 60_000, 3 * 86_400_000):  # windows slide: left buckets are subtracted
        for engine in (whole, *parts):
            engine.tick(T0 + moved)
        compare(f"after the clock moved {moved} ms")
