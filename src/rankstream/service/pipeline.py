"""The embedded durable ingest pipeline: recovery, the writer thread and checkpoints around
one engine.

- :mod:`.recovery` rebuilds the engine from the newest readable checkpoint and the log after
  it, so an acknowledged event is counted exactly once after any crash;
- :mod:`.writer` turns groups of requests into one durable log transaction each, applies
  them, and only then answers (``202``);
- :mod:`.checkpointer` saves the engine in the background and lets the log drop what the
  checkpoints cover, down to the retention floor;
- :mod:`.live` holds the engine, the lock between the writer and queries, and the answers
  computed for the published state.

Every backend comes in through the constructor (a log, an idempotency store, a checkpoint
store; see :mod:`rankstream.backends`), as do the retention floor and change listeners.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from rankstream.boards import BoardSet, BoardSpec, Leaders, Rising
from rankstream.checkpoint import CheckpointStore
from rankstream.engine import EngineConfig, TopKResult
from rankstream.idempotency import IdempotencyStore
from rankstream.log import EventLog, LogPosition
from rankstream.service.checkpointer import Checkpointer, RetentionFloor
from rankstream.service.deadletters import DeadLetters
from rankstream.service.live import LiveEngine
from rankstream.service.recovery import RecoveryStats, recover
from rankstream.service.writer import (
    AnswerEncoder,
    AppliedGroup,
    Listener,
    Submission,
    Writer,
    WriterSettings,
    WriterStats,
)

__all__ = [
    "AnswerEncoder",
    "AppliedGroup",
    "IngestPipeline",
    "Listener",
    "PipelineSettings",
    "Submission",
    "wall_clock_ms",
]

PipelineSettings = WriterSettings


def wall_clock_ms() -> int:
    """The system wall clock in epoch milliseconds (read only at the service edge)."""
    return time.time_ns() // 1_000_000


class IngestPipeline:
    """Engine + durable log + checkpoints behind one writer thread. See the module docstring.

    ``submit`` may be called from any thread; ``top_k`` and ``status`` too (they take the
    engine lock briefly). ``start`` recovers, then starts the writer; ``close`` drains the
    queue, takes a final checkpoint and closes the log.
    """

    def __init__(
        self,
        boards: Sequence[BoardSpec],
        engine_config: EngineConfig,
        log: EventLog,
        keys: IdempotencyStore,
        checkpoints: CheckpointStore,
        encode_answer: AnswerEncoder,
        settings: WriterSettings | None = None,
        clock: Callable[[], int] = wall_clock_ms,
        dead_letters: DeadLetters | None = None,
        retention_floor: RetentionFloor | None = None,
        listeners: Sequence[Listener] = (),
    ) -> None:
        self._specs = tuple(boards)
        self.engine_config = engine_config
        self.log = log
        self.clock = clock
        self.dead_letters = dead_letters or DeadLetters()
        self.live = LiveEngine(BoardSet(boards, engine_config), LogPosition())
        self.recovery = RecoveryStats()
        self.checkpointer = Checkpointer(self.live, checkpoints, log, clock, retention_floor)
        self.writer = Writer(
            self.live,
            log,
            keys,
            self.checkpointer,
            engine_config,
            encode_answer,
            settings or WriterSettings(),
            clock,
            self.dead_letters,
            listeners,
        )

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Recover the engine from checkpoint and log, then start the writer thread."""
        self.recover()
        self.writer.start()

    def recover(self) -> None:
        """Restore the newest readable checkpoint and replay the log after it."""
        self.dead_letters.load(*self.log.dead_letters())
        recovered = recover(
            self._specs, self.engine_config, self.log, self.checkpointer.checkpoints
        )
        self.recovery = recovered.stats
        self.checkpointer.stats.position = recovered.stats.restored_from
        self.checkpointer.events_since = recovered.stats.replayed_events
        with self.live.lock:
            self.live.boards = recovered.boards
            self.live.position = recovered.position
            self.live.boards.tick(self.clock())
            self.live.publish()
        self.writer.stats.events_logged = recovered.boards.stats.accepted

    def close(self) -> None:
        """Stop accepting, drain what is queued, checkpoint, and close the log. Idempotent."""
        if self.writer.running:
            self.writer.stop()
            self.checkpointer.join()
            if self.writer.failure is None:
                self.checkpoint()
        self.log.close()

    def checkpoint(self) -> None:
        """Take a checkpoint now and reclaim the log it allows (blocks until written)."""
        self.checkpointer.take()

    # ------------------------------------------------------------------ API

    @property
    def boards(self) -> BoardSet:
        """The live boards (read them under ``live.lock``)."""
        return self.live.boards

    @property
    def stats(self) -> WriterStats:
        """The writer's counters."""
        return self.writer.stats

    @property
    def failure(self) -> str | None:
        """Why ingest stopped for good (restart the service), or ``None``."""
        return self.writer.failure

    def admit(self) -> None:
        """See :meth:`Writer.admit`."""
        self.writer.admit()

    def submit(self, submission: Submission) -> Future[tuple[bytes, bool]]:
        """See :meth:`Writer.submit`."""
        return self.writer.submit(submission)

    def top_k(
        self, window: str, k: int, category: str | None = None, region: str | None = None
    ) -> TopKResult:
        """The engine's exact top-k as of the published state: every acknowledged event is
        in it, since a ``202`` goes out only after its group is applied and published."""
        return self.live.top_k(window, k, category, region)

    def board_specs(self) -> tuple[BoardSpec, ...]:
        """See :class:`~rankstream.serving.BoardSource`."""
        return self._specs

    def board_top_k(self, board: str, window: str, k: int, scopes: Mapping[str, str]) -> TopKResult:
        """See :class:`~rankstream.serving.BoardSource` (as of the published state)."""
        return self.live.board_top_k(board, window, k, scopes)

    def rising(
        self, board: str, short: str, long: str, k: int, minimum: int, scopes: Mapping[str, str]
    ) -> Rising:
        """See :class:`~rankstream.serving.BoardSource`."""
        return self.live.rising(board, short, long, k, minimum, scopes)

    def leaders(self, board: str, by: str, window: str, k: int) -> Leaders:
        """See :class:`~rankstream.serving.BoardSource`."""
        return self.live.leaders(board, by, window, k)

    def ingest_problem(self) -> str | None:
        """Why ingest fails now (stopped for good, or the last log write failed), or ``None``."""
        return self.writer.failure or self.writer.storage_problem

    def queue_depth(self) -> int:
        """Requests submitted and not yet answered."""
        return self.writer.queue_depth()

    def queued_bytes(self) -> int:
        """Body bytes of the requests submitted and not yet answered."""
        return self.writer.queued_bytes()

    def status(self) -> dict[str, Any]:
        """Counters and positions for ``GET /status``."""
        with self.live.lock:
            boards = self.live.boards
            stats, late, now = boards.stats, boards.late_dropped, boards.now
            memory = boards.memory()
            counted = {n: e.stats.accepted for n, e in boards.engines.items()}
            applied = self.live.position
        checkpoint = self.checkpointer.stats
        recovery = self.recovery
        return {
            "mode": "embedded",
            "events_accepted": self.writer.stats.events_logged,
            "events_applied": stats.accepted,
            "events_rejected": self.dead_letters.total,
            "late_dropped": late,
            "duplicates": stats.duplicates,
            "watermark": now,
            "last_checkpoint": {
                "position": checkpoint.position.offsets,
                "at": checkpoint.at,
                "seconds": round(checkpoint.seconds, 3),
                "bytes": checkpoint.bytes,
            },
            "log": {"applied": applied.offsets, "bytes": self.log.size_bytes()},
            "recovery": {
                "restored_from": recovery.restored_from.offsets,
                "replayed_batches": recovery.replayed_batches,
                "replayed_events": recovery.replayed_events,
                "seconds": round(recovery.seconds, 3),
            },
            "queue_depth": self.queue_depth(),
            "queued_bytes": self.queued_bytes(),
            "memory": next(iter(memory.values())),
            "boards": {
                name: {"events_counted": counted[name], "memory": memory[name]} for name in memory
            },
            "storage": self.writer.storage_problem,
            "healthy": self.ingest_problem() is None,
            "failure": self.writer.failure,
        }
