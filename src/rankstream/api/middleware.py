"""The outermost layer of the app: a request id on every answer, and no plain-text 500.

Every request gets an id: the client's ``X-Request-ID`` when it is a sane token (1-64 of
``A-Z a-z 0-9 . _ -``), else a fresh one. It is put in the scope for endpoints and error
bodies, and returned in the ``X-Request-ID`` header. An exception that escapes an endpoint
is logged with that id and answered as a JSON ``500 internal_error`` carrying it, and counted
(``rankstream_http_server_errors_total``); the fuzz suites assert that count stays zero.
"""

from __future__ import annotations

import itertools
import logging
import os
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rankstream.api.errors import ApiError, error_response

logger = logging.getLogger("rankstream.api")

_CLIENT_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")


class RequestIds:
    """Fresh request ids: a per-process prefix and a counter (cheap, unique, sortable)."""

    def __init__(self) -> None:
        self._prefix = os.urandom(4).hex()
        self._counter = itertools.count(1)

    def next(self) -> str:
        """A new id."""
        return f"{self._prefix}-{next(self._counter):x}"


class ErrorBoundary:
    """ASGI middleware: request ids, and a JSON 500 for anything an endpoint did not handle."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.ids = RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self._request_id(scope)
        scope["rankstream.request_id"] = request_id
        header = (b"x-request-id", request_id.encode("ascii"))
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            state = scope.get("state", {}).get("app")
            if state is not None:
                state.metrics.server_errors.inc()
            logger.exception(
                "request %s %s %s failed", request_id, scope.get("method"), scope.get("path")
            )
            if started:  # too late for an answer: the connection is closed mid-response
                return
            error = ApiError(500, "internal_error", f"unexpected error; request id {request_id}")
            await error_response(error, request_id)(scope, receive, send_with_id)

    def _request_id(self, scope: Scope) -> str:
        for name, value in scope["headers"]:
            if name == b"x-request-id" and _CLIENT_ID.fullmatch(value):
                return bytes(value).decode("ascii")
        return self.ids.next()
