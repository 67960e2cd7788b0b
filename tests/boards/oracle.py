"""A brute-force model of the boards' contract: keep every accepted event, answer by counting.

Fitting follows the documented rules for the values the tests generate: a board takes an
event that matches its filter, whose entity is a non-empty string, whose scope fields are
absent, null or non-empty strings, and whose summed field (if any) is a non-negative number
with at most the declared places, at most MAX_QUANTITY scaled units.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from rankstream.boards import INVALID, BoardSpec
from rankstream.engine import ACCEPTED, DUPLICATE, TOO_NEW, EngineConfig
from rankstream.engine.measure import MAX_QUANTITY
from rankstream.engine.windows import MINUTE

Span = tuple[str, int | None, int | None]  # window name, start, end


@dataclass(frozen=True)
class Counted:
    """One accepted event as one board counts it."""

    timestamp: int
    entity: str
    labels: tuple[str | None, ...]
    value: int


def _label(value: Any) -> tuple[bool, str | None]:
    if value is None:
        return True, None
    return (isinstance(value, str) and 1 <= len(value) <= 64), value


def fit(board: BoardSpec, event: dict[str, Any]) -> Counted | None:
    """How ``board`` counts ``event``, or ``None`` if it does not fit."""
    if board.filter is not None and not board.filter.matches(event.get(board.filter.field)):
        return None
    entity = event.get(board.entity)
    if not isinstance(entity, str) or not 1 <= len(entity) <= 256:
        return None
    labels = []
    for scope in board.scopes:
        ok, label = _label(event.get(scope))
        if not ok:
            return None
        labels.append(label)
    value = 1
    if board.sum_field is not None:
        raw = event.get(board.sum_field)
        if isinstance(raw, bool) or not isinstance(raw, int | Decimal):
            return None
        scaled = Decimal(raw).scaleb(board.scale)
        if scaled < 0 or scaled != scaled.to_integral_value() or scaled > MAX_QUANTITY:
            return None
        value = int(scaled)
    return Counted(event["timestamp"], entity, tuple(labels), value)


@dataclass
class BoardsOracle:
    boards: tuple[BoardSpec, ...]
    config: EngineConfig
    counted: dict[str, list[Counted]] = field(default_factory=dict)
    seen: dict[str, dict[str, int]] = field(default_factory=dict)  # board -> id -> arrival

    def __post_init__(self) -> None:
        for board in self.boards:
            self.counted[board.name] = []
            self.seen[board.name] = {}

    def ingest(self, events: list[dict[str, Any]], wall: int) -> list[int]:
        """Statuses per event (no capacity limit is reached in these tests)."""
        horizon = self.config.dedup_horizon
        live = {
            name: {i for i, t in seen.items() if t >= wall - horizon}
            for name, seen in self.seen.items()
        }
        statuses = []
        for event in events:
            fits = {b.name: c for b in self.boards if (c := fit(b, event)) is not None}
            event_id = event.get("event_id")
            if not fits:
                statuses.append(INVALID)
            elif event["timestamp"] > wall + self.config.max_skew:
                statuses.append(TOO_NEW)
            elif event_id is not None and any(event_id in live[name] for name in fits):
                statuses.append(DUPLICATE)
            else:
                statuses.append(ACCEPTED)
                for name, counted in fits.items():
                    self.counted[name].append(counted)
                    if event_id is not None:
                        live[name].add(event_id)
                        self.seen[name][event_id] = wall
        for name, seen in self.seen.items():  # forget as the engine does
            self.seen[name] = {i: t for i, t in seen.items() if t >= wall - horizon}
        return statuses

    def values(
        self, board: BoardSpec, start: int | None, end: int | None, labels: tuple[str | None, ...]
    ) -> Counter[str]:
        totals: Counter[str] = Counter()
        for c in self.counted[board.name]:
            if start is not None and end is not None and not start <= c.timestamp < end:
                continue
            if any(
                want is not None and want != got for want, got in zip(labels, c.labels, strict=True)
            ):
                continue
            totals[c.entity] += c.value
        return totals

    def top_k(
        self,
        board: BoardSpec,
        start: int | None,
        end: int | None,
        k: int,
        labels: tuple[str | None, ...],
    ) -> list[tuple[str, int]]:
        totals = self.values(board, start, end, labels)
        ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
        return [(e, v) for e, v in ranked[:k] if v > 0]

    def rising(
        self, board: BoardSpec, short: Span, long: Span, k: int, minimum: int
    ) -> list[tuple[str, int, int]]:
        (s_name, s_start, s_end), (l_name, l_start, l_end) = short, long
        none = (None,) * len(board.scopes)
        short_values = self.values(board, s_start, s_end, none)
        long_values = self.values(board, l_start, l_end, none)
        minutes_short = board.window(s_name).size // MINUTE  # type: ignore[union-attr]
        minutes_long = board.window(l_name).size // MINUTE  # type: ignore[union-attr]
        rows = [
            (-Fraction(v * minutes_long, long_values[e] * minutes_short), -v, e)
            for e, v in short_values.items()
            if v >= minimum
        ]
        return [(e, -v, long_values[e]) for _, v, e in sorted(rows)[:k]]

    def leaders(
        self, board: BoardSpec, slot: int, start: int | None, end: int | None, k: int
    ) -> list[tuple[str, str, int, int]]:
        groups = {c.labels[slot] or "" for c in self.counted[board.name]} - {""}
        found = []
        for group in groups:
            labels = tuple(group if i == slot else None for i in range(len(board.scopes)))
            totals = self.values(board, start, end, labels)
            ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
            if ranked and ranked[0][1] > 0:
                found.append((group, ranked[0][0], ranked[0][1], sum(totals.values())))
        found.sort(key=lambda row: (-row[2], row[0]))
        return found[:k]
