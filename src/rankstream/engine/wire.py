"""Fast decoding of JSON events into columns, under exactly the rules of ``parse_event``.

Each event is decoded by msgspec straight into a typed struct (types and lengths checked in
C); the few rules msgspec cannot express (aliases, ISO timestamps, control characters) are
checked here, control characters for the whole batch in one regex scan. An event that fails
any check is handed to :func:`~rankstream.engine.events.parse_event`, the reference
validator, so the error message is the same whichever path found it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from operator import attrgetter
from typing import Annotated, Any, Protocol

import msgspec
import numpy as np
import numpy.typing as npt
from msgspec import UNSET, Meta, UnsetType

from rankstream.engine.events import (
    FORBIDDEN_CHARACTERS,
    MAX_EVENT_ID_CHARS,
    MAX_ID_CHARS,
    MAX_LABEL_CHARS,
    MAX_TIMESTAMP_MS,
    EventBatch,
    parse_event,
    parse_timestamp,
)
from rankstream.engine.measure import MAX_QUANTITY, Measure
from rankstream.errors import InvalidEvent

_Id = Annotated[str, Meta(min_length=1, max_length=MAX_ID_CHARS)]
_Label = Annotated[str, Meta(min_length=1, max_length=MAX_LABEL_CHARS)]
_EventId = Annotated[str, Meta(min_length=1, max_length=MAX_EVENT_ID_CHARS)]
_Quantity = Annotated[int, Meta(ge=0)]

_generic = msgspec.json.Decoder()

NOT_JSON = "event: is not JSON"
"""The error of an event that does not parse as JSON at all."""


@dataclass(slots=True)
class DecodedEvents:
    """The valid events of a request as a batch (``raw`` holds each one's JSON, kept for
    analytics; ``positions`` its index in the request) and ``(index, field, message,
    raw)`` for each invalid one."""

    batch: EventBatch
    raw: list[bytes]
    positions: list[int]
    errors: list[tuple[int, str, str, bytes]]


class Decoder(Protocol):
    """What reads logged events back: raw JSON events in, a batch of the valid ones out
    (:class:`EventDecoder` for one measure; a board router for the declared boards)."""

    def decode(self, raws: Sequence[bytes | msgspec.Raw]) -> DecodedEvents:
        """Every valid event in a batch, the invalid ones as errors."""
        ...


class EventDecoder:
    """Decodes raw JSON events (``msgspec.Raw`` or bytes) for one :class:`Measure`."""

    def __init__(self, measure: Measure) -> None:
        self.measure = measure
        # Struct attributes have fixed names, renamed to the measure's field names on the wire.
        names = (measure.entity_field, *measure.entity_aliases)
        self._id_names = tuple(f"id{n}" for n in range(len(names)))
        self._scopes = tuple(f"scope{n}" for n in range(len(measure.scope_fields)))
        rename = dict(zip(self._id_names, names, strict=True))
        rename |= dict(zip(self._scopes, measure.scope_fields, strict=True))
        fields: list[tuple[str, Any, Any]] = [
            (name, _Id | UnsetType, UNSET) for name in self._id_names
        ]
        fields += [
            ("timestamp", int | str | UnsetType, UNSET),
            ("ts", int | str | UnsetType, UNSET),
            *((scope, _Label | None, None) for scope in self._scopes),
            ("event_id", _EventId | None, None),
        ]
        if measure.quantity_field is not None:
            rename["quantity"] = measure.quantity_field
            kind = _Quantity if measure.quantity_scale == 0 else int | Decimal
            fields.append(("quantity", kind, msgspec.NODEFAULT))  # required
        wire = msgspec.defstruct(
            "ViewEvent", fields, kw_only=True, forbid_unknown_fields=False, rename=rename
        )
        self.wire_type: Any = wire
        """The msgspec type of one event on the wire (documented in the OpenAPI schema)."""
        self._decoder = msgspec.json.Decoder(wire)
        self._list_decoder = msgspec.json.Decoder(list[wire])  # type: ignore[valid-type]

    def _labels(self, events: list[Any]) -> tuple[list[Any] | None, list[Any] | None]:
        """The two label columns (``None`` where the measure has no such scope field)."""
        columns = [list(map(attrgetter(scope), events)) for scope in self._scopes]
        return (columns[0] if columns else None, columns[1] if len(columns) > 1 else None)

    def _quantities(self, raw: list[Any]) -> npt.NDArray[np.int64] | None:
        """Scaled integer quantities, or ``None`` if one is out of range or has more decimal
        places than the measure keeps (then the one-by-one path explains)."""
        scale = self.measure.quantity_scale
        if scale:
            scaled = [Decimal(q).scaleb(scale) for q in raw]
            if any(not q.is_finite() or q != q.to_integral_value() for q in scaled):
                return None
            raw = [int(q) for q in scaled]
        try:
            quantities = np.asarray(raw, dtype=np.int64)
        except OverflowError:
            return None
        if len(quantities) and (quantities.min() < 0 or quantities.max() > MAX_QUANTITY):
            return None
        return quantities

    def decode(self, raws: Sequence[bytes | msgspec.Raw]) -> DecodedEvents:
        """Validate every event; invalid ones never stop valid ones."""
        fast = self._decode_all_valid(raws)
        return fast if fast is not None else self._decode_one_by_one(raws)

    def _decode_all_valid(self, raws: Sequence[bytes | msgspec.Raw]) -> DecodedEvents | None:
        """The common case in one C call and a few list passes; ``None`` if any event
        needs a closer look (then :meth:`_decode_one_by_one` finds which)."""
        kept = [bytes(r) for r in raws]
        try:
            events: list[Any] = self._list_decoder.decode(b"[" + b",".join(kept) + b"]")
        except (msgspec.DecodeError, RecursionError):
            return None
        names = self._id_names
        ids = _merge_aliases([list(map(attrgetter(name), events)) for name in names])
        stamps = _merge_aliases([list(map(attrgetter(n), events)) for n in ("timestamp", "ts")])
        if ids is None or stamps is None:
            return None
        try:
            if any(isinstance(t, str) for t in stamps):
                stamps = [parse_timestamp(t) if isinstance(t, str) else t for t in stamps]
            timestamps = np.asarray(stamps, dtype=np.int64)
        except (InvalidEvent, OverflowError, TypeError):
            return None
        if len(timestamps) and (timestamps.min() < 0 or timestamps.max() >= MAX_TIMESTAMP_MS):
            return None
        categories, regions = self._labels(events)
        event_ids = list(map(attrgetter("event_id"), events))
        for column in (ids, categories, regions, event_ids):
            if column is not None and FORBIDDEN_CHARACTERS.search("".join(filter(None, column))):
                return None
        quantities = None
        if self.measure.quantity_field is not None:
            quantities = self._quantities(list(map(attrgetter("quantity"), events)))
            if quantities is None:
                return None
        batch = EventBatch(
            video_ids=ids,
            timestamps=timestamps,
            categories=categories,
            regions=regions,
            event_ids=event_ids,
            quantities=quantities,
        )
        return DecodedEvents(batch, kept, list(range(len(kept))), [])

    def _decode_one_by_one(self, raws: Sequence[bytes | msgspec.Raw]) -> DecodedEvents:
        ids: list[str] = []
        stamps: list[int] = []
        valid: list[Any] = []
        quantities: list[int] = []
        kept: list[bytes] = []
        positions: list[int] = []
        errors: list[tuple[int, str, str, bytes]] = []
        decode = self._decoder.decode
        id_names = self._id_names
        counted = self.measure.quantity_field is not None
        for index, raw in enumerate(raws):
            data = bytes(raw)
            try:
                event: Any = decode(data)
                present = [getattr(event, n) for n in id_names if getattr(event, n) is not UNSET]
                stamp = event.timestamp if event.ts is UNSET else event.ts
                if len(present) != 1 or (event.timestamp is not UNSET) == (event.ts is not UNSET):
                    raise ValueError("alias")
                if isinstance(stamp, str):
                    stamp = parse_timestamp(stamp)
                elif not 0 <= stamp < MAX_TIMESTAMP_MS:
                    raise ValueError("range")
                quantity = self._quantities([event.quantity]) if counted else None
                if counted and quantity is None:
                    raise ValueError("quantity")
            except (msgspec.DecodeError, ValueError, InvalidEvent, RecursionError):
                errors.append(self._explain(index, data))
                continue
            ids.append(present[0])
            stamps.append(stamp)
            valid.append(event)
            if quantity is not None:
                quantities.append(int(quantity[0]))
            kept.append(data)
            positions.append(index)
        categories, regions = self._labels(valid)
        event_ids = list(map(attrgetter("event_id"), valid))
        columns = (ids, categories, regions, event_ids)
        if any(
            FORBIDDEN_CHARACTERS.search("".join(c for c in col if c))
            for col in columns
            if col is not None
        ):
            return self._without_control_characters(raws, positions, errors)
        batch = EventBatch(
            video_ids=ids,
            timestamps=np.asarray(stamps, dtype=np.int64),
            categories=categories,
            regions=regions,
            event_ids=event_ids,
            quantities=np.asarray(quantities, np.int64) if counted else None,
        )
        return DecodedEvents(batch, kept, positions, errors)

    def _explain(self, index: int, data: bytes) -> tuple[int, str, str, bytes]:
        """The reference validator's verdict on an event the fast path refused."""
        try:
            value = _generic.decode(data)
        except msgspec.ValidationError as exc:  # valid JSON the decoder cannot hold
            return index, "event", f"event: cannot be decoded: {exc}", data
        except msgspec.DecodeError:
            return index, "event", NOT_JSON, data
        except RecursionError:
            return index, "event", "event: nests too deeply", data
        try:
            parse_event(value, self.measure)
        except InvalidEvent as exc:
            return index, exc.field, str(exc), data
        return index, "event", "event: could not be decoded", data  # pragma: no cover

    def _without_control_characters(
        self,
        raws: Sequence[bytes | msgspec.Raw],
        positions: list[int],
        errors: list[tuple[int, str, str, bytes]],
    ) -> DecodedEvents:
        """The slow path for a batch holding a control character: event by event."""
        events = []
        kept: list[bytes] = []
        valid_positions: list[int] = []
        for index in positions:
            data = bytes(raws[index])
            try:
                events.append(parse_event(_generic.decode(data), self.measure))
            except InvalidEvent as exc:
                errors.append((index, exc.field, str(exc), data))
                continue
            except (msgspec.DecodeError, RecursionError):
                errors.append(self._explain(index, data))
                continue
            kept.append(data)
            valid_positions.append(index)
        errors.sort(key=lambda e: e[0])
        return DecodedEvents(EventBatch.from_events(events), kept, valid_positions, errors)


def _merge_aliases(columns: list[list[Any]]) -> list[Any] | None:
    """One column from a field's columns under each of its names, or ``None`` when an event
    has the field under no name or under two (the one-by-one path then explains)."""
    if len(columns) == 1:
        merged = columns[0]
    else:
        used = [c for c in columns if c.count(UNSET) != len(c)]
        if len(used) > 1:
            stacked = list(zip(*used, strict=True))
            if any(len(row) - row.count(UNSET) != 1 for row in stacked):
                return None
            merged = [next(v for v in row if v is not UNSET) for row in stacked]
        else:
            merged = used[0] if used else columns[0]
    return None if UNSET in merged else merged
