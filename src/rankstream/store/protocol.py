"""The seam behind which video metadata is kept."""

from __future__ import annotations

from typing import Protocol

from rankstream.store.metadata import VideoMetadata


class MetadataStore(Protocol):
    """Metadata by video id, joined into ranked items. Thread-safe.

    ``version`` changes whenever metadata this store serves changes, so a cached answer
    knows to join again.
    """

    @property
    def version(self) -> int:
        """Bumped by every change (a write here, or one seen from elsewhere)."""
        ...

    def put(self, video_id: str, metadata: VideoMetadata) -> None:
        """Create or replace a video's metadata (durable when this returns). Raises
        :class:`~rankstream.errors.StorageFull` or :class:`StorageFailure` if it cannot be
        written."""
        ...

    def get(self, video_id: str) -> VideoMetadata | None:
        """A video's metadata, or ``None``."""
        ...

    def __len__(self) -> int:
        """How many videos have metadata."""
        ...

    def close(self) -> None:
        """Release the store's resources."""
        ...
