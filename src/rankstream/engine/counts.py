"""The window state: one running value per series for every window, the buckets behind them,
and the clock that moves the windows on.

Each window keeps the sum of every series over its current ``[start, end)``. Events add to
the bucket of each resolution (while that bucket can still matter to a window) and to every
window whose bounds hold their timestamp; when the clock moves a window on, the buckets it
leaves are subtracted (a window that jumps past its end, or a calendar window entering a new
period, is zeroed). Buckets older than every window of their resolution are dropped.

Series and cells are codes of :class:`~rankstream.engine.tables.Tables`; this module only
needs the ``cell_series`` table (the series each cell feeds), passed in by the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from rankstream.engine.buckets import BucketStore, group_by_bucket, sum_by
from rankstream.engine.columns import Column
from rankstream.engine.state import BucketTable, EngineState, PackedArray, WindowValues
from rankstream.engine.windows import WindowSpec

IntArray = npt.NDArray[np.int64]


@dataclass(slots=True)
class Window:
    """One window's bounds and its value per series (a column indexed by series code)."""

    spec: WindowSpec
    values: Column = field(default_factory=lambda: Column(np.int64))
    start: int = 0
    end: int = 0


class WindowCounts:
    """Every window's values and the buckets they slide over; see the module docstring.

    ``now`` is the engine clock: the newest accepted timestamp, or later after
    :meth:`advance`; ``None`` before the first event. ``horizon``: events older than this
    before the start of the current coarsest bucket count toward ``all`` only.
    """

    def __init__(self, specs: tuple[WindowSpec, ...], horizon: int) -> None:
        self.now: int | None = None
        self.horizon = horizon
        self.windows = [Window(spec) for spec in specs]
        resolutions = sorted({s.resolution for s in specs if s.kind != "all"})
        self.buckets = {r: BucketStore(r) for r in resolutions}
        self._all = next((w for w in self.windows if w.spec.kind == "all"), None)
        self._bucketed = {
            r: [w for w in self.windows if w.spec.kind != "all" and w.spec.resolution == r]
            for r in resolutions
        }

    def index(self, name: str) -> int | None:
        """The position of the window called ``name``, or ``None``."""
        return next((i for i, w in enumerate(self.windows) if w.spec.name == name), None)

    def grow_to(self, series: int) -> None:
        """Make room for series codes below ``series`` (new series start at zero)."""
        for window in self.windows:
            window.values.grow_to(series)

    def add_events(
        self,
        timestamps: IntArray,
        quantities: IntArray | None,
        cells: IntArray,
        inverse: IntArray,
        series: IntArray,
    ) -> int:
        """Count a batch; return how many of its events are older than the horizon.

        ``cells`` are the batch's distinct cells, ``inverse[i]`` the position of event
        ``i``'s cell among them and ``series`` their rows of ``cell_series``. The clock must
        already be at or past the newest timestamp (:meth:`advance`).
        """
        if self._all is not None:
            self._add(self._all, series, sum_by(inverse, len(cells), quantities))
        for resolution, store in self.buckets.items():
            numbers = timestamps // resolution
            mask = numbers >= self._oldest_start(resolution) // resolution
            if not mask.any():
                continue
            entry_buckets, positions, summed = group_by_bucket(
                numbers[mask],
                inverse[mask],
                len(cells),
                None if quantities is None else quantities[mask],
            )
            store.add(entry_buckets, cells[positions], summed)
            for window in self._bucketed[resolution]:
                inside = (entry_buckets >= window.start // resolution) & (
                    entry_buckets < window.end // resolution
                )
                self._add(window, series[positions[inside]], summed[inside])
        return int(np.count_nonzero(timestamps < self._horizon_start()))

    def advance(self, now: int, cell_series: IntArray) -> None:
        """Move the clock to ``now``: windows slide, the buckets they left are subtracted
        from their series (``cell_series``: the series of each cell)."""
        first = self.now is None
        self.now = now
        for window in self.windows:
            if window.spec.kind == "all":
                continue
            start, end = window.spec.bounds(now)
            if first or start >= window.end:
                window.values.view[:] = 0
            elif start > window.start:
                store = self.buckets[window.spec.resolution]
                left = store.between(window.start // store.resolution, start // store.resolution)
                if left:  # one subtraction for every bucket the window left
                    cells = np.concatenate([c for c, _ in left])
                    counts = np.concatenate([q for _, q in left])
                    self._add(window, cell_series[cells], -counts)
            window.start, window.end = start, end
        for resolution, store in self.buckets.items():
            store.drop_before(self._oldest_start(resolution) // resolution)

    def _add(self, window: Window, series: IntArray, amounts: IntArray) -> None:
        """Add ``amounts[i]`` to each present series of row ``series[i]`` (rows of 4)."""
        if len(series) == 0:
            return
        present = series >= 0
        spread = np.broadcast_to(amounts[:, None], present.shape)[present]
        np.add.at(window.values.view, series[present], spread)

    def _oldest_start(self, resolution: int) -> int:
        """The earliest start among windows kept in buckets of ``resolution``."""
        return min(w.start for w in self._bucketed[resolution])

    def _horizon_start(self) -> int:
        now = self.now or 0
        coarsest = max(self.buckets, default=1)
        return now - now % coarsest - self.horizon

    # ------------------------------------------------------------------ state

    def captured(self) -> tuple[tuple[WindowValues, ...], tuple[BucketTable, ...]]:
        """Copies of every window's bounds and values, and of every bucket store."""
        pack = PackedArray.of
        windows = tuple(WindowValues(w.start, w.end, pack(w.values.view)) for w in self.windows)
        buckets = tuple(
            BucketTable(resolution, *map(pack, store.to_arrays()))
            for resolution, store in self.buckets.items()
        )
        return windows, buckets

    def load(self, state: EngineState) -> None:
        """Take the clock, window values and buckets of a captured state (into a fresh
        instance built for the same windows)."""
        self.now = state.now
        for window, saved in zip(self.windows, state.window_state, strict=True):
            window.start, window.end = saved.start, saved.end
            window.values = Column.of(saved.values.unpack())
        for table in state.buckets:
            store = self.buckets[table.resolution]
            store.add(table.buckets.unpack(), table.cells.unpack(), table.counts.unpack())

    @property
    def bucket_entries(self) -> int:
        """(cell, bucket) entries held, at every resolution."""
        return sum(store.entries for store in self.buckets.values())
