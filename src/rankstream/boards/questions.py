"""The questions a board answers beyond its top k: rising entities and group leaders.

- :func:`rising`, the notes' *hot streakers*: entities whose rate over a short sliding
  window most exceeds their rate over a long one. Rates are per minute (value / window
  minutes); ``ratio = short rate / long rate``. Both windows end at the same moment or the
  short one ends first, and the long one reaches further back, so the short window lies
  inside the long one: an entity with a short value has a long value at least as big and
  the ratio is defined. Entities with a short value below ``minimum`` are left out. Ranked
  by ratio (compared exactly, as fractions), then short value, both descending, then id.
- :func:`leaders`, the notes' *team MVPs*: for each group of a scope field (each team), its
  top entity with that entity's share of the group's total; groups ranked by the leader's
  value (descending), then group label.

Values are exact integers in the board's scaled units, as in top-k answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from rankstream.boards.board_set import BoardSet
from rankstream.engine.windows import MINUTE, WindowSpec
from rankstream.errors import InvalidQuery


@dataclass(frozen=True, slots=True)
class Span:
    """A window's name and the bounds an answer counted over (epoch ms, half-open)."""

    window: str
    start: int | None
    end: int | None


@dataclass(frozen=True, slots=True)
class RisingItem:
    rank: int
    entity: str
    short_value: int
    long_value: int
    short_rate: float  # per minute
    long_rate: float
    ratio: float


@dataclass(frozen=True, slots=True)
class Rising:
    board: str
    short: Span
    long: Span
    as_of: int | None
    k: int
    minimum: int
    items: tuple[RisingItem, ...]


@dataclass(frozen=True, slots=True)
class LeaderItem:
    rank: int
    group: str
    entity: str
    value: int
    total: int
    share: float


@dataclass(frozen=True, slots=True)
class Leaders:
    board: str
    by: str
    span: Span
    as_of: int | None
    k: int
    items: tuple[LeaderItem, ...]


def _sliding(boards: BoardSet, name: str, window: str, role: str) -> WindowSpec:
    spec = boards.board(name).window(window)
    if spec is None or spec.kind != "sliding":
        sliding = [w.name for w in boards.board(name).windows if w.kind == "sliding"]
        raise InvalidQuery(
            f"{role} must be a sliding window of board {name}: one of {', '.join(sliding)}"
        )
    return spec


def rising(
    boards: BoardSet,
    name: str,
    short: str,
    long: str,
    k: int,
    minimum: int = 1,
    scopes: Mapping[str, str] | None = None,
) -> Rising:
    """The ``k`` entities of board ``name`` rising most (see the module docstring).
    :class:`InvalidQuery` unless ``short`` and ``long`` are sliding windows of the board
    with ``short`` the shorter, ``k`` is in range and ``minimum`` is at least 1."""
    short_spec = _sliding(boards, name, short, "short")
    long_spec = _sliding(boards, name, long, "long")
    if short_spec.size >= long_spec.size:
        raise InvalidQuery(f"short ({short}) must be a shorter window than long ({long})")
    if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 1:
        raise InvalidQuery("min must be a positive integer")
    category, region = boards.slots(name, scopes or {})
    engine = boards.engines[name]
    top = engine.top_k(short, k, category, region)  # checks k; states the bounds
    bounds_long = engine.top_k(long, 1, category, region)
    minutes_short, minutes_long = short_spec.size // MINUTE, long_spec.size // MINUTE
    ids, short_values, long_values = engine.rising(
        short, long, (minutes_short, minutes_long), k, minimum, category, region
    )
    items = tuple(
        RisingItem(
            rank,
            entity,
            sv,
            lv,
            sv / minutes_short,
            lv / minutes_long,
            float(Fraction(sv * minutes_long, lv * minutes_short)),
        )
        for rank, (entity, sv, lv) in enumerate(
            zip(ids, short_values.tolist(), long_values.tolist(), strict=True), 1
        )
    )
    return Rising(
        board=name,
        short=Span(short, top.start, top.end),
        long=Span(long, bounds_long.start, bounds_long.end),
        as_of=top.as_of,
        k=k,
        minimum=minimum,
        items=items,
    )


def leaders(boards: BoardSet, name: str, by: str, window: str, k: int) -> Leaders:
    """For each group of scope field ``by`` of board ``name``, its leader in ``window`` and
    the leader's share; the ``k`` groups with the highest leaders (see the module
    docstring). :class:`InvalidQuery` for a field that is not one of the board's scopes."""
    spec = boards.board(name)
    if by not in spec.scopes:
        allowed = ", ".join(spec.scopes) or "none"
        raise InvalidQuery(f"board {name} has no scope {by!r} to group by (its scopes: {allowed})")
    slot = spec.scopes.index(by)
    engine = boards.engines[name]
    stated = engine.top_k(window, k)  # checks window and k; states the bounds
    groups = [
        s for s in engine.scopes() if s[slot] is not None and s[1 - slot] is None
    ]  # every label of the slot, alone
    found: list[tuple[int, str, str, int]] = []
    if groups:
        ranked = engine.top_k_columns(window, 1, groups)
        for scope, ranking in zip(groups, ranked, strict=True):
            if not ranking.video_ids or ranking.views[0] == 0:
                continue
            _, (values,) = engine.values_of([window], *scope)
            label = scope[slot]
            assert label is not None
            found.append((ranking.views[0], label, ranking.video_ids[0], int(values.sum())))
    found.sort(key=lambda row: (-row[0], row[1]))
    items = tuple(
        LeaderItem(rank, group, entity, value, total, value / total)
        for rank, (value, group, entity, total) in enumerate(found[:k], 1)
    )
    return Leaders(
        board=name,
        by=by,
        span=Span(window, stated.start, stated.end),
        as_of=stated.as_of,
        k=k,
        items=items,
    )
