"""The engine's tables: string interning and the integer index."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from rankstream.engine.columns import Interner, IntIndex


@given(st.lists(st.lists(st.integers(-(2**40), 2**40), max_size=50), max_size=30))
def test_int_index_gives_first_seen_codes(batches: list[list[int]]) -> None:
    index = IntIndex()
    expected: dict[int, int] = {}
    for batch in batches:
        keys = np.asarray(batch, dtype=np.int64)
        codes = index.encode(keys)
        for key in np.unique(keys).tolist():  # new keys are numbered in ascending order
            expected.setdefault(key, len(expected))
        assert codes.tolist() == [expected[k] for k in batch]
    for key, code in expected.items():
        assert index.get(key) == code
    assert index.get(2**50) is None
    probe = [*expected, 2**50, -(2**50)]
    found = index.find(np.asarray(probe, dtype=np.int64))
    assert found.tolist() == [*expected.values(), -1, -1]  # and nothing was assigned
    assert len(index) == len(expected)
    assert index.keys.view.tolist() == sorted(expected, key=expected.__getitem__)
    rebuilt = IntIndex(index.keys.view.copy())
    assert all(rebuilt.get(k) == c for k, c in expected.items())


def test_int_index_merges_recent_keys() -> None:
    index = IntIndex()
    for start in range(0, 20_000, 1000):
        index.encode(np.arange(start, start + 1000, dtype=np.int64) * 7)
    assert len(index) == 20_000
    assert index.get(7 * 12_345) == 12_345
    assert index.encode(np.array([0, 7 * 19_999], dtype=np.int64)).tolist() == [0, 19_999]
    index.encode(np.array([5, 3], dtype=np.int64))  # recent (not merged), numbered 3 first
    probe = np.array([3, 7 * 12_345, 4, 5, 7 * 20_000, 0], dtype=np.int64)
    assert index.find(probe).tolist() == [20_000, 12_345, -1, 20_001, -1, 0]


def test_interner_codes_strings_in_first_seen_order() -> None:
    interner: Interner[str | None] = Interner([None])
    assert interner.encode(["b", "a", "b", None]).tolist() == [1, 2, 1, 0]
    assert interner.values == [None, "b", "a"]
    assert interner.get("a") == 2
    assert interner.get("zzz") is None
    assert interner.lookup(["a", "zzz", None, "b"]).tolist() == [2, -1, 0, 1]
    assert len(interner) == 3  # lookup assigns nothing
