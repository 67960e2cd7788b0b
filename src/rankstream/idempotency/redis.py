"""Idempotency keys in Redis, shared by every API replica.

One string per key, ``rs:idem:<key>`` holding the answer, written with ``SET NX PX
ttl_ms``: the first answer stays, and Redis forgets the key ``ttl_ms`` after storing it, by
Redis's own clock (so :meth:`RedisIdempotencyStore.expire` has nothing to do, and replicas
whose clocks disagree, or run on a test's fixed clock, still keep a key its full TTL). Keys
spread over a Redis Cluster's slots by their own hash.

Not atomic with the Kafka log: an answer is stored after its events were acknowledged, so
a crash between the two leaves events without their key; the events' derived ``event_id``
then makes a retry count once (see :mod:`rankstream.serving.kafka`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rankstream.errors import StorageFailure

PREFIX = "rs:idem:"


class RedisIdempotencyStore:
    """Keys in Redis through ``client`` (redis-py, standalone or cluster, returning bytes),
    kept ``ttl_ms`` after they were stored."""

    expires_by_itself = True  # see IdempotencyStore

    def __init__(self, client: Any, ttl_ms: int) -> None:
        if ttl_ms <= 0:
            raise ValueError(f"ttl_ms must be positive, not {ttl_ms}")
        self.client = client
        self.ttl_ms = ttl_ms

    def answers_for(self, keys: Sequence[str]) -> dict[str, bytes]:
        """See :meth:`IdempotencyStore.answers_for`; raises :class:`StorageFailure` if
        Redis cannot be read."""
        if not keys:
            return {}
        try:
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.get(PREFIX + key)
            values = pipe.execute()
        except Exception as exc:  # redis-py raises its own RedisError family
            raise StorageFailure(f"cannot read idempotency keys from Redis: {exc}") from exc
        return {key: bytes(v) for key, v in zip(keys, values, strict=True) if v is not None}

    def remember(self, answers: Sequence[tuple[str, bytes]], at: int) -> None:
        """See :meth:`IdempotencyStore.remember`; ``at`` is not needed: each key expires
        ``ttl_ms`` after Redis stored it."""
        try:
            pipe = self.client.pipeline(transaction=False)
            for key, answer in answers:
                pipe.set(PREFIX + key, answer, nx=True, px=self.ttl_ms)
            pipe.execute()
        except Exception as exc:
            raise StorageFailure(f"cannot store idempotency keys in Redis: {exc}") from exc

    def expire(self, before: int) -> int:
        """Nothing to do: Redis forgets each key ``ttl_ms`` after storing it."""
        return 0
