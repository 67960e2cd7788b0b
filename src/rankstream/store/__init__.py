"""Video metadata behind one seam (:class:`MetadataStore`).

Implementations: :class:`SqliteMetadataStore` (embedded); Redis hashes in scale-out mode.
"""

from rankstream.store.metadata import VideoMetadata
from rankstream.store.protocol import MetadataStore
from rankstream.store.sqlite import SqliteMetadataStore

__all__ = ["MetadataStore", "SqliteMetadataStore", "VideoMetadata"]
