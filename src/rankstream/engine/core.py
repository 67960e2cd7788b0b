"""The windowed top-k engine: event batches and the clock in, exact rankings out.

Data model
----------
- A *cell* is a video in one category and one region (either may be absent). Buckets store
  per-cell sums, so late events can be applied to and later expired from every window.
- A *scope* is a ranking filter: all, one category, one region, or a (category, region)
  pair. A *series* is one video within one scope; every cell feeds up to four series.
- Each window keeps one running value per series: the sum over its current ``[start, end)``.
  When the clock moves a window on, the buckets it leaves are subtracted.

Feeding it
----------
Events go in through a :class:`~rankstream.engine.screening.Screening`, a transaction:
:meth:`TopKEngine.screening` opens one for an arrival time, its ``screen`` decides each
event (too new, duplicate, over a capacity limit, or accepted) without changing the
engine, and :meth:`TopKEngine.commit` counts the accepted events. A durable caller logs
them in between, and on restart feeds the log to :meth:`TopKEngine.replay`, which never
refuses anything. :meth:`TopKEngine.ingest` is screening, screen and commit in one call.

The engine is pure: it never reads the system clock, does no I/O and owns no threads.
Calls must not overlap (one writer); :meth:`top_k` may update caches, so it is a writer too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import msgspec
import numpy as np
import numpy.typing as npt

from rankstream.engine.buckets import BucketStore, group_by_bucket, sum_by
from rankstream.engine.columns import Column, Interner, IntIndex, id_sort_keys
from rankstream.engine.config import (
    CELL_CODE_LIMIT,
    LABEL_CODE_LIMIT,
    VIDEO_CODE_LIMIT,
    EngineConfig,
)
from rankstream.engine.dedup import Deduplicator
from rankstream.engine.events import MAX_LABEL_CHARS, EventBatch
from rankstream.engine.ranking import (
    IdOrder,
    Leaderboard,
    RankedItem,
    TopKResult,
    build_leaderboard,
    higher_bound,
)
from rankstream.engine.screening import (
    ACCEPTED,
    DUPLICATE,
    OVER_CAPACITY,
    TOO_NEW,
    CapacityRefusal,
    Screening,
)
from rankstream.engine.snapshot import decode, encode
from rankstream.engine.split import split_state
from rankstream.engine.state import (
    BucketTable,
    Counters,
    EngineState,
    PackedArray,
    WindowValues,
    window_shape,
)
from rankstream.engine.touchlog import TouchLog
from rankstream.engine.windows import WindowSpec
from rankstream.errors import CapacityError, InvalidQuery, SnapshotError

IntArray = npt.NDArray[np.int64]
_LookedUp = tuple[IntArray, IntArray | None, IntArray | None]  # video, category, region codes
_MaybeLookedUp = tuple[IntArray | None, IntArray | None, IntArray | None]

__all__ = [
    "ACCEPTED",
    "DUPLICATE",
    "OVER_CAPACITY",
    "TOO_NEW",
    "CapacityRefusal",
    "EngineStats",
    "IngestResult",
    "Screening",
    "TopKEngine",
]

_RESULT_CACHE_SIZE = 4096
_ANY = 0  # the "no filter" / "absent" code for category and region


@dataclass(slots=True)
class EngineStats:
    """Running totals since the engine's state began (kept in snapshots)."""

    accepted: int = 0
    duplicates: int = 0
    rejected_too_new: int = 0
    late_dropped: int = 0
    rejected_over_capacity: int = 0


@dataclass(slots=True)
class IngestResult:
    """What one :meth:`TopKEngine.ingest` call did; ``status`` has one code per event and
    ``refusals`` one :class:`CapacityRefusal` per :data:`OVER_CAPACITY` event."""

    status: npt.NDArray[np.int8]
    accepted: int
    duplicates: int
    rejected_too_new: int
    late_dropped: int
    over_capacity: int = 0
    refusals: list[CapacityRefusal] = field(default_factory=list)


@dataclass(slots=True)
class _ScopeMembers:
    series: Column = field(default_factory=lambda: Column(np.int64))
    scanned: int = 0  # series codes below this have been looked at


@dataclass(slots=True)
class _WindowState:
    spec: WindowSpec
    values: Column = field(default_factory=lambda: Column(np.int64))
    start: int = 0
    end: int = 0


class TopKEngine:
    """Exact top-k over every configured window and scope. See the module docstring.

    Build one with a config (``TopKEngine(config)``) or from a snapshot
    (:meth:`restore`). Feed it with :meth:`screening` and :meth:`commit` (or :meth:`ingest`
    for both), :meth:`replay` and :meth:`tick`; read it with :meth:`top_k`.

    ``partition`` says which partition of the event log the engine counts (0 when it counts
    all of it); the engine does not check its events against it, but keeps it in
    :meth:`capture` and :meth:`restore`, so a scale-out worker knows what a snapshot holds.
    """

    def __init__(self, config: EngineConfig | None = None, partition: int = 0) -> None:
        self.config = config or EngineConfig()
        self.config.validate()
        if isinstance(partition, bool) or not isinstance(partition, int) or partition < 0:
            raise ValueError(f"partition must be a non-negative integer, got {partition!r}")
        self.partition = partition
        self.stats = EngineStats()
        self.now: int | None = None
        self._videos: Interner[str] = Interner()
        self._video_keys = Column(np.uint64, width=2)
        self._categories: Interner[str | None] = Interner([None])
        self._regions: Interner[str | None] = Interner([None])
        self._cells = IntIndex()  # video << 32 | category << 16 | region
        self._cell_series = Column(np.int64, width=4)
        self._scopes = IntIndex(np.array([_ANY]))  # category << 16 | region
        self._scope_members: dict[int, _ScopeMembers] = {}  # built lazily, per queried scope
        self._series = IntIndex()  # scope << 32 | video
        self._series_video = Column(np.int64)
        self._series_scope = Column(np.int64)
        self._windows = [_WindowState(spec) for spec in self.config.windows]
        resolutions = sorted({w.resolution for w in self.config.windows if w.kind != "all"})
        self._buckets = {r: BucketStore(r) for r in resolutions}
        self._dedup = Deduplicator(self.config.dedup_horizon, self.config.dedup_capacity)
        self._log = TouchLog()
        self._boards: dict[tuple[int, int], Leaderboard] = {}
        # Answers are reused until the next batch or clock move: (log seq, now) -> result.
        self._results: dict[tuple[object, ...], tuple[tuple[int, int | None], TopKResult]] = {}
        # Replaced whenever events are counted: a screening is valid while it holds this one.
        self._token = object()

    # ------------------------------------------------------------------ ingest

    def ingest(self, batch: EventBatch, wall_time: int) -> IngestResult:
        """Count a batch of events that arrived at ``wall_time`` (epoch ms): a
        :meth:`screening` of it, committed at once (:meth:`commit`)."""
        screening = self.screening(wall_time)
        status = screening.screen(batch)
        refusals = screening.capacity_reasons()
        if screening.accepted == len(batch):
            accepted = batch
        else:
            accepted = batch.take(np.flatnonzero(status == ACCEPTED))
        late = self.commit(screening, accepted)
        return IngestResult(
            status=status,
            accepted=screening.accepted,
            duplicates=screening.duplicates,
            rejected_too_new=screening.too_new,
            late_dropped=late,
            over_capacity=screening.over_capacity,
            refusals=refusals,
        )

    def screening(self, wall_time: int) -> Screening:
        """A new :class:`~rankstream.engine.screening.Screening` of events arriving at
        ``wall_time`` (epoch ms): it decides which events would be counted, and why the
        others are not, without changing the engine. Count its accepted events with
        :meth:`commit`, or drop it; it is valid until the engine next counts events."""
        return Screening(self, wall_time)

    def commit(self, screening: Screening, accepted: EventBatch) -> int:
        """Count the events ``screening`` accepted; return how many of them were late
        (older than the horizon: counted toward ``all`` only, and in ``late_dropped``).

        ``accepted`` must be exactly the :data:`ACCEPTED` events of all the screening's
        ``screen`` calls, in order (concatenated). Commit remembers their ``event_id``s as
        arrived at the screening's ``wall_time`` (after forgetting the ids older than the
        de-dup horizon), adds the screening's duplicate, too-new and over-capacity counts
        to :attr:`stats`, advances the clock to the newest timestamp and applies the events
        to every window. It cannot fail for a current screening and its accepted events;
        a stale screening (the engine counted events since it was made), another engine's,
        or a batch of the wrong size raises :class:`RuntimeError` or :class:`ValueError`
        before anything changes. A screening commits once.
        """
        if screening._engine is not self:
            raise ValueError("the screening belongs to another engine")
        screening._ensure_current()
        if len(accepted) != screening.accepted:
            raise ValueError(
                f"commit got {len(accepted)} events; the screening accepted {screening.accepted}"
            )
        self.stats.duplicates += screening.duplicates
        self.stats.rejected_too_new += screening.too_new
        self.stats.rejected_over_capacity += screening.over_capacity
        return self._count(accepted, screening.wall_time, screening._lookups_for(accepted))

    def replay(self, batch: EventBatch, wall_time: int) -> int:
        """Count events already accepted and logged, which arrived at ``wall_time``; return
        how many were late (see :meth:`commit`).

        Nothing is refused: no skew, de-dup or capacity check, so events acknowledged to
        clients are counted even if the settings changed since (capacity limits bound NEW
        values; replayed ones may exceed a lowered limit). De-dup memory is kept as a
        commit keeps it: ids older than the horizon at ``wall_time`` are forgotten, the
        batch's ids are remembered under ``wall_time``. Replaying the accepted events of
        committed screenings, group by group with their wall times (an empty batch for a
        group that accepted nothing), rebuilds the state those commits made, snapshot
        byte for byte; duplicate and rejection statistics are the caller's to restore.

        Raises :class:`CapacityError`, before changing anything, only if the batch would
        overflow the fixed-width encoding (2^31 - 1 videos or cells, 65,535 categories or
        regions), which no screened event can do.
        """
        return self._count(batch, wall_time)

    def tick(self, wall_time: int) -> None:
        """Advance the clock to ``wall_time`` if it is ahead (so windows empty when idle)."""
        if self.now is not None and wall_time > self.now:
            self._advance(wall_time)
        self._dedup.expire(wall_time)

    def _count(self, batch: EventBatch, wall_time: int, hint: _MaybeLookedUp | None = None) -> int:
        """Remember ``batch``'s ids under ``wall_time`` and apply it (see :meth:`commit`).
        ``hint``: codes of the batch already looked up (by a screening)."""
        looked_up = self._look_up(batch, hint)  # raises, before any change, past the encoding
        self._token = object()
        self._dedup.expire(wall_time)
        if batch.event_ids is not None:
            ids = [e for e in batch.event_ids if e is not None]
            self._dedup.remember(ids, wall_time)
        if len(batch) == 0:
            return 0
        late = self._apply(batch, looked_up)
        self.stats.accepted += len(batch)
        self.stats.late_dropped += late
        return late

    def _apply(self, batch: EventBatch, looked_up: _LookedUp) -> int:
        ts = batch.timestamps
        newest = int(ts.max())
        self._advance(newest if self.now is None else max(self.now, newest))
        cells, inverse = self._encode_cells(batch, looked_up)
        series = self._cell_series.view[cells]  # (cells, 4) series ids, -1 where absent
        quantities = batch.quantities
        self._add(self._windows_all(), series, sum_by(inverse, len(cells), quantities))
        self._log.append(series[series >= 0])
        for resolution, store in self._buckets.items():
            numbers = ts // resolution
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
            for window in self._bucketed(resolution):
                inside = (entry_buckets >= window.start // resolution) & (
                    entry_buckets < window.end // resolution
                )
                self._add(window, series[positions[inside]], summed[inside])
        return int(np.count_nonzero(ts < self._horizon_start()))

    def _bucketed(self, resolution: int) -> list[_WindowState]:
        return [
            w for w in self._windows if w.spec.kind != "all" and w.spec.resolution == resolution
        ]

    def _oldest_start(self, resolution: int) -> int:
        """The earliest start among windows kept in buckets of ``resolution``."""
        return min(w.start for w in self._bucketed(resolution))

    def _windows_all(self) -> _WindowState:
        return next(w for w in self._windows if w.spec.kind == "all")

    def _horizon_start(self) -> int:
        now = self.now or 0
        coarsest = max(self._buckets, default=1)
        return now - now % coarsest - self.config.horizon

    # ------------------------------------------------------------------ tables

    def _look_up(self, batch: EventBatch, hint: _MaybeLookedUp | None = None) -> _LookedUp:
        """The batch's video, category and region codes (``-1`` where new; assigns none).

        Raises :class:`CapacityError` if the batch would overflow the fixed-width codes.
        That costs nothing (the lookups are needed anyway) unless a table is within
        ``len(batch)`` of its code limit. Screened events always fit (the limits are at
        most the code limits), so this only guards replay of a log no screening wrote.
        """
        known: _MaybeLookedUp = hint or (None, None, None)
        videos = known[0] if known[0] is not None else self._videos.lookup(batch.video_ids)
        _check_room("videos", batch.video_ids, videos, len(self._videos), VIDEO_CODE_LIMIT)
        categories = regions = None
        if batch.categories is not None:
            categories = known[1]
            if categories is None:
                categories = self._categories.lookup(batch.categories)
            held = len(self._categories) - 1
            _check_room("categories", batch.categories, categories, held, LABEL_CODE_LIMIT)
        if batch.regions is not None:
            regions = known[2]
            if regions is None:
                regions = self._regions.lookup(batch.regions)
            held = len(self._regions) - 1
            _check_room("regions", batch.regions, regions, held, LABEL_CODE_LIMIT)
        cells = len(self._cells)
        if cells + len(batch) > CELL_CODE_LIMIT and (
            cells + self._distinct_new_cells(batch) > CELL_CODE_LIMIT
        ):
            raise CapacityError(_past_encoding("cells", CELL_CODE_LIMIT))
        return videos, categories, regions

    def _distinct_new_cells(self, batch: EventBatch) -> int:
        """How many distinct cells ``batch`` would add (slow: Python over every event)."""
        absent: list[str | None] = [None] * len(batch)
        categories = absent if batch.categories is None else batch.categories
        regions = absent if batch.regions is None else batch.regions
        added = 0
        for video, category, region in set(zip(batch.video_ids, categories, regions, strict=True)):
            v = self._videos.get(video)
            c = self._categories.get(category)
            r = self._regions.get(region)
            if (
                v is None
                or c is None
                or r is None
                or self._cells.get(v << 32 | c << 16 | r) is None
            ):
                added += 1
        return added

    def _encode_cells(self, batch: EventBatch, looked_up: _LookedUp) -> tuple[IntArray, IntArray]:
        """The batch's distinct cells (codes) and, per event, its position among them.
        ``looked_up`` is :meth:`_look_up` of the batch, which checked the code limits."""
        videos = self._videos.assign(batch.video_ids, looked_up[0])
        added = len(self._videos) - self._video_keys.size
        if added:
            self._video_keys.extend(id_sort_keys(self._videos.values[-added:]))
        keys = videos << 32
        if batch.categories is not None and looked_up[1] is not None:
            keys |= self._categories.assign(batch.categories, looked_up[1]) << 16
        if batch.regions is not None and looked_up[2] is not None:
            keys |= self._regions.assign(batch.regions, looked_up[2])
        unique_keys, inverse = np.unique(keys, return_inverse=True)
        before = len(self._cells)
        codes = self._cells.encode_unique(unique_keys)
        if len(self._cells) > before:
            self._add_cells(self._cells.keys.view[before:])
        return codes, inverse

    def _add_cells(self, keys: IntArray) -> None:
        """Create the series of new cells (video, category, region): up to four each, all
        looked up in one pass over the scope and series indexes."""
        videos = keys >> 32
        categories = (keys >> 16) & 0xFFFF
        regions = keys & 0xFFFF
        zero = np.zeros_like(videos)
        scopes = [  # (cells that have the scope, its category code, its region code)
            (np.ones(len(keys), dtype=bool), zero, zero),
            (categories != _ANY, categories, zero),
            (regions != _ANY, zero, regions),
            ((categories != _ANY) & (regions != _ANY), categories, regions),
        ]
        rows = [np.flatnonzero(present) for present, _, _ in scopes]
        scope_keys = np.concatenate(
            [(cat[r] << 16) | reg[r] for r, (_, cat, reg) in zip(rows, scopes, strict=True)]
        )
        all_rows = np.concatenate(rows)
        codes = self._series_codes(self._scopes.encode(scope_keys), videos[all_rows])
        table = np.full((len(keys), 4), -1, dtype=np.int64)
        columns = np.repeat(np.arange(4), [len(r) for r in rows])
        table[all_rows, columns] = codes
        self._cell_series.extend(table)

    def _series_codes(self, scopes: IntArray, videos: IntArray) -> IntArray:
        before = len(self._series)
        codes = self._series.encode((scopes << 32) | videos)
        if len(self._series) > before:
            new_keys = self._series.keys.view[before:]
            self._series_scope.extend(new_keys >> 32)
            self._series_video.extend(new_keys & 0xFFFFFFFF)
            for window in self._windows:
                window.values.grow_to(len(self._series))
        return codes

    def _add(self, window: _WindowState, series: IntArray, amounts: IntArray) -> None:
        """Add ``amounts[i]`` to each present series of row ``series[i]`` (rows of 4)."""
        if len(series) == 0:
            return
        present = series >= 0
        spread = np.broadcast_to(amounts[:, None], present.shape)[present]
        np.add.at(window.values.view, series[present], spread)

    # ------------------------------------------------------------------ clock

    def _advance(self, now: int) -> None:
        """Move the clock to ``now``: windows slide, buckets they left are subtracted."""
        first = self.now is None
        self.now = now
        for window in self._windows:
            if window.spec.kind == "all":
                continue
            start, end = window.spec.bounds(now)
            if first or start >= window.end:
                window.values.view[:] = 0
            elif start > window.start:
                store = self._buckets[window.spec.resolution]
                left = store.between(window.start // store.resolution, start // store.resolution)
                if left:  # one subtraction for every bucket the window left
                    cells = np.concatenate([c for c, _ in left])
                    counts = np.concatenate([q for _, q in left])
                    self._add(window, self._cell_series.view[cells], -counts)
            window.start, window.end = start, end
        for resolution, store in self._buckets.items():
            store.drop_before(self._oldest_start(resolution) // resolution)

    def memory(self) -> dict[str, int]:
        """Sizes of the live state: row counts and the bytes of the numpy buffers.

        ``bucket_entries`` counts (cell, bucket) pairs; each costs ``bucket_entry_bytes``.
        The video id strings and their dict are not in ``numpy_bytes`` (the benchmark
        measures the whole object graph). Each capacity limit is there beside its use:
        ``videos`` / ``max_videos``, ``categories`` / ``max_categories``, ``regions`` /
        ``max_regions``, ``cells`` / ``max_cells``.
        """
        columns = [self._video_keys, self._cell_series, self._series_video, self._series_scope]
        columns += [w.values for w in self._windows]
        columns += [m.series for m in self._scope_members.values()]
        entries = sum(store.entries for store in self._buckets.values())
        return {
            "videos": len(self._videos),
            "cells": len(self._cells),
            "scopes": len(self._scopes),
            "series": len(self._series),
            "bucket_entries": entries,
            "bucket_entry_bytes": 16,
            "bucket_bytes": 16 * entries,
            "numpy_bytes": sum(c.view.nbytes for c in columns)
            + 16 * entries
            + sum(index.nbytes for index in (self._cells, self._series, self._scopes)),
            "dedup_ids": len(self._dedup),
            "dedup_evicted": self._dedup.evicted,
            "dedup_bytes": self._dedup.approx_bytes,
            "max_videos": self.config.max_videos,
            "categories": len(self._categories) - 1,
            "max_categories": self.config.max_categories,
            "regions": len(self._regions) - 1,
            "max_regions": self.config.max_regions,
            "max_cells": self.config.max_cells,
        }

    # ------------------------------------------------------------------ snapshots

    def snapshot(self) -> bytes:
        """The whole engine state as bytes (see :mod:`rankstream.engine.snapshot`).

        Holds tables, window values, buckets, the clock, statistics and remembered
        ``event_id``s; leaves out caches, which :meth:`restore` rebuilds on demand.
        """
        return encode(self.capture())

    def capture(self) -> EngineState:
        """A copy of the state that later engine calls do not change; ``encode`` of it
        (:func:`rankstream.engine.snapshot.encode`) is :meth:`snapshot`. Capturing is the
        cheap part (one copy of each array), so a caller holding a lock can encode after
        releasing it.
        """
        pack = PackedArray.of
        return EngineState(
            partition=self.partition,
            windows=tuple(window_shape(w.spec) for w in self._windows),
            now=self.now,
            stats=Counters(
                self.stats.accepted,
                self.stats.duplicates,
                self.stats.rejected_too_new,
                self.stats.late_dropped,
                self.stats.rejected_over_capacity,
            ),
            videos=tuple(self._videos.values),
            video_keys=pack(self._video_keys.view),
            categories=tuple(self._label_values(self._categories)),
            regions=tuple(self._label_values(self._regions)),
            cells=pack(self._cells.keys.view),
            cell_series=pack(self._cell_series.view),
            scopes=pack(self._scopes.keys.view),
            series=pack(self._series.keys.view),
            series_video=pack(self._series_video.view),
            series_scope=pack(self._series_scope.view),
            window_state=tuple(
                WindowValues(w.start, w.end, pack(w.values.view)) for w in self._windows
            ),
            buckets=tuple(
                BucketTable(resolution, *map(pack, store.to_arrays()))
                for resolution, store in self._buckets.items()
            ),
            dedup=tuple(self._dedup.items()),
            dedup_evicted=self._dedup.evicted,
        )

    @classmethod
    def restore(cls, data: bytes, config: EngineConfig | None = None) -> TopKEngine:
        """An engine in exactly the state :meth:`snapshot` captured, partition included.

        ``config`` must define the same windows as the engine that took the snapshot;
        other settings (skew, de-dup horizon, k limit) may change across a restore.
        Snapshots of format version 1 (the release before scale-out mode) restore too, as
        partition 0. Raises :class:`SnapshotError` for unreadable or mismatched snapshots.
        """
        return cls.from_state(decode(data), config)

    @classmethod
    def from_state(cls, state: EngineState, config: EngineConfig | None = None) -> TopKEngine:
        """An engine holding a captured state (:meth:`capture`); see :meth:`restore`."""
        if state.partition < 0:
            raise SnapshotError(f"snapshot partition {state.partition} is negative")
        engine = cls(config, state.partition)
        try:
            engine._load(state)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise SnapshotError(f"snapshot content is inconsistent: {exc!r}") from exc
        return engine

    def split(self, partitions: int) -> list[TopKEngine]:
        """This engine's state cut into ``partitions`` engines by
        :func:`~rankstream.engine.partition.partition_of` of the video id, engine ``p``
        tagged partition ``p``: each answers exactly for its own videos, and merged
        rankings equal this engine's. Remembered ``event_id``s go to every part;
        statistics start at zero (:mod:`.split`)."""
        return [
            TopKEngine.from_state(part, self.config)
            for part in split_state(self.capture(), partitions)
        ]

    @staticmethod
    def _label_values(labels: Interner[str | None]) -> list[str]:
        """The labels by code, without code 0 (absent)."""
        return [label for label in labels.values[1:] if label is not None]

    def _load(self, state: EngineState) -> None:
        expected = tuple(window_shape(w.spec) for w in self._windows)
        if state.windows != expected:
            raise SnapshotError(
                "snapshot windows differ from the configured windows; restore with the "
                "configuration that took it"
            )
        self.now = state.now
        self.stats = EngineStats(**msgspec.structs.asdict(state.stats))
        self._videos = Interner(state.videos)
        self._video_keys = Column.of(state.video_keys.unpack())
        self._categories = Interner([None, *state.categories])
        self._regions = Interner([None, *state.regions])
        self._cells = IntIndex(state.cells.unpack())
        self._cell_series = Column.of(state.cell_series.unpack())
        self._scopes = IntIndex(state.scopes.unpack())
        self._series = IntIndex(state.series.unpack())
        self._series_video = Column.of(state.series_video.unpack())
        self._series_scope = Column.of(state.series_scope.unpack())
        for window, saved in zip(self._windows, state.window_state, strict=True):
            window.start, window.end = saved.start, saved.end
            window.values = Column.of(saved.values.unpack())
        for table in state.buckets:
            store = self._buckets[table.resolution]
            store.add(table.buckets.unpack(), table.cells.unpack(), table.counts.unpack())
        self._dedup.load(list(state.dedup))
        self._dedup.evicted = state.dedup_evicted

    # ------------------------------------------------------------------ query

    def top_k(
        self, window: str, k: int = 10, category: str | None = None, region: str | None = None
    ) -> TopKResult:
        """The exact top ``k`` of ``window``, optionally filtered by category and region.

        Raises :class:`InvalidQuery` for an unknown window, ``k`` outside ``1..max_k`` or a
        filter longer than 64 characters. Unknown filter values give an empty ranking.
        """
        index = next((i for i, w in enumerate(self._windows) if w.spec.name == window), None)
        if index is None:
            names = ", ".join(w.spec.name for w in self._windows)
            raise InvalidQuery(f"unknown window {window!r}; expected one of {names}")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= self.config.max_k:
            raise InvalidQuery(f"k must be an integer from 1 to {self.config.max_k}")
        for name, value in (("category", category), ("region", region)):
            if value is not None and not 1 <= len(value) <= MAX_LABEL_CHARS:
                raise InvalidQuery(f"{name} must be 1 to {MAX_LABEL_CHARS} characters")
        scope = self._scope_for(category, region)
        key = (index, scope, k, category, region)
        cached = self._results.get(key)
        if cached is not None and cached[0] == (self._log.seq, self.now):
            return cached[1]
        result = self._rank(index, scope, k, category, region)
        if len(self._results) >= _RESULT_CACHE_SIZE:
            self._results.clear()
        self._results[key] = ((self._log.seq, self.now), result)
        return result

    def _rank(
        self, index: int, scope: int | None, k: int, category: str | None, region: str | None
    ) -> TopKResult:
        state = self._windows[index]
        bounded = state.spec.kind != "all" and self.now is not None
        items: tuple[RankedItem, ...] = ()
        if scope is not None and self.now is not None:
            series, values = self._leaders(index, scope, k)
            ids = self._videos.values
            leaders = [ids[v] for v in self._series_video.view[series].tolist()]
            items = tuple(map(RankedItem, range(1, len(leaders) + 1), leaders, values.tolist()))
        return TopKResult(
            window=state.spec.name,
            start=state.start if bounded else None,
            end=state.end if bounded else None,
            as_of=self.now,
            k=k,
            category=category,
            region=region,
            items=items,
        )

    def _scope_for(self, category: str | None, region: str | None) -> int | None:
        cat = _ANY if category is None else self._categories.get(category)
        reg = _ANY if region is None else self._regions.get(region)
        if cat is None or reg is None:
            return None
        return self._scopes.get((cat << 16) | reg)

    def _order(self) -> IdOrder:
        return IdOrder(self._series_video.view, self._video_keys.view, self._videos.values)

    def _leaders(self, window: int, scope: int, k: int) -> tuple[IntArray, IntArray]:
        values = self._windows[window].values.view
        order = self._order()
        size = self.config.candidate_size
        board = self._boards.get((window, scope))
        if board is not None:
            touched = self._log.since(board.seq)
            if touched is None or len(touched) > 4 * len(self._members_of(scope)) + 65536:
                board = None
            else:
                board.promote(touched[self._series_scope.view[touched] == scope], values)
                board.seq = self._log.seq
                if len(board.members) > 4 * size:
                    board = self._trim(board, values, order)
        if board is not None:
            found = board.top(k, values, order)
            if found is not None:
                self._boards[(window, scope)] = board
                return found
        board = build_leaderboard(self._members_of(scope), values, size, order, self._log.seq)
        self._boards[(window, scope)] = board
        found = board.top(k, values, order)
        if found is None:  # cannot happen: a fresh board answers every k <= candidate_size
            raise RuntimeError("fresh leaderboard could not answer")
        return found

    def _members_of(self, scope: int) -> IntArray:
        """Every series of ``scope``, ascending; series created since the last call are
        found by one scan of the new part of the series table."""
        members = self._scope_members.setdefault(scope, _ScopeMembers())
        total = len(self._series)
        if members.scanned < total:
            new = np.flatnonzero(self._series_scope.view[members.scanned : total] == scope)
            members.series.extend(new + members.scanned)
            members.scanned = total
        return members.series.view

    def _trim(self, board: Leaderboard, values: IntArray, order: IdOrder) -> Leaderboard:
        trimmed = build_leaderboard(
            board.members, values, self.config.candidate_size, order, board.seq
        )
        trimmed.bound_value, trimmed.bound_series = higher_bound(
            board, trimmed.bound_value, trimmed.bound_series, order
        )
        return trimmed


def _check_room(
    name: str, values: Sequence[str | None], codes: IntArray, held: int, most: int
) -> None:
    """Raise :class:`CapacityError` if the distinct ``values`` without a code (``-1``) would
    take ``held`` past ``most``; cheap unless the events without a code could."""
    if held + len(values) <= most:
        return
    missing = np.flatnonzero(codes < 0).tolist()
    if held + len(missing) > most and held + len({values[i] for i in missing}) > most:
        raise CapacityError(_past_encoding(name, most))


def _past_encoding(name: str, most: int) -> str:
    return (
        f"these events would take the distinct {name} past the encoding's limit of {most}; "
        "no screening accepted them"
    )
