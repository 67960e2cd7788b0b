"""Exact top-k ordering, the cached leaderboard of one (window, scope), and partition merge.

The order is: value descending, then id ascending by code point.

A :class:`Leaderboard` keeps a small set of *members* (series ids) and a *bound* with the
invariant: every series of its scope that is not a member ranks below the bound. Counts that
fall (buckets expiring) never break the invariant; counts that rise are checked against the
bound when the board is next read, from the log of touched series. A query is answered from
the members alone when its k-th item ranks above the bound; otherwise the board is rebuilt
from the whole scope. Either way the answer is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
import numpy as np
import numpy.typing as npt

from rankstream.errors import InvalidQuery, MismatchedBounds

IntArray = npt.NDArray[np.int64]


class RankedItem(msgspec.Struct, frozen=True, gc=False):
    """One row of a ranking (a msgspec struct: cheap to build, encodes straight to JSON,
    and not tracked by the garbage collector, as it holds no containers)."""

    rank: int
    video_id: str
    views: int


class TopKResult(msgspec.Struct, frozen=True, gc=False):
    """A ranking of ``window`` as of engine time ``as_of``, over ``[start, end)``.

    ``start``/``end`` are ``None`` for the ``all`` window and ``as_of`` is ``None`` before
    the first event. Immutable, so the engine may hand the same result to many readers.
    """

    window: str
    start: int | None
    end: int | None
    as_of: int | None
    k: int
    category: str | None
    region: str | None
    items: tuple[RankedItem, ...]


class RankedColumns(msgspec.Struct, frozen=True, gc=False):
    """The rows of one ranking as two columns in rank order: what publishing many rankings
    needs, without an object per row (see :meth:`TopKEngine.top_k_columns
    <rankstream.engine.core.TopKEngine.top_k_columns>`)."""

    video_ids: list[str]
    views: list[int]


@dataclass(slots=True)
class IdOrder:
    """What ordering series by id needs: the video of each series and the id strings."""

    series_video: IntArray
    id_keys: npt.NDArray[np.uint64]
    ids: list[str]

    def sort(self, series: IntArray, values: IntArray, groups: IntArray | None = None) -> IntArray:
        """Positions of ``series`` in rank order (value descending, id ascending); with
        ``groups``, ordered by group first (ascending), then in rank order within each."""
        videos = self.series_video[series]
        keys = self.id_keys[videos]
        if groups is None:
            order = np.lexsort((keys[:, 1], keys[:, 0], -values))
        else:
            order = np.lexsort((keys[:, 1], keys[:, 0], -values, groups))
        # Keys order ids exactly unless two ids share 16 leading bytes: settle those in Python.
        ranked_keys = keys[order]
        same = (ranked_keys[1:] == ranked_keys[:-1]).all(axis=1) & (
            values[order][1:] == values[order][:-1]
        )
        if groups is not None:
            same &= groups[order][1:] == groups[order][:-1]
        if same.any():
            order = self._settle_long_ids(order, same, videos)
        return order

    def _settle_long_ids(
        self, order: IntArray, same: npt.NDArray[np.bool_], videos: IntArray
    ) -> IntArray:
        fixed = order.copy()
        idx = np.flatnonzero(same)
        start = int(idx[0])
        runs: list[tuple[int, int]] = []
        prev = start
        for i in idx[1:].tolist():
            if i != prev + 1:
                runs.append((start, prev + 2))
                start = i
            prev = i
        runs.append((start, prev + 2))
        for lo, hi in runs:
            block = fixed[lo:hi].tolist()
            block.sort(key=lambda pos: self.ids[videos[pos]])
            fixed[lo:hi] = block
        return fixed

    def id_of(self, series: int) -> str:
        return self.ids[int(self.series_video[series])]


class IdRanks:
    """Each video's position in id order (code point order of the ids), kept up to date as
    videos are added: what packs the id into one integer sort key
    (:func:`leading_by_group`).

    Added ids are sorted among themselves and merged into the ids already ranked by their
    16-byte keys, one binary search each: O(n log n + N) numpy work for n ids added to N,
    not a new sort of all of them. An added id whose first 16 bytes equal an id's already
    ranked (both are then longer: rare) makes it rank every id again.
    """

    def __init__(self) -> None:
        self.ranks: IntArray = np.zeros(0, dtype=np.int64)
        self._by_id: IntArray = np.zeros(0, dtype=np.int64)  # video codes in id order
        self._keys: npt.NDArray[np.bytes_] = np.zeros(0, dtype="S16")  # and their keys

    def update(self, id_keys: npt.NDArray[np.uint64], ids: list[str]) -> IntArray:
        """The ranks of videos ``0 .. len(id_keys)-1`` (keys: :func:`id_sort_keys
        <rankstream.engine.columns.id_sort_keys>`; ``ids``: the id strings, by code)."""
        total, known = len(id_keys), len(self.ranks)
        if total == known:
            return self.ranks
        order = IdOrder(np.arange(total, dtype=np.int64), id_keys, ids)
        added = np.arange(known, total, dtype=np.int64)
        added = added[order.sort(added, np.zeros(len(added), dtype=np.int64))]
        keys = _key_bytes(id_keys[added])
        at = np.searchsorted(self._keys, keys)
        inside = at < len(self._keys)
        if (self._keys[at[inside]] == keys[inside]).any():  # a shared 16-byte prefix
            everyone = np.arange(total, dtype=np.int64)
            self._by_id = everyone[order.sort(everyone, np.zeros(total, dtype=np.int64))]
            self._keys = _key_bytes(id_keys[self._by_id])
        else:
            self._by_id = np.insert(self._by_id, at, added)
            self._keys = np.insert(self._keys, at, keys)
        self.ranks = np.empty(total, dtype=np.int64)
        self.ranks[self._by_id] = np.arange(total, dtype=np.int64)
        return self.ranks


def _key_bytes(keys: npt.NDArray[np.uint64]) -> npt.NDArray[np.bytes_]:
    """Each row of two uint64 id keys as 16 big-endian bytes: bytes compare as the keys do."""
    return np.ascontiguousarray(keys.astype(">u8")).view("S16").ravel()


@dataclass(slots=True)
class Leaderboard:
    """Members and bound of one (window, scope); see the module docstring.

    The bound is ``(bound_value, bound_series)``: a non-member has a value below
    ``bound_value``, or equal to it and (when ``bound_series >= 0``) an id after that
    series' id. ``bound_value <= 0`` means no non-member has any views.
    """

    members: IntArray
    bound_value: int
    bound_series: int
    seq: int

    def promote(self, touched: IntArray, values: IntArray) -> None:
        """Make members of touched series whose values may now beat the bound.

        ``touched`` are series of this scope, ``values`` the whole window's value column.
        """
        if len(touched) == 0:
            return
        # Filter by value first: most touched series are far below the bound.
        high = touched[values[touched] >= max(self.bound_value, 1)]
        if len(high) == 0:
            return
        # ``members`` is sorted: a binary search tells members apart (cheaper than
        # setdiff1d/union1d, whose fixed cost dominates for the few series of one scope).
        high = np.sort(high)
        if len(high) > 1:
            high = high[np.concatenate(([True], high[1:] != high[:-1]))]
        members = self.members
        at = np.searchsorted(members, high)
        known = at < len(members)
        known[known] = members[at[known]] == high[known]
        risen = high[~known]
        if len(risen):
            self.members = np.insert(members, at[~known], risen)

    def top(self, k: int, values: IntArray, order: IdOrder) -> tuple[IntArray, IntArray] | None:
        """``(series, values)`` of the exact top ``k``, or ``None`` if the bound is in the way."""
        series, ranked = leading(self.members, values, k, order)
        if len(series) < k:
            return (series, ranked) if self.bound_value <= 0 else None
        last_value = int(ranked[-1])
        if self.bound_value <= 0 or last_value > self.bound_value:
            return series, ranked
        if (
            last_value == self.bound_value
            and self.bound_series >= 0
            and order.id_of(int(series[-1])) <= order.id_of(self.bound_series)
        ):
            return series, ranked
        return None


def leading(
    candidates: IntArray, values: IntArray, k: int, order: IdOrder
) -> tuple[IntArray, IntArray]:
    """The first ``k`` of ``candidates`` (with views) in rank order, and their values."""
    vals = values[candidates]
    live = vals > 0
    candidates, vals = candidates[live], vals[live]
    if len(candidates) > k:
        keep = vals >= kth_largest(vals, k)
        candidates, vals = candidates[keep], vals[keep]
    ranked = order.sort(candidates, vals)[:k]
    return candidates[ranked], vals[ranked]


def leading_by_group(
    series: IntArray,
    groups: IntArray,
    values: IntArray,
    k: int,
    order: IdOrder,
    video_ranks: IntArray,
) -> tuple[IntArray, IntArray, IntArray]:
    """The first ``k`` series (with views) of every group, in one pass over all of them.

    ``groups[i]`` (non-negative) and ``values[i]`` belong to ``series[i]``; a series is in
    one group only. ``video_ranks``: each video's position in id order
    (:meth:`~rankstream.engine.tables.Tables.video_ranks`). Returns ``(series, values,
    groups)`` of the chosen, ordered by group (ascending) and in rank order within a group:
    for each group exactly what :func:`leading` answers for its series alone, without one
    numpy call per group.
    """
    live = values > 0
    series, groups, values = series[live], groups[live], values[live]
    if not len(series):
        return series, values, groups
    most = int(values.max())
    value_bits, group_bits = most.bit_length(), int(groups.max()).bit_length()
    rank_bits = max(len(video_ranks) - 1, 1).bit_length()
    if value_bits + group_bits + rank_bits <= 63:
        # The whole order in one integer key: group, then value descending, then id.
        ranks = video_ranks[order.series_video[series]]
        key = (groups << (value_bits + rank_bits)) | ((most - values) << rank_bits) | ranks
        ranked = np.argsort(key)
    else:
        ranked = order.sort(series, values, groups)
    ranked_groups = groups[ranked]
    starts, sizes = _runs(ranked_groups)
    place = np.arange(len(ranked)) - np.repeat(starts, sizes)
    chosen = ranked[place < k]
    return series[chosen], values[chosen], groups[chosen]


def _runs(values: IntArray) -> tuple[IntArray, IntArray]:
    """Where each run of equal ``values`` starts, and its length."""
    if not len(values):
        return values[:0], values[:0]
    starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
    return starts, np.diff(np.append(starts, len(values)))


_SMALL = 64


def kth_largest(values: IntArray, k: int) -> int:
    """The ``k``-th largest of non-negative ``values`` (``1 <= k <= len(values)``).

    ``np.partition`` degrades badly when most values are equal (the long tail of 1s and 2s
    in a popularity distribution), so small values are counted in a histogram and only the
    values of at least ``_SMALL`` are partitioned.
    """
    hist = np.bincount(np.minimum(values, _SMALL), minlength=_SMALL + 1)
    big = int(hist[_SMALL])
    if big >= k:
        top = values[values >= _SMALL]
        return int(np.partition(top, big - k)[big - k])
    from_top = np.cumsum(hist[_SMALL - 1 :: -1]) + big  # counts of values >= v, v descending
    return _SMALL - 1 - int(np.searchsorted(from_top, k))


def build_leaderboard(
    candidates: IntArray, values: IntArray, size: int, order: IdOrder, seq: int
) -> Leaderboard:
    """A board whose members are exactly the leading ``size`` of ``candidates``.

    ``candidates`` must hold every series of the scope that could rank above the new bound
    (the whole scope, or the members of a board being trimmed, whose own bound the caller
    keeps by taking the larger of the two).
    """
    vals = values[candidates]
    live = np.flatnonzero(vals > 0)
    if len(live) <= size:
        return Leaderboard(np.sort(candidates[live]), 0, -1, seq)
    live_vals = vals[live]
    kth = kth_largest(live_vals, size)
    above = candidates[live[live_vals > kth]]
    ties = candidates[live[live_vals == kth]]
    need = size - len(above)
    if len(ties) <= size:
        # Every tie joins: non-members are then strictly below kth.
        return Leaderboard(np.sort(np.concatenate([above, ties])), kth - 1, -1, seq)
    tie_order = order.sort(ties, np.full(len(ties), kth, dtype=np.int64))
    chosen = ties[tie_order[:need]]
    members = np.sort(np.concatenate([above, chosen]))
    return Leaderboard(members, kth, int(chosen[-1]), seq)


def higher_bound(a: Leaderboard, value: int, series: int, order: IdOrder) -> tuple[int, int]:
    """The larger (less restrictive) of ``a``'s bound and ``(value, series)``."""
    if a.bound_value != value:
        return (a.bound_value, a.bound_series) if a.bound_value > value else (value, series)
    if a.bound_series < 0 or series < 0:
        return value, -1
    # At equal values the bound with the smaller id lets more non-members tie, so is larger.
    if order.id_of(a.bound_series) <= order.id_of(series):
        return value, a.bound_series
    return value, series


_SAME_FOR_EVERY_PART = ("window", "category", "region")
_SAME_FOR_CLOCKED_PARTS = ("start", "end")


def merge_top_k(results: Sequence[TopKResult], k: int) -> TopKResult:
    """The global top ``k`` of per-partition rankings of one query.

    Exact when the partitions hold disjoint sets of videos (Kafka keyed by video id) and
    every part is its partition's top ``k`` or longer, for the same window, bounds and
    filters. Checked, before anything is merged:

    - ``results`` is not empty; every part has the same ``window``, ``category`` and
      ``region``, and every part with a clock the same ``start`` and ``end``, else
      :class:`~rankstream.errors.MismatchedBounds` (counts over different ranges do not
      add up to any ranking);
    - ``k`` is an integer from 1 to the smallest ``k`` of the parts, else
      :class:`~rankstream.errors.InvalidQuery` (a part cut at a smaller ``k`` may have
      left out an item of the merged top ``k``);
    - no video is in two parts, else :class:`ValueError` (the partitions overlap).

    A part whose ``as_of`` is ``None`` comes from an engine with no clock yet (no event,
    no tick): it holds nothing and has no bounds, so it takes no part in the bounds check
    or in ``as_of``. The merge's ``as_of`` is the *smallest* of the other parts' clocks:
    each part is as fresh as its own clock, so the least advanced partition is what the
    whole answer can vouch for; the minimum never claims a freshness some part lacks
    (parts with different clocks but the same bounds are in the same bucket). With no
    clocked part, ``as_of``, ``start`` and ``end`` are ``None`` and the ranking is empty,
    as one empty engine answers.

    Items are ordered as every ranking is (views descending, then id by code point) and
    renumbered from 1.
    """
    if not results:
        raise ValueError("merge_top_k needs at least one result")
    first = results[0]
    for name in _SAME_FOR_EVERY_PART:
        _check_same(results, name)
    clocked = [r for r in results if r.as_of is not None]
    for name in _SAME_FOR_CLOCKED_PARTS:
        _check_same(clocked, name)
    most = min(r.k for r in results)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= most:
        raise InvalidQuery(
            f"k must be an integer from 1 to {most}, the smallest k the parts were ranked with"
        )
    pool = [item for part in results for item in part.items]
    if len({item.video_id for item in pool}) != len(pool):
        raise ValueError("a video is ranked in two parts: the partitions overlap")
    pool.sort(key=lambda item: (-item.views, item.video_id))
    items = tuple(
        RankedItem(rank, item.video_id, item.views) for rank, item in enumerate(pool[:k], 1)
    )
    bounds = clocked[0] if clocked else first
    return TopKResult(
        window=first.window,
        start=bounds.start,
        end=bounds.end,
        as_of=min((r.as_of for r in clocked if r.as_of is not None), default=None),
        k=k,
        category=first.category,
        region=first.region,
        items=items,
    )


def _check_same(results: Sequence[TopKResult], name: str) -> None:
    values = {getattr(r, name) for r in results}
    if len(values) > 1:
        shown = ", ".join(sorted(map(repr, values)))
        raise MismatchedBounds(f"the rankings to merge differ in {name}: {shown}")
