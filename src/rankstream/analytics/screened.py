"""A Kafka partition as the workers count it: every run of messages decided by the boards.

The topic holds every event the API replicas produced: retried duplicates, events too far
ahead of their arrival time, events over a capacity limit, events no board takes. The
workers count only what their boards accept (an event fits at least one board and no board
it fits refuses it), and the analytics store must hold exactly those events. The decision
depends on the boards' state (the ``event_id``\\ s they remember, the entities and cells
they hold), so the loader keeps the same :class:`~rankstream.boards.BoardSet` the workers
keep: built with the workers' boards and :class:`~rankstream.engine.EngineConfig`, fed the
same runs of equal timestamps (:meth:`KafkaEventLog.read_runs
<rankstream.log.kafka.KafkaEventLog.read_runs>` cuts them by the rule of
:mod:`rankstream.log.messages`, as the workers' consumer does) through the same decision
(:func:`~rankstream.worker.boards.decide_run`), in offset order. The boards are
deterministic, so their decisions are the workers' however either side's reads cut the
stream, and :meth:`ScreenedPartition.read` yields of each run only the events they
accepted (decoded by the loader's decoder, with their JSON), at the run's offsets.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

from rankstream.analytics.store import AnalyticsError
from rankstream.boards import BoardSet
from rankstream.engine.wire import Decoder
from rankstream.log import LoggedBatch, LogPosition
from rankstream.log.kafka import KafkaEventLog, RawRun
from rankstream.worker.boards import accepted_rows, decide_run


class OutOfStep(AnalyticsError):
    """A read asked for a position the partition's boards are not at (a failed read left
    them ahead): rebuild the partition from a checkpoint."""


class ScreenedPartition:
    """Partition ``partition`` of ``log``, decided by ``boards``, which have applied every
    message before offset ``screened``.

    Not thread-safe. Each run is decided once, when :meth:`read` yields it: the boards
    then count its accepted events, whether or not the caller keeps them. So reads must go
    on from where the boards are (:attr:`screened`); any other start raises
    :class:`OutOfStep`, and after a failure mid-read the owner rebuilds the partition
    (restore a checkpoint, :meth:`replay` to the loaded position).
    """

    def __init__(self, log: KafkaEventLog, partition: int, boards: BoardSet, screened: int):
        self.log = log
        self.partition = partition
        self.boards = boards
        self.screened = screened
        self.events_screened = 0  # since this object was made: events the boards saw
        self.events_refused = 0  # of them, the ones they refused

    def read(
        self, start: LogPosition, decoder: Decoder, until: int | None = None
    ) -> Iterator[LoggedBatch]:
        """The partition's runs from ``start`` (which must be :attr:`screened`) up to its
        end, or ``until``, each decided as it is yielded: the accepted events only, decoded
        by ``decoder`` (an accepted event it cannot decode is left out of the batch), with
        the run's offsets and wall time (a run that accepted nothing is yielded empty, so
        the position moves past it). Raises :class:`OutOfStep` for another start."""
        offset = start.of(self.partition)
        if offset != self.screened:
            raise OutOfStep(
                f"partition {self.partition}: its boards have screened up to offset"
                f" {self.screened}, a read asked to start at {offset}"
            )
        bound = sys.maxsize if until is None else until
        runs = self.log.read_runs(
            LogPosition({self.partition: self.screened}),
            until=LogPosition({self.partition: bound}),
        )
        try:
            for run in runs:
                yield self._decide(run, decoder)
        finally:
            runs.close()  # ends the read's consumer now, not when collected

    def _decide(self, run: RawRun, decoder: Decoder) -> LoggedBatch:
        decided = decide_run(self.boards, run.raws, run.arrival)
        self.screened = run.next_offset
        self.events_screened += len(run.raws)
        rows = accepted_rows(decided)
        self.events_refused += len(run.raws) - len(rows)
        kept = decoder.decode([run.raws[row] for row in rows])
        return LoggedBatch(
            run.partition, run.offset, run.next_offset, decided.wall, kept.batch, kept.raw
        )

    def replay(self, until: int, decoder: Decoder) -> int:
        """Decide the messages from :attr:`screened` up to ``until`` (the position loaded
        before a restart) without yielding them: the boards end as they were when they were
        loaded. Returns how many of them they accepted (and ``decoder`` decodes)."""
        events = 0
        if until > self.screened:
            for record in self.read(LogPosition({self.partition: self.screened}), decoder, until):
                events += len(record.batch)
        return events

    def end(self) -> LogPosition:
        """The topic's end (every partition's high watermark)."""
        return self.log.end()
