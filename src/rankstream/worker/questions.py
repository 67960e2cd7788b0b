"""Publishing one partition's answers to a board's other questions: rising and leaders.

A replica cannot compute *rising* or *leaders* from top-k rankings, so each partition
publishes what merges exactly across partitions, **provided every entity's events are in
one partition** (the board's entity is the topic's key; the worker refuses other boards at
start, :func:`rankstream.worker.boards.check_partitioned`):

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


def rising_list(
    engine: TopKEngine, short: str, long: str, depth: int, scope: Scope
) -> tuple[list[str], list[int], list[int], bool]:
    """The partition's rising list of a window pair in ``scope`` (see the module
    docstring): ids, short values, long values, and whether it is complete."""
    ids, (short_values, long_values) = engine.values_of([short, long], *scope)
    held = np.flatnonzero(short_values >= 1)
    complete = len(held) <= depth
    if not complete:  # keep the depth best by float ratio (and near ties), settle exactly
        approx = short_values[held] / long_values[held]
        kth = np.partition(approx, len(approx) - depth)[len(approx) - depth]
        held = held[approx >= kth * (1 - _FLOAT_MARGIN)]
    rows = [(int(short_values[i]), int(long_values[i]), ids[i]) for i in held.tolist()]
    rows.sort(key=lambda row: rising_order(*row))
    rows = rows[:depth]
    return [r[2] for r in rows], [r[0] for r in rows], [r[1] for r in rows], complete


def group_leaders(
    engine: TopKEngine, window: str, slot: int, groups: list[Scope]
) -> dict[str, tuple[str, int, int]]:
    """For each group scope (one label in ``slot``): its leader, the leader's value and the
    group's total in ``window``; groups with nothing in the window are left out."""
    found: dict[str, tuple[str, int, int]] = {}
    if not groups:
        return found
    for scope, ranking in zip(groups, engine.top_k_columns(window, 1, groups), strict=True):
        if not ranking.video_ids or ranking.views[0] == 0:
            continue
        _, (values,) = engine.values_of([window], *scope)
        label = scope[slot]
        assert label is not None  # a group scope has its slot's label
        found[label] = (ranking.video_ids[0], int(ranking.views[0]), int(values.sum()))
    return found


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
    groups: dict[tuple[str, int], dict[str, tuple[str, int, int]]] = field(default_factory=dict)

    def forget(self) -> None:
        """Forget what was published (Redis lost it): the next round writes everything."""
        self.bounds.clear()
        self.rising.clear()
        self.leaders.clear()
        self.groups.clear()

    def writes(self, engine: TopKEngine, touched: set[Scope] | None) -> dict[str, bytes]:
        """The rising and leaders keys to write and their values, recomputed for the scopes
        in ``touched`` (all if ``None``, and all of a window whose bounds moved)."""
        moved: set[str] = set()
        for window in self.spec.windows:
            probe = engine.top_k(window.name, 1)
            bounds: Bounds = (probe.start, probe.end)
            if self.bounds.get(window.name) != bounds:
                moved.add(window.name)
                self.bounds[window.name] = bounds
        every = engine.scopes()
        changes: dict[str, bytes] = {}
        rising_kinds = self.kinds & RISING_KINDS
        for short, long in rising_pairs(self.spec):
            wide = touched is None or short.name in moved or long.name in moved
            scopes = [
                s
                for s in (every if wide or touched is None else touched)
                if scope_kind(s) in rising_kinds
            ]
            for scope in scopes:
                ids, shorts, longs, complete = rising_list(
                    engine, short.name, long.name, self.depth, scope
                )
                (s0, s1), (l0, l1) = self.bounds[short.name], self.bounds[long.name]
                rising = RisingGeneration(s0, s1, l0, l1, complete, ids, shorts, longs)
                slot = (short.name, long.name, scope_key(*scope))
                value = _newer(self.rising, slot, rising, not ids)
                if value is not None:
                    key = rising_key(self.board, short.name, long.name, slot[2], self.partition)
                    changes[key] = value
        for window in self.spec.windows:
            for index, name in enumerate(self.spec.scopes):
                cache_slot = (window.name, index)
                cached = self.groups.get(cache_slot)
                if cached is None or touched is None or window.name in moved:
                    groups = [s for s in every if _group_of(s, index) is not None]
                    cached = self.groups[cache_slot] = {}
                else:
                    groups = [s for s in touched if _group_of(s, index) is not None]
                cached.update(group_leaders(engine, window.name, index, groups))
                for scope in groups:  # a touched group with nothing left in the window
                    label = _group_of(scope, index)
                    if label is not None and not _counted(engine, window.name, scope):
                        cached.pop(label, None)
                labels = sorted(cached)
                start, end = self.bounds[window.name]
                leaders = LeadersGeneration(
                    start,
                    end,
                    labels,
                    [cached[g][0] for g in labels],
                    [cached[g][1] for g in labels],
                    [cached[g][2] for g in labels],
                )
                value = _newer(self.leaders, cache_slot, leaders, not labels)
                if value is not None:
                    changes[leaders_key(self.board, window.name, name, self.partition)] = value
        return changes


def _group_of(scope: Scope, slot: int) -> str | None:
    """The label of ``scope`` if it is a group of ``slot`` (that slot alone), else None."""
    return scope[slot] if scope[slot] is not None and scope[1 - slot] is None else None


def _counted(engine: TopKEngine, window: str, scope: Scope) -> bool:
    ranking = engine.top_k_columns(window, 1, [scope])[0]
    return bool(ranking.video_ids) and ranking.views[0] > 0


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
