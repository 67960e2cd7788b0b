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

T0 = 1_795_341_600_000


def test_partition_of_is_stable_and_in_range() -> None:
    assert partition_of("video-1", 8) == partition_of("video-1", 8)
    assert {partition_of(f"v{i}", 4) for i in range(100)} == {0, 1, 2, 3}


@settings(max_examples=60, deadline=None)
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
