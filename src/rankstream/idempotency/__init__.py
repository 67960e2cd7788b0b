"""Idempotency keys: a request's ``Idempotency-Key`` and the answer it got, so a retry gets
the same answer and counts once.

The seam is :class:`IdempotencyStore`; implementations: :class:`SqliteIdempotencyStore`
(embedded, in the log's own database so an answer commits with its events) and, in
scale-out mode, Redis. One contract suite runs over all of them.
"""

from rankstream.idempotency.protocol import IdempotencyStore
from rankstream.idempotency.sqlite import SqliteIdempotencyStore

__all__ = ["IdempotencyStore", "SqliteIdempotencyStore"]
