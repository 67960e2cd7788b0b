"""One log partition inside a worker: its boards, its offsets, and what it last published.

Events are applied in runs of equal Kafka timestamps, each run decided by the partition's
:class:`~rankstream.boards.BoardSet` at its timestamp (the time the producer took the
events, e.g. the API replica's arrival time): an event is counted iff it fits at least one
board and no board it fits refuses it (:func:`~rankstream.worker.boards.decide_run`). The
wall time of every event is thus in the log itself, so replaying a partition from a
checkpoint repeats every decision (too new, duplicate, over a limit) exactly, however the
consumer's fetches happen to cut the stream (the rule: :mod:`rankstream.log.messages`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rankstream.boards import BoardSet
from rankstream.log.messages import NO_TIMESTAMP, arrival_time
from rankstream.worker.boards import DecidedRun, decide_run
from rankstream.worker.publisher import PartitionPublisher, Scope
from rankstream.worker.questions import QuestionPublisher
from rankstream.worker.repartition import source_of

Forward = Callable[[int, DecidedRun, list[int]], None]
"""Takes a decided run of a partition and its messages' offsets (repartitioning)."""

logger = logging.getLogger("rankstream.worker")


@dataclass(slots=True)
class BoardPublishers:
    """What one partition publishes of one board: rankings, and rising lists and leaders
    (``questions``; ``None`` when not published)."""

    rankings: PartitionPublisher
    questions: QuestionPublisher | None = None

    def forget(self) -> None:
        self.rankings.forget()
        if self.questions is not None:
            self.questions.forget()


@dataclass(slots=True)
class PartitionState:
    """A partition's boards, applied up to (before) ``next_offset``; ``checkpointed``: the
    offset the newest checkpoint covers up to; ``end``: the partition's end offset as last
    seen; ``touched``: per board, the scopes changed since the last publish (``None``:
    publish all). ``forward``: called with each decided run (upstream of repartition
    topics); ``sources``: on a repartition topic, the highest source offset applied per
    source partition (a message at or below it is skipped: :mod:`.repartition`)."""

    partition: int
    boards: BoardSet
    publishers: dict[str, BoardPublishers]
    next_offset: int = 0
    checkpointed: int = 0
    end: int = 0
    touched: dict[str, set[Scope]] | None = None
    events_since_checkpoint: int = 0
    invalid: int = 0
    applied_events: int = 0
    forward: Forward | None = field(default=None, repr=False)
    sources: dict[int, int] | None = None
    replayed_copies: int = 0

    def apply(self, messages: Sequence[Any]) -> None:
        """Apply consumed messages of this partition, in offset order. Messages before
        ``next_offset`` (seen again after a seek) are skipped; a value that fits no board
        is counted in ``invalid`` and skipped, like any other refused event."""
        run: list[bytes] = []
        offsets: list[int] = []
        run_time = NO_TIMESTAMP
        for message in messages:
            offset = message.offset()
            if offset < self.next_offset:
                continue
            self.next_offset = offset + 1
            if self.sources is not None and self._seen(message):
                continue
            stamp = arrival_time(message)
            if run and stamp != run_time:
                self._apply_run(run, run_time, offsets)
                run, offsets = [], []
            run.append(message.value() or b"")
            offsets.append(offset)
            run_time = stamp
        if run:
            self._apply_run(run, run_time, offsets)

    def _seen(self, message: Any) -> bool:
        """Whether a repartitioned message's source offset was applied already (a copy
        re-produced by a replayed source partition); else it becomes the high-water mark."""
        assert self.sources is not None
        source = source_of(message)
        if source is None:
            return False
        partition, offset = source
        if offset <= self.sources.get(partition, -1):
            self.replayed_copies += 1
            return True
        self.sources[partition] = offset
        return False

    def _apply_run(self, raws: list[bytes], arrival: int, offsets: list[int]) -> None:
        run = decide_run(self.boards, raws, arrival)
        if self.forward is not None:
            self.forward(self.partition, run, offsets)
        unfit = run.routed.unfit
        if unfit:
            self.invalid += len(unfit)
            first = unfit[min(unfit)]
            logger.warning(
                "partition %d: %d invalid events skipped (first: %s)",
                self.partition,
                len(unfit),
                first[1],
            )
        valid = len(raws) - len(unfit)
        if not valid:
            return
        self.applied_events += run.decided.accepted
        self.events_since_checkpoint += valid
        if self.touched is not None:
            for board in self.publishers:
                self.touched.setdefault(board, set()).update(run.touched(board))
