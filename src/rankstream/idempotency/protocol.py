"""The seam behind which idempotency keys are kept."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class IdempotencyStore(Protocol):
    """Answers by idempotency key, each kept for the store's retention after it was created.

    Retention: a caller that keeps keys ``ttl`` ms calls :meth:`expire` with ``before = now -
    ttl`` from time to time. A store that cannot expire by itself (SQLite) forgets keys
    created before ``before`` then; a store with its own TTL (Redis, built with the same
    ``ttl``) forgets a key created at ``at`` by itself at ``at + ttl``, and :meth:`expire` has
    nothing to do. Either way a key is kept at least until it is ``ttl`` old, and a key
    created at or after a given ``before`` survives ``expire(before)``.

    Thread-safety: one writer (:meth:`remember`, :meth:`expire`) at a time; lookups may
    run beside it. Failed writes raise :class:`~rankstream.errors.StorageFailure`.
    """

    def answers_for(self, keys: Sequence[str]) -> dict[str, bytes]:
        """The stored answers of any of ``keys`` (keys never stored are absent)."""
        ...

    def remember(self, answers: Sequence[tuple[str, bytes]], at: int) -> None:
        """Store each ``(key, answer)`` as created at ``at`` (epoch ms). A key already
        stored keeps its first answer (also within one call)."""
        ...

    def expire(self, before: int) -> int:
        """Forget keys created before ``before`` (epoch ms), unless the store expires keys
        by itself (see the class docstring); how many went (0 for such a store)."""
        ...
