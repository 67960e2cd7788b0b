"""Many leaderboards fed by one stream: one engine per board, one decision per event.

Each event is offered to every board whose filter it matches, and decoded by that board's
rules (its entity, scope and summed fields). Then, for an event arriving at ``wall_time``:

1. it is **invalid** if it fits no board (the reason is the first selecting board's, or
   that no board's filter matches);
2. **too new**, **duplicate** (its ``event_id`` is remembered by a board it fits) or **over
   capacity** (it would add an entity, label or cell beyond a limit of a board it fits), by
   the rules of :mod:`rankstream.engine.screening`, applied on every board it fits;
3. **accepted** otherwise, and then counted on *every* board it fits, never on some only:
   an event one board refuses is refused, so a log of accepted events replays to the same
   counts on every board (:meth:`BoardSet.replay`).

Each board's engine is an ordinary :class:`~rankstream.engine.TopKEngine` with the board's
windows and :class:`~rankstream.engine.measure.Measure`; its two label slots hold the board's
scope fields. Pure: time is passed in, nothing is read from the clock.
"""

from __future__ import annotations

import dataclasses
import logging
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import msgspec
import numpy as np
import numpy.typing as npt

from rankstream.boards.routing import BoardRouter, Reason, Routed
from rankstream.boards.spec import BoardSpec
from rankstream.engine import (
    ACCEPTED,
    DUPLICATE,
    OVER_CAPACITY,
    TOO_NEW,
    EngineConfig,
    EventBatch,
    TopKEngine,
    TopKResult,
)
from rankstream.engine.screening import Screening
from rankstream.engine.snapshot import decode as decode_snapshot
from rankstream.engine.snapshot import encode as encode_snapshot
from rankstream.engine.state import EngineState, window_shape
from rankstream.engine.wire import EventDecoder
from rankstream.errors import InvalidQuery, SnapshotError

logger = logging.getLogger("rankstream.boards")

INVALID = 4
"""Event status: it fits no board (the reason says why)."""

StatusArray = npt.NDArray[np.int8]
# An event refused on any board it fits is refused: too new over duplicate over capacity.
_PRIORITY = np.zeros(5, dtype=np.int8)
_PRIORITY[[ACCEPTED, OVER_CAPACITY, DUPLICATE, TOO_NEW]] = [0, 1, 2, 3]
_BY_PRIORITY = np.array([ACCEPTED, OVER_CAPACITY, DUPLICATE, TOO_NEW], dtype=np.int8)


@dataclass(slots=True)
class BoardStats:
    """Events decided since the state began, each counted once whatever the boards it fits.
    ``accepted`` includes replayed (logged) events; refusals of a replayed group are the
    caller's to add back (its log record counts them)."""

    accepted: int = 0
    duplicates: int = 0
    rejected_too_new: int = 0
    rejected_over_capacity: int = 0
    invalid: int = 0


@dataclass(frozen=True, slots=True)
class BoardCapture:
    """What :meth:`BoardSet.capture` copied: partition, statistics, each engine's state."""

    partition: int
    stats: tuple[int, ...]
    engines: dict[str, EngineState]
    boards: dict[str, BoardSpec]


def encode_capture(capture: BoardCapture) -> bytes:
    """The snapshot bytes of a :class:`BoardCapture` (:meth:`BoardSet.restore` reads them)."""
    engines = {name: encode_snapshot(state) for name, state in capture.engines.items()}
    declared = {name: _declaration(spec) for name, spec in capture.boards.items()}
    return msgspec.msgpack.encode(_Snapshot(capture.partition, capture.stats, engines, declared))


def _declaration(spec: BoardSpec) -> bytes:
    """What a board counts, as compared across a restore (windows aside: engines check them)."""
    described = spec.describe()
    del described["windows"]
    return msgspec.json.encode(described)


class _Snapshot(msgspec.Struct, array_like=True, tag="boards-1"):
    partition: int
    stats: tuple[int, ...]
    engines: dict[str, bytes]
    declarations: dict[str, bytes]  # each board's declaration (JSON), to spot re-declared ones


@dataclass(slots=True)
class Ingested:
    """What :meth:`BoardSet.ingest` decided: a status per event, a reason per refused one
    that is :data:`INVALID` or :data:`~rankstream.engine.OVER_CAPACITY`, and how many events
    each board counted."""

    status: StatusArray
    reasons: dict[int, Reason] = field(default_factory=dict)
    counted: dict[str, int] = field(default_factory=dict)

    @property
    def accepted(self) -> int:
        return int(np.count_nonzero(self.status == ACCEPTED))


class BoardSet:
    """The engines of the declared boards (see the module docstring). ``config`` gives the
    settings every board shares (skew, de-dup, capacity limits); windows and measure are
    each board's own."""

    def __init__(
        self,
        boards: Sequence[BoardSpec],
        config: EngineConfig | None = None,
        engines: Mapping[str, TopKEngine] | None = None,
        partition: int = 0,
        stats: BoardStats | None = None,
    ) -> None:
        base = config or EngineConfig()
        self.partition = partition
        self.stats = stats or BoardStats()
        self.boards = {b.name: b for b in boards}
        self.configs = {
            b.name: dataclasses.replace(base, windows=b.windows, measure=b.engine_measure)
            for b in boards
        }
        for engine_config in self.configs.values():
            engine_config.validate()
        self.engines = {
            name: (engines or {}).get(name) or TopKEngine(c, partition)
            for name, c in self.configs.items()
        }
        self.router = BoardRouter(boards, {n: c.measure for n, c in self.configs.items()})

    def route(self, raws: Sequence[bytes | msgspec.Raw]) -> Routed:
        """See :meth:`BoardRouter.route`."""
        return self.router.route(raws)

    # ------------------------------------------------------------------ counting

    def screening(self, wall_time: int) -> BoardScreening:
        """A new :class:`BoardScreening` of events arriving at ``wall_time``."""
        return BoardScreening(self, wall_time)

    def ingest(self, raws: Sequence[bytes], wall_time: int) -> Ingested:
        """Decide every event (see the module docstring) and count the accepted ones: a
        :meth:`screening` of them, committed at once."""
        screening = self.screening(wall_time)
        decided = screening.screen(self.route(raws))
        decided.counted = screening.commit()
        return decided

    @property
    def log_decoder(self) -> EventDecoder:
        """The decoder whose batch :meth:`replay` can take as ``decoded`` (the first
        board's)."""
        return self.router.decoders[next(iter(self.boards))]

    def replay(
        self, raws: Sequence[bytes], wall_time: int, decoded: EventBatch | None = None
    ) -> None:
        """Count events already accepted (logged) that arrived at ``wall_time``, on every
        board each fits, refusing nothing (see :meth:`TopKEngine.replay
        <rankstream.engine.TopKEngine.replay>`). ``decoded``: :attr:`log_decoder`'s batch
        of ``raws`` if the caller has it; with a single unfiltered board it is all
        replay needs, so nothing is decoded twice."""
        first = next(iter(self.boards.values()))
        if decoded is not None and len(self.boards) == 1 and first.filter is None:
            self.engines[first.name].replay(decoded, wall_time)
            self.stats.accepted += len(decoded)
            return
        routed = self.route(raws)
        for name, route in routed.routes.items():
            self.engines[name].replay(route.batch, wall_time)
        self.stats.accepted += routed.size - len(routed.unfit)

    @property
    def late_dropped(self) -> int:
        """Accepted events counted toward ``all`` only, being older than a board's horizon
        (once per board: see :attr:`TopKEngine.stats <rankstream.engine.TopKEngine.stats>`)."""
        return sum(e.stats.late_dropped for e in self.engines.values())

    @property
    def now(self) -> int | None:
        """The newest engine clock of the boards (``None`` before any event)."""
        clocks = [e.now for e in self.engines.values() if e.now is not None]
        return max(clocks) if clocks else None

    def memory(self) -> dict[str, dict[str, int]]:
        """Each board's :meth:`TopKEngine.memory <rankstream.engine.TopKEngine.memory>`."""
        return {name: engine.memory() for name, engine in self.engines.items()}

    def tick(self, wall_time: int) -> None:
        """Advance every board's clock to ``wall_time`` (windows slide when idle)."""
        for engine in self.engines.values():
            engine.tick(wall_time)

    # ------------------------------------------------------------------ queries

    def board(self, name: str) -> BoardSpec:
        """The board called ``name``; :class:`InvalidQuery` naming the boards otherwise."""
        spec = self.boards.get(name)
        if spec is None:
            raise InvalidQuery(f"unknown board {name!r}; expected one of {', '.join(self.boards)}")
        return spec

    def slots(self, name: str, scopes: Mapping[str, str]) -> tuple[str | None, str | None]:
        """The engine's (category, region) filter for a board's ``{scope field: value}``."""
        spec = self.board(name)
        unknown = set(scopes) - set(spec.scopes)
        if unknown:
            allowed = ", ".join(spec.scopes) or "none"
            raise InvalidQuery(
                f"board {name} has no scope {sorted(unknown)[0]!r} (its scopes: {allowed})"
            )
        labels = [scopes.get(s) for s in spec.scopes] + [None, None]
        return labels[0], labels[1]

    def top_k(
        self, name: str, window: str, k: int, scopes: Mapping[str, str] | None = None
    ) -> TopKResult:
        """The exact top ``k`` entities of board ``name`` in ``window``, narrowed by
        ``scopes``; the result's ``category``/``region`` are the board's scope slots."""
        category, region = self.slots(name, scopes or {})
        return self.engines[name].top_k(window, k, category, region)

    def capture(self) -> BoardCapture:
        """A copy of every board's state (the cheap part, see :meth:`TopKEngine.capture
        <rankstream.engine.TopKEngine.capture>`); :func:`encode_capture` of it is
        :meth:`snapshot`."""
        return BoardCapture(
            self.partition,
            dataclasses.astuple(self.stats),
            {name: e.capture() for name, e in self.engines.items()},
            dict(self.boards),
        )

    def snapshot(self) -> bytes:
        """Every board's engine snapshot by board name, with the partition and the
        event-level statistics."""
        return encode_capture(self.capture())

    @classmethod
    def restore(
        cls, data: bytes, boards: Sequence[BoardSpec], config: EngineConfig | None = None
    ) -> BoardSet:
        """The boards of a :meth:`snapshot`; a board declared since, or declared differently
        since (its entity, measure, scopes, filter or windows), starts empty (logged), and
        a board no longer declared is dropped. :class:`SnapshotError` if the snapshot
        cannot be read."""
        try:
            saved = msgspec.msgpack.decode(data, type=_Snapshot)
        except msgspec.DecodeError as exc:
            raise SnapshotError(f"cannot read board snapshot: {exc}") from None
        empty = cls(boards, config, partition=saved.partition)
        engines = {}
        for name, engine_config in empty.configs.items():
            if name not in saved.engines:
                continue
            state = decode_snapshot(saved.engines[name])  # SnapshotError if corrupt
            declared = tuple(window_shape(w) for w in engine_config.windows)
            same = saved.declarations.get(name) == _declaration(empty.boards[name])
            if state.windows != declared or not same:  # re-declared: start it afresh
                logger.warning(
                    "board %s: declared differently since the checkpoint; it starts empty"
                    " and counts the events from the checkpoint's position on",
                    name,
                )
                continue
            engines[name] = TopKEngine.from_state(state, engine_config)
        return cls(boards, config, engines, saved.partition, BoardStats(*saved.stats))


class BoardScreening:
    """Which events a :class:`BoardSet` will count, decided for one arrival time as one
    transaction (as :class:`~rankstream.engine.screening.Screening` is for one engine):
    :meth:`screen` any number of routed requests, then :meth:`commit` once. Nothing changes
    before the commit; a dropped screening leaves no trace. Valid until a board's engine
    changes.

    Events decide in order, each seeing exactly the events accepted before it: a board's
    own screening never keeps an event another board refused (its ``event_id`` or its new
    values would otherwise refuse later events on this board). When boards disagree on an
    event, the boards that accepted it are screened afresh with only the accepted events,
    and deciding resumes after it (rare: it takes a duplicate or a limit on some boards
    only).
    """

    def __init__(self, boards: BoardSet, wall_time: int) -> None:
        self.boards = boards
        self.wall_time = wall_time
        self._screenings: dict[str, Screening] = {}
        self._kept: dict[str, list[EventBatch]] = {}  # per board: the accepted events so far
        self._decided: list[StatusArray] = []

    def _screening(self, name: str) -> Screening:
        screening = self._screenings.get(name)
        if screening is None:
            screening = self._screenings[name] = self.boards.engines[name].screening(self.wall_time)
        return screening

    def _renew(self, name: str) -> None:
        """A fresh screening of board ``name`` holding exactly its accepted events."""
        screening = self.boards.engines[name].screening(self.wall_time)
        for batch in self._kept.get(name, []):
            if screening.screen(batch).any():  # cannot happen: the same events, same rules
                raise RuntimeError(f"board {name}: a re-screened event was refused")
        self._screenings[name] = screening

    def screen(self, routed: Routed) -> Ingested:
        """Statuses and reasons for one routed request, seeing what earlier calls accepted."""
        status = np.full(routed.size, ACCEPTED, dtype=np.int8)
        reasons: dict[int, Reason] = {}
        for row, reason in routed.unfit.items():
            status[row] = INVALID
            reasons[row] = reason
        start = 0  # rows before it are decided
        while start < routed.size:
            priority = np.zeros(routed.size, dtype=np.int8)
            parts: dict[str, tuple[npt.NDArray[np.intp], EventBatch, StatusArray]] = {}
            capacity: dict[int, Reason] = {}
            for name, route in routed.routes.items():
                first = bisect_left(route.rows, start)
                rows = np.asarray(route.rows[first:], dtype=np.intp)
                batch = (
                    route.batch
                    if first == 0
                    else route.batch.take(np.arange(first, len(route.rows)))
                )
                screening = self._screening(name)
                verdict = screening.screen(batch)
                parts[name] = (rows, batch, verdict)
                priority[rows] = np.maximum(priority[rows], _PRIORITY[verdict])
                for refusal in screening.capacity_reasons():
                    row = int(rows[refusal.row])
                    capacity.setdefault(row, (refusal.field, f"{refusal.field}: {refusal.message}"))
            final = _BY_PRIORITY[priority]
            split = routed.size  # the first row some board accepted and another refused
            for rows, _, verdict in parts.values():
                wrong = np.flatnonzero((verdict == ACCEPTED) & (final[rows] != ACCEPTED))
                if len(wrong):
                    split = min(split, int(rows[wrong[0]]))
            decided = np.arange(start, min(split + 1, routed.size))
            valid = decided[status[decided] != INVALID]
            status[valid] = final[valid]
            for row in valid[status[valid] == OVER_CAPACITY].tolist():
                if row in capacity:
                    reasons[row] = capacity[row]
            for name, (rows, batch, _) in parts.items():
                keep = (rows <= split) & (status[rows] == ACCEPTED)
                kept = batch if keep.all() else batch.take(np.flatnonzero(keep))
                self._kept.setdefault(name, []).append(kept)
                if split < routed.size:  # it screened events refused since: start it afresh
                    self._renew(name)
            start = split + 1
        self._decided.append(status)
        return Ingested(status, reasons)

    def commit(self) -> dict[str, int]:
        """Count every accepted event on every board it fits; returns the events counted per
        board."""
        counted: dict[str, int] = {}
        for name, kept in self._kept.items():
            batch = EventBatch.concat(kept) if kept else EventBatch([], np.zeros(0, np.int64))
            self.boards.engines[name].commit(self._screening(name), batch)
            counted[name] = len(batch)
        stats = self.boards.stats
        for decided in self._decided:
            codes = np.bincount(decided, minlength=INVALID + 1).tolist()
            stats.accepted += codes[ACCEPTED]
            stats.duplicates += codes[DUPLICATE]
            stats.rejected_too_new += codes[TOO_NEW]
            stats.rejected_over_capacity += codes[OVER_CAPACITY]
            stats.invalid += codes[INVALID]
        return counted
