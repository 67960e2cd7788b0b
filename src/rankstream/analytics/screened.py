"""A Kafka partition as the workers count it: every run of messages screened by an engine.

The topic holds every event the API replicas produced: retried duplicates, events too far
ahead of their arrival time, events over a capacity limit. The workers count only what
their engine accepts, and the analytics store must hold exactly those events. Screening
depends on the engine's state (the ``event_id``s it remembers, the videos and cells it
holds), so the loader keeps the same engine the workers keep: built with the workers'
:class:`~rankstream.engine.EngineConfig`, fed the same runs of equal timestamps
(:meth:`KafkaEventLog.read <rankstream.log.kafka.KafkaEventLog.read>` cuts them by the
rule of :mod:`rankstream.log.messages`, as the workers' consumer does) at the same wall
times, in offset order. The engine is deterministic, so its decisions are the workers'
however either side's reads cut the stream, and :meth:`ScreenedPartition.read` yields of
each run only the events it accepted (with their JSON), at the run's offsets.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import numpy as np

from rankstream.analytics.store import AnalyticsError
from rankstream.engine import ACCEPTED, TopKEngine
from rankstream.engine.wire import Decoder
from rankstream.log import LoggedBatch, LogPosition
from rankstream.log.kafka import KafkaEventLog


class OutOfStep(AnalyticsError):
    """A read asked for a position the partition's engine is not at (a failed read left it
    ahead): rebuild the partition from a checkpoint."""


class ScreenedPartition:
    """Partition ``partition`` of ``log``, screened by ``engine``, which has applied every
    message before offset ``screened``.

    Not thread-safe. Each record is screened once, when :meth:`read` yields it: the engine
    then counts its accepted events, whether or not the caller keeps them. So reads must
    go on from where the engine is (:attr:`screened`); any other start raises
    :class:`OutOfStep`, and after a failure mid-read the owner rebuilds the partition
    (restore a checkpoint, :meth:`replay` to the loaded position).
    """

    def __init__(self, log: KafkaEventLog, partition: int, engine: TopKEngine, screened: int):
        self.log = log
        self.partition = partition
        self.engine = engine
        self.screened = screened
        self.events_screened = 0  # since this object was made: events the engine saw
        self.events_refused = 0  # of them, the ones it refused

    def read(
        self, start: LogPosition, decoder: Decoder, until: int | None = None
    ) -> Iterator[LoggedBatch]:
        """The partition's runs from ``start`` (which must be :attr:`screened`) up to its
        end, or ``until``, each screened as it is yielded: the accepted events only, with
        the run's offsets (a run that accepted nothing is yielded empty, so the position
        moves past it). Raises :class:`OutOfStep` for another start."""
        offset = start.of(self.partition)
        if offset != self.screened:
            raise OutOfStep(
                f"partition {self.partition}: its engine has screened up to offset"
                f" {self.screened}, a read asked to start at {offset}"
            )
        runs = self._runs(decoder, until)
        try:
            yield from self._screen(runs)
        finally:
            close = getattr(runs, "close", None)  # ends the read's consumer now, not when collected
            if close is not None:
                close()

    def _screen(self, runs: Iterator[LoggedBatch]) -> Iterator[LoggedBatch]:
        for record in runs:
            result = self.engine.ingest(record.batch, record.wall_time)
            self.screened = record.next_offset
            self.events_screened += len(record.batch)
            if result.accepted == len(record.batch):
                yield record
                continue
            self.events_refused += len(record.batch) - result.accepted
            keep = np.flatnonzero(result.status == ACCEPTED)
            yield LoggedBatch(
                record.partition,
                record.offset,
                record.next_offset,
                record.wall_time,
                record.batch.take(keep),
                [record.raw[i] for i in keep.tolist()],
            )

    def replay(self, until: int, decoder: Decoder) -> int:
        """Screen the messages from :attr:`screened` up to ``until`` (the position loaded
        before a restart) without yielding them: the engine ends as it was when they were
        loaded. Returns how many of them it accepted."""
        events = 0
        if until > self.screened:
            for record in self.read(LogPosition({self.partition: self.screened}), decoder, until):
                events += len(record.batch)
        return events

    def _runs(self, decoder: Decoder, until: int | None) -> Iterator[LoggedBatch]:
        bound = sys.maxsize if until is None else until
        return self.log.read(
            LogPosition({self.partition: self.screened}),
            decoder,
            until=LogPosition({self.partition: bound}),
        )

    def end(self) -> LogPosition:
        """The topic's end (every partition's high watermark)."""
        return self.log.end()
