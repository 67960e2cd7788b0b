"""The durable ingest pipeline: one writer thread between the HTTP edge and the engine.

A request's valid events become a :class:`Submission`. The writer thread takes every
submission waiting (a *group*) and, for each group:

1. answers requests whose ``Idempotency-Key`` is already stored with the stored answer;
2. screens the others through the engine (too new? duplicate ``event_id``?);
3. appends the accepted events and the answers (with their keys) to the log in ONE
   transaction and waits for it to be durable (group commit);
4. applies the accepted events to the engine, in log order;
5. resolves the requests' futures: only now does the client get its ``202``.

So an acknowledged event is in the log, and a logged event is counted once: on restart the
newest readable checkpoint is restored and the log after it is replayed through the same
screening, in the same order with the same arrival times, which reproduces the same state.

The writer also ticks the engine clock with wall time and takes periodic checkpoints, after
which the log before the checkpoint is reclaimed (down to ``retention_floor``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from rankstream.checkpoint import FileCheckpointStore
from rankstream.engine import (
    ACCEPTED,
    DUPLICATE,
    TOO_NEW,
    EngineConfig,
    EventBatch,
    TopKEngine,
    TopKResult,
)
from rankstream.engine.snapshot import encode as encode_snapshot
from rankstream.engine.wire import EventDecoder
from rankstream.errors import RankstreamError, SnapshotError
from rankstream.log import SqliteEventLog, encode_events
from rankstream.log.sqlite import GroupRecord
from rankstream.service.deadletters import DeadLetters

logger = logging.getLogger("rankstream.pipeline")


def wall_clock_ms() -> int:
    """The system wall clock in epoch milliseconds (read only at the service edge)."""
    return time.time_ns() // 1_000_000


class StorageFailure(RankstreamError):
    """The durable log could not be written; the service stops accepting events."""


class EventError(msgspec.Struct, frozen=True):
    """Why the event at ``index`` of a request was rejected."""

    index: int
    error: str


class IngestAnswer(msgspec.Struct, frozen=True):
    """The body of a ``202`` answer to ``POST /views``."""

    accepted: int
    rejected: int
    duplicates: int
    errors: list[EventError]


@dataclass(slots=True)
class Submission:
    """One request's valid events (``raw``: each one's JSON, kept for analytics;
    ``positions``: their indexes in the request), its errors so far, and its idempotency
    key."""

    batch: EventBatch
    raw: list[bytes]
    positions: list[int]
    errors: list[EventError]
    idempotency_key: str | None = None
    future: Future[tuple[bytes, bool]] = field(default_factory=Future)


@dataclass(frozen=True, slots=True)
class _Screened:
    answer: bytes
    batch: EventBatch
    raw: list[bytes]
    duplicates: int
    too_new: int


@dataclass(slots=True)
class PipelineStats:
    """Counters for ``/status`` and ``/metrics``."""

    events_logged: int = 0
    requests: int = 0
    idempotent_replays: int = 0
    groups: int = 0
    last_checkpoint_seq: int = 0
    last_checkpoint_at: int | None = None
    last_checkpoint_seconds: float = 0.0
    checkpoint_bytes: int = 0
    restored_from_seq: int = 0
    replayed_batches: int = 0
    replayed_events: int = 0
    recovery_seconds: float = 0.0
    last_applied_seq: int = 0
    commit_seconds_total: float = 0.0


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    """How often the writer ticks and checkpoints, and how long keys are remembered."""

    tick_interval: float = 1.0
    checkpoint_interval: float = 60.0
    checkpoint_every_events: int = 2_000_000
    idempotency_ttl: float = 24 * 3600.0
    max_group: int = 256


class IngestPipeline:
    """Engine + durable log + checkpoints behind one writer thread. See the module docstring.

    ``submit`` may be called from any thread; ``top_k`` and ``status`` too (they take the
    engine lock briefly). ``start`` recovers, then starts the writer; ``close`` drains the
    queue, takes a final checkpoint and closes the log.
    """

    def __init__(
        self,
        engine_config: EngineConfig,
        event_log: SqliteEventLog,
        checkpoints: FileCheckpointStore,
        settings: PipelineSettings | None = None,
        clock: Callable[[], int] = wall_clock_ms,
        dead_letters: DeadLetters | None = None,
    ) -> None:
        self.engine_config = engine_config
        self.engine = TopKEngine(engine_config)
        self.log = event_log
        self.checkpoints = checkpoints
        self.settings = settings or PipelineSettings()
        self.clock = clock
        self.dead_letters = dead_letters or DeadLetters()
        self.stats = PipelineStats()
        self.retention_floor: Callable[[int], int] = lambda checkpoint_seq: checkpoint_seq
        self.failure: str | None = None
        self._lock = threading.Lock()
        self._queue: queue.Queue[Submission | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._events_since_checkpoint = 0
        self._checkpointer: threading.Thread | None = None
        self._reclaim_through = 0  # set by a finished checkpoint, acted on by the writer
        self._version = object()  # replaced whenever the engine state changes
        self._answers: dict[tuple[object, ...], tuple[object, TopKResult]] = {}

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Recover the engine from checkpoint and log, then start the writer thread."""
        self.recover()
        self._thread = threading.Thread(target=self._run, name="rankstream-writer", daemon=True)
        self._thread.start()

    def recover(self) -> None:
        """Restore the newest readable checkpoint and replay the log after it."""
        started = time.perf_counter()
        for checkpoint in self.checkpoints.newest_first():
            try:
                self.engine = TopKEngine.restore(checkpoint.data, self.engine_config)
            except SnapshotError as exc:
                logger.warning("skipping unreadable checkpoint %s: %s", checkpoint.path, exc)
                continue
            self.stats.restored_from_seq = checkpoint.seq
            self.stats.last_checkpoint_seq = checkpoint.seq
            self.stats.last_applied_seq = checkpoint.seq
            break
        decoder = EventDecoder(self.engine_config.measure)
        for record in self.log.replay(self.stats.restored_from_seq, decoder):
            self.engine.ingest(record.batch, record.wall_time)
            self.engine.stats.duplicates += record.duplicates
            self.engine.stats.rejected_too_new += record.rejected
            self.stats.replayed_batches += 1
            self.stats.replayed_events += len(record.batch)
            self.stats.last_applied_seq = record.seq
            self._events_since_checkpoint += len(record.batch)
        self.engine.tick(self.clock())
        self._publish()
        self.stats.events_logged = self.engine.stats.accepted
        self.stats.recovery_seconds = time.perf_counter() - started

    def close(self) -> None:
        """Stop accepting, drain what is queued, checkpoint, and close the log. Idempotent."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
            if self._checkpointer is not None:
                self._checkpointer.join()
            if self.failure is None:
                self.checkpoint()
        self.log.close()

    # ------------------------------------------------------------------ API

    def submit(self, submission: Submission) -> Future[tuple[bytes, bool]]:
        """Queue a request; the future yields ``(answer JSON, replayed)`` once durable.

        Raises :class:`StorageFailure` if the log has failed (the service must restart).
        """
        if self.failure is not None:
            raise StorageFailure(self.failure)
        self._queue.put(submission)
        return submission.future

    def top_k(
        self, window: str, k: int, category: str | None = None, region: str | None = None
    ) -> TopKResult:
        """The engine's exact top-k (see :meth:`TopKEngine.top_k`) as of the last published
        state: every acknowledged event is in it, since a ``202`` goes out only after its
        group is applied and published. An answer already computed for the published state
        is returned without waiting for the engine lock, so queries do not queue behind the
        writer's apply of a group that no client has been told about yet."""
        key = (window, k, category, region)
        cached = self._answers.get(key)
        if cached is not None and cached[0] is self._version:
            return cached[1]
        with self._lock:
            result = self.engine.top_k(window, k, category, region)
            if len(self._answers) >= 4096:
                self._answers.clear()
            self._answers[key] = (self._version, result)
        return result

    def _publish(self) -> None:
        """Mark the engine state as changed (caller holds the engine lock)."""
        self._version = object()

    def status(self) -> dict[str, Any]:
        """Counters and positions for ``GET /status``."""
        with self._lock:
            engine = self.engine.stats
            memory = self.engine.memory()
            now = self.engine.now
        stats = self.stats
        return {
            "events_accepted": stats.events_logged,
            "events_applied": engine.accepted,
            "events_rejected": engine.rejected_too_new + self.dead_letters.invalid_total,
            "late_dropped": engine.late_dropped,
            "duplicates": engine.duplicates,
            "watermark": now,
            "last_checkpoint": {
                "seq": stats.last_checkpoint_seq,
                "at": stats.last_checkpoint_at,
                "seconds": round(stats.last_checkpoint_seconds, 3),
                "bytes": stats.checkpoint_bytes,
            },
            "log": {"applied_seq": stats.last_applied_seq, "bytes": self.log.size_bytes()},
            "recovery": {
                "restored_from_seq": stats.restored_from_seq,
                "replayed_batches": stats.replayed_batches,
                "replayed_events": stats.replayed_events,
                "seconds": round(stats.recovery_seconds, 3),
            },
            "queue_depth": self._queue.qsize(),
            "memory": memory,
            "healthy": self.failure is None,
            "failure": self.failure,
        }

    def queue_depth(self) -> int:
        """Submissions waiting for the writer."""
        return self._queue.qsize()

    # ------------------------------------------------------------------ writer thread

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # a bug must not leave clients waiting on a dead writer
            self.failure = f"ingest writer stopped: {exc!r}; restart the service"
            logger.exception("%s", self.failure)
            self._drain_on_stop()

    def _loop(self) -> None:
        last_tick = 0.0
        last_checkpoint = time.monotonic()
        settings = self.settings
        while True:
            group = self._take_group(timeout=settings.tick_interval)
            stopping = group is None
            if group:
                try:
                    self._commit(group)
                except Exception as exc:  # the log failed: stop taking events, say why
                    self._fail(group, exc)
            if stopping or self.failure is not None:
                self._drain_on_stop()
                return
            now = time.monotonic()
            if now - last_tick >= settings.tick_interval:
                wall = self.clock()
                with self._lock:
                    self.engine.tick(wall)
                    self._publish()
                last_tick = now
            self._reclaim_log()
            due = now - last_checkpoint >= settings.checkpoint_interval
            many = self._events_since_checkpoint >= settings.checkpoint_every_events
            if (due or many) and not self._checkpoint_running():
                self._start_checkpoint()
                self.log.expire_keys(self.clock() - int(settings.idempotency_ttl * 1000))
                last_checkpoint = time.monotonic()

    def _take_group(self, timeout: float) -> list[Submission] | None:
        """Submissions waiting (at least one, waiting up to ``timeout``); ``None`` on stop."""
        try:
            first = self._queue.get(timeout=timeout)
        except queue.Empty:
            return []
        if first is None:
            return None
        group = [first]
        while len(group) < self.settings.max_group:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # keep the stop signal for the loop
                break
            group.append(item)
        return group

    def _commit(self, group: list[Submission]) -> None:
        """Screen, log (one record and one transaction for the group), apply, answer."""
        wall = self.clock()  # one arrival time for the group, as replay will see it
        keys = [sub.idempotency_key for sub in group if sub.idempotency_key is not None]
        stored = self.log.responses_for(keys) if keys else {}
        answers: list[tuple[bytes, bool]] = []
        parts: list[EventBatch] = []
        raws: list[bytes] = []
        duplicates = rejected = 0
        with self._lock:
            for sub in group:
                key = sub.idempotency_key
                if key is not None and key in stored:
                    answers.append((stored[key], True))
                    continue
                screened = self._screen(sub, wall)
                if key is not None:
                    stored[key] = screened.answer
                answers.append((screened.answer, False))
                duplicates += screened.duplicates
                rejected += screened.too_new
                if len(screened.batch):
                    parts.append(screened.batch)
                    raws.extend(screened.raw)
        fresh_keys = [
            (sub.idempotency_key, answer)
            for sub, (answer, replayed) in zip(group, answers, strict=True)
            if sub.idempotency_key is not None and not replayed
        ]
        batch = EventBatch.concat(parts)
        record = GroupRecord(
            wall_time=wall,
            events=len(batch),
            duplicates=duplicates,
            rejected=rejected,
            payload=encode_events(raws) if len(batch) else None,
            answers=fresh_keys,
        )
        started = time.perf_counter()
        seq = self.log.append(record)  # durable when this returns
        self.stats.commit_seconds_total += time.perf_counter() - started
        with self._lock:
            if seq is not None:
                self.engine.apply(batch)
                self._publish()
                self.stats.last_applied_seq = seq
                self.stats.events_logged += len(batch)
                self._events_since_checkpoint += len(batch)
        self.stats.groups += 1
        self.stats.requests += len(group)
        for sub, answer in zip(group, answers, strict=True):
            self.stats.idempotent_replays += answer[1]
            sub.future.set_result(answer)

    def _screen(self, sub: Submission, wall: int) -> _Screened:
        """The request's answer, its accepted events and their raw JSON."""
        status = self.engine.screen(sub.batch, wall)
        keep = np.flatnonzero(status == ACCEPTED)
        errors = list(sub.errors)
        skew_s = self.engine_config.max_skew // 1000
        for i in np.flatnonzero(status == TOO_NEW).tolist():
            message = f"timestamp: more than {skew_s} s ahead of server time"
            errors.append(EventError(sub.positions[i], message))
            self.dead_letters.add_too_new(sub.batch, i, message, wall)
        errors.sort(key=lambda e: e.index)
        duplicates = int(np.count_nonzero(status == DUPLICATE))
        too_new = len(errors) - len(sub.errors)
        answer = msgspec.json.encode(IngestAnswer(len(keep), len(errors), duplicates, errors))
        if len(keep) == len(sub.batch):
            return _Screened(answer, sub.batch, sub.raw, duplicates, too_new)
        raw = [sub.raw[i] for i in keep.tolist()]
        return _Screened(answer, sub.batch.take(keep), raw, duplicates, too_new)

    def _fail(self, group: list[Submission], exc: Exception) -> None:
        self.failure = f"durable log write failed: {exc}; restart the service"
        logger.error("%s", self.failure)
        for sub in group:
            if not sub.future.done():
                sub.future.set_exception(StorageFailure(self.failure))

    def _drain_on_stop(self) -> None:
        """Answer what is still queued: commit it if healthy, else fail it."""
        leftovers: list[Submission] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                leftovers.append(item)
        if not leftovers:
            return
        if self.failure is None:
            try:
                self._commit(leftovers)
                return
            except Exception as exc:
                self._fail(leftovers, exc)
                return
        for sub in leftovers:
            sub.future.set_exception(StorageFailure(self.failure or "service stopped"))

    # ------------------------------------------------------------------ checkpoints

    def checkpoint(self) -> None:
        """Take a checkpoint now and reclaim the log it allows (blocks until written).

        Steps: (1) under the engine lock, capture the state (array copies) and note the last
        applied log sequence; (2) encode it and write the checkpoint file atomically (in the
        background when the writer starts it, so ingest and queries go on); (3) the writer
        deletes log records covered by the OLDEST checkpoint still kept (so a torn newest
        checkpoint can fall back to it and replay), and no further than
        ``retention_floor`` (analytics may hold it lower).
        """
        self._write_checkpoint(*self._capture())
        self._reclaim_log()

    def _capture(self) -> tuple[dict[str, Any], int, float]:
        started = time.perf_counter()
        with self._lock:
            state = self.engine.capture()
            seq = self.stats.last_applied_seq
            self._events_since_checkpoint = 0
        return state, seq, started

    def _write_checkpoint(self, state: dict[str, Any], seq: int, started: float) -> None:
        data = encode_snapshot(state)
        self.checkpoints.save(seq, data)
        oldest_kept = min(self.checkpoints.seqs(), default=0)
        self._reclaim_through = min(oldest_kept, self.retention_floor(oldest_kept))
        self.stats.last_checkpoint_seq = seq
        self.stats.last_checkpoint_at = self.clock()
        self.stats.last_checkpoint_seconds = time.perf_counter() - started
        self.stats.checkpoint_bytes = len(data)

    def _start_checkpoint(self) -> None:
        """Capture now (writer thread), encode and write in a background thread."""
        state, seq, started = self._capture()
        self._checkpointer = threading.Thread(
            target=self._write_checkpoint_logged,
            args=(state, seq, started),
            name="rankstream-checkpoint",
            daemon=True,
        )
        self._checkpointer.start()

    def _write_checkpoint_logged(self, state: dict[str, Any], seq: int, started: float) -> None:
        try:
            self._write_checkpoint(state, seq, started)
        except Exception:  # the log still holds everything: retried at the next interval
            logger.exception("checkpoint at log position %d failed", seq)

    def _checkpoint_running(self) -> bool:
        return self._checkpointer is not None and self._checkpointer.is_alive()

    def _reclaim_log(self) -> None:
        """Delete log records a finished checkpoint covers (writer thread only: the log
        connection is the writer's)."""
        through, self._reclaim_through = self._reclaim_through, 0
        if through > 0:
            self.log.truncate_through(through)
