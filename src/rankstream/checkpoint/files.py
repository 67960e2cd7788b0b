"""Checkpoints as files in a directory, written atomically.

A checkpoint is ``ckpt-<seq>.bin``: the engine snapshot covering the log through ``seq``.
Writing goes to a temporary file, is synced, renamed into place and the directory synced,
so a crash leaves either the old or the new checkpoint, never a torn one. The newest
``keep`` checkpoints are kept, so a corrupted newest one falls back to the one before.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """An engine snapshot (``data``) covering the log through ``seq``."""

    seq: int
    data: bytes
    path: Path


class FileCheckpointStore:
    """Checkpoints in ``directory``; see the module docstring."""

    def __init__(self, directory: Path, keep: int = 2) -> None:
        self.directory = directory
        self.keep = max(1, keep)
        directory.mkdir(parents=True, exist_ok=True)

    def save(self, seq: int, data: bytes) -> Path:
        """Write a checkpoint durably; older ones beyond ``keep`` are deleted. Raises
        ``OSError`` (disk full...) leaving the checkpoints held as they were."""
        final = self.directory / f"ckpt-{seq:020d}.bin"
        temporary = final.with_suffix(".tmp")
        try:
            with open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, final)
        except OSError:  # e.g. disk full: leave no partial file behind
            temporary.unlink(missing_ok=True)
            raise
        self._sync_directory()
        for old in self._paths()[: -self.keep]:
            old.unlink(missing_ok=True)
        return final

    def seqs(self) -> list[int]:
        """Log positions of the checkpoints held, oldest first."""
        return [int(path.stem.split("-")[1]) for path in self._paths()]

    def newest_first(self) -> list[Checkpoint]:
        """Every checkpoint held, newest first (read lazily by the caller's loop)."""
        return [
            Checkpoint(int(path.stem.split("-")[1]), path.read_bytes(), path)
            for path in reversed(self._paths())
        ]

    def _paths(self) -> list[Path]:
        return sorted(self.directory.glob("ckpt-*.bin"))

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
