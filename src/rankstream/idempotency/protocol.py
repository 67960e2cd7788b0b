"""The seam behind which idempotency keys are kept."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class IdempotencyStore(Protocol):
    """Answers by idempotency key, kept at least until :meth:`expire` removes them.

    Thread-safety: one writer (:meth:`remember`, :meth:`expire`) at a time; lookups may
    run beside it. Failed writes raise :class:`~rankstream.errors.StorageFailure`.
    """

    def answers_for(self, keys: Sequence[str]) -> dict[str, bytes]:
        """The stored answers of any of ``keys`` (keys never stored are absent)."""
        ...

    def remember(self, answers: Sequence[tuple[str, bytes]], at: int) -> None:
        """Store each ``(key, answer)`` as created at ``at`` (epoch ms). A key already
        stored keeps its first answer."""
        ...

    def expire(self, before: int) -> int:
        """Forget keys created before ``before`` (epoch ms); how many went (or an estimate
        where the storage expires keys by itself)."""
        ...
