"""The seam every durable log sits behind (:class:`EventLog`), and what goes through it.

Implementations: :class:`~rankstream.log.sqlite.SqliteEventLog` (embedded) and, in
scale-out mode, :class:`~rankstream.log.kafka.KafkaEventLog` (a topic). One contract suite
(``tests/log/test_contract.py``) runs over all of them; where they differ, it asks the
log's capability attributes, never the implementation's name.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

from rankstream.engine.wire import Decoder
from rankstream.log.position import LogPosition
from rankstream.log.records import DeadLetter, LoggedBatch


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """What one group of requests adds to the log: the events they had accepted (their
    JSON array as ``payload``, or ``None`` when there is nothing to replay), how many the
    engine refused as duplicates, too new or over a capacity limit (so replay restores
    its statistics), and the group's rejected events (dead letters)."""

    wall_time: int
    events: int
    duplicates: int
    rejected: int  # too new
    payload: bytes | None
    letters: list[DeadLetter] = field(default_factory=list)
    over_capacity: int = 0


class EventLog(Protocol):
    """A durable, append-only log of accepted events, read back in order from a
    :class:`~rankstream.log.position.LogPosition`.

    What every log guarantees: an append that returned is durable when its
    :meth:`transaction` block ends; :meth:`read` yields each logged event once, with the
    wall time of its record, in append order within its partition (all events of one
    entity share a partition); batches never mix partitions or wall times; a failed write
    raises :class:`~rankstream.errors.StorageFull` or
    :class:`~rankstream.errors.StorageFailure`, and a later one may succeed.

    Where logs differ, by capability:

    - :attr:`atomic` (SQLite: yes; Kafka: no). Atomic: everything appended in a block, and
      every write to a store sharing the log's storage (the SQLite idempotency store),
      becomes durable together when the block ends, or not at all; a failed block leaves
      nothing. Not atomic: each append is acknowledged when it returns and stays even if
      the block raises afterwards (a broker cannot take a message back), an append that
      raises may have kept some of its events, and nothing commits with other stores.
    - :attr:`keeps_refusals` (SQLite: yes; Kafka: no). Yes: :meth:`read` yields one batch
      per appended record, with its refusal counts (duplicates, too new, over capacity),
      and :meth:`dead_letters` returns the records' dead letters. No: only accepted
      events are kept (one message each, spread over partitions), read back as runs of
      equal wall time per partition with zero counts (the consumers decide duplicates
      themselves), and no dead letters are kept (API replicas keep them in memory).
    """

    atomic: bool
    """Whether a :meth:`transaction` block commits all of its writes or none (above)."""

    keeps_refusals: bool
    """Whether records keep their refusal counts and dead letters (above)."""

    def transaction(self) -> AbstractContextManager[None]:
        """A block whose writes commit together (see the class docstring)."""
        ...

    def append(self, record: GroupRecord) -> LogPosition | None:
        """Add ``record`` (inside :meth:`transaction`); the position just after it (reading
        from it yields no event of this record or an earlier append, and every event
        appended later), or ``None`` if it holds nothing to replay (only dead letters)."""
        ...

    def read(self, start: LogPosition, decoder: Decoder) -> Iterator[LoggedBatch]:
        """Every record at or after ``start`` (up to the end when called), in log order per
        partition, its events decoded by ``decoder``."""
        ...

    def end(self) -> LogPosition:
        """The position after the newest record (where the next append goes)."""
        ...

    def reclaim(self, before: LogPosition) -> None:
        """Let records before ``before`` go (a checkpoint covers them). May keep them
        longer (a broker's own retention); never drops a record at or after ``before``."""
        ...

    def dead_letters(self) -> tuple[list[DeadLetter], dict[str, int]]:
        """The kept dead letters (oldest first) and the rejection totals by field."""
        ...

    def probe(self, at: int) -> None:
        """Write something tiny, to learn whether the log takes writes again (after a full
        disk); raises as a failed :meth:`transaction` would."""
        ...

    def size_bytes(self) -> int:
        """Bytes the log holds in its storage (0 if the storage does not say)."""
        ...

    def close(self) -> None:
        """Release the log's resources. Idempotent."""
        ...
