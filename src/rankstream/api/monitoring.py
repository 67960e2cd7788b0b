"""``/health``, ``/status``, ``/metrics`` and ``/dead-letters``: how the service is doing."""

from __future__ import annotations

import asyncio
from typing import Annotated

import msgspec
from msgspec import Meta
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from rankstream.api.answers import DeadLetterItem, DeadLettersAnswer, HealthAnswer, StatusAnswer
from rankstream.api.errors import JSON, ApiError
from rankstream.api.operations import Answer, Call, Operation

MAX_DEAD_LETTERS = 1000
PROMETHEUS = "text/plain"


class DeadLettersQuery(msgspec.Struct, kw_only=True):
    """The query of ``GET /dead-letters``."""

    limit: Annotated[
        int, Meta(ge=1, le=MAX_DEAD_LETTERS, description="How many of the newest to return.")
    ] = 100


async def get_health(call: Call) -> Response:
    """200 while ingest works; 503 (with the reason) while the log cannot be written."""
    problem = call.state.ingest.ingest_problem()
    if problem is not None:
        raise ApiError(503, "unhealthy", problem, {"Retry-After": "5"})
    return Response(msgspec.json.encode(HealthAnswer("ok")), media_type=JSON)


async def get_status(call: Call) -> Response:
    """Counters and positions, typed by :class:`StatusAnswer`."""
    state = call.state
    status = state.ingest.status()
    status["videos_with_metadata"] = len(state.metadata)
    status["dead_letters"] = len(state.ingest.dead_letters)
    analytics = state.backends.analytics
    if analytics is not None:
        status["analytics"] = await asyncio.to_thread(analytics.status)
    return Response(msgspec.json.encode(msgspec.convert(status, StatusAnswer)), media_type=JSON)


async def get_metrics(call: Call) -> Response:
    """Prometheus text exposition of :mod:`rankstream.api.metrics`."""
    return Response(generate_latest(call.state.registry), media_type=CONTENT_TYPE_LATEST)


async def get_dead_letters(call: Call) -> Response:
    """The newest rejected events and the totals by field."""
    letters = call.state.ingest.dead_letters
    answer = DeadLettersAnswer(
        totals=dict(letters.totals),
        items=[
            DeadLetterItem(d.received, d.reason, d.event) for d in letters.newest(call.query.limit)
        ],
    )
    return Response(msgspec.json.encode(answer), media_type=JSON)


def operations() -> list[Operation]:
    """The declarations of this module's endpoints."""
    return [
        Operation(
            "GET",
            "/health",
            get_health,
            summary="Liveness: 200 while events can be taken",
            access="public",
            answers={
                200: Answer("Healthy", HealthAnswer),
                503: Answer("Ingest is failing (disk full, I/O error)", headers=("Retry-After",)),
            },
        ),
        Operation(
            "GET",
            "/status",
            get_status,
            summary="Counters: accepted, applied, rejected, checkpoint, recovery, memory",
            access="read",
            answers={200: Answer("Status", StatusAnswer)},
        ),
        Operation(
            "GET",
            "/metrics",
            get_metrics,
            summary="Prometheus metrics",
            access="read",
            answers={200: Answer("Prometheus text format 0.0.4", {"type": "string"}, PROMETHEUS)},
        ),
        Operation(
            "GET",
            "/dead-letters",
            get_dead_letters,
            summary="The newest rejected events with their reasons",
            access="read",
            query=DeadLettersQuery,
            answers={200: Answer("Dead letters, newest first", DeadLettersAnswer)},
        ),
    ]
