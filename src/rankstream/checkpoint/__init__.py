"""Checkpoints: engine snapshots with the log position they cover, behind one seam
(:class:`CheckpointStore`).

Implementations: :class:`DirectoryCheckpointStore` (embedded) and, in scale-out mode, any
S3-compatible object store. One contract suite runs over all of them.
"""

from rankstream.checkpoint.directory import DirectoryCheckpointStore
from rankstream.checkpoint.protocol import Checkpoint, CheckpointStore

__all__ = ["Checkpoint", "CheckpointStore", "DirectoryCheckpointStore"]
