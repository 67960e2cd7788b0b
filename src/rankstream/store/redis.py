"""Video metadata in Redis hashes, shared by every API replica.

``rs:meta:<video_id>`` is a hash with one field, ``doc``: the metadata's JSON (so it is
replaced whole, never half-written). A counter ``rs:meta-version`` (outside that prefix, so
no video id can name it) is bumped by every put; a replica keeps what it read in memory and
drops that copy when it sees the counter move (checked at most every ``refresh`` seconds), so
a top-k answer joins metadata from memory, and another replica's put is seen within
``refresh`` seconds.

A put writes the document, then bumps the counter (a Redis Cluster keeps them in different
slots, so they are not one transaction): if the bump fails the put raises, though the
document may be stored; other replicas then see it after the next bump.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import msgspec

from rankstream.errors import StorageFailure
from rankstream.store.metadata import VideoMetadata

PREFIX = "rs:meta:"
VERSION_KEY = "rs:meta-version"
_MISSING = object()
_MAX_CACHED = 1_000_000


class RedisMetadataStore:
    """Metadata through ``client`` (redis-py, standalone or cluster, returning bytes); see
    the module docstring. Thread-safe."""

    def __init__(self, client: Any, refresh: float = 1.0) -> None:
        self.client = client
        self.refresh = refresh
        self._decoder = msgspec.json.Decoder(VideoMetadata)
        self._cache: dict[str, VideoMetadata | None] = {}
        self._generation = 0  # bumped whenever the cache is dropped
        self._version = 0  # what :attr:`version` answers: only ever grows
        self._seen_counter: int | None = None  # rs:meta-version when last checked
        self._checked: float | None = None  # time.monotonic() of that check
        self._lock = threading.Lock()

    @property
    def version(self) -> int:
        """See :class:`MetadataStore`: moves with this store's puts at once, and with any
        other replica's within ``refresh`` seconds."""
        self._check_version()
        return self._version

    def put(self, video_id: str, metadata: VideoMetadata) -> None:
        """See :class:`MetadataStore`; raises :class:`StorageFailure` if Redis cannot be
        written."""
        doc = msgspec.json.encode(metadata)
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.hset(PREFIX + video_id, "doc", doc)
            pipe.incr(VERSION_KEY)
            pipe.execute()
        except Exception as exc:  # redis-py raises its own RedisError family
            raise StorageFailure(f"cannot write video metadata to Redis: {exc}") from exc
        with self._lock:
            self._cache[video_id] = metadata
            self._version += 1

    def get(self, video_id: str) -> VideoMetadata | None:
        """See :class:`MetadataStore`; ``None`` too if Redis cannot be read (a ranking is
        still served, without titles)."""
        self._check_version()
        cached = self._cache.get(video_id, _MISSING)
        if cached is not _MISSING:
            return cached  # type: ignore[return-value]
        generation = self._generation
        try:
            doc = self.client.hget(PREFIX + video_id, "doc")
        except Exception:
            return None
        found = None if doc is None else self._decoder.decode(doc)
        with self._lock:
            # Dropped meanwhile: what we read may predate the change that dropped it, and
            # caching it now would keep it until the next change.
            if generation == self._generation and video_id not in self._cache:
                if len(self._cache) >= _MAX_CACHED:
                    self._drop_cache()
                self._cache[video_id] = found
        return found

    def __len__(self) -> int:
        """Videos with metadata (counted by a scan of every master: for ``/status``, not
        hot paths); 0 if Redis cannot be read."""
        try:
            return sum(1 for _ in self.client.scan_iter(match=PREFIX + "*", count=1000))
        except Exception:
            return 0

    def close(self) -> None:
        """Nothing to release (the client is the caller's)."""

    def _check_version(self) -> None:
        now = time.monotonic()
        if self._checked is not None and now - self._checked < self.refresh:
            return
        self._checked = now
        try:
            counter = int(self.client.get(VERSION_KEY) or 0)
        except Exception:
            return
        with self._lock:
            if counter != self._seen_counter:
                if self._seen_counter is not None:
                    self._drop_cache()
                    self._version += 1
                self._seen_counter = counter

    def _drop_cache(self) -> None:  # under self._lock
        self._cache.clear()
        self._generation += 1
