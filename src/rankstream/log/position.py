"""Where a reader of a partitioned log is: the next offset to read in each partition.

One type for every log: the embedded SQLite log is one partition (0) whose offsets are its
record numbers; a Kafka topic has one entry per partition, its offsets Kafka's own. A
position is the *next* offset to read (Kafka's committed-offset convention), so the empty
position reads a log from its start and a checkpoint taken at position ``p`` covers every
record before ``p``.
"""

from __future__ import annotations

import msgspec


class LogPosition(msgspec.Struct, frozen=True):
    """For each partition, the offset of the next record to read (absent partitions: 0).

    Immutable: :meth:`advanced` returns a new position.
    """

    offsets: dict[int, int] = msgspec.field(default_factory=dict)

    def of(self, partition: int) -> int:
        """The next offset to read in ``partition`` (0 if this position never read it)."""
        return self.offsets.get(partition, 0)

    def advanced(self, partition: int, next_offset: int) -> LogPosition:
        """This position with ``partition`` moved to ``next_offset``."""
        return LogPosition({**self.offsets, partition: next_offset})

    def __str__(self) -> str:
        return ",".join(f"{p}:{o}" for p, o in sorted(self.offsets.items())) or "start"
