"""Splitting an engine's state by a partition of video ids (rebalancing for scale-out).

Works on the captured state (:class:`~rankstream.engine.state.EngineState`): every table
keyed by video, cell or series keeps the rows of the partition's videos, with codes
renumbered densely in their old order. Window values and buckets move with their series and
cells, so each part answers exactly for its videos, and
:func:`~rankstream.engine.ranking.merge_top_k` of the parts is the whole engine's answer.

Two things are not per video: remembered ``event_id``s (the engine does not keep which
video an id belonged to) go to every part, which only costs memory, since a duplicate
arrives in its own video's partition; and the statistics counters start at zero.
"""

from __future__ import annotations

import msgspec
import numpy as np
import numpy.typing as npt

from rankstream.engine.partition import partitions_of
from rankstream.engine.state import BucketTable, Counters, EngineState, PackedArray, WindowValues

IntArray = npt.NDArray[np.int64]
_LOW32 = 0xFFFFFFFF


def split_state(state: EngineState, partitions: int) -> list[EngineState]:
    """One state per partition, ``p`` holding the videos with ``partition_of(video_id,
    partitions) == p`` and tagged ``partition=p``. Raises :class:`ValueError` unless
    ``partitions >= 1``."""
    owner = partitions_of(state.videos, partitions)
    return [_part(state, owner == p, p) for p in range(partitions)]


def _renumber(keep: npt.NDArray[np.bool_]) -> IntArray:
    """Old code -> new code (dense, in old order) for kept rows; -1 for the others."""
    mapping = np.full(len(keep), -1, dtype=np.int64)
    mapping[keep] = np.arange(int(keep.sum()), dtype=np.int64)
    return mapping


def _part(state: EngineState, keep_video: npt.NDArray[np.bool_], partition: int) -> EngineState:
    pack = PackedArray.of
    video_map = _renumber(keep_video)

    cells = state.cells.unpack()
    cell_video = cells >> 32
    keep_cell = video_map[cell_video] >= 0
    cell_map = _renumber(keep_cell)
    new_cells = (video_map[cell_video[keep_cell]] << 32) | (cells[keep_cell] & _LOW32)

    series = state.series.unpack()
    series_video = series & _LOW32
    keep_series = video_map[series_video] >= 0
    series_map = _renumber(keep_series)
    new_series_video = video_map[series_video[keep_series]]
    new_series = ((series[keep_series] >> 32) << 32) | new_series_video

    cell_series = state.cell_series.unpack()[keep_cell]
    present = cell_series >= 0
    cell_series[present] = series_map[cell_series[present]]

    buckets = []
    for table in state.buckets:
        entry_cells = table.cells.unpack()
        kept = cell_map[entry_cells] >= 0
        buckets.append(
            BucketTable(
                table.resolution,
                pack(table.buckets.unpack()[kept]),
                pack(cell_map[entry_cells[kept]]),
                pack(table.counts.unpack()[kept]),
            )
        )
    kept_videos = keep_video.tolist()
    return msgspec.structs.replace(
        state,
        partition=partition,
        stats=Counters(),
        videos=tuple(v for v, kept in zip(state.videos, kept_videos, strict=True) if kept),
        video_keys=pack(state.video_keys.unpack()[keep_video]),
        cells=pack(new_cells),
        cell_series=pack(cell_series),
        series=pack(new_series),
        series_video=pack(new_series_video),
        series_scope=pack(state.series_scope.unpack()[keep_series]),
        window_state=tuple(
            WindowValues(w.start, w.end, pack(w.values.unpack()[keep_series]))
            for w in state.window_state
        ),
        buckets=tuple(buckets),
    )
