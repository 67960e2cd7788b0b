"""The ranking helpers on their own: k-th largest with heavy ties, partition merge."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rankstream.engine import RankedItem, TopKResult, merge_top_k
from rankstream.engine.columns import id_sort_keys
from rankstream.engine.ranking import IdOrder, IdRanks, kth_largest, leading, leading_by_group
from rankstream.errors import InvalidQuery, MismatchedBounds
from tests.budget import examples

T0 = 1_795_341_600_000
HOUR = 3_600_000


@given(st.lists(st.integers(0, 200), min_size=1, max_size=300), st.data())
def test_kth_largest_matches_sorting(values: list[int], data: st.DataObject) -> None:
    k = data.draw(st.integers(1, len(values)))
    assert kth_largest(np.asarray(values, dtype=np.int64), k) == sorted(values)[-k]


def test_kth_largest_on_a_long_tail_of_ties() -> None:
    values = np.concatenate([np.ones(100_000, dtype=np.int64), np.arange(2, 1002)])
    assert kth_largest(values, 999) == 3
    assert kth_largest(values, 1000) == 2
    assert kth_largest(values, 1001) == 1


def result(*items: tuple[str, int], as_of: int | None = T0, k: int = 10) -> TopKResult:
    """A ranking of the ``1h`` window as of ``as_of`` (bounds of the hour holding it)."""
    ranked = tuple(RankedItem(i, v, n) for i, (v, n) in enumerate(items, 1))
    start, end = (None, None) if as_of is None else (T0 - HOUR + 60_000, T0 + 60_000)
    return TopKResult("1h", start, end, as_of, k, None, None, ranked)


def test_merge_orders_by_views_then_id_and_renumbers() -> None:
    a = result(("b", 5), ("d", 1))
    b = result(("a", 5), ("c", 2))
    merged = merge_top_k([a, b], 3)
    assert merged.items == (RankedItem(1, "a", 5), RankedItem(2, "b", 5), RankedItem(3, "c", 2))
    assert (merged.window, merged.start, merged.end, merged.k) == ("1h", a.start, a.end, 3)


def test_merge_as_of_is_the_least_advanced_clock() -> None:
    behind, ahead = result(("a", 1), as_of=T0 - 5_000), result(("b", 2), as_of=T0)
    assert merge_top_k([ahead, behind], 10).as_of == T0 - 5_000


def test_parts_without_a_clock_hold_nothing_and_are_left_out() -> None:
    clocked = result(("a", 1))
    empty = result(as_of=None)
    assert merge_top_k([empty, clocked, empty], 10) == clocked
    # Only empty engines: the answer one empty engine gives.
    assert merge_top_k([empty, empty], 10) == empty


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("window", "24h"),
        ("start", T0 - 2 * HOUR),
        ("end", T0 + 2 * HOUR),
        ("category", "music"),
        ("region", "us"),
    ],
)
def test_merge_refuses_rankings_of_different_bounds(field: str, value: object) -> None:
    a = result(("a", 1))
    b = msgspec.structs.replace(result(("b", 1)), **{field: value})
    with pytest.raises(MismatchedBounds, match=f"differ in {field}"):
        merge_top_k([a, b], 5)


def test_merge_checks_k_against_the_parts_and_refuses_overlaps() -> None:
    a, b = result(("a", 1), k=5), result(("b", 1), k=3)
    assert len(merge_top_k([a, b], 3).items) == 2
    for k in (0, 4, True):
        with pytest.raises(InvalidQuery, match="k must be an integer from 1 to 3"):
            merge_top_k([a, b], k)
    with pytest.raises(ValueError, match="at least one result"):
        merge_top_k([], 1)
    with pytest.raises(ValueError, match="overlap"):
        merge_top_k([a, result(("a", 2))], 3)


_parts = st.lists(
    st.dictionaries(st.text("abcé😀", min_size=1, max_size=3), st.integers(1, 9), max_size=8),
    min_size=1,
    max_size=4,
)


@settings(max_examples=examples(100))
@given(_parts, st.integers(1, 10), st.data())
def test_merge_is_the_ranking_of_the_union(
    parts: list[dict[str, int]], k: int, data: st.DataObject
) -> None:
    """Against a brute-force oracle: rank every part's videos (made disjoint) at once."""
    seen: set[str] = set()
    disjoint = []
    for part in parts:
        disjoint.append({v: n for v, n in part.items() if v not in seen})
        seen |= part.keys()
    # Engines in the same bucket, at different clocks; one with no clock yet holds nothing.
    clocks = [data.draw(st.sampled_from([T0 - 1, T0] if p else [None, T0])) for p in disjoint]
    results = [
        result(*sorted(p.items(), key=lambda i: (-i[1], i[0])), as_of=c)
        for p, c in zip(disjoint, clocks, strict=True)
    ]
    union = sorted(((v, n) for p in disjoint for v, n in p.items()), key=lambda i: (-i[1], i[0]))
    merged = merge_top_k(results, k)
    assert merged.items == tuple(RankedItem(i, v, n) for i, (v, n) in enumerate(union[:k], 1))
    assert merged.as_of == min((c for c in clocks if c is not None), default=None)


@settings(max_examples=examples(100))
@given(
    _parts,
    st.sampled_from(["window", "start", "end", "category", "region"]),
    st.sampled_from(["24h", "x", 0, T0 + 7]),
    st.data(),
)
def test_any_difference_in_bounds_is_refused(
    parts: list[dict[str, int]], field: str, value: object, data: st.DataObject
) -> None:
    seen: set[str] = set()
    results = []
    for part in parts:
        results.append(result(*((v, n) for v, n in part.items() if v not in seen)))
        seen |= part.keys()
    results.append(msgspec.structs.replace(result(), **{field: value}))
    order = data.draw(st.permutations(results))
    with pytest.raises(MismatchedBounds):
        merge_top_k(order, 1)


GROUPED_IDS = ["a", "b", "ab", "é", "Z", "😀", "x" * 20 + "1", "x" * 20 + "2", "x" * 16, "ba"]


@settings(max_examples=examples(200), deadline=None)
@given(
    rows=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 9), st.integers(0, 3)), max_size=40),
    k=st.integers(1, 5),
    wide=st.booleans(),
)
def test_ranking_groups_together_equals_ranking_each(
    rows: list[tuple[int, int, int]], k: int, wide: bool
) -> None:
    """``leading_by_group`` answers for every group what ``leading`` answers for it alone,
    with values that pack into one sort key and with values too wide to (``wide``)."""
    ids = GROUPED_IDS
    keys = id_sort_keys(ids)
    videos = np.arange(len(ids), dtype=np.int64)
    ranks = np.empty(len(ids), dtype=np.int64)
    ranks[IdOrder(videos, keys, ids).sort(videos, videos * 0)] = videos
    # Series g * 10 + slot is video ``slot`` in group g: a video has one series in each
    # group it is in, as in an engine (one per scope).
    order = IdOrder(np.arange(50, dtype=np.int64) % len(ids), keys, ids)
    cells = {(g * 10 + slot): (g, value) for g, slot, value in rows}
    series = np.array(list(cells), dtype=np.int64)
    groups = np.array([g for g, _ in cells.values()], dtype=np.int64)
    values = np.zeros(50, dtype=np.int64)
    values[series] = [v << 58 if wide else v for _, v in cells.values()]
    chosen, chosen_values, chosen_groups = leading_by_group(
        series, groups, values[series], k, order, ranks
    )
    assert chosen_groups.tolist() == sorted(chosen_groups.tolist())
    for group in range(5):
        alone, alone_values = leading(series[groups == group], values, k, order)
        mine = chosen_groups == group
        assert chosen[mine].tolist() == alone.tolist()
        assert chosen_values[mine].tolist() == alone_values.tolist()


@settings(max_examples=examples(200), deadline=None)
@given(
    chunks=st.lists(
        st.lists(
            st.one_of(
                st.text(min_size=1, max_size=20),
                st.sampled_from(GROUPED_IDS),
                st.text(alphabet="xy", min_size=15, max_size=19),  # shared 16-byte prefixes
            ),
            max_size=6,
        ),
        max_size=5,
    )
)
def test_id_ranks_kept_up_to_date_are_the_id_order(chunks: list[list[str]]) -> None:
    """Ranks merged in as ids are added equal ranking every id at once (code point order)."""
    ranks = IdRanks()
    ids: list[str] = []
    for chunk in chunks:
        ids += [i for i in dict.fromkeys(chunk) if i not in ids and "\0" not in i]
        got = ranks.update(id_sort_keys(ids), ids)
        expected = sorted(range(len(ids)), key=lambda code: ids[code])
        assert got[expected].tolist() == list(range(len(ids)))
