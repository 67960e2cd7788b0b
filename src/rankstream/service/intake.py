"""From request bytes to a :class:`Submission`: split the body into events, validate each.

A body is one JSON object, a JSON array of objects, or NDJSON. Invalid events are rejected
one by one (with the index and reason) and never stop the valid ones. A JSON body that does not
parse is refused whole; NDJSON is taken line by line, so a line that does not parse is one
rejected event.
"""

from __future__ import annotations

import msgspec

from rankstream.boards import BoardRouter
from rankstream.errors import BadBody, TooManyEvents
from rankstream.service.deadletters import dead_letter
from rankstream.service.pipeline import Submission

_raw_list = msgspec.json.Decoder(list[msgspec.Raw])
_raw = msgspec.json.Decoder(msgspec.Raw)


def split_body(body: bytes, ndjson: bool, max_events: int) -> list[bytes | msgspec.Raw]:
    """The raw JSON of each event in the body (each validated later, one by one).

    Raises :class:`BadBody` (empty, not JSON, nested too deeply, neither an object nor an
    array) or :class:`TooManyEvents`. NDJSON lines are split, not parsed, here.
    """
    stripped = body.strip()
    if not stripped:
        raise BadBody("invalid_body", "the body is empty; send an event, an array or NDJSON")
    if ndjson:
        lines: list[bytes | msgspec.Raw] = [ln for ln in stripped.split(b"\n") if ln.strip()]
        if len(lines) > max_events:
            raise TooManyEvents(len(lines), max_events)
        return lines
    if stripped[:1] not in (b"[", b"{"):
        try:
            _raw.decode(stripped)
        except (msgspec.DecodeError, RecursionError):
            raise BadBody("invalid_json", "the body is not JSON") from None
        raise BadBody("invalid_body", "the body must be an event object or an array of events")
    try:
        if stripped[:1] == b"[":
            raws: list[bytes | msgspec.Raw] = list(_raw_list.decode(stripped))
        else:
            raws = [_raw.decode(stripped)]
    except msgspec.DecodeError as exc:
        raise BadBody("invalid_json", f"the body is not JSON: {exc}") from None
    except RecursionError:
        raise BadBody("invalid_json", "the body nests too deeply to be events") from None
    if len(raws) > max_events:
        raise TooManyEvents(len(raws), max_events)
    return raws


def build_submission(
    raws: list[bytes | msgspec.Raw],
    router: BoardRouter,
    received: int,
    idempotency_key: str | None = None,
) -> Submission:
    """Route every event to the boards it fits; those that fit some board form the
    submission, the others (an NDJSON line that is not JSON too) become errors and dead
    letters, stored by the writer with the request's answer."""
    offered = router.route(raws)
    routed, positions = offered.fitting()
    unfit = sorted(offered.unfit.items())
    return Submission(
        routed=routed,
        raw=[bytes(raws[row]) for row in positions],
        positions=positions,
        errors=[(row, message) for row, (_, message) in unfit],
        letters=[
            dead_letter(bytes(raws[row]), field, message, received)
            for row, (field, message) in unfit
        ],
        idempotency_key=idempotency_key,
        size=sum(len(r) for r in raws),
    )
