"""Routing: which declared boards each event fits, decoded by each board's rules.

An event is offered to every board whose filter it matches (boards without a filter take
every event) and decoded by that board's :class:`~rankstream.engine.wire.EventDecoder`
(its entity, scope and summed fields). It *fits* a board when that decoding succeeds. An
event that fits no board gets the first selecting board's reason, or "matches no
leaderboard's filter". Routing reads no engine state, so it runs on any thread, for
example where a request is parsed, and on API replicas that count nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from rankstream.boards.spec import BoardSpec
from rankstream.engine import EventBatch
from rankstream.engine.measure import Measure
from rankstream.engine.wire import DecodedEvents, EventDecoder

Reason = tuple[str, str]  # (field, message)
NO_BOARD: Reason = ("event", "event: matches no leaderboard's filter")


@dataclass(slots=True)
class Route:
    """Which events fit one board: their rows in the request and their decoded batch."""

    rows: list[int]
    batch: EventBatch


@dataclass(slots=True)
class Routed:
    """A request's events offered to the boards: ``size`` events, each board's fitting ones,
    and a reason for each event that fits no board (by row)."""

    size: int
    routes: dict[str, Route]
    unfit: dict[int, Reason]

    def fitting(self) -> tuple[Routed, list[int]]:
        """The same routes over only the events that fit some board (renumbered in order),
        and those events' rows in this one."""
        if not self.unfit:
            return self, list(range(self.size))
        kept = [row for row in range(self.size) if row not in self.unfit]
        new_row = {row: n for n, row in enumerate(kept)}
        routes = {
            name: Route([new_row[r] for r in route.rows], route.batch)
            for name, route in self.routes.items()
        }
        return Routed(len(kept), routes, {}), kept

    def first_fits(self) -> tuple[npt.NDArray[np.int64], list[str | None], list[str]]:
        """For each event that fits some board, in order: its timestamp, its ``event_id``
        and its entity on the first board it fits (what a producer keys it by)."""
        stamps = np.zeros(self.size, dtype=np.int64)
        event_ids: list[str | None] = [None] * self.size
        entities: list[str] = [""] * self.size
        done = np.zeros(self.size, dtype=bool)
        for route in self.routes.values():
            batch = route.batch
            for position, row in enumerate(route.rows):
                if done[row]:
                    continue
                done[row] = True
                stamps[row] = batch.timestamps[position]
                entities[row] = batch.video_ids[position]
                if batch.event_ids is not None:
                    event_ids[row] = batch.event_ids[position]
        kept = [row for row in range(self.size) if row not in self.unfit]
        return stamps[kept], [event_ids[r] for r in kept], [entities[r] for r in kept]


class BoardRouter:
    """Routes events to the declared boards (see the module docstring)."""

    def __init__(self, boards: Sequence[BoardSpec], measures: Mapping[str, Measure]) -> None:
        self.boards = {b.name: b for b in boards}
        self.decoders = {name: EventDecoder(measures[name]) for name in self.boards}
        fields = sorted({b.filter.field for b in boards if b.filter is not None})
        self._filter_fields = fields
        self._filter_decoder = (
            msgspec.json.Decoder(
                list[  # type: ignore[misc]
                    msgspec.defstruct(
                        "Selected",
                        [(f"f{n}", Any, None) for n in range(len(fields))],
                        rename={f"f{n}": name for n, name in enumerate(fields)},
                    )
                ]
            )
            if fields
            else None
        )

    def decode(self, raws: Sequence[bytes | msgspec.Raw]) -> DecodedEvents:
        """The events that fit some board, as one batch in order (a
        :class:`~rankstream.engine.wire.Decoder`): each with its entity and scope values on
        the first board it fits; the others as errors. With the single ``videos`` board
        this is that board's decoding exactly. For readers of the whole log, such as the
        analytics loader."""
        routed = self.route(raws)
        if len(routed.routes) == 1:
            (name,) = routed.routes
            return self.decoders[name].decode(raws)
        first: dict[int, tuple[EventBatch, int]] = {}
        for route in routed.routes.values():
            for position, row in enumerate(route.rows):
                first.setdefault(row, (route.batch, position))
        rows = sorted(first)
        picked = [first[row] for row in rows]

        def column(name: str) -> list[str | None]:
            values: list[str | None] = []
            for batch, position in picked:
                labels = getattr(batch, name)
                values.append(None if labels is None else labels[position])
            return values

        batch = EventBatch(
            video_ids=[b.video_ids[p] for b, p in picked],
            timestamps=np.asarray([b.timestamps[p] for b, p in picked], dtype=np.int64),
            categories=column("categories"),
            regions=column("regions"),
            event_ids=column("event_ids"),
        )
        errors = [
            (row, field, message, bytes(raws[row]))
            for row, (field, message) in sorted(routed.unfit.items())
        ]
        return DecodedEvents(batch, [bytes(raws[r]) for r in rows], rows, errors)

    @property
    def wire_type(self) -> Any:
        """The msgspec type of an event as the first board reads it (the OpenAPI schema
        of an event)."""
        return self.decoders[next(iter(self.boards))].wire_type

    @classmethod
    def of(cls, boards: Sequence[BoardSpec]) -> BoardRouter:
        """A router for ``boards`` with their own measures."""
        return cls(boards, {b.name: b.engine_measure for b in boards})

    def route(self, raws: Sequence[bytes | msgspec.Raw]) -> Routed:
        """Each board's fitting events, and a reason for each event that fits none."""
        selected = self._selected(raws)
        routes: dict[str, Route] = {}
        first_reason: dict[int, Reason] = {}
        fits = np.zeros(len(raws), dtype=bool)
        for name, spec in self.boards.items():
            rows = selected[name] if spec.filter is not None else range(len(raws))
            decoded = self.decoders[name].decode([raws[r] for r in rows])
            chosen = [rows[p] for p in decoded.positions]
            fits[chosen] = True
            for position, reason_field, message, _ in decoded.errors:
                first_reason.setdefault(rows[position], (reason_field, message))
            routes[name] = Route(chosen, decoded.batch)
        unfit = {row: first_reason.get(row, NO_BOARD) for row in np.flatnonzero(~fits).tolist()}
        return Routed(len(raws), routes, unfit)

    def _selected(self, raws: Sequence[bytes | msgspec.Raw]) -> dict[str, list[int]]:
        """Rows each filtered board selects (events that are not JSON objects: none)."""
        if self._filter_decoder is None:
            return {}
        values = self._filter_values(raws)
        selected: dict[str, list[int]] = {}
        for name, spec in self.boards.items():
            if spec.filter is None:
                continue
            column = values[self._filter_fields.index(spec.filter.field)]
            matches = spec.filter.matches
            selected[name] = [row for row, value in enumerate(column) if matches(value)]
        return selected

    def _filter_values(self, raws: Sequence[bytes | msgspec.Raw]) -> list[list[Any]]:
        """The filter fields of every event, one column per field (``None``: absent, or
        the event is not a JSON object)."""
        assert self._filter_decoder is not None
        width = len(self._filter_fields)
        try:
            events = self._filter_decoder.decode(b"[" + b",".join(map(bytes, raws)) + b"]")
            rows = [[getattr(e, f"f{n}") for n in range(width)] for e in events]
        except (msgspec.DecodeError, RecursionError):
            rows = []
            one = msgspec.json.Decoder(self._filter_decoder.type.__args__[0])
            for raw in raws:
                try:
                    event = one.decode(bytes(raw))
                    rows.append([getattr(event, f"f{n}") for n in range(width)])
                except (msgspec.DecodeError, RecursionError):
                    rows.append([None] * width)
        return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * width
