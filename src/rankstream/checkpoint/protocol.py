"""The seam behind which checkpoints are kept."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from rankstream.log.position import LogPosition


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """An engine snapshot (``data``) of log ``partition``, covering its records before
    ``offset`` (the next one to read after restoring it)."""

    partition: int
    offset: int
    data: bytes

    @property
    def position(self) -> LogPosition:
        """Where a reader resumes after restoring this checkpoint."""
        return LogPosition({self.partition: self.offset})


class CheckpointStore(Protocol):
    """Checkpoints by partition, the newest ``keep`` of each kept.

    A save is atomic: a reader sees the whole checkpoint or none of it, also after a crash
    mid-save. A failed save raises (``OSError`` for files, the client's error for object
    stores) and leaves the checkpoints held as they were.
    """

    def save(self, checkpoint: Checkpoint) -> None:
        """Store ``checkpoint`` durably, then drop that partition's older ones beyond
        ``keep``."""
        ...

    def offsets(self, partition: int) -> list[int]:
        """Offsets of ``partition``'s checkpoints held, oldest first."""
        ...

    def newest_first(self, partition: int) -> Iterator[Checkpoint]:
        """``partition``'s checkpoints, newest first, each read only when the caller asks
        for it (a caller stops at the first it can restore)."""
        ...
