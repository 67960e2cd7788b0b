"""Splitting an engine's state by a partition of video ids (rebalancing for scale-out).

Works on the captured state (:meth:`TopKEngine.capture`): every table keyed by video, cell
or series keeps the rows of the partition's videos, with codes renumbered densely in their
old order. Window values and buckets move with their series and cells, so each part answers
exactly for its videos, and :func:`~rankstream.engine.ranking.merge_top_k` of the parts is
the whole engine's answer.

Two things are not per video: remembered ``event_id``s (the engine does not keep which
video an id belonged to) go to every part, which only costs memory, since a duplicate
arrives in its own video's partition; and the statistics counters start at zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from rankstream.engine.partition import partitions_of
from rankstream.engine.snapshot import pack_array, unpack_array

IntArray = npt.NDArray[np.int64]
_LOW32 = 0xFFFFFFFF


def split_state(state: dict[str, Any], partitions: int) -> list[dict[str, Any]]:
    """One captured state per partition (``partition_of(video_id, partitions)``)."""
    owner = partitions_of(state["videos"], partitions)
    return [_part(state, owner == p) for p in range(partitions)]


def _renumber(keep: npt.NDArray[np.bool_]) -> IntArray:
    """Old code -> new code (dense, in old order) for kept rows; -1 for the others."""
    mapping = np.full(len(keep), -1, dtype=np.int64)
    mapping[keep] = np.arange(int(keep.sum()), dtype=np.int64)
    return mapping


def _part(state: dict[str, Any], keep_video: npt.NDArray[np.bool_]) -> dict[str, Any]:
    video_map = _renumber(keep_video)

    cells = unpack_array(state["cells"])
    cell_video = cells >> 32
    keep_cell = video_map[cell_video] >= 0
    cell_map = _renumber(keep_cell)
    new_cells = (video_map[cell_video[keep_cell]] << 32) | (cells[keep_cell] & _LOW32)

    series = unpack_array(state["series"])
    series_video = series & _LOW32
    keep_series = video_map[series_video] >= 0
    series_map = _renumber(keep_series)
    new_series_video = video_map[series_video[keep_series]]
    new_series = ((series[keep_series] >> 32) << 32) | new_series_video

    cell_series = unpack_array(state["cell_series"])[keep_cell]
    present = cell_series >= 0
    cell_series[present] = series_map[cell_series[present]]

    buckets = []
    for resolution, numbers, bucket_cells, counts in state["buckets"]:
        entry_cells = unpack_array(bucket_cells)
        kept = cell_map[entry_cells] >= 0
        buckets.append(
            [
                resolution,
                pack_array(unpack_array(numbers)[kept]),
                pack_array(cell_map[entry_cells[kept]]),
                pack_array(unpack_array(counts)[kept]),
            ]
        )
    return {
        **state,
        "stats": [0] * len(state["stats"]),
        "videos": [v for v, kept in zip(state["videos"], keep_video.tolist(), strict=True) if kept],
        "video_keys": pack_array(unpack_array(state["video_keys"])[keep_video]),
        "cells": pack_array(new_cells),
        "cell_series": pack_array(cell_series),
        "series": pack_array(new_series),
        "series_video": pack_array(new_series_video),
        "series_scope": pack_array(unpack_array(state["series_scope"])[keep_series]),
        "window_state": [
            [start, end, pack_array(unpack_array(values)[keep_series])]
            for start, end, values in state["window_state"]
        ],
        "buckets": buckets,
        "dedup": list(state["dedup"]),
    }
