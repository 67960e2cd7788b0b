"""From request bytes to a :class:`Submission`: split the body into events, validate each.

A body is one JSON object, a JSON array of objects, or NDJSON. Invalid events are rejected
one by one (with the index and reason) and never stop the valid ones; a body that is not
JSON at all is refused whole.
"""

from __future__ import annotations

import msgspec

from rankstream.engine.wire import EventDecoder
from rankstream.errors import RankstreamError
from rankstream.service.deadletters import DeadLetters
from rankstream.service.pipeline import EventError, Submission

_raw_list = msgspec.json.Decoder(list[msgspec.Raw])
_raw = msgspec.json.Decoder(msgspec.Raw)


class BadBody(RankstreamError):
    """The body as a whole is unusable; ``code`` is the API error code, ``status`` 4xx."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def split_body(body: bytes, ndjson: bool, max_events: int) -> list[bytes | msgspec.Raw]:
    """The raw JSON of each event in the body (each validated later, one by one).

    Raises :class:`BadBody`: empty or not JSON (400), neither an object nor an array (400),
    more than ``max_events`` events (413). NDJSON lines are split, not parsed, here.
    """
    stripped = body.strip()
    if not stripped:
        raise BadBody("invalid_body", "the body is empty; send an event, an array or NDJSON")
    if ndjson:
        lines: list[bytes | msgspec.Raw] = [ln for ln in stripped.split(b"\n") if ln.strip()]
        if len(lines) > max_events:
            raise _too_many(len(lines), max_events)
        return lines
    try:
        if stripped[:1] == b"[":
            raws: list[bytes | msgspec.Raw] = list(_raw_list.decode(stripped))
        else:
            raws = [_raw.decode(stripped)]
    except msgspec.DecodeError as exc:
        raise BadBody("invalid_json", f"the body is not JSON: {exc}") from None
    if stripped[:1] not in (b"[", b"{"):
        raise BadBody("invalid_body", "the body must be an event object or an array of events")
    if len(raws) > max_events:
        raise _too_many(len(raws), max_events)
    return raws


def _too_many(count: int, limit: int) -> BadBody:
    return BadBody(
        "too_many_events", f"{count} events in one request; the limit is {limit}", status=413
    )


def build_submission(
    raws: list[bytes | msgspec.Raw],
    decoder: EventDecoder,
    dead_letters: DeadLetters,
    received: int,
    idempotency_key: str | None = None,
    ndjson: bool = False,
) -> Submission:
    """Validate every event; valid ones form the batch, invalid ones become errors (and
    dead letters). Raises :class:`BadBody` for NDJSON of which no line is JSON."""
    decoded = decoder.decode(raws)
    if (
        ndjson
        and not decoded.positions
        and all(message == "event: is not JSON" for _, _, message, _ in decoded.errors)
    ):
        raise BadBody("invalid_json", "no line of the NDJSON body is JSON")
    errors = []
    for index, field, message, raw in decoded.errors:
        errors.append(EventError(index, message))
        dead_letters.add_invalid(raw.decode("utf-8", "replace"), message, field, received)
    return Submission(
        batch=decoded.batch,
        raw=decoded.raw,
        positions=decoded.positions,
        errors=errors,
        idempotency_key=idempotency_key,
    )
