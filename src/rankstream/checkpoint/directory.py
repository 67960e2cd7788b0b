"""Checkpoints as files in a directory, written atomically.

Partition ``p``'s checkpoint covering its records before offset ``o`` is
``p<p>/ckpt-<o>.bin``. Writing goes to a temporary file, is synced, renamed into place and
the directory synced, so a crash leaves either the old or the new checkpoint, never a torn
one. The newest ``keep`` checkpoints of each partition are kept, so a corrupted newest one
falls back to the one before.

Earlier releases wrote ``ckpt-<seq>.bin`` at the top level, covering the embedded log
through record ``seq``; those are read as partition 0 at offset ``seq + 1`` and removed
once ``keep`` newer ones exist.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from rankstream.checkpoint.protocol import Checkpoint


class DirectoryCheckpointStore:
    """Checkpoints in ``directory``; see the module docstring."""

    def __init__(self, directory: Path, keep: int = 2) -> None:
        self.directory = directory
        self.keep = max(1, keep)
        directory.mkdir(parents=True, exist_ok=True)

    def save(self, checkpoint: Checkpoint) -> None:
        """See :meth:`CheckpointStore.save`; raises ``OSError`` (disk full...)."""
        folder = self.directory / f"p{checkpoint.partition}"
        folder.mkdir(exist_ok=True)
        final = folder / f"ckpt-{checkpoint.offset:020d}.bin"
        temporary = final.with_suffix(".tmp")
        try:
            with open(temporary, "wb") as handle:
                handle.write(checkpoint.data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, final)
        except OSError:  # e.g. disk full: leave no partial file behind
            temporary.unlink(missing_ok=True)
            raise
        _sync_directory(folder)
        for _, old in self._held(checkpoint.partition)[: -self.keep]:
            old.unlink(missing_ok=True)

    def offsets(self, partition: int) -> list[int]:
        """See :meth:`CheckpointStore.offsets`."""
        return [offset for offset, _ in self._held(partition)]

    def newest_first(self, partition: int) -> Iterator[Checkpoint]:
        """See :meth:`CheckpointStore.newest_first`."""
        for offset, path in reversed(self._held(partition)):
            try:
                data = path.read_bytes()
            except FileNotFoundError:  # dropped by a concurrent save
                continue
            yield Checkpoint(partition, offset, data)

    def _held(self, partition: int) -> list[tuple[int, Path]]:
        held = [
            (int(path.stem.split("-")[1]), path)
            for path in (self.directory / f"p{partition}").glob("ckpt-*.bin")
        ]
        if partition == 0:  # an earlier release's layout: through seq = before seq + 1
            held += [
                (int(path.stem.split("-")[1]) + 1, path)
                for path in self.directory.glob("ckpt-*.bin")
            ]
        return sorted(held)


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
