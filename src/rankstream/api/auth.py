"""Bearer-token access to the API: who may read, who may write.

Each operation declares its access (:data:`Access`). With write tokens configured, writes need
``Authorization: Bearer <write token>``; with read tokens configured, reads need a read or a
write token. With none configured, that kind of call is open (the default, so ``make run``
works out of the box). Several tokens may be valid at once, so tokens can be rotated without
downtime. Comparison takes the same time whatever the token holds (``hmac.compare_digest``
against every configured token, no early exit), and tokens are never logged or echoed.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Literal

from rankstream.api.errors import ApiError

Access = Literal["public", "read", "write"]

_CHALLENGE = 'Bearer realm="rankstream"'


class TokenGuard:
    """Checks the ``Authorization`` header of a call against the configured tokens."""

    def __init__(self, write_tokens: Sequence[str] = (), read_tokens: Sequence[str] = ()) -> None:
        self._write = [t.encode() for t in write_tokens]
        self._read = [t.encode() for t in read_tokens]

    def protects(self, access: Access) -> bool:
        """Whether calls of this access need a token."""
        if access == "write":
            return bool(self._write)
        if access == "read":
            return bool(self._read)
        return False

    def check(self, access: Access, authorization: str | None) -> None:
        """Return if the call may proceed; else :class:`ApiError` 401 (no or unknown token)
        or 403 (a read token on a write call)."""
        if not self.protects(access):
            return
        token = _bearer(authorization)
        if token is None:
            raise ApiError(
                401,
                "unauthorized",
                "this call needs Authorization: Bearer <token>",
                {"WWW-Authenticate": _CHALLENGE},
            )
        is_writer = _matches(token, self._write)
        is_reader = _matches(token, self._read)
        if access == "write" and is_writer:
            return
        if access == "read" and (is_reader or is_writer):
            return
        if access == "write" and is_reader:
            raise ApiError(
                403,
                "forbidden",
                "a read token cannot write; use a write token",
                {"WWW-Authenticate": f'{_CHALLENGE}, error="insufficient_scope"'},
            )
        raise ApiError(
            401,
            "unauthorized",
            "the bearer token is not valid",
            {"WWW-Authenticate": f'{_CHALLENGE}, error="invalid_token"'},
        )


def _bearer(authorization: str | None) -> bytes | None:
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip().encode("latin-1")


def _matches(token: bytes, tokens: list[bytes]) -> bool:
    found = False
    for candidate in tokens:  # every token compared, no early exit
        found |= hmac.compare_digest(token, candidate)
    return found
