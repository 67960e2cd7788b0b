"""The engine's tables: videos, labels, cells, scopes and series, interned to dense codes.

- A *video* code indexes ``videos`` (the ids) and ``video_keys`` (their sort keys).
- *Category* and *region* codes are 16-bit; code 0 means absent (no filter).
- A *cell* is a video in one category and one region, keyed ``video << 32 | category << 16 |
  region``; buckets store per-cell sums.
- A *scope* is a ranking filter keyed ``category << 16 | region`` (``0`` = all).
- A *series* is one video within one scope, keyed ``scope << 32 | video``; each window keeps
  one value per series. ``cell_series`` gives, per cell, the (up to four) series it feeds:
  all, its category, its region, its pair; ``-1`` where the cell has no such scope.

Tables only grow. Lookups assign nothing; :meth:`Tables.encode_cells` assigns codes and
creates the series of new cells.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from rankstream.engine.columns import Column, Interner, IntIndex, id_sort_keys
from rankstream.engine.config import CELL_CODE_LIMIT, LABEL_CODE_LIMIT, VIDEO_CODE_LIMIT
from rankstream.engine.events import EventBatch
from rankstream.engine.ranking import IdOrder, IdRanks
from rankstream.engine.state import EngineState
from rankstream.errors import CapacityError

IntArray = npt.NDArray[np.int64]
LookedUp = tuple[IntArray, IntArray | None, IntArray | None]
"""A batch's video, category and region codes (``-1`` where new; ``None``: no such column)."""
MaybeLookedUp = tuple[IntArray | None, IntArray | None, IntArray | None]
"""The codes of a batch already looked up, where they were (``None`` elsewhere)."""

ANY = 0
"""The "no filter" / "absent" code for category and region."""


class Tables:
    """Every table of one engine; see the module docstring. One writer at a time."""

    def __init__(self) -> None:
        self.videos: Interner[str] = Interner()
        self.video_keys = Column(np.uint64, width=2)
        self.categories: Interner[str | None] = Interner([None])
        self.regions: Interner[str | None] = Interner([None])
        self.cells = IntIndex()
        self.cell_series = Column(np.int64, width=4)
        self.scopes = IntIndex(np.array([ANY]))
        self.series = IntIndex()
        self.series_video = Column(np.int64)
        self.series_scope = Column(np.int64)
        self._ranks = IdRanks()
        self._id_array = Column(object)  # the ids as an array, for video_ids()

    @classmethod
    def restored(cls, state: EngineState) -> Tables:
        """The tables a captured state holds."""
        tables = cls()
        tables.videos = Interner(state.videos)
        tables.video_keys = Column.of(state.video_keys.unpack())
        tables.categories = Interner([None, *state.categories])
        tables.regions = Interner([None, *state.regions])
        tables.cells = IntIndex(state.cells.unpack())
        tables.cell_series = Column.of(state.cell_series.unpack())
        tables.scopes = IntIndex(state.scopes.unpack())
        tables.series = IntIndex(state.series.unpack())
        tables.series_video = Column.of(state.series_video.unpack())
        tables.series_scope = Column.of(state.series_scope.unpack())
        return tables

    @staticmethod
    def labels(interner: Interner[str | None]) -> list[str]:
        """The labels of ``categories`` or ``regions`` by code, without code 0 (absent)."""
        return [label for label in interner.values[1:] if label is not None]

    def scope_labels(self) -> list[tuple[str | None, str | None]]:
        """Every scope held, as ``(category, region)`` (``None``: not filtered), in the
        order scopes were first seen (``(None, None)``, all, is first)."""
        categories, regions = self.categories.values, self.regions.values
        return [
            (categories[key >> 16], regions[key & 0xFFFF]) for key in self.scopes.keys.view.tolist()
        ]

    # ------------------------------------------------------------------ lookups

    def look_up(self, batch: EventBatch, hint: MaybeLookedUp | None = None) -> LookedUp:
        """The batch's video, category and region codes (``-1`` where new; assigns none).

        Raises :class:`CapacityError` if the batch would overflow the fixed-width codes.
        That costs nothing (the lookups are needed anyway) unless a table is within
        ``len(batch)`` of its code limit. Screened events always fit (the limits are at
        most the code limits), so this only guards replay of a log no screening wrote.
        """
        known: MaybeLookedUp = hint or (None, None, None)
        videos = known[0] if known[0] is not None else self.videos.lookup(batch.video_ids)
        _check_room("videos", batch.video_ids, videos, len(self.videos), VIDEO_CODE_LIMIT)
        categories = _label_codes("categories", batch.categories, known[1], self.categories)
        regions = _label_codes("regions", batch.regions, known[2], self.regions)
        cells = len(self.cells)
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
            v = self.videos.get(video)
            c = self.categories.get(category)
            r = self.regions.get(region)
            if v is None or c is None or r is None or self.cells.get(v << 32 | c << 16 | r) is None:
                added += 1
        return added

    def scope_for(self, category: str | None, region: str | None) -> int | None:
        """The scope code of a filter, or ``None`` if no event ever had it."""
        cat = ANY if category is None else self.categories.get(category)
        reg = ANY if region is None else self.regions.get(region)
        if cat is None or reg is None:
            return None
        return self.scopes.get((cat << 16) | reg)

    def order(self) -> IdOrder:
        """What ranking series by id needs, as of now (valid until the tables grow)."""
        return IdOrder(self.series_video.view, self.video_keys.view, self.videos.values)

    def video_ids(self, series: IntArray) -> list[str]:
        """The video id of each series."""
        ids = self.videos.values
        if len(series) < 64:
            return [ids[v] for v in self.series_video.view[series].tolist()]
        known = self._id_array.size
        if known < len(ids):
            self._id_array.extend(np.array(ids[known:], dtype=object))
        found: list[str] = self._id_array.view[self.series_video.view[series]].tolist()
        return found

    def video_ranks(self) -> IntArray:
        """Each video's position in id order (code point order of the ids), by video code
        (:class:`~rankstream.engine.ranking.IdRanks`)."""
        total = len(self.videos)
        return self._ranks.update(self.video_keys.view[:total], self.videos.values)

    # ------------------------------------------------------------------ growth

    def encode_cells(self, batch: EventBatch, looked_up: LookedUp) -> tuple[IntArray, IntArray]:
        """The batch's distinct cells (codes) and, per event, its position among them;
        assigns codes to new videos, labels and cells and creates their series.
        ``looked_up`` is :meth:`look_up` of the batch, which checked the code limits."""
        videos = self.videos.assign(batch.video_ids, looked_up[0])
        added = len(self.videos) - self.video_keys.size
        if added:
            self.video_keys.extend(id_sort_keys(self.videos.values[-added:]))
        keys = videos << 32
        if batch.categories is not None and looked_up[1] is not None:
            keys |= self.categories.assign(batch.categories, looked_up[1]) << 16
        if batch.regions is not None and looked_up[2] is not None:
            keys |= self.regions.assign(batch.regions, looked_up[2])
        unique_keys, inverse = np.unique(keys, return_inverse=True)
        before = len(self.cells)
        codes = self.cells.encode_unique(unique_keys)
        if len(self.cells) > before:
            self._add_cells(self.cells.keys.view[before:])
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
            (categories != ANY, categories, zero),
            (regions != ANY, zero, regions),
            ((categories != ANY) & (regions != ANY), categories, regions),
        ]
        rows = [np.flatnonzero(present) for present, _, _ in scopes]
        scope_keys = np.concatenate(
            [(cat[r] << 16) | reg[r] for r, (_, cat, reg) in zip(rows, scopes, strict=True)]
        )
        all_rows = np.concatenate(rows)
        codes = self._series_codes(self.scopes.encode(scope_keys), videos[all_rows])
        table = np.full((len(keys), 4), -1, dtype=np.int64)
        columns = np.repeat(np.arange(4), [len(r) for r in rows])
        table[all_rows, columns] = codes
        self.cell_series.extend(table)

    def _series_codes(self, scopes: IntArray, videos: IntArray) -> IntArray:
        before = len(self.series)
        codes = self.series.encode((scopes << 32) | videos)
        if len(self.series) > before:
            new_keys = self.series.keys.view[before:]
            self.series_scope.extend(new_keys >> 32)
            self.series_video.extend(new_keys & 0xFFFFFFFF)
        return codes

    # ------------------------------------------------------------------ sizes

    @property
    def numpy_bytes(self) -> int:
        """Bytes of the tables' numpy buffers (live rows and sorted indexes)."""
        columns = (self.video_keys, self.cell_series, self.series_video, self.series_scope)
        indexes = (self.cells, self.series, self.scopes)
        return sum(c.view.nbytes for c in columns) + sum(i.nbytes for i in indexes)


def _label_codes(
    name: str,
    labels: Sequence[str | None] | None,
    known: IntArray | None,
    interner: Interner[str | None],
) -> IntArray | None:
    """Codes of a category or region column (``None`` if the batch has none), looked up
    unless ``known``; raises :class:`CapacityError` past the 16-bit encoding."""
    if labels is None:
        return None
    codes = known if known is not None else interner.lookup(labels)
    _check_room(name, labels, codes, len(interner) - 1, LABEL_CODE_LIMIT)  # code 0: absent
    return codes


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
