"""The ranking helpers on their own: k-th largest with heavy ties, partition merge."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from rankstream.engine import RankedItem, merge_top_k
from rankstream.engine.ranking import kth_largest


@given(st.lists(st.integers(0, 200), min_size=1, max_size=300), st.data())
def test_kth_largest_matches_sorting(values: list[int], data: st.DataObject) -> None:
    k = data.draw(st.integers(1, len(values)))
    assert kth_largest(np.asarray(values, dtype=np.int64), k) == sorted(values)[-k]


def test_kth_largest_on_a_long_tail_of_ties() -> None:
    values = np.concatenate([np.ones(100_000, dtype=np.int64), np.arange(2, 1002)])
    assert kth_largest(values, 999) == 3
    assert kth_largest(values, 1000) == 2
    assert kth_largest(values, 1001) == 1


def test_merge_orders_by_views_then_id_and_renumbers() -> None:
    a = [RankedItem(1, "b", 5), RankedItem(2, "d", 1)]
    b = [RankedItem(1, "a", 5), RankedItem(2, "c", 2)]
    assert merge_top_k([a, b], 3) == [
        RankedItem(1, "a", 5),
        RankedItem(2, "b", 5),
        RankedItem(3, "c", 2),
    ]
