"""Scale-out API replicas answer ``/analytics/*`` by asking the analytics-loader process.

chDB holds a store in one process, so the store lives in ``rankstream analytics-loader``,
which serves the same ``/analytics/*`` operations itself. A replica started with
``--analytics-url http://HOST:PORT`` (the loader's address) reads and validates each
request under its own rules first (so a bad request is its 400, as everywhere), then
forwards it: same path and query, the client's ``Authorization`` header passed on (give
the loader the replicas' read tokens). Its answers come back as they are, except that
``/analytics/top-k`` items are joined with this replica's video metadata (the loader keeps
none). Whatever goes wrong on the way (no loader configured, not reachable, too slow, an
answer that is not the documented one) is a ``503 analytics_unavailable`` saying so,
never another 5xx.
"""

from __future__ import annotations

import httpx
import msgspec

from rankstream.api.errors import ApiError

RETRY_AFTER = {"Retry-After": "5"}


class _ErrorBody(msgspec.Struct):
    error: str
    message: str


class AnalyticsForwarder:
    """Forwards GETs to the analytics loader at ``url``. Thread-safe (one pooled
    :class:`httpx.Client`); :meth:`get` blocks, so callers run it in a worker thread.
    ``timeout``: seconds for the loader's answer (a query over months may take a second
    or more); connecting is given at most 2 s."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0)),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        )

    def get(self, target: str, authorization: str | None) -> bytes:
        """The body of the loader's 200 answer to ``GET target`` (a path and query as the
        client sent them). Raises :class:`ApiError`: the loader's own 4xx as it gave it
        (the same rules judged the request here first, so rarely), and 503 for anything
        else: the loader's 503 with its code, unreachable, too slow, or an answer no
        operation documents (``analytics_unavailable``)."""
        headers = {} if authorization is None else {"Authorization": authorization}
        try:
            answer = self._client.get(self.url + target, headers=headers)
        except httpx.HTTPError as exc:
            raise ApiError(
                503,
                "analytics_unavailable",
                f"the analytics loader at {self.url} did not answer ({type(exc).__name__}):"
                " is `rankstream analytics-loader` running there?",
                RETRY_AFTER,
            ) from None
        if answer.status_code == 200:
            return answer.content
        error = _error_body(answer.content)
        if answer.status_code in (400, 404) and error is not None:
            raise ApiError(answer.status_code, error.error, error.message)
        if answer.status_code == 503 and error is not None:
            raise ApiError(503, error.error, error.message, RETRY_AFTER)
        if answer.status_code in (401, 403):
            why = "refused this replica's credentials: give it the replicas' read tokens"
        else:
            why = f"answered {answer.status_code}"
        raise ApiError(
            503, "analytics_unavailable", f"the analytics loader at {self.url} {why}", RETRY_AFTER
        )

    def close(self) -> None:
        """Close the connections. Idempotent."""
        self._client.close()


def _error_body(content: bytes) -> _ErrorBody | None:
    try:
        return msgspec.json.decode(content, type=_ErrorBody)
    except msgspec.DecodeError:
        return None
