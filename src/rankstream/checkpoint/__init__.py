"""Checkpoints: engine snapshots with the log position they cover."""

from rankstream.checkpoint.files import Checkpoint, FileCheckpointStore

__all__ = ["Checkpoint", "FileCheckpointStore"]
