"""Every error the API answers, in one shape: ``{"error", "message", "request_id"}``.

Handlers raise :class:`ApiError` (or a domain error that :func:`from_domain` maps); the app
turns it into a JSON answer in one place. Status codes live here and in the operation
declarations, never in the service layer.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
from starlette.responses import Response

from rankstream.errors import (
    BadBody,
    InvalidQuery,
    Overloaded,
    RankingUnavailable,
    RankstreamError,
    StorageFailure,
    StorageFull,
    TooManyEvents,
)

JSON = "application/json"


class ErrorAnswer(msgspec.Struct):
    """The body of every 4xx and 5xx answer."""

    error: str
    message: str
    request_id: str


class ApiError(Exception):
    """An answer other than success: HTTP ``status``, a stable ``code`` for programs and a
    ``message`` for people (it says what to change)."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_response(error: ApiError, request_id: str) -> Response:
    """The JSON answer of ``error``."""
    body = msgspec.json.encode(ErrorAnswer(error.code, error.message, request_id))
    return Response(body, status_code=error.status, media_type=JSON, headers=error.headers)


def bad_request(code: str, message: str) -> ApiError:
    """A 400: the request is malformed; ``message`` says which part and why."""
    return ApiError(400, code, message)


def from_domain(error: RankstreamError) -> ApiError:
    """The answer to a domain error raised below the API (the one place that maps them)."""
    if isinstance(error, TooManyEvents):
        return ApiError(413, "too_many_events", str(error))
    if isinstance(error, BadBody):
        return ApiError(400, error.code, str(error))
    if isinstance(error, InvalidQuery):
        return ApiError(400, "invalid_query", str(error))
    if isinstance(error, Overloaded):
        return ApiError(429, "overloaded", str(error), {"Retry-After": "1"})
    if isinstance(error, RankingUnavailable):
        return ApiError(503, "ranking_unavailable", str(error), {"Retry-After": "1"})
    if isinstance(error, StorageFull):
        return ApiError(503, "storage_full", str(error), {"Retry-After": "5"})
    if isinstance(error, StorageFailure):
        return ApiError(503, "storage_failure", str(error), {"Retry-After": "5"})
    return ApiError(400, "invalid_request", str(error))
