"""The replica's k-way merge of columnar partition rankings equals the engine's merge."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rankstream.engine import RankedItem, TopKResult, merge_top_k
from rankstream.serving.layout import Generation
from rankstream.serving.redis import merge_columns
from tests.budget import examples

IDS = ["a", "b", "ab", "é", "Z", "😀", "x" * 20 + "1", "x" * 20 + "2", "x" * 16, "ba"]


def ranked(counts: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda row: (-row[1], row[0]))


@settings(max_examples=examples(200), deadline=None)
@given(
    counts=st.dictionaries(st.sampled_from(IDS), st.integers(1, 4)),
    partitions=st.integers(1, 5),
    k=st.integers(1, 12),
    data=st.data(),
)
def test_merging_columns_equals_merging_results(
    counts: dict[str, int], partitions: int, k: int, data: st.DataObject
) -> None:
    owner = {video: data.draw(st.integers(0, partitions - 1)) for video in counts}
    parts = [
        ranked({v: n for v, n in counts.items() if owner[v] == p})[:k] for p in range(partitions)
    ]
    generations = [Generation(0, 1, [v for v, _ in p], [n for _, n in p]) for p in parts]
    results = [
        TopKResult(
            "1h",
            0,
            1,
            0,
            k,
            None,
            None,
            tuple(RankedItem(r, v, n) for r, (v, n) in enumerate(p, 1)),
        )
        for p in parts
    ]
    assert merge_columns(generations, k) == merge_top_k(results, k).items


def test_a_video_in_two_partitions_is_refused() -> None:
    parts = [Generation(0, 1, ["a"], [2]), Generation(0, 1, ["a"], [1])]
    with pytest.raises(ValueError, match="partitions overlap"):
        merge_columns(parts, 2)
