"""Serving-side stores: video metadata (embedded SQLite; Redis arrives with scale-out)."""

from rankstream.store.metadata import MetadataStore, VideoMetadata

__all__ = ["MetadataStore", "VideoMetadata"]
