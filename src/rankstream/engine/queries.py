"""Answering top-k queries: cached leaderboards per (window, scope), and cached answers.

A :class:`~rankstream.engine.ranking.Leaderboard` per (window, scope) keeps the leading
series and a bound; it catches up with the series that rose since it last looked by
reading the :class:`~rankstream.engine.touchlog.TouchLog`, and is rebuilt from every series
of its scope when the log no longer reaches back or its members cannot answer (see
:mod:`rankstream.engine.ranking`). Whole answers are reused until the next batch or clock
move. Caches only: nothing here is in a snapshot, and all of it rebuilds on demand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from rankstream.engine.columns import Column
from rankstream.engine.config import EngineConfig
from rankstream.engine.counts import WindowCounts
from rankstream.engine.events import MAX_LABEL_CHARS
from rankstream.engine.ranking import (
    IdOrder,
    Leaderboard,
    RankedColumns,
    RankedItem,
    TopKResult,
    build_leaderboard,
    higher_bound,
    leading_by_group,
)
from rankstream.engine.tables import Tables
from rankstream.engine.touchlog import TouchLog
from rankstream.errors import InvalidQuery

IntArray = npt.NDArray[np.int64]
Filter = tuple[str | None, str | None]  # (category, region); None: any
_RESULT_CACHE_SIZE = 4096
_BATCHED_SCOPE_SIZE = 4096  # series: scopes this small are ranked together (top_k_columns)


def _check_filter(category: str | None, region: str | None) -> None:
    for name, value in (("category", category), ("region", region)):
        if value is not None and not 1 <= len(value) <= MAX_LABEL_CHARS:
            raise InvalidQuery(f"{name} must be 1 to {MAX_LABEL_CHARS} characters")


@dataclass(frozen=True, slots=True)
class _TouchedByScope:
    """The series touched between two touch-log sequences, grouped by scope: boards last
    brought up to date at the same sequence (all of a window's, after a publish round) then
    share one grouping instead of each scanning every touched series."""

    since: int
    until: int
    total: int  # touched series in all scopes
    scopes: IntArray  # distinct scopes, ascending
    starts: IntArray  # where each scope's series start in ``series``
    series: IntArray  # touched series, ordered by scope

    def of(self, scope: int) -> IntArray:
        """The touched series of ``scope``."""
        at = int(np.searchsorted(self.scopes, scope))
        if at == len(self.scopes) or self.scopes[at] != scope:
            return self.series[:0]
        end = int(self.starts[at + 1]) if at + 1 < len(self.starts) else len(self.series)
        return self.series[int(self.starts[at]) : end]


class Rankings:
    """The query side of one engine: reads its tables, window values and touch log, and
    owns the caches built from them. Queries update the caches, so they are writes (one
    writer at a time, as for the whole engine)."""

    def __init__(
        self, config: EngineConfig, tables: Tables, counts: WindowCounts, log: TouchLog
    ) -> None:
        self.config = config
        self._tables = tables
        self._counts = counts
        self._log = log
        # Every series of a scope, ascending: built when the scope is first queried, then
        # kept up to date by one pass over the series created since (_members_of).
        self._scope_members: dict[int, Column] = {}
        self._distributed = 0  # series codes below this are in their scope's list
        self._boards: dict[tuple[int, int], Leaderboard] = {}
        self._touched: _TouchedByScope | None = None  # the last grouping made
        self._sizes = Column(np.int64)  # series per scope code, of the first _counted series
        self._counted = 0
        self._scope_codes: dict[Filter, int] = {}  # checked filters with a scope, and its code
        self._groups: tuple[tuple[int, tuple[int, ...]], IntArray, IntArray] | None = None
        # Answers are reused until the next batch or clock move: (log seq, now) -> result.
        self._results: dict[tuple[object, ...], tuple[tuple[int, int | None], TopKResult]] = {}

    def top_k(self, window: str, k: int, category: str | None, region: str | None) -> TopKResult:
        """See :meth:`TopKEngine.top_k <rankstream.engine.core.TopKEngine.top_k>`."""
        index = self._checked(window, k)
        _check_filter(category, region)
        scope = self._tables.scope_for(category, region)
        key = (index, scope, k, category, region)
        version = (self._log.seq, self._counts.now)
        cached = self._results.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        result = self._rank(index, scope, k, category, region)
        if len(self._results) >= _RESULT_CACHE_SIZE:
            self._results.clear()
        self._results[key] = (version, result)
        return result

    def top_k_columns(self, window: str, k: int, filters: Sequence[Filter]) -> list[RankedColumns]:
        """See :meth:`TopKEngine.top_k_columns
        <rankstream.engine.core.TopKEngine.top_k_columns>`.

        Scopes of at most ``_BATCHED_SCOPE_SIZE`` series are ranked together in one pass
        (:func:`~rankstream.engine.ranking.leading_by_group`); larger ones, few by nature
        (all, a category, a region), through their cached leaderboards as :meth:`top_k`.
        """
        index = self._checked(window, k)
        known = self._scope_codes
        for scope_filter in filters:
            if scope_filter not in known:
                _check_filter(*scope_filter)
        results: list[RankedColumns | None] = [None] * len(filters)
        batched: list[int] = []  # positions in ``filters``
        codes: list[int] = []
        if self._counts.now is not None:
            small = self._small_scopes()
            for position, scope_filter in enumerate(filters):
                scope = known.get(scope_filter)
                if scope is None:
                    scope = self._tables.scope_for(*scope_filter)
                    if scope is None:
                        continue  # no event had it (yet): ranked empty by top_k below
                    known[scope_filter] = scope
                if small[scope]:
                    batched.append(position)
                    codes.append(scope)
        for position in set(range(len(filters))) - set(batched):
            items = self.top_k(window, k, *filters[position]).items
            results[position] = RankedColumns(
                [item.video_id for item in items], [item.views for item in items]
            )
        if batched:
            every, groups = self._grouped(tuple(codes))
            values = self._counts.windows[index].values.view
            series, ranked, ranked_groups = leading_by_group(
                every, groups, values[every], k, self._tables.order(), self._tables.video_ranks()
            )
            ids = self._tables.video_ids(series)
            counts = ranked.tolist()
            ends = np.searchsorted(ranked_groups, np.arange(len(batched) + 1)).tolist()
            for group, position in enumerate(batched):
                lo, hi = ends[group], ends[group + 1]
                results[position] = RankedColumns(ids[lo:hi], counts[lo:hi])
        return [r for r in results if r is not None]

    def values_of(
        self, windows: Sequence[str], category: str | None, region: str | None
    ) -> tuple[list[str], list[IntArray]]:
        """See :meth:`TopKEngine.values_of <rankstream.engine.core.TopKEngine.values_of>`."""
        indexes = [self._checked(window, 1) for window in windows]
        _check_filter(category, region)
        scope = self._tables.scope_for(category, region)
        if scope is None or self._counts.now is None:
            return [], [np.zeros(0, np.int64) for _ in windows]
        members = self._members_of(scope)
        values = [self._counts.windows[i].values.view[members] for i in indexes]
        held = np.flatnonzero(np.any(np.vstack(values), axis=0)) if values else members[:0]
        return self._tables.video_ids(members[held]), [v[held] for v in values]

    def rising(
        self,
        short: str,
        long: str,
        weights: tuple[int, int],
        k: int,
        minimum: int,
        category: str | None,
        region: str | None,
    ) -> tuple[list[str], IntArray, IntArray]:
        """See :meth:`TopKEngine.rising <rankstream.engine.core.TopKEngine.rising>`."""
        first, second = self._checked(short, k), self._checked(long, k)
        _check_filter(category, region)
        scope = self._tables.scope_for(category, region)
        empty = np.zeros(0, np.int64)
        if scope is None or self._counts.now is None:
            return [], empty, empty
        members = self._members_of(scope)
        short_values = self._counts.windows[first].values.view[members]
        held = np.flatnonzero(short_values >= minimum)
        series, s = members[held], short_values[held]
        lv = self._counts.windows[second].values.view[series]
        # ratio = (s / short minutes) / (l / long minutes) = (s * wl) / (l * ws), exactly
        num, den = s * weights[1], lv * weights[0]
        if len(s) and max(int(num.max()), int(den.max())) >= 1 << 53:
            return self._rising_exactly(series, s, lv, weights, k)  # beyond exact doubles
        approx = num / den  # correctly rounded: a larger double means a larger ratio
        if len(approx) > k:
            kth = np.partition(approx, len(approx) - k)[len(approx) - k]
            keep = np.flatnonzero(approx >= kth)
            series, s, lv, num, den, approx = (a[keep] for a in (series, s, lv, num, den, approx))
        ranks = self._tables.video_ranks()[self._tables.series_video.view[series]]
        order = np.lexsort((ranks, -s, -approx))
        # Equal doubles may still be different ratios: settle such runs exactly.
        a_sorted = approx[order]
        g = np.gcd(num, den)
        same_double = a_sorted[1:] == a_sorted[:-1]
        differs = (num // g)[order][1:] != (num // g)[order][:-1]
        differs |= (den // g)[order][1:] != (den // g)[order][:-1]
        if np.any(same_double & differs):
            return self._rising_exactly(series, s, lv, weights, k)
        top = order[:k]
        return self._tables.video_ids(series[top]), s[top], lv[top]

    def _rising_exactly(
        self, series: IntArray, s: IntArray, lv: IntArray, weights: tuple[int, int], k: int
    ) -> tuple[list[str], IntArray, IntArray]:
        """:meth:`rising` by exact fractions in Python (huge sums, or doubles that tie)."""
        ids = self._tables.video_ids(series)
        rows = sorted(
            range(len(series)),
            key=lambda i: (
                -Fraction(int(s[i]) * weights[1], int(lv[i]) * weights[0]),
                -int(s[i]),
                ids[i],
            ),
        )[:k]
        return [ids[i] for i in rows], s[rows], lv[rows]

    def _small_scopes(self) -> list[bool]:
        """By scope code: has it at most ``_BATCHED_SCOPE_SIZE`` series? (Counts kept up to
        date by counting only the series created since the last call.)"""
        total = len(self._tables.series)
        scopes = len(self._tables.scopes)
        self._sizes.grow_to(scopes)
        if self._counted < total:
            added = self._tables.series_scope.view[self._counted : total]
            self._sizes.view[:] += np.bincount(added, minlength=scopes)
            self._counted = total
        small: list[bool] = (self._sizes.view <= _BATCHED_SCOPE_SIZE).tolist()
        return small

    def _grouped(self, codes: tuple[int, ...]) -> tuple[IntArray, IntArray]:
        """Every series of the scopes ``codes`` and the position of its scope in ``codes``;
        reused while neither changes (a publish round asks the same scopes of every window)."""
        key = (len(self._tables.series), codes)
        if self._groups is not None and self._groups[0] == key:
            return self._groups[1], self._groups[2]
        members = [self._members_of(code) for code in codes]
        every = np.concatenate(members)
        groups = np.repeat(np.arange(len(codes)), [len(m) for m in members])
        self._groups = (key, every, groups)
        return every, groups

    def _checked(self, window: str, k: int) -> int:
        """The index of ``window``; :class:`InvalidQuery` for an unknown one or a bad ``k``."""
        index = self._counts.index(window)
        if index is None:
            names = ", ".join(w.spec.name for w in self._counts.windows)
            raise InvalidQuery(f"unknown window {window!r}; expected one of {names}")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= self.config.max_k:
            raise InvalidQuery(f"k must be an integer from 1 to {self.config.max_k}")
        return index

    def _rank(
        self, index: int, scope: int | None, k: int, category: str | None, region: str | None
    ) -> TopKResult:
        items: tuple[RankedItem, ...] = ()
        if scope is not None and self._counts.now is not None:
            series, values = self._leaders(index, scope, k)
            leaders = self._tables.video_ids(series)
            items = tuple(map(RankedItem, range(1, len(leaders) + 1), leaders, values.tolist()))
        return self._result(index, k, category, region, items)

    def _result(
        self,
        index: int,
        k: int,
        category: str | None,
        region: str | None,
        items: tuple[RankedItem, ...],
    ) -> TopKResult:
        window = self._counts.windows[index]
        now = self._counts.now
        bounded = window.spec.kind != "all" and now is not None
        return TopKResult(
            window=window.spec.name,
            start=window.start if bounded else None,
            end=window.end if bounded else None,
            as_of=now,
            k=k,
            category=category,
            region=region,
            items=items,
        )

    def _leaders(self, window: int, scope: int, k: int) -> tuple[IntArray, IntArray]:
        values = self._counts.windows[window].values.view
        order = self._tables.order()
        size = self.config.candidate_size
        board = self._boards.get((window, scope))
        if board is not None:
            touched = self._touched_since(board.seq)
            if touched is None or touched.total > 4 * len(self._members_of(scope)) + 65536:
                board = None
            else:
                board.promote(touched.of(scope), values)
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

    def _touched_since(self, seq: int) -> _TouchedByScope | None:
        """Series touched after ``seq``, grouped by scope (``None`` if the touch log no
        longer reaches back to ``seq``); reused while the log has not moved."""
        cached = self._touched
        if cached is not None and cached.since == seq and cached.until == self._log.seq:
            return cached
        touched = self._log.since(seq)
        if touched is None:
            return None
        scopes = self._tables.series_scope.view[touched]
        order = np.argsort(scopes, kind="stable")
        ordered = scopes[order]
        distinct, starts = np.unique(ordered, return_index=True)
        self._touched = _TouchedByScope(
            seq, self._log.seq, len(touched), distinct, starts, touched[order]
        )
        return self._touched

    def _members_of(self, scope: int) -> IntArray:
        """Every series of ``scope``, ascending. The first query of a scope scans the series
        table; after that, series created since are sorted into the lists of the scopes
        queried so far in one pass over them (not one scan per scope)."""
        total = len(self._tables.series)
        if self._distributed < total:
            added = self._tables.series_scope.view[self._distributed : total]
            order = np.argsort(added, kind="stable")
            distinct, starts = np.unique(added[order], return_index=True)
            ends = [*starts[1:].tolist(), len(added)]
            for code, start, end in zip(distinct.tolist(), starts.tolist(), ends, strict=True):
                known = self._scope_members.get(code)
                if known is not None:
                    known.extend(order[start:end] + self._distributed)
            self._distributed = total
        members = self._scope_members.get(scope)
        if members is None:
            scopes = self._tables.series_scope.view[:total]
            members = self._scope_members[scope] = Column.of(np.flatnonzero(scopes == scope))
        return members.view

    def _trim(self, board: Leaderboard, values: IntArray, order: IdOrder) -> Leaderboard:
        trimmed = build_leaderboard(
            board.members, values, self.config.candidate_size, order, board.seq
        )
        trimmed.bound_value, trimmed.bound_series = higher_bound(
            board, trimmed.bound_value, trimmed.bound_series, order
        )
        return trimmed

    @property
    def numpy_bytes(self) -> int:
        """Bytes of the cached scope member lists."""
        return sum(m.view.nbytes for m in self._scope_members.values())
