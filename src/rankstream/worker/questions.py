"""Publishing one partition's answers to a board's other questions: rising and leaders.

A replica cannot compute *rising* or *leaders* from top-k rankings, so each partition
publishes what merges exactly across partitions, **provided every entity's events are in
one partition** (the board's entity is the key of the topic it is counted from: the
source topic, or its repartition topic, :mod:`.repartition`):

- **rising**, for each (short, long) pair of the board's sliding windows (short the
  shorter) and each scope of kind ``all`` or a single scope field (pairs of scope fields
  are not published): the partition's entities with a short value of at least 1, in rising
  order (ratio descending, short value descending, id), cut at the published depth, with a
  flag saying whether the list is complete. An entity's ratio depends on its own values
  only, all in one partition, so the global order is the partitions' orders merged.
- **leaders**, for each window and scope field: every group (label) the partition holds,
  with its leading entity, that entity's value and the group's total over the partition.
  Across partitions a group's leader is the largest of the partitions' leaders (entities
  are disjoint) and its total is the sum; nothing is cut, so the merge is always exact.

Like rankings (:mod:`.publisher`), a value keeps its newest generation and the newest of
the bounds before, and is recomputed only for the scopes the round's events touched, or
for every scope when a window's bounds moved; an unchanged value is not written again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from rankstream.boards import BoardSpec
from rankstream.engine import TopKEngine
from rankstream.engine.windows import WindowSpec
from rankstream.serving.layout import (
    Bounds,
    LeadersGeneration,
    RisingGeneration,
    encode_generations,
    leaders_key,
    rising_key,
    rising_order,
    scope_key,
    scope_kind,
)
from rankstream.worker.publisher import Scope

RISING_KINDS = frozenset({"all", "category", "region"})
"""Scope kinds rising lists are published for (a pair of scope fields is not)."""
_FLOAT_MARGIN = 1e-9  # ratios this close (relative) to the cut are settled exactly


def rising_pairs(spec: BoardSpec) -> list[tuple[WindowSpec, WindowSpec]]:
    """The (short, long) pairs of ``spec``'s sliding windows a rising list is published for."""
    sliding = [w for w in spec.windows if w.kind == "sliding"]
    return [(s, w) for s in sliding for w in sliding if s.size < w.size]


Values = list[npt.NDArray[np.int64]]  # one value per entity, one array per window


def rising_list(
    ids: list[str],
    short_values: npt.NDArray[np.int64],
    long_values: npt.NDArray[np.int64],
    depth: int,
) -> tuple[list[str], list[int], list[int], bool]:
    """A partition's rising list of a window pair in one scope (see the module docstring),
    from the scope's entities and their values in both windows: ids, short values, long
    values, and whether it is complete."""
    held = np.flatnonzero(short_values >= 1)
    complete = len(held) <= depth
    if not complete:  # keep the depth best by float ratio (and near ties), settle exactly
        approx = short_values[held] / long_values[held]
        kth = np.partition(approx, len(approx) - depth)[len(approx) - depth]
        held = held[approx >= kth * (1 - _FLOAT_MARGIN)]
    rows = [(int(short_values[i]), int(long_values[i]), ids[i]) for i in held.tolist()]
    rows = exact_rising_sort(rows)[:depth]
    return [r[2] for r in rows], [r[0] for r in rows], [r[1] for r in rows], complete


def exact_rising_sort(rows: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """``(short, long, id)`` rows in the rising order (:func:`rising_order`), fast: sorted
    by the float ratio first (Python's int division is correctly rounded, hence monotone,
    so floats can only tie fractions that differ), then each run of equal floats holding
    different fractions is sorted exactly."""
    rows.sort(key=lambda row: (-(row[0] / row[1]), -row[0], row[2]))
    start = 0
    while start < len(rows):
        ratio = rows[start][0] / rows[start][1]
        end = start + 1
        while end < len(rows) and rows[end][0] / rows[end][1] == ratio:
            end += 1
        s0, l0, _ = rows[start]
        if end - start > 1 and any(s * l0 != s0 * lv for s, lv, _ in rows[start + 1 : end]):
            rows[start:end] = sorted(rows[start:end], key=lambda row: rising_order(*row))
        start = end
    return rows


def group_leader(ids: list[str], values: npt.NDArray[np.int64]) -> tuple[str, int, int] | None:
    """A group's leader (largest value, then smallest id by code point), its value and the
    group's total, from its entities' values in one window; ``None`` if the total is 0."""
    if not len(values):
        return None
    best = int(values.max())
    if best <= 0:
        return None
    leader = min(ids[i] for i in np.flatnonzero(values == best).tolist())
    return leader, best, int(values.sum())


@dataclass(slots=True)
class QuestionPublisher:
    """What one partition last published of one board's rising lists and leaders (see the
    module docstring). ``board``: the board's key tag; ``depth``: the rising lists' depth;
    ``kinds``: the published scope kinds (rising lists follow them, pairs excepted)."""

    board: str
    partition: int
    spec: BoardSpec
    depth: int
    kinds: frozenset[str]
    bounds: dict[str, Bounds] = field(default_factory=dict)
    rising: dict[tuple[str, str, str], list[RisingGeneration]] = field(default_factory=dict)
    leaders: dict[tuple[str, int], list[LeadersGeneration]] = field(default_factory=dict)
    # per scope field: each group's (leader, value, total) per window (None: nothing in it)
    groups: dict[int, dict[str, list[tuple[str, int, int] | None]]] = field(default_factory=dict)

    def forget(self) -> None:
        """Forget what was published (Redis lost it): the next round writes everything."""
        self.bounds.clear()
        self.rising.clear()
        self.leaders.clear()
        self.groups.clear()

    def writes(self, engine: TopKEngine, touched: set[Scope] | None) -> dict[str, bytes]:
        """The rising and leaders keys to write and their values, recomputed for the scopes
        in ``touched`` (for all scopes if ``None`` or when a window's bounds moved). One
        pass over each recomputed scope's entities gives all its windows' values."""
        moved = False
        for window in self.spec.windows:
            probe = engine.top_k(window.name, 1)
            bounds: Bounds = (probe.start, probe.end)
            if self.bounds.get(window.name) != bounds:
                moved = True
                self.bounds[window.name] = bounds
        scopes = engine.scopes() if moved or touched is None else list(touched)
        changes: dict[str, bytes] = {}
        pairs = rising_pairs(self.spec)
        rising_kinds = self.kinds & RISING_KINDS if pairs else frozenset()
        names = [w.name for w in self.spec.windows]
        slots = range(len(self.spec.scopes))
        for index in slots:
            if moved or touched is None:
                self.groups.setdefault(index, {}).clear()
        for scope in scopes:
            groups = [(i, label) for i in slots if (label := _group_of(scope, i)) is not None]
            ranked = scope_kind(scope) in rising_kinds
            if not groups and not ranked:
                continue
            ids, values = engine.values_of(names, *scope)
            of = dict(zip(names, values, strict=True))
            for index, label in groups:
                self.groups.setdefault(index, {})[label] = [group_leader(ids, v) for v in values]
            if ranked:
                changes.update(self._rising(scope, ids, of, pairs))
        for index, field_name in enumerate(self.spec.scopes):
            cached = self.groups.setdefault(index, {})
            for number, name in enumerate(names):
                rows = sorted(
                    (label, found[number])
                    for label, found in cached.items()
                    if found[number] is not None
                )
                start, end = self.bounds[name]
                leaders = LeadersGeneration(
                    start,
                    end,
                    [label for label, _ in rows],
                    [row[0] for _, row in rows if row is not None],
                    [row[1] for _, row in rows if row is not None],
                    [row[2] for _, row in rows if row is not None],
                )
                value = _newer(self.leaders, (name, index), leaders, not rows)
                if value is not None:
                    changes[leaders_key(self.board, name, field_name, self.partition)] = value
        return changes

    def _rising(
        self,
        scope: Scope,
        ids: list[str],
        of: dict[str, npt.NDArray[np.int64]],
        pairs: list[tuple[WindowSpec, WindowSpec]],
    ) -> dict[str, bytes]:
        """The rising keys of ``scope`` to write, from its entities' values by window."""
        changes: dict[str, bytes] = {}
        for short, long in pairs:
            listed, shorts, longs, complete = rising_list(
                ids, of[short.name], of[long.name], self.depth
            )
            (s0, s1), (l0, l1) = self.bounds[short.name], self.bounds[long.name]
            rising = RisingGeneration(s0, s1, l0, l1, complete, listed, shorts, longs)
            slot = (short.name, long.name, scope_key(*scope))
            value = _newer(self.rising, slot, rising, not listed)
            if value is not None:
                key = rising_key(self.board, short.name, long.name, slot[2], self.partition)
                changes[key] = value
        return changes


def _group_of(scope: Scope, slot: int) -> str | None:
    """The label of ``scope`` if it is a group of ``slot`` (that slot alone), else None."""
    return scope[slot] if scope[slot] is not None and scope[1 - slot] is None else None


_K = TypeVar("_K")
_G = TypeVar("_G", RisingGeneration, LeadersGeneration)


def _newer(published: dict[_K, list[_G]], slot: _K, generation: _G, empty: bool) -> bytes | None:
    """The value to write for ``slot`` now holding ``generation`` (``None``: nothing to
    write): unchanged, or never published and empty, writes nothing. The generation of the
    bounds before stays readable beside the newest (as for rankings)."""
    before = published.get(slot)
    if before is None and empty:
        return None
    if before and before[0] == generation:
        return None
    if before is None:
        older: list[_G] = []
    elif before[0].bounds == generation.bounds:
        older = before[1:]
    else:
        older = before[:1]
    generations: list[_G] = [generation]
    generations.extend(older)
    published[slot] = generations
    return encode_generations(generations)
