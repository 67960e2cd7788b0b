"""Screening: which events an engine will count, decided as a transaction.

A :class:`Screening` is made by :meth:`TopKEngine.screening
<rankstream.engine.core.TopKEngine.screening>` for one arrival time (a *group* of requests
in the durable service). Each :meth:`Screening.screen` call gives one status per event:

1. :data:`TOO_NEW`: ``timestamp > wall_time + max_skew``;
2. :data:`DUPLICATE`: its ``event_id`` is remembered by the engine (within the de-dup
   horizon, as of ``wall_time``) or was accepted earlier in this screening;
3. :data:`OVER_CAPACITY`: accepting it would take the number of distinct videos,
   categories, regions or cells (checked in that order) past ``max_videos``,
   ``max_categories``, ``max_regions`` or ``max_cells``, counting the engine's and those
   this screening accepted so far. Events decide in order, first come first served; an
   event whose video, labels and cell are all known (to the engine or to this screening)
   is never refused for capacity;
4. :data:`ACCEPTED` otherwise.

A refused event reserves nothing: its ``event_id`` is not remembered, its new video or
labels do not count. Screening changes nothing in the engine. :meth:`TopKEngine.commit
<rankstream.engine.core.TopKEngine.commit>` does, and only then: it remembers the accepted
ids, adds the counts to the statistics and applies the accepted events, which cannot fail
since they fit every limit. A screening that is dropped instead leaves no trace, so a
client's retry of events whose log write failed is screened afresh.

A screening is valid until the engine changes (a commit, replay or ingest, of this or any
other screening); using it afterwards raises :class:`RuntimeError`. :meth:`TopKEngine.tick`
and queries do not invalidate it.

Speed: capacity costs nothing per event while ``held + reserved + len(batch) <= limit``
for every limit (``reserved`` bounds what this screening's earlier calls add: at most one of
each per accepted event). Failing that, a call bounds the batch's growth more tightly, each
step dearer: for labels, the batch's new labels (C-level lookups, which a commit of the same
batch reuses); then every event's video, labels and cell (lookups and binary searches,
vectorised). Only if even the exact number of new values does not fit, that is near a
limit, are the events with something new decided one by one, in order, in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import numpy.typing as npt

from rankstream.engine.events import EventBatch

if TYPE_CHECKING:
    from rankstream.engine.core import TopKEngine

ACCEPTED = 0
"""Event status: counted."""
DUPLICATE = 1
"""Event status: its ``event_id`` was already accepted within the de-dup horizon."""
TOO_NEW = 2
"""Event status: timestamp more than ``max_skew`` ahead of wall-clock time."""
OVER_CAPACITY = 3
"""Event status: it would add a video, label or cell beyond a capacity limit (the
screening's :meth:`Screening.capacity_reasons` says which)."""

StatusArray = npt.NDArray[np.int8]
IntArray = npt.NDArray[np.int64]
_Optional3 = tuple[IntArray | None, IntArray | None, IntArray | None]


class CapacityRefusal(NamedTuple):
    """Why one event is :data:`OVER_CAPACITY`.

    ``row`` is the event's position in the batch of that :meth:`Screening.screen` call.
    ``field`` is the event field whose new value does not fit: the measure's entity field
    (``"video_id"``), ``"category"``, ``"region"``, or ``"event"`` for a new (video,
    category, region) cell. ``message`` names the limit and its setting, for example
    ``"the limit of 65535 distinct categories is reached (max_categories)"``.
    """

    row: int
    field: str
    message: str


class _Codes(NamedTuple):
    """One batch's codes as the engine holds them (-1: unknown to the engine; 0: absent
    label)."""

    videos: IntArray
    categories: IntArray
    regions: IntArray
    settled: npt.NDArray[np.bool_]  # the engine already holds the event's cell


class Screening:
    """The screening of one group of events arriving at ``wall_time``; see the module
    docstring for the rules.

    Read-only counts, over every :meth:`screen` call so far: ``accepted``, ``duplicates``,
    ``too_new``, ``over_capacity``.
    """

    def __init__(self, engine: TopKEngine, wall_time: int) -> None:
        self.wall_time = wall_time
        self.accepted = 0
        self.duplicates = 0
        self.too_new = 0
        self.over_capacity = 0
        self._engine = engine
        self._token = engine._token
        self._latest = engine.config.latest_accepted(wall_time)
        self._live_from: int | None = None  # the de-dup entry number still live at wall_time
        self._ids: set[str] | None = None  # event ids accepted so far
        self._refusals: list[CapacityRefusal] = []
        # Capacity. Accepted events whose new values are not reserved one by one yet,
        # (batch, status or None if all accepted), and a bound of what they add to the
        # videos, categories, regions and cells:
        self._unindexed: list[tuple[EventBatch, StatusArray | None]] = []
        self._bound = [0, 0, 0, 0]
        # The codes the first call looked up, if any, for a commit of that very batch:
        self._calls = 0
        self._looked_up: tuple[EventBatch, _Optional3] | None = None
        # New values reserved by accepted events, with provisional codes (after the engine's).
        self._new_videos: dict[str, int] = {}
        self._new_categories: dict[str, int] = {}
        self._new_regions: dict[str, int] = {}
        self._new_cells: set[int] = set()

    # ------------------------------------------------------------------ public

    def screen(self, batch: EventBatch) -> StatusArray:
        """One status per event of ``batch`` (:data:`ACCEPTED`, :data:`DUPLICATE`,
        :data:`TOO_NEW` or :data:`OVER_CAPACITY`), seeing what earlier calls accepted.

        Changes nothing in the engine. The caller must pass the accepted events of every
        call, in order, to :meth:`TopKEngine.commit
        <rankstream.engine.core.TopKEngine.commit>` (or drop the screening).
        """
        self._ensure_current()
        self._refusals = []
        status = np.zeros(len(batch), dtype=np.int8)
        if len(batch) == 0:
            return status
        too_new = batch.timestamps > self._latest
        refused = int(np.count_nonzero(too_new))
        if refused:
            status[too_new] = TOO_NEW
        clean, fresh = self._fresh_ids(batch, status, refused)
        growth, codes, looked_up = self._growth(batch)
        self._calls += 1
        self._looked_up = (batch, looked_up) if self._calls == 1 else None
        if growth is not None:  # fits every limit even if all its events are accepted
            if not clean:
                self._dedup_in_order(batch, status)
            elif fresh:
                self._add_ids(fresh)
        else:
            self._index_unindexed()
            codes = codes if codes is not None else self._codes(batch)
            self._decide_in_order(batch, status, clean, fresh, codes)
        counts = np.bincount(status, minlength=4).tolist()
        self.accepted += counts[ACCEPTED]
        self.duplicates += counts[DUPLICATE]
        self.too_new += counts[TOO_NEW]
        self.over_capacity += counts[OVER_CAPACITY]
        if growth is not None and counts[ACCEPTED]:  # note them, reserve later if need be
            everything = counts[ACCEPTED] == len(batch)
            self._unindexed.append((batch, None if everything else status.copy()))
            self._bound = [b + g for b, g in zip(self._bound, growth, strict=True)]
        return status

    def capacity_reasons(self) -> list[CapacityRefusal]:
        """Why each :data:`OVER_CAPACITY` event of the latest :meth:`screen` call was
        refused: one :class:`CapacityRefusal` per such event, in row order (empty if none)."""
        return list(self._refusals)

    def _lookups_for(self, accepted: EventBatch) -> _Optional3 | None:
        """For :meth:`TopKEngine.commit <rankstream.engine.core.TopKEngine.commit>`: the
        video, category and region codes (``-1`` for new values; ``None`` where not looked
        up) this screening looked up for ``accepted``, if it is the batch of the only call
        and all its events were accepted, so the commit need not look them up again.
        Valid while the screening is :attr:`current`."""
        if self._looked_up is None or self._looked_up[0] is not accepted:
            return None
        return self._looked_up[1] if self.accepted == len(accepted) else None

    @property
    def current(self) -> bool:
        """Whether the engine is unchanged since this screening was made (so it can still
        screen and be committed)."""
        return self._engine._token is self._token

    # ------------------------------------------------------------------ de-dup

    def _ensure_current(self) -> None:
        if not self.current:
            raise RuntimeError(
                "this screening is stale: the engine changed (commit, replay or ingest) "
                "since it was made; screen again with a new one"
            )

    def _fresh_ids(
        self, batch: EventBatch, status: StatusArray, refused: int
    ) -> tuple[bool, set[str] | None]:
        """``(clean, ids)``: ``ids`` are the distinct event ids of the events still
        accepted; ``clean`` if none repeats, none is remembered by the engine (live or not)
        and none was accepted earlier in this screening. All C-level set operations."""
        event_ids = batch.event_ids
        if event_ids is None:
            return True, None
        if refused:
            states = status.tolist()
            present = [
                e for e, s in zip(event_ids, states, strict=True) if s == ACCEPTED and e is not None
            ]
        else:
            present = [e for e in event_ids if e is not None]
        if not present:
            return True, None
        distinct = set(present)
        clean = (
            len(distinct) == len(present)
            and self._engine._dedup.entries.keys().isdisjoint(distinct)
            and (self._ids is None or self._ids.isdisjoint(distinct))
        )
        return clean, distinct

    def _add_ids(self, ids: set[str]) -> None:
        if self._ids is None:
            self._ids = ids
        else:
            self._ids |= ids

    def _live(self) -> int:
        if self._live_from is None:
            self._live_from = self._engine._dedup.live_from(self.wall_time)
        return self._live_from

    def _dedup_in_order(self, batch: EventBatch, status: StatusArray) -> None:
        """Mark duplicates one event at a time (no capacity refusal is possible)."""
        assert batch.event_ids is not None
        if self._ids is None:
            self._ids = set()
        pending, entry_of, live = self._ids, self._engine._dedup.entries.get, self._live()
        duplicates = []
        states = status.tolist()
        for row, event_id in enumerate(batch.event_ids):
            if event_id is None or states[row] != ACCEPTED:
                continue
            if event_id in pending or entry_of(event_id, -1) >= live:
                duplicates.append(row)
            else:
                pending.add(event_id)
        status[duplicates] = DUPLICATE

    # ------------------------------------------------------------------ capacity

    def _room(self) -> list[int]:
        """How many more videos, categories, regions and cells fit, beyond the engine's,
        those reserved and the bound of those not reserved yet."""
        engine, config = self._engine, self._engine.config
        bound = self._bound
        return [
            config.max_videos - len(engine._tables.videos) - len(self._new_videos) - bound[0],
            config.max_categories
            - (len(engine._tables.categories) - 1)
            - len(self._new_categories)
            - bound[1],
            config.max_regions
            - (len(engine._tables.regions) - 1)
            - len(self._new_regions)
            - bound[2],
            config.max_cells - len(engine._tables.cells) - len(self._new_cells) - bound[3],
        ]

    def _growth(self, batch: EventBatch) -> tuple[list[int] | None, _Codes | None, _Optional3]:
        """A bound of the videos, categories, regions and cells ``batch`` adds if it fits
        every limit even with all its events accepted, else ``None``; the batch's codes if
        they were all looked up on the way, and those that were.

        Cheapest first: the number of events; for labels, the exact number of new labels
        (one C-level lookup per event, which a commit of the batch reuses; for later calls,
        whose batches a commit cannot reuse, the number of distinct labels, one C-level
        set); then the exact number of new values of every kind (lookups and binary
        searches, vectorised).
        """
        n = len(batch)
        room = self._room()
        growth = [n, 0 if batch.categories is None else n, 0 if batch.regions is None else n, n]
        if all(g <= r for g, r in zip(growth, room, strict=True)):
            return growth, None, (None, None, None)
        engine = self._engine
        labels: list[IntArray | None] = [None, None]
        for i, column, interner in (
            (0, batch.categories, engine._tables.categories),
            (1, batch.regions, engine._tables.regions),
        ):
            if column is None or growth[i + 1] <= room[i + 1]:
                continue
            if self._calls:  # a commit cannot reuse lookups: a set is cheaper
                growth[i + 1] = len(set(column))
            else:
                labels[i] = found = interner.lookup(column)
                growth[i + 1] = len({column[r] for r in np.flatnonzero(found < 0).tolist()})
        if all(g <= r for g, r in zip(growth, room, strict=True)):
            return growth, None, (None, labels[0], labels[1])
        codes = self._codes(batch, *labels)
        looked_up = (
            codes.videos,
            None if batch.categories is None else codes.categories,
            None if batch.regions is None else codes.regions,
        )
        growth = _distinct_new(batch, codes)
        if all(g <= r for g, r in zip(growth, room, strict=True)):
            return growth, codes, looked_up
        return None, codes, looked_up

    def _codes(
        self,
        batch: EventBatch,
        categories: IntArray | None = None,
        regions: IntArray | None = None,
    ) -> _Codes:
        """The batch's codes (reusing label codes already looked up)."""
        engine = self._engine
        n = len(batch)
        videos = engine._tables.videos.lookup(batch.video_ids)
        zero = np.zeros(n, dtype=np.int64)
        if categories is None:
            categories = (
                zero
                if batch.categories is None
                else engine._tables.categories.lookup(batch.categories)
            )
        if regions is None:
            regions = (
                zero if batch.regions is None else engine._tables.regions.lookup(batch.regions)
            )
        known = np.flatnonzero((videos >= 0) & (categories >= 0) & (regions >= 0))
        settled = np.zeros(n, dtype=bool)
        if len(known):
            keys = (videos[known] << 32) | (categories[known] << 16) | regions[known]
            settled[known] = engine._tables.cells.find(keys) >= 0
        return _Codes(videos, categories, regions, settled)

    def _index_unindexed(self) -> None:
        """Reserve the new values of events accepted without looking (they fit)."""
        for batch, status in self._unindexed:
            codes = self._codes(batch)
            values = _CodeLists(codes)
            unsettled = ~codes.settled
            if status is not None:
                unsettled &= status == ACCEPTED
            for row in np.flatnonzero(unsettled).tolist():
                refusal = self._reserve(batch, row, values)
                if refusal is not None:  # cannot happen: the batch fitted every limit
                    raise RuntimeError(f"an accepted event no longer fits: {refusal}")
        self._unindexed = []
        self._bound = [0, 0, 0, 0]

    def _decide_in_order(
        self,
        batch: EventBatch,
        status: StatusArray,
        clean: bool,
        fresh: set[str] | None,
        codes: _Codes,
    ) -> None:
        """Decide de-dup and capacity event by event. If the ids are ``clean`` (no event
        can be a duplicate) only events with something new to the engine are visited."""
        values = _CodeLists(codes)
        candidates = status == ACCEPTED
        visit = np.flatnonzero(candidates & ~codes.settled if clean else candidates)
        event_ids = None if clean else batch.event_ids
        if event_ids is not None and self._ids is None:
            self._ids = set()
        pending = self._ids
        entry_of = self._engine._dedup.entries.get
        live = 0 if event_ids is None else self._live()
        settled = codes.settled.tolist()
        duplicates: list[int] = []
        refusals = self._refusals
        for row in visit.tolist():
            event_id = None if event_ids is None else event_ids[row]
            if event_id is not None:
                assert pending is not None
                if event_id in pending or entry_of(event_id, -1) >= live:
                    duplicates.append(row)
                    continue
            if not settled[row]:
                refusal = self._reserve(batch, row, values)
                if refusal is not None:
                    refusals.append(refusal)
                    continue
            if event_id is not None:
                assert pending is not None
                pending.add(event_id)
        status[duplicates] = DUPLICATE
        status[[r.row for r in refusals]] = OVER_CAPACITY
        if clean and fresh:
            if refusals and batch.event_ids is not None:
                fresh.difference_update(batch.event_ids[r.row] for r in refusals)
            self._add_ids(fresh)

    def _reserve(self, batch: EventBatch, row: int, codes: _CodeLists) -> CapacityRefusal | None:
        """Reserve what event ``row`` adds (video, labels, cell), or say which limit it
        would pass (then nothing is reserved)."""
        engine, config = self._engine, self._engine.config
        tables = engine._tables
        video = codes.videos[row]
        new_video = None
        if video < 0:
            video_id = batch.video_ids[row]
            video = self._new_videos.get(video_id, -1)
            if video < 0:
                held = len(tables.videos) + len(self._new_videos)
                if held >= config.max_videos:
                    return CapacityRefusal(
                        row,
                        config.measure.entity_field,
                        f"the limit of {config.max_videos} distinct videos is reached (max_videos)",
                    )
                video, new_video = held, video_id
        category = _label_code(
            row,
            batch.categories,
            codes.categories[row],
            len(tables.categories),
            self._new_categories,
            config.max_categories,
            _CATEGORY,
        )
        if isinstance(category, CapacityRefusal):
            return category
        region = _label_code(
            row,
            batch.regions,
            codes.regions[row],
            len(tables.regions),
            self._new_regions,
            config.max_regions,
            _REGION,
        )
        if isinstance(region, CapacityRefusal):
            return region
        cell = (video << 32) | (category[0] << 16) | region[0]
        new_cell = cell not in self._new_cells  # not settled: the engine lacks the cell
        if new_cell and len(tables.cells) + len(self._new_cells) >= config.max_cells:
            return CapacityRefusal(
                row,
                "event",
                f"the limit of {config.max_cells} distinct (video, category, region) cells "
                "is reached (max_cells)",
            )
        if new_video is not None:
            self._new_videos[new_video] = video
        if category[1] is not None:
            self._new_categories[category[1]] = category[0]
        if region[1] is not None:
            self._new_regions[region[1]] = region[0]
        if new_cell:
            self._new_cells.add(cell)
        return None


class _LabelKind(NamedTuple):
    field: str  # the event field, in a refusal
    plural: str
    setting: str


_CATEGORY = _LabelKind("category", "categories", "max_categories")
_REGION = _LabelKind("region", "regions", "max_regions")


def _label_code(
    row: int,
    labels: Sequence[str | None] | None,
    code: int,
    held: int,
    reserved: dict[str, int],
    most: int,
    kind: _LabelKind,
) -> tuple[int, str | None] | CapacityRefusal:
    """The code of event ``row``'s category or region and, if this event is the first to
    add it, the label to reserve; or why it does not fit.

    ``code`` is the engine's (``-1`` if unknown: the label then has one), ``held`` the
    engine's number of codes (code 0, absent, included), ``reserved`` the labels this
    screening reserved, with their provisional codes, and ``most`` the limit.
    """
    if code >= 0:
        return code, None
    if labels is None or (label := labels[row]) is None:
        raise RuntimeError(f"an event without a {kind.field} has no {kind.field} code")
    known = reserved.get(label, -1)
    if known >= 0:
        return known, None
    code = held + len(reserved)
    if code > most:
        return CapacityRefusal(
            row,
            kind.field,
            f"the limit of {most} distinct {kind.plural} is reached ({kind.setting})",
        )
    return code, label


class _CodeLists:
    """:class:`_Codes` as Python lists, converted on first use (for per-event loops)."""

    def __init__(self, codes: _Codes) -> None:
        self._codes = codes
        self._videos: list[int] | None = None
        self._categories: list[int] | None = None
        self._regions: list[int] | None = None

    @property
    def videos(self) -> list[int]:
        if self._videos is None:
            self._videos = self._codes.videos.tolist()
        return self._videos

    @property
    def categories(self) -> list[int]:
        if self._categories is None:
            self._categories = self._codes.categories.tolist()
        return self._categories

    @property
    def regions(self) -> list[int]:
        if self._regions is None:
            self._regions = self._codes.regions.tolist()
        return self._regions


def _distinct_new(batch: EventBatch, codes: _Codes) -> list[int]:
    """How many distinct videos, categories, regions and cells ``batch`` holds that the
    engine does not (Python only over the events with something new)."""
    new = []
    for column, values in (
        (batch.video_ids, codes.videos),
        (batch.categories, codes.categories),
        (batch.regions, codes.regions),
    ):
        rows = np.flatnonzero(values < 0).tolist()
        new.append(0 if column is None else len({column[r] for r in rows}))
    unsettled = ~codes.settled
    if not unsettled.any():
        return [*new, 0]
    labelled = (codes.videos >= 0) & (codes.categories >= 0) & (codes.regions >= 0)
    known = np.flatnonzero(unsettled & labelled)
    keys = (codes.videos[known] << 32) | (codes.categories[known] << 16) | codes.regions[known]
    cells = len(np.unique(keys))
    absent: list[str | None] = [None] * len(batch)
    categories = absent if batch.categories is None else batch.categories
    regions = absent if batch.regions is None else batch.regions
    other = np.flatnonzero(unsettled & ~labelled).tolist()
    cells += len({(batch.video_ids[r], categories[r], regions[r]) for r in other})
    return [*new, cells]
