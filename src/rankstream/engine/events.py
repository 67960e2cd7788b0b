"""The view event: validation of one JSON object, and the columnar batch the engine ingests.

Validation never guesses: a wrong type, an out-of-range value or a control character is an
:class:`~rankstream.errors.InvalidEvent` naming the field and the reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence, Sized
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import numpy.typing as npt

from rankstream.engine.measure import MAX_QUANTITY, VIEWS, Measure
from rankstream.errors import InvalidEvent

MAX_ID_CHARS = 256
MAX_LABEL_CHARS = 64
MAX_EVENT_ID_CHARS = 128
MAX_TIMESTAMP_MS = 253_402_300_800_000  # 10000-01-01T00:00:00Z, the end of ISO-8601 years

CONTROL_CHARACTERS = "\x00-\x1f\x7f-\x9f"
"""C0 and C1 control characters and DEL, as a regular-expression character range."""
# ...and lone surrogates, which cannot be encoded as UTF-8.
FORBIDDEN_CHARACTERS = re.compile(f"[{CONTROL_CHARACTERS}\ud800-\udfff]")
TEXT_PATTERN = f"^[^{CONTROL_CHARACTERS}]*\\Z"
"""Text without control characters, for parameters and metadata (where lone surrogates
cannot arrive: URLs and JSON bodies are UTF-8). ``\\Z``, not ``$``: in Python ``$`` also
matches before a final newline. The OpenAPI document writes it as ``$``, which in JSON
Schema's (ECMA) regular expressions means the very end."""

Int64Array = npt.NDArray[np.int64]


@dataclass(slots=True)
class ViewEvent:
    """One validated view. ``timestamp`` is epoch milliseconds (UTC)."""

    video_id: str
    timestamp: int
    category: str | None = None
    region: str | None = None
    event_id: str | None = None
    quantity: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


def check_text(name: str, value: object, max_chars: int) -> str:
    """``value`` if it is a string of 1 to ``max_chars`` characters with no control
    characters; else :class:`InvalidEvent` naming ``name``."""
    if not isinstance(value, str):
        raise InvalidEvent(name, f"must be a string, got {_type_name(value)}")
    if not 1 <= len(value) <= max_chars:
        raise InvalidEvent(name, f"must be 1 to {max_chars} characters, got {len(value)}")
    bad = FORBIDDEN_CHARACTERS.search(value)
    if bad is not None:
        raise InvalidEvent(
            name, f"contains a control character U+{ord(bad.group()):04X} at {bad.start()}"
        )
    return value


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def parse_timestamp(value: object, name: str = "timestamp") -> int:
    """Epoch milliseconds from an integer or an ISO-8601 string that carries a timezone."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidEvent(
            name,
            f"must be epoch milliseconds (integer) or an ISO-8601 string, got {_type_name(value)}",
        )
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidEvent(name, f"is not an ISO-8601 date-time: {value[:64]!r}") from None
        if parsed.tzinfo is None:
            raise InvalidEvent(name, "ISO-8601 string must include a timezone (Z or +hh:mm)")
        delta = parsed - datetime.fromtimestamp(0, parsed.tzinfo)
        millis = delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000
    else:
        millis = value
    if not 0 <= millis < MAX_TIMESTAMP_MS:
        raise InvalidEvent(name, "must be between 1970-01-01 and 9999-12-31 (UTC)")
    return millis


def _first_present(obj: Mapping[str, Any], names: Sequence[str]) -> tuple[str, object]:
    found = [name for name in names if name in obj]
    if not found:
        raise InvalidEvent(names[0], "is required")
    if len(found) > 1:
        raise InvalidEvent(names[0], f"given twice, as {' and '.join(found)}")
    return found[0], obj[found[0]]


def _optional_text(obj: Mapping[str, Any], name: str, max_chars: int) -> str | None:
    value = obj.get(name)
    return None if value is None else check_text(name, value, max_chars)


def parse_event(obj: object, measure: Measure = VIEWS) -> ViewEvent:
    """Validate one decoded JSON value into a :class:`ViewEvent`.

    Raises :class:`~rankstream.errors.InvalidEvent` for the first problem found.
    """
    if not isinstance(obj, Mapping):
        raise InvalidEvent("event", f"must be a JSON object, got {_type_name(obj)}")
    id_name, raw_id = _first_present(obj, (measure.entity_field, *measure.entity_aliases))
    video_id = check_text(id_name, raw_id, MAX_ID_CHARS)
    ts_name, raw_ts = _first_present(obj, ("timestamp", "ts"))
    timestamp = parse_timestamp(raw_ts, ts_name)
    quantity = 1
    if measure.quantity_field is not None:
        quantity = parse_quantity(obj.get(measure.quantity_field), measure)
    labels = [_optional_text(obj, name, MAX_LABEL_CHARS) for name in measure.scope_fields]
    labels += [None] * (2 - len(labels))
    known = {id_name, ts_name, *measure.scope_fields, "event_id"}
    return ViewEvent(
        video_id=video_id,
        timestamp=timestamp,
        category=labels[0],
        region=labels[1],
        event_id=_optional_text(obj, "event_id", MAX_EVENT_ID_CHARS),
        quantity=quantity,
        extra={k: v for k, v in obj.items() if k not in known},
    )


def parse_quantity(value: object, measure: Measure) -> int:
    """The measure's quantity of one event in scaled units (``value * 10**scale``): a
    non-negative integer if the scale is 0; else a non-negative number or decimal string
    (``19.99`` or ``"19.99"``) with at most ``quantity_scale`` decimal places; at most
    :data:`~rankstream.engine.measure.MAX_QUANTITY` scaled units. A float is read by its
    shortest representation (``19.99``); decoders that see the JSON text read it exactly."""
    name = measure.quantity_field or "quantity"
    scale = measure.quantity_scale
    if value is None:
        raise InvalidEvent(name, "is required")
    if scale == 0:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidEvent(name, "must be a non-negative integer")
        scaled = value
    else:
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
            raise InvalidEvent(name, f"must be a non-negative number, got {_type_name(value)}")
        try:
            exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        except InvalidOperation:
            raise InvalidEvent(name, "must be a number or a decimal string") from None
        if not exact.is_finite() or exact < 0:
            raise InvalidEvent(name, "must be a non-negative number")
        shifted = exact.scaleb(scale)
        if shifted != shifted.to_integral_value():
            raise InvalidEvent(name, f"must have at most {scale} decimal places")
        scaled = int(shifted)
    if scaled > MAX_QUANTITY:
        limit = Decimal(MAX_QUANTITY).scaleb(-scale)
        raise InvalidEvent(name, f"must be at most {limit:f}")
    return scaled


@dataclass(slots=True)
class EventBatch:
    """Events in columns, the form the engine ingests at full speed.

    ``video_ids`` and ``timestamps`` (epoch ms, int64) are required and of equal length.
    ``categories``, ``regions`` and ``event_ids`` are ``None`` or sequences of the same length
    whose entries may be ``None``; ``quantities`` is ``None`` (each event counts 1) or int64.
    Columns are trusted: build them from validated events (:meth:`from_events`) or from a
    decoder that enforces the same rules.
    """

    video_ids: Sequence[str]
    timestamps: Int64Array
    categories: Sequence[str | None] | None = None
    regions: Sequence[str | None] | None = None
    event_ids: Sequence[str | None] | None = None
    quantities: Int64Array | None = None

    def __post_init__(self) -> None:
        self.timestamps = np.asarray(self.timestamps, dtype=np.int64)
        n = len(self.video_ids)
        columns: list[tuple[str, Sized | None]] = [
            ("timestamps", self.timestamps),
            ("categories", self.categories),
            ("regions", self.regions),
            ("event_ids", self.event_ids),
            ("quantities", self.quantities),
        ]
        for name, column in columns:
            if column is not None and len(column) != n:
                raise ValueError(f"column {name} has {len(column)} rows, video_ids has {n}")
        if self.quantities is not None:
            self.quantities = np.asarray(self.quantities, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.video_ids)

    @classmethod
    def from_events(cls, events: Sequence[ViewEvent]) -> EventBatch:
        """Columns from validated events, in order."""
        quantities = [e.quantity for e in events]
        return cls(
            video_ids=[e.video_id for e in events],
            timestamps=np.fromiter((e.timestamp for e in events), np.int64, len(events)),
            categories=[e.category for e in events],
            regions=[e.region for e in events],
            event_ids=[e.event_id for e in events],
            quantities=None
            if all(q == 1 for q in quantities)
            else np.asarray(quantities, dtype=np.int64),
        )

    @classmethod
    def concat(cls, batches: Sequence[EventBatch]) -> EventBatch:
        """One batch of ``batches``' events, in order (empty if there are none)."""
        if len(batches) == 1:
            return batches[0]

        def join(columns: list[Sequence[str | None] | None], sizes: list[int]) -> list[str | None]:
            out: list[str | None] = []
            for column, size in zip(columns, sizes, strict=True):
                out.extend([None] * size if column is None else column)
            return out

        sizes = [len(b) for b in batches]
        quantities = [b.quantities for b in batches]
        return cls(
            video_ids=[v for b in batches for v in b.video_ids],
            timestamps=np.concatenate([b.timestamps for b in batches])
            if batches
            else np.zeros(0, dtype=np.int64),
            categories=join([b.categories for b in batches], sizes),
            regions=join([b.regions for b in batches], sizes),
            event_ids=join([b.event_ids for b in batches], sizes),
            quantities=None
            if all(q is None for q in quantities)
            else np.concatenate(
                [
                    np.ones(n, np.int64) if q is None else q
                    for q, n in zip(quantities, sizes, strict=True)
                ]
            ),
        )

    def take(self, rows: npt.NDArray[np.intp]) -> EventBatch:
        """A new batch of the given rows, in the given order."""
        index = rows.tolist()

        def pick(column: Sequence[str | None] | None) -> list[str | None] | None:
            return None if column is None else [column[i] for i in index]

        return EventBatch(
            video_ids=[self.video_ids[i] for i in index],
            timestamps=self.timestamps[rows],
            categories=pick(self.categories),
            regions=pick(self.regions),
            event_ids=pick(self.event_ids),
            quantities=None if self.quantities is None else self.quantities[rows],
        )
