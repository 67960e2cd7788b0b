"""Embedded video metadata: its own SQLite file, cached in memory, so joining metadata into
a top-1000 answer costs dictionary lookups, not queries.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import msgspec

from rankstream._sqlite import storage_error
from rankstream.store.metadata import VideoMetadata


class SqliteMetadataStore:
    """Metadata by video id: SQLite on disk, a dict in memory. Thread-safe."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS videos (video_id TEXT PRIMARY KEY, doc BLOB NOT NULL)"
        )
        self._lock = threading.Lock()
        self.version = 0  # bumped by every put, so cached answers know to re-join
        decoder = msgspec.json.Decoder(VideoMetadata)
        self._cache: dict[str, VideoMetadata] = {
            video_id: decoder.decode(doc)
            for video_id, doc in self._db.execute("SELECT video_id, doc FROM videos")
        }

    def put(self, video_id: str, metadata: VideoMetadata) -> None:
        """Create or replace a video's metadata (durable when this returns). Raises
        :class:`StorageFull` or :class:`StorageFailure` if it cannot be written (the cached
        metadata is then unchanged)."""
        doc = msgspec.json.encode(metadata)
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO videos (video_id, doc) VALUES (?, ?)"
                    " ON CONFLICT(video_id) DO UPDATE SET doc = excluded.doc",
                    (video_id, doc),
                )
            except sqlite3.Error as exc:
                raise storage_error(exc, "video metadata") from exc
            self._cache[video_id] = metadata
            self.version += 1

    def get(self, video_id: str) -> VideoMetadata | None:
        """A video's metadata, or ``None``."""
        return self._cache.get(video_id)

    def __len__(self) -> int:
        return len(self._cache)

    def close(self) -> None:
        """Close the database."""
        self._db.close()
