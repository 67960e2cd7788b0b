"""The windowed top-k engine: event batches and the clock in, exact rankings out.

Data model
----------
- A *cell* is a video in one category and one region (either may be absent). Buckets store
  per-cell sums, so late events can be applied to and later expired from every window.
- A *scope* is a ranking filter: all, one category, one region, or a (category, region)
  pair. A *series* is one video within one scope; every cell feeds up to four series.
- Each window keeps one running value per series: the sum over its current ``[start, end)``.
  When the clock moves a window on, the buckets it leaves are subtracted.

The parts: :mod:`~rankstream.engine.tables` (videos, labels, cells, scopes, series),
:mod:`~rankstream.engine.counts` (window values, buckets, the clock),
:mod:`~rankstream.engine.queries` (leaderboards and cached answers),
:mod:`~rankstream.engine.screening` (what is counted) and :mod:`~rankstream.engine.dedup`.
:class:`TopKEngine` ties them together; its state is an
:class:`~rankstream.engine.state.EngineState`.

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

from rankstream.engine.config import EngineConfig
from rankstream.engine.counts import WindowCounts
from rankstream.engine.dedup import Deduplicator
from rankstream.engine.events import EventBatch
from rankstream.engine.queries import Rankings
from rankstream.engine.ranking import RankedColumns, TopKResult
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
from rankstream.engine.state import Counters, EngineState, PackedArray, window_shape
from rankstream.engine.tables import LookedUp, MaybeLookedUp, Tables
from rankstream.engine.touchlog import TouchLog
from rankstream.errors import SnapshotError

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
        self._tables = Tables()
        self._counts = WindowCounts(self.config.windows, self.config.horizon)
        self._dedup = Deduplicator(self.config.dedup_horizon, self.config.dedup_capacity)
        self._log = TouchLog()
        self._rankings = Rankings(self.config, self._tables, self._counts, self._log)
        # Replaced whenever events are counted: a screening is valid while it holds this one.
        self._token = object()

    @property
    def now(self) -> int | None:
        """The engine clock (epoch ms): the newest accepted timestamp, or the latest
        :meth:`tick` past it; ``None`` before the first event."""
        return self._counts.now

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
            self._counts.advance(wall_time, self._tables.cell_series.view)
        self._dedup.expire(wall_time)

    def _count(self, batch: EventBatch, wall_time: int, hint: MaybeLookedUp | None = None) -> int:
        """Remember ``batch``'s ids under ``wall_time`` and apply it (see :meth:`commit`).
        ``hint``: codes of the batch already looked up (by a screening)."""
        # Raises, before any change, if the batch would overflow the fixed-width codes.
        looked_up = self._tables.look_up(batch, hint)
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

    def _apply(self, batch: EventBatch, looked_up: LookedUp) -> int:
        """Steps: (1) move the clock to the newest timestamp (windows slide first, so the
        events land in the bounds they are counted for); (2) intern the batch's videos,
        labels and cells, creating their series; (3) log the touched series for the
        leaderboards; (4) add the events to the buckets and windows. Returns the late count."""
        tables, counts = self._tables, self._counts
        ts = batch.timestamps
        newest = int(ts.max())
        now = counts.now
        counts.advance(newest if now is None else max(now, newest), tables.cell_series.view)
        cells, inverse = tables.encode_cells(batch, looked_up)
        counts.grow_to(len(tables.series))
        series = tables.cell_series.view[cells]  # (cells, 4) series ids, -1 where absent
        self._log.append(series[series >= 0])
        return counts.add_events(ts, batch.quantities, cells, inverse, series)

    def memory(self) -> dict[str, int]:
        """Sizes of the live state: row counts and the bytes of the numpy buffers.

        ``bucket_entries`` counts (cell, bucket) pairs; each costs ``bucket_entry_bytes``.
        The video id strings and their dict are not in ``numpy_bytes`` (the benchmark
        measures the whole object graph). Each capacity limit is there beside its use:
        ``videos`` / ``max_videos``, ``categories`` / ``max_categories``, ``regions`` /
        ``max_regions``, ``cells`` / ``max_cells``.
        """
        tables, counts = self._tables, self._counts
        entries = counts.bucket_entries
        window_bytes = sum(w.values.view.nbytes for w in counts.windows)
        return {
            "videos": len(tables.videos),
            "cells": len(tables.cells),
            "scopes": len(tables.scopes),
            "series": len(tables.series),
            "bucket_entries": entries,
            "bucket_entry_bytes": 16,
            "bucket_bytes": 16 * entries,
            "numpy_bytes": tables.numpy_bytes
            + window_bytes
            + self._rankings.numpy_bytes
            + 16 * entries,
            "dedup_ids": len(self._dedup),
            "dedup_evicted": self._dedup.evicted,
            "dedup_bytes": self._dedup.approx_bytes,
            "max_videos": self.config.max_videos,
            "categories": len(tables.categories) - 1,
            "max_categories": self.config.max_categories,
            "regions": len(tables.regions) - 1,
            "max_regions": self.config.max_regions,
            "max_cells": self.config.max_cells,
        }

    # ------------------------------------------------------------------ snapshots

    def snapshot(self) -> bytes:
        """The whole engine state as bytes (see :mod:`rankstream.engine.snapshot`).

        Holds tables, window values, buckets, the clock, statistics, remembered
        ``event_id``s and the partition; leaves out caches, which :meth:`restore` rebuilds
        on demand.
        """
        return encode(self.capture())

    def capture(self) -> EngineState:
        """A copy of the state that later engine calls do not change; ``encode`` of it
        (:func:`rankstream.engine.snapshot.encode`) is :meth:`snapshot`. Capturing is the
        cheap part (one copy of each array), so a caller holding a lock can encode after
        releasing it.
        """
        pack = PackedArray.of
        tables = self._tables
        window_state, buckets = self._counts.captured()
        return EngineState(
            partition=self.partition,
            windows=tuple(window_shape(w.spec) for w in self._counts.windows),
            now=self.now,
            stats=Counters(
                self.stats.accepted,
                self.stats.duplicates,
                self.stats.rejected_too_new,
                self.stats.late_dropped,
                self.stats.rejected_over_capacity,
            ),
            videos=tuple(tables.videos.values),
            video_keys=pack(tables.video_keys.view),
            categories=tuple(Tables.labels(tables.categories)),
            regions=tuple(Tables.labels(tables.regions)),
            cells=pack(tables.cells.keys.view),
            cell_series=pack(tables.cell_series.view),
            scopes=pack(tables.scopes.keys.view),
            series=pack(tables.series.keys.view),
            series_video=pack(tables.series_video.view),
            series_scope=pack(tables.series_scope.view),
            window_state=window_state,
            buckets=buckets,
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

    def _load(self, state: EngineState) -> None:
        """Take ``state`` into this fresh engine (built with the same windows)."""
        expected = tuple(window_shape(w.spec) for w in self._counts.windows)
        if state.windows != expected:
            raise SnapshotError(
                "snapshot windows differ from the configured windows; restore with the "
                "configuration that took it"
            )
        self.stats = EngineStats(**msgspec.structs.asdict(state.stats))
        self._tables = Tables.restored(state)
        self._counts.load(state)
        self._dedup.load(list(state.dedup))
        self._dedup.evicted = state.dedup_evicted
        self._rankings = Rankings(self.config, self._tables, self._counts, self._log)

    # ------------------------------------------------------------------ query

    def scopes(self) -> list[tuple[str | None, str | None]]:
        """Every scope the engine can rank, as ``(category, region)`` filters: all
        (``(None, None)``, first), then each category, region and pair seen in an event."""
        return self._tables.scope_labels()

    def top_k(
        self, window: str, k: int = 10, category: str | None = None, region: str | None = None
    ) -> TopKResult:
        """The exact top ``k`` of ``window``, optionally filtered by category and region.

        Raises :class:`InvalidQuery` for an unknown window, ``k`` outside ``1..max_k`` or a
        filter longer than 64 characters. Unknown filter values give an empty ranking.
        Updates the query caches (:mod:`~rankstream.engine.queries`), so it is a write.
        """
        return self._rankings.top_k(window, k, category, region)

    def values_of(
        self, windows: Sequence[str], category: str | None = None, region: str | None = None
    ) -> tuple[list[str], list[npt.NDArray[np.int64]]]:
        """Every entity of a scope with a non-zero value in any of ``windows``, and its value
        in each (one array per window, aligned with the ids; the windows' bounds are those
        :meth:`top_k` states). Unordered. Same errors as :meth:`top_k`. For questions the
        ranking does not answer by itself (rising entities, a group's total)."""
        return self._rankings.values_of(windows, category, region)

    def rising(
        self,
        short: str,
        long: str,
        weights: tuple[int, int],
        k: int,
        minimum: int = 1,
        category: str | None = None,
        region: str | None = None,
    ) -> tuple[list[str], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The ``k`` entities of a scope whose value in ``short`` is at least ``minimum``
        with the largest ratio ``(short value * weights[1]) / (long value * weights[0])``
        (compared exactly), then the larger short value, then the id: their ids, short and
        long values. ``weights`` are the windows' lengths in minutes, so the ratio is short
        rate over long rate; the long window must hold the short one (every long value at
        least the short value). Same errors as :meth:`top_k`. Vectorised: exact ties of
        the ratio are common (every entity seen only recently has the largest one)."""
        return self._rankings.rising(short, long, weights, k, minimum, category, region)

    def top_k_columns(
        self, window: str, k: int, filters: Sequence[tuple[str | None, str | None]]
    ) -> list[RankedColumns]:
        """The rows of ``top_k(window, k, category, region)`` for each ``(category, region)``
        of ``filters``, as columns: for publishing many scopes at once. The small scopes (a
        category x region pair, typically) are ranked together in one vectorised pass
        instead of one query each, and no object is made per row. Same errors as
        :meth:`top_k`; the bounds are the window's current ones (as ``top_k`` states).
        """
        return self._rankings.top_k_columns(window, k, filters)
