"""Checkpoints of the live engine, and reclaiming the log they cover.

Steps: (1) under the engine lock, capture the state (array copies) with the log position
it has applied up to; (2) encode it and save it atomically (in a background thread when the
writer starts it, so ingest and queries go on); (3) the writer thread, which owns the log,
reclaims records before the OLDEST checkpoint still kept (so a torn newest checkpoint can
fall back to the one before and replay), and never past the ``retention_floor`` (a reader
such as analytics may still need them).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rankstream.boards.board_set import encode_capture
from rankstream.checkpoint import Checkpoint, CheckpointStore
from rankstream.errors import StorageFailure
from rankstream.log import EventLog, LogPosition
from rankstream.service.live import LiveEngine

logger = logging.getLogger("rankstream.checkpointer")

RetentionFloor = Callable[[], LogPosition]
"""The oldest log position some reader still needs (records from it on are kept even if a
checkpoint covers them)."""


@dataclass(slots=True)
class CheckpointStats:
    """The newest checkpoint written: its position, when (epoch ms), duration, size."""

    position: LogPosition = field(default_factory=LogPosition)
    at: int | None = None
    seconds: float = 0.0
    bytes: int = 0


class Checkpointer:
    """Checkpoints ``live``'s engine (of log ``partition``) to ``checkpoints``.

    :meth:`take` blocks; :meth:`start` runs the save in a background thread (one at a time).
    :meth:`reclaim` must run on the thread that owns ``log``.
    """

    def __init__(
        self,
        live: LiveEngine,
        checkpoints: CheckpointStore,
        log: EventLog,
        clock: Callable[[], int],
        retention_floor: RetentionFloor | None = None,
        partition: int = 0,
    ) -> None:
        self.live = live
        self.checkpoints = checkpoints
        self.log = log
        self.clock = clock
        self.retention_floor = retention_floor
        self.partition = partition
        self.stats = CheckpointStats()
        self.events_since = 0  # applied since the last capture (the writer adds to it)
        self._thread: threading.Thread | None = None
        self._reclaim_before: LogPosition | None = None  # set by a save, used by reclaim

    def take(self) -> None:
        """Capture, save and reclaim now (blocks until written)."""
        self._save(*self._capture())
        self.reclaim()

    def start(self) -> None:
        """Capture now (the caller's thread), save in a background thread. A failed save
        is logged; the log still holds everything, so the next interval retries."""
        captured = self._capture()
        self._thread = threading.Thread(
            target=self._save_logged, args=captured, name="rankstream-checkpoint", daemon=True
        )
        self._thread.start()

    def running(self) -> bool:
        """Whether a background save is under way."""
        return self._thread is not None and self._thread.is_alive()

    def join(self) -> None:
        """Wait for a background save to end."""
        if self._thread is not None:
            self._thread.join()

    def reclaim(self) -> None:
        """Let the log drop what the oldest kept checkpoint covers, down to the retention
        floor (log owner's thread only). A failure is logged and retried after the next
        checkpoint."""
        before, self._reclaim_before = self._reclaim_before, None
        if before is None:
            return
        if self.retention_floor is not None:
            floor = self.retention_floor().of(self.partition)
            before = LogPosition({self.partition: min(before.of(self.partition), floor)})
        try:
            self.log.reclaim(before)
        except StorageFailure as exc:
            logger.warning("log reclaim postponed: %s", exc)

    def _capture(self) -> tuple[Any, LogPosition, float]:
        started = time.perf_counter()
        with self.live.lock:
            state = self.live.boards.capture()
            position = self.live.position
            self.events_since = 0
        return state, position, started

    def _save(self, state: Any, position: LogPosition, started: float) -> None:
        data = encode_capture(state)
        offset = position.of(self.partition)
        self.checkpoints.save(Checkpoint(self.partition, offset, data))
        oldest = min(self.checkpoints.offsets(self.partition), default=0)
        self._reclaim_before = LogPosition({self.partition: oldest})
        self.stats = CheckpointStats(
            position, self.clock(), time.perf_counter() - started, len(data)
        )

    def _save_logged(self, state: Any, position: LogPosition, started: float) -> None:
        try:
            self._save(state, position, started)
        except Exception:  # the log still holds everything: retried at the next interval
            logger.exception("checkpoint at log position %s failed", position)
