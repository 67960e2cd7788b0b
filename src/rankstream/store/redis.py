"""Video metadata in Redis hashes, shared by every API replica.

``rs:meta:<video_id>`` is a hash with one field, ``doc``: the metadata's JSON (so it is
replaced whole, never half-written). A counter ``rs:meta:version`` is bumped by every put;
a replica keeps what it read in memory and drops that copy when it sees the counter move
(checked at most every ``refresh`` seconds), so a top-k answer joins metadata from memory.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import msgspec

from rankstream.errors import StorageFailure
from rankstream.store.metadata import VideoMetadata

PREFIX = "rs:meta:"
VERSION_KEY = "rs:meta:version"
_MISSING = object()


class RedisMetadataStore:
    """Metadata through ``client`` (redis-py, standalone or cluster); see the module
    docstring."""

    def __init__(self, client: Any, refresh: float = 1.0) -> None:
        self.client = client
        self.refresh = refresh
        self._decoder = msgspec.json.Decoder(VideoMetadata)
        self._cache: dict[str, VideoMetadata | None] = {}
        self._seen_version = -1
        self._checked = 0.0
        self._local = 0  # bumped by our own puts, so our cached answers re-join at once
        self._lock = threading.Lock()

    @property
    def version(self) -> int:
        """See :class:`MetadataStore`: moves with any replica's put."""
        self._check_version()
        return self._seen_version * 1_000_003 + self._local

    def put(self, video_id: str, metadata: VideoMetadata) -> None:
        """See :class:`MetadataStore`."""
        doc = msgspec.json.encode(metadata)
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.hset(PREFIX + video_id, "doc", doc)
            pipe.incr(VERSION_KEY)
            pipe.execute()
        except Exception as exc:
            raise StorageFailure(f"cannot write video metadata to Redis: {exc}") from exc
        with self._lock:
            self._cache[video_id] = metadata
            self._local += 1

    def get(self, video_id: str) -> VideoMetadata | None:
        """See :class:`MetadataStore`; ``None`` too if Redis cannot be read (a ranking is
        still served, without titles)."""
        self._check_version()
        cached = self._cache.get(video_id, _MISSING)
        if cached is not _MISSING:
            return cached  # type: ignore[return-value]
        try:
            doc = self.client.hget(PREFIX + video_id, "doc")
        except Exception:
            return None
        found = None if doc is None else self._decoder.decode(doc)
        with self._lock:
            if len(self._cache) > 1_000_000:
                self._cache.clear()
            self._cache[video_id] = found
        return found

    def __len__(self) -> int:
        """Videos with metadata (counted by a scan: for ``/status``, not hot paths)."""
        try:
            return sum(1 for _ in self.client.scan_iter(match=PREFIX + "*", count=1000)) - (
                1 if self.client.exists(VERSION_KEY) else 0
            )
        except Exception:
            return 0

    def close(self) -> None:
        """Nothing to release (the client is the caller's)."""

    def _check_version(self) -> None:
        now = time.monotonic()
        if now - self._checked < self.refresh:
            return
        self._checked = now
        try:
            version = int(self.client.get(VERSION_KEY) or 0)
        except Exception:
            return
        if version != self._seen_version:
            with self._lock:
                self._cache.clear()
                self._seen_version = version
