"""uvicorn's httptools protocol with bounds on each request's head.

httptools itself buffers a request line and headers of any size, and uvicorn waits forever
for a head that trickles in, so a client could hold memory or a connection slot at will.
:class:`BoundedHttpProtocol` counts the bytes received while a head is incomplete and answers
``431`` past ``max_head_bytes``, and ``408`` when a head is not complete ``head_timeout``
seconds after the connection opened or the request began. Past ``max_connections``
(uvicorn's ``limit_concurrency``) it answers ``503`` with ``Retry-After`` itself, in the API's
JSON error shape rather than uvicorn's plain text. Each of these closes the connection.
Bodies are bounded by the app (size and time).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import msgspec
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from rankstream.api.errors import ErrorAnswer

_REASONS = {
    408: b"Request Timeout",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}


class BoundedHttpProtocol(HttpToolsProtocol):
    """See the module docstring; :func:`bounded_protocol` sets the two bounds."""

    max_head_bytes = 16 * 1024
    head_timeout = 30.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = 0  # bytes received while a head is incomplete (streamed heads)
        self._head_size = 0  # request line and headers as parsed (a head read at once)
        self._in_head = True
        self._refused = False
        self._head_timer: asyncio.TimerHandle | None = None
        self._start_head_timer()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self.max_head_bytes:
            self._refuse(431, f"the request line and headers exceed {self.max_head_bytes} bytes")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_size = 0
        self._start_head_timer()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._head_size += len(name) + len(value) + 4

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._cancel_head_timer()
        if self._head_size > self.max_head_bytes:
            self._refuse(431, f"the request line and headers exceed {self.max_head_bytes} bytes")
            return
        limit = self.limit_concurrency  # uvicorn's own check, answered in our JSON shape
        if limit is not None and (len(self.connections) >= limit or len(self.tasks) >= limit):
            self._refuse(503, f"more than {limit} connections or requests at once; retry shortly")
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _start_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_too_slow)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._in_head and self._head_bytes > 0:
            self._refuse(408, f"the request headers took longer than {self.head_timeout:g} s")
        elif self._in_head and (self.cycle is None or self.cycle.response_complete):
            self.transport.close()  # connected but never sent a byte: just close

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` with the JSON error and close; the rest of the connection's
        bytes are ignored."""
        self._refused = True
        self._in_head = False
        if self.transport.is_closing():
            return
        request_id = os.urandom(6).hex()
        body = msgspec.json.encode(ErrorAnswer(_CODES[status], message, request_id))
        head = [
            b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status]),
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"x-request-id: %s\r\n" % request_id.encode(),
            b"retry-after: 1\r\n" if status == 503 else b"",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()


_CODES = {408: "headers_timeout", 431: "headers_too_large", 503: "too_many_connections"}


def bounded_protocol(max_head_bytes: int, head_timeout: float) -> type[BoundedHttpProtocol]:
    """The protocol class to give uvicorn (``Config(http=...)``) with these bounds."""
    attributes: dict[str, Any] = {"max_head_bytes": max_head_bytes, "head_timeout": head_timeout}
    return type("BoundedHttpProtocol", (BoundedHttpProtocol,), attributes)
