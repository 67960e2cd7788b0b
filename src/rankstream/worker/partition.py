"""One log partition inside a worker: its engine, its offsets, and what it last published.

Events are applied in runs of equal Kafka timestamps, each run screened at its timestamp
(the time the producer took the events, e.g. the API replica's arrival time). The wall time
of every event is thus in the log itself, so replaying a partition from a checkpoint
repeats every decision (too new, duplicate, over a limit) exactly, however the consumer's
fetches happen to cut the stream (the rule: :mod:`rankstream.log.messages`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rankstream.engine import TopKEngine
from rankstream.engine.wire import EventDecoder
from rankstream.log.messages import NO_TIMESTAMP, arrival_time, screening_time
from rankstream.worker.publisher import PartitionPublisher, Scope, scopes_of

logger = logging.getLogger("rankstream.worker")


@dataclass(slots=True)
class PartitionState:
    """A partition's engine, applied up to (before) ``next_offset``; ``checkpointed``: the
    offset the newest checkpoint covers up to; ``end``: the partition's end offset as last
    seen; ``touched``: scopes changed since the last publish (``None``: publish all)."""

    partition: int
    engine: TopKEngine
    publisher: PartitionPublisher
    next_offset: int = 0
    checkpointed: int = 0
    end: int = 0
    touched: set[Scope] | None = None
    events_since_checkpoint: int = 0
    invalid: int = 0
    applied_events: int = 0

    def apply(self, messages: Sequence[Any], decoder: EventDecoder) -> None:
        """Apply consumed messages of this partition, in offset order. Messages before
        ``next_offset`` (seen again after a seek) are skipped; a value that is not a valid
        event is counted in ``invalid`` and skipped, like any other."""
        run: list[bytes] = []
        run_time = NO_TIMESTAMP
        for message in messages:
            offset = message.offset()
            if offset < self.next_offset:
                continue
            stamp = arrival_time(message)
            if run and stamp != run_time:
                self._apply_run(run, run_time, decoder)
                run = []
            run.append(message.value() or b"")
            run_time = stamp
            self.next_offset = offset + 1
        if run:
            self._apply_run(run, run_time, decoder)

    def _apply_run(self, raws: list[bytes], wall: int, decoder: EventDecoder) -> None:
        decoded = decoder.decode(raws)
        if decoded.errors:
            self.invalid += len(decoded.errors)
            logger.warning(
                "partition %d: %d invalid events skipped (first: %s)",
                self.partition,
                len(decoded.errors),
                decoded.errors[0][2],
            )
        batch = decoded.batch
        if not len(batch):
            return
        result = self.engine.ingest(batch, screening_time(wall, batch))
        self.applied_events += result.accepted
        self.events_since_checkpoint += len(batch)
        categories = batch.categories or [None] * len(batch)
        regions = batch.regions or [None] * len(batch)
        changed = scopes_of(categories, regions)
        if self.touched is not None:
            self.touched |= changed
