"""The HTTP API of the service: one Starlette app, its operations declared in small modules.

Starlette (the ASGI toolkit under FastAPI) with msgspec for JSON: no per-request model
layer, so the ingest path costs one decode, one validation pass and one encode. Requests
are read under one set of rules (:mod:`rankstream.api.inputs`), answers and the OpenAPI
document come from the same declarations (:mod:`rankstream.api.operations`), every error is
JSON ``{"error", "message", "request_id"}`` (:mod:`rankstream.api.errors`), and nothing a
client sends produces a plain-text 500 (:mod:`rankstream.api.middleware`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from rankstream import __version__
from rankstream.api import analytics, dashboard, docs, leaderboards, monitoring, videos, views
from rankstream.api.errors import ApiError
from rankstream.api.middleware import ErrorBoundary
from rankstream.api.openapi import build_openapi, docs_page
from rankstream.api.operations import Operation, answer_error, routes
from rankstream.api.state import AppState, open_state
from rankstream.config import ServiceConfig
from rankstream.service.pipeline import wall_clock_ms

_ROUTER_CODES = {404: "not_found", 405: "method_not_allowed"}


def operations(config: ServiceConfig) -> list[Operation]:
    """Every operation of the app as configured."""
    windows = [w.name for w in config.engine_config().windows]
    return [
        *views.operations(config, windows),
        *leaderboards.operations(config),
        *videos.operations(),
        *monitoring.operations(),
        *analytics.operations(config),
        *docs.operations(),
        *dashboard.operations(),
    ]


def create_app(config: ServiceConfig, clock: Callable[[], int] = wall_clock_ms) -> Starlette:
    """The ASGI app. Its lifespan recovers the engine (checkpoint + log) before serving and
    drains, checkpoints and closes on shutdown."""
    declared = operations(config)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with open_state(config, clock) as state:
            document = build_openapi(
                declared, state.guard, version=__version__, named_schemas=[state.router.wire_type]
            )
            state.openapi = msgspec.json.encode(document)
            state.docs_html = docs_page(document)
            yield {"app": state}

    return Starlette(
        routes=routes(declared),
        lifespan=lifespan,
        middleware=[Middleware(ErrorBoundary)],
        exception_handlers={HTTPException: _router_error},
    )


async def _router_error(request: Request, exc: Exception) -> Response:
    """No route for the path (404) or the method (405, with ``Allow``), as JSON."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    headers = exc.headers if isinstance(exc, HTTPException) else None
    error = ApiError(status, _ROUTER_CODES.get(status, "http_error"), _message(exc), headers)
    state: AppState = request.state.app
    return answer_error(state, error, request.scope["rankstream.request_id"])


def _message(exc: Exception) -> str:
    if isinstance(exc, HTTPException) and exc.status_code == 405:
        return "method not allowed on this path"
    if isinstance(exc, HTTPException) and exc.status_code == 404:
        return "no such path; see /docs"
    return str(exc)
