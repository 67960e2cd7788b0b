"""Recovery: the newest readable checkpoint, then the log after it, through the engine.

Replay feeds logged groups to :meth:`TopKEngine.replay` in log order with their arrival
times, which never refuses an event: the state it rebuilds is the state the original
commits made, so an acknowledged event is counted exactly once after any crash.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from rankstream.checkpoint import CheckpointStore
from rankstream.engine import EngineConfig, TopKEngine
from rankstream.engine.wire import EventDecoder
from rankstream.errors import SnapshotError
from rankstream.log import EventLog, LogPosition

logger = logging.getLogger("rankstream.recovery")


@dataclass(slots=True)
class RecoveryStats:
    """How a start recovered: the checkpoint's position, what was replayed, how long."""

    restored_from: LogPosition = field(default_factory=LogPosition)
    replayed_batches: int = 0
    replayed_events: int = 0
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Recovered:
    """The rebuilt engine, the log position it has applied up to, and how it got there."""

    engine: TopKEngine
    position: LogPosition
    stats: RecoveryStats


def restore_newest(
    config: EngineConfig, checkpoints: CheckpointStore, partition: int = 0
) -> tuple[TopKEngine, LogPosition]:
    """``partition``'s newest readable checkpoint and the position it covers up to, or an
    empty engine at the log's start. A checkpoint that does not decode, or holds another
    partition's state, is skipped with a warning: the one before it (and a longer replay)
    takes its place."""
    for checkpoint in checkpoints.newest_first(partition):
        try:
            engine = TopKEngine.restore(checkpoint.data, config)
        except SnapshotError as exc:
            logger.warning(
                "skipping unreadable checkpoint of partition %d at offset %d: %s",
                partition,
                checkpoint.offset,
                exc,
            )
            continue
        if engine.partition != partition:
            logger.warning(
                "skipping a checkpoint of partition %d found under partition %d",
                engine.partition,
                partition,
            )
            continue
        return engine, checkpoint.position
    return TopKEngine(config, partition=partition), LogPosition()


def recover(
    config: EngineConfig, log: EventLog, checkpoints: CheckpointStore, partition: int = 0
) -> Recovered:
    """Restore ``partition``'s newest readable checkpoint (:func:`restore_newest`), then
    replay every log record after it."""
    started = time.perf_counter()
    stats = RecoveryStats()
    engine, position = restore_newest(config, checkpoints, partition)
    stats.restored_from = position
    decoder = EventDecoder(config.measure)
    for record in log.read(position, decoder):
        engine.replay(record.batch, record.wall_time)  # logged: never refused
        engine.stats.duplicates += record.duplicates
        engine.stats.rejected_too_new += record.rejected
        engine.stats.rejected_over_capacity += record.over_capacity
        stats.replayed_batches += 1
        stats.replayed_events += len(record.batch)
        position = position.advanced(record.partition, record.next_offset)
    stats.seconds = time.perf_counter() - started
    return Recovered(engine, position, stats)
