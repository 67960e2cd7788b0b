"""The de-dup memory: what a screening predicts is what expiry then forgets."""

from __future__ import annotations

import copy

from hypothesis import given
from hypothesis import strategies as st

from rankstream.engine.dedup import Deduplicator

IDS = ["e1", "e2", "e3", "e4", "e5", "e6"]

steps = st.lists(
    st.tuples(
        st.integers(0, 30),  # arrival time: not monotonic (a wall clock may step back)
        st.lists(st.sampled_from(IDS), max_size=4),  # remembered, or [] to expire instead
        st.integers(0, 40),  # a probe time
    ),
    max_size=20,
)


@given(steps=steps, capacity=st.sampled_from([2, 4, 100]))
def test_live_from_predicts_what_expire_forgets(
    steps: list[tuple[int, list[str], int]], capacity: int
) -> None:
    dedup = Deduplicator(horizon=5, capacity=capacity)
    for arrival, ids, probe in steps:
        for t in (probe, arrival):
            live_from = dedup.live_from(t)
            predicted = {i for i, n in dedup.entries.items() if n >= live_from}
            expired = copy.deepcopy(dedup)
            expired.expire(t)
            assert set(expired.entries) == predicted
        if ids:
            dedup.expire(arrival)
            dedup.remember(list(ids), arrival)
            assert set(ids) <= set(dedup.entries) or dedup.evicted
        else:
            dedup.expire(arrival)
        assert len(dedup) <= capacity
        restored = Deduplicator(horizon=5, capacity=capacity)
        restored.load(dedup.items())
        assert set(restored.entries) == set(dedup.entries)
        assert restored.items() == dedup.items()


def test_one_entry_per_arrival_time() -> None:
    dedup = Deduplicator(horizon=10, capacity=100)
    dedup.remember(["a", "b"], 1)
    dedup.remember(["c"], 1)  # a second request of the same group
    dedup.remember(["d", "d"], 2)
    assert dedup.items() == [("a", 1), ("b", 1), ("c", 1), ("d", 2)]
    assert dedup.live_from(11) == dedup.live_from(0)  # nothing older than 11 - 10
    dedup.expire(12)
    assert dedup.items() == [("d", 2)]
