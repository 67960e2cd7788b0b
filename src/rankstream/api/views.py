"""``POST /views`` (durable ingest) and ``GET /views/top-k`` (exact rankings)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta
from starlette.responses import Response

from rankstream.api.answers import IngestAnswer, RankedVideo, TopKAnswer
from rankstream.api.errors import JSON
from rankstream.api.inputs import NO_CONTROL_CHARACTERS, read_body
from rankstream.api.operations import Answer, Body, Call, Operation
from rankstream.api.state import AppState
from rankstream.config import ServiceConfig
from rankstream.engine import TopKResult
from rankstream.engine.events import MAX_LABEL_CHARS
from rankstream.service.intake import build_submission, split_body

NDJSON = "application/x-ndjson"
MAX_IDEMPOTENCY_KEY_CHARS = 200

Label = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_LABEL_CHARS,
        pattern=NO_CONTROL_CHARACTERS,
        description="Only events with this value count; unknown values rank nothing.",
    ),
]


class IngestHeaders(msgspec.Struct):
    """Headers ``POST /views`` reads."""

    idempotency_key: (
        Annotated[
            str,
            Meta(
                min_length=1,
                max_length=MAX_IDEMPOTENCY_KEY_CHARS,
                pattern="^[!-~]+$",
                description="Makes a retry count once: a request repeating a key gets the"
                " first answer (with Idempotent-Replayed: true). Visible ASCII, 1-200.",
            ),
        ]
        | None
    ) = msgspec.field(default=None, name="Idempotency-Key")


def top_k_query(windows: Sequence[str], max_k: int) -> type[msgspec.Struct]:
    """The query of ``GET /views/top-k`` for these windows and this largest ``k``."""
    window_type: Any = Literal[tuple(windows)]
    return msgspec.defstruct(
        "TopKQuery",
        [
            ("window", Annotated[window_type, Meta(description="The window to rank.")], "24h"),
            (
                "k",
                Annotated[int, Meta(ge=1, le=max_k, description="How many videos to return.")],
                10,
            ),
            ("category", Label | None, None),
            ("region", Label | None, None),
        ],
        kw_only=True,
    )


async def post_views(call: Call) -> Response:
    """Validate, log durably, apply; ``202`` once the accepted events are durable."""
    state = call.state
    config = state.config
    state.ingest.admit()  # 429 before reading a body the queue has no room for
    body = await read_body(call.request, config.max_body_bytes, config.body_timeout)
    ndjson = call.request.headers.get("content-type", "").startswith(NDJSON)
    raws = split_body(body, ndjson, config.max_events_per_request)
    submission = build_submission(raws, state.router, state.clock(), call.headers.idempotency_key)
    answer, replayed = await asyncio.wrap_future(state.ingest.submit(submission))
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return Response(answer, status_code=202, media_type=JSON, headers=headers)


async def get_top_k(call: Call) -> Response:
    """The exact top k; the encoded answer is reused while nothing changed."""
    state = call.state
    q = call.query
    started = time.perf_counter()
    result = state.rankings.top_k(q.window, q.k, q.category, q.region)
    key = (q.window, q.k, q.category, q.region)
    cached = state.encoded.get(key)
    version = state.metadata.version
    if cached is not None and cached[0] is result and cached[1] == version:
        body = cached[2]  # the same ranking and metadata: the same bytes
    else:
        body = msgspec.json.encode(_answer(result, state))
        if len(state.encoded) >= 4096:
            state.encoded.clear()
        state.encoded[key] = (result, version, body)
    state.metrics.query_seconds.labels(q.window).observe(time.perf_counter() - started)
    return Response(body, media_type=JSON)


def _answer(result: TopKResult, state: AppState) -> TopKAnswer:
    items = []
    metadata = state.metadata
    for item in result.items:
        meta = metadata.get(item.video_id)
        if meta is None:
            items.append(RankedVideo(item.rank, item.video_id, item.views))
        else:
            items.append(
                RankedVideo(
                    item.rank,
                    item.video_id,
                    item.views,
                    meta.title,
                    meta.channel,
                    meta.thumbnail_url,
                )
            )
    return TopKAnswer(
        window=result.window,
        window_start=result.start,
        window_end=result.end,
        as_of=result.as_of,
        k=result.k,
        category=result.category,
        region=result.region,
        items=items,
    )


def operations(config: ServiceConfig, windows: Sequence[str]) -> list[Operation]:
    """The declarations of this module's endpoints for ``config``."""
    now = 1_795_341_600_000  # an example timestamp (2026-11-23T10:00:00Z)
    max_events = config.max_events_per_request
    events = {
        "description": "An event (see the ViewEvent schema). An element that is not a valid"
        " event is rejected on its own and listed in the answer's errors; the others are kept."
    }
    return [
        Operation(
            "POST",
            "/views",
            post_views,
            summary="Ingest views (an object, an array, or NDJSON); 202 means durable",
            description="Each event is validated on its own: invalid ones are rejected with"
            " their index and reason and never stop the valid ones. Events more than"
            " max_skew_ms ahead of the server clock, over a capacity limit, or repeating a"
            " recent event_id are not counted either (the answer says which).",
            access="write",
            headers=IngestHeaders,
            body=Body(
                {
                    JSON: {
                        "oneOf": [
                            {"type": "object", **events},
                            {"type": "array", "maxItems": max_events, "items": events},
                        ]
                    },
                    NDJSON: {
                        "type": "string",
                        "pattern": "[^ \\t\\n\\r\\u000b\\u000c]",  # not blank
                        "description": f"One JSON event per line, at most {max_events} lines;"
                        " a line that is not a valid event is rejected on its own.",
                    },
                },
                description=f"One event, a JSON array of up to {max_events} events, or NDJSON.",
                example=[
                    {"video_id": "dQw4w9WgXcQ", "timestamp": now, "category": "music"},
                    {"videoId": "9bZkp7q19f0", "ts": "2026-11-23T10:00:00Z", "region": "KR"},
                ],
            ),
            answers={
                202: Answer(
                    "Accepted events are durable; rejected ones are listed",
                    IngestAnswer,
                    headers=("Idempotent-Replayed",),
                ),
                400: Answer("The body is empty, not JSON, or not an object or array"),
                408: Answer("The body was not received in time"),
                413: Answer("The body has too many events or bytes"),
                429: Answer(
                    "The ingest queue is full; retry after a while", headers=("Retry-After",)
                ),
                503: Answer(
                    "The log cannot be written (disk full or I/O error); nothing was kept",
                    headers=("Retry-After",),
                ),
            },
        ),
        Operation(
            "GET",
            "/views/top-k",
            get_top_k,
            summary="The exact top k of a window, optionally by category and region",
            access="read",
            query=top_k_query(windows, config.served_k),
            answers={
                200: Answer("The ranking, with its window bounds", TopKAnswer),
                503: Answer(
                    "The ranking cannot be served right now (scale-out: not yet published)",
                    headers=("Retry-After",),
                ),
            },
        ),
    ]
