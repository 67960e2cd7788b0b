"""Checkpoints: engine snapshots with the log position they cover, behind one seam
(:class:`CheckpointStore`).

Implementations: :class:`DirectoryCheckpointStore` (embedded) and, in scale-out mode, any
S3-compatible object store. One contract suite runs over all of them.
"""

from rankstream.checkpoint.directory import DirectoryCheckpointStore
from rankstream.checkpoint.protocol import Checkpoint, CheckpointStore


def open_checkpoints(where: str, s3_endpoint: str = "") -> CheckpointStore:
    """The store ``where`` names: ``s3://BUCKET/PREFIX`` (any S3-compatible endpoint), or a
    directory."""
    if where.startswith("s3://"):
        from rankstream.checkpoint.s3 import S3CheckpointStore  # boto3 only when used

        return S3CheckpointStore.from_url(where, s3_endpoint or None)
    from pathlib import Path

    return DirectoryCheckpointStore(Path(where))


__all__ = ["Checkpoint", "CheckpointStore", "DirectoryCheckpointStore", "open_checkpoints"]
