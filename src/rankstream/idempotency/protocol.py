"""The seam behind which idempotency keys are kept."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class IdempotencyStore(Protocol):
    """Answers by idempotency key, each kept at least the caller's retention ``ttl``.

    Retention: a caller that keeps keys ``ttl`` ms calls :meth:`expire` with ``before = now -
    ttl`` from time to time. How a store forgets depends on :attr:`expires_by_itself`:

    - ``False`` (SQLite): a key goes only when :meth:`expire` is called with ``before``
      after its creation time ``at`` (the caller's clock).
    - ``True`` (Redis, built with the same ``ttl``): a key goes by itself ``ttl`` after it
      was stored (the store's own clock, so replicas' clocks do not matter), and
      :meth:`expire` has nothing to do; a key created before ``before`` may thus outlive
      ``expire(before)``, by at most the time between its creation and its storing.

    Either way a key is kept at least ``ttl`` after it was stored, and a key created at or
    after ``before`` survives ``expire(before)``.

    Thread-safety: one writer (:meth:`remember`, :meth:`expire`) at a time; lookups may
    run beside it. Failed writes raise :class:`~rankstream.errors.StorageFailure`.
    """

    expires_by_itself: bool
    """Whether keys go by themselves after the store's TTL (above)."""

    def answers_for(self, keys: Sequence[str]) -> dict[str, bytes]:
        """The stored answers of any of ``keys`` (keys never stored are absent)."""
        ...

    def remember(self, answers: Sequence[tuple[str, bytes]], at: int) -> None:
        """Store each ``(key, answer)`` as created at ``at`` (epoch ms). A key already
        stored keeps its first answer (also within one call)."""
        ...

    def expire(self, before: int) -> int:
        """Forget keys created before ``before`` (epoch ms), unless the store expires keys
        by itself (:attr:`expires_by_itself`); how many went (0 for such a store)."""
        ...
