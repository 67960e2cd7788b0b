"""Recovery: the newest readable checkpoint, then the log after it, through the boards.

Replay feeds logged groups to :meth:`BoardSet.replay <rankstream.boards.BoardSet.replay>`
(each board's :meth:`TopKEngine.replay`) in log order with their arrival
times, which never refuses an event: the state it rebuilds is the state the original
commits made, so an acknowledged event is counted exactly once after any crash.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from rankstream.boards import VIDEOS, BoardSet, BoardSpec
from rankstream.boards.board_set import BoardStats
from rankstream.checkpoint import CheckpointStore
from rankstream.engine import EngineConfig, TopKEngine
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
    """The rebuilt boards, the log position they have applied up to, and how."""

    boards: BoardSet
    position: LogPosition
    stats: RecoveryStats


def restore_boards(
    boards: Sequence[BoardSpec],
    config: EngineConfig,
    checkpoints: CheckpointStore,
    partition: int = 0,
) -> tuple[BoardSet, LogPosition]:
    """For the declared ``boards``: ``partition``'s newest readable checkpoint and the
    position it covers up to, or empty boards at the log's start. A checkpoint that does not
    decode, or holds another partition's state, is skipped with a warning: the one before
    it (and a longer replay) takes its place. A board declared since the checkpoint starts
    empty (it counts from the position on); one no longer declared is dropped. A checkpoint
    of a single engine (written before boards) is read as the ``videos`` board's when that
    board is declared as it was then."""
    for checkpoint in checkpoints.newest_first(partition):
        try:
            restored = _read_boards(checkpoint.data, boards, config)
        except SnapshotError as exc:
            logger.warning(
                "skipping unreadable checkpoint of partition %d at offset %d: %s",
                partition,
                checkpoint.offset,
                exc,
            )
            continue
        if restored.partition != partition:
            logger.warning(
                "skipping a checkpoint of partition %d found under partition %d",
                restored.partition,
                partition,
            )
            continue
        return restored, checkpoint.position
    return BoardSet(boards, config, partition=partition), LogPosition()


def _read_boards(data: bytes, boards: Sequence[BoardSpec], config: EngineConfig) -> BoardSet:
    try:
        return BoardSet.restore(data, boards, config)
    except SnapshotError:
        if not any(
            b.engine_measure == VIDEOS.engine_measure and b.name == VIDEOS.name for b in boards
        ):
            raise
    set_up = BoardSet(boards, config)  # the engine settings of the videos board
    engine = TopKEngine.restore(data, set_up.configs[VIDEOS.name])  # SnapshotError if not
    stats = BoardStats(
        engine.stats.accepted,
        engine.stats.duplicates,
        engine.stats.rejected_too_new,
        engine.stats.rejected_over_capacity,
    )
    return BoardSet(boards, config, {VIDEOS.name: engine}, engine.partition, stats)


def recover(
    boards: Sequence[BoardSpec],
    config: EngineConfig,
    log: EventLog,
    checkpoints: CheckpointStore,
    partition: int = 0,
) -> Recovered:
    """Restore ``partition``'s newest readable checkpoint (:func:`restore_boards`), then
    replay every log record after it."""
    started = time.perf_counter()
    stats = RecoveryStats()
    restored, position = restore_boards(boards, config, checkpoints, partition)
    stats.restored_from = position
    for record in log.read(position, restored.log_decoder):
        restored.replay(record.raw, record.wall_time, record.batch)  # logged: never refused
        restored.stats.duplicates += record.duplicates
        restored.stats.rejected_too_new += record.rejected
        restored.stats.rejected_over_capacity += record.over_capacity
        stats.replayed_batches += 1
        stats.replayed_events += len(record.raw)
        position = position.advanced(record.partition, record.next_offset)
    stats.seconds = time.perf_counter() - started
    return Recovered(restored, position, stats)
