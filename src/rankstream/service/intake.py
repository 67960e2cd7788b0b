"""From request bytes to a :class:`Submission`: decode, count, validate each event.

A body is one JSON object, a JSON array of objects, or NDJSON. Invalid events are rejected
one by one (with the index and reason) and never stop the valid ones; a body that is not
JSON at all is refused whole.
"""

from __future__ import annotations

from typing import Any

import msgspec

from rankstream.engine import EventBatch, Measure, parse_event
from rankstream.errors import InvalidEvent, RankstreamError
from rankstream.service.deadletters import DeadLetters
from rankstream.service.pipeline import EventError, Submission

_decoder = msgspec.json.Decoder()


class BadBody(RankstreamError):
    """The body as a whole is unusable (``400``); ``code`` is the API error code."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def decode_body(body: bytes, ndjson: bool, max_events: int) -> list[Any]:
    """The request's event values (not yet validated).

    Raises :class:`BadBody`: not JSON (400), neither an object nor an array (400), more than
    ``max_events`` events (413). In NDJSON, a line that is not JSON becomes an
    :class:`_Undecodable` value, rejected later by index; only a body with no JSON line at
    all is refused.
    """
    if not body.strip():
        raise BadBody("invalid_body", "the body is empty; send an event, an array or NDJSON")
    if ndjson:
        lines = [line for line in body.split(b"\n") if line.strip()]
        if len(lines) > max_events:
            raise _too_many(len(lines), max_events)
        values = [_decode_line(line) for line in lines]
        if all(isinstance(v, _Undecodable) for v in values):
            raise BadBody("invalid_json", "no line of the NDJSON body is JSON")
        return values
    try:
        value = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise BadBody("invalid_json", f"the body is not JSON: {exc}") from None
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        if len(value) > max_events:
            raise _too_many(len(value), max_events)
        return value
    raise BadBody("invalid_body", "the body must be an event object or an array of events")


class _Undecodable:
    __slots__ = ("line",)

    def __init__(self, line: bytes) -> None:
        self.line = line


def _decode_line(line: bytes) -> Any:
    try:
        return _decoder.decode(line)
    except msgspec.DecodeError:
        return _Undecodable(line)


def _too_many(count: int, limit: int) -> BadBody:
    return BadBody(
        "too_many_events", f"{count} events in one request; the limit is {limit}", status=413
    )


def build_submission(
    values: list[Any],
    measure: Measure,
    dead_letters: DeadLetters,
    received: int,
    idempotency_key: str | None = None,
) -> Submission:
    """Validate every value; valid ones form the batch, invalid ones become errors (and
    dead letters)."""
    events = []
    positions = []
    errors = []
    for index, value in enumerate(values):
        try:
            if isinstance(value, _Undecodable):
                raise InvalidEvent("event", "this NDJSON line is not JSON")
            events.append(parse_event(value, measure))
            positions.append(index)
        except InvalidEvent as exc:
            message = str(exc)
            errors.append(EventError(index, message))
            raw = (
                value.line.decode("utf-8", "replace") if isinstance(value, _Undecodable) else value
            )
            dead_letters.add_invalid(raw, message, exc.field, received)
    return Submission(
        batch=EventBatch.from_events(events),
        extras=[e.extra for e in events],
        positions=positions,
        errors=errors,
        idempotency_key=idempotency_key,
    )
