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

import numpy as np

from rankstream.checkpoint import FileCheckpointStore
from rankstream.engine import (
    ACCEPTED,
    DUPLICATE,
    TOO_NEW,
    EngineConfig,
    EventBatch,
    Screening,
    TopKEngine,
    TopKResult,
)
from rankstream.engine.snapshot import encode as encode_snapshot
from rankstream.engine.wire import EventDecoder
from rankstream.errors import Overloaded, SnapshotError, StorageFailure
from rankstream.log import DeadLetter, SqliteEventLog, encode_events
from rankstream.log.sqlite import GroupRecord
from rankstream.service.deadletters import DeadLetters, dead_letter
from rankstream.service.outcome import IngestOutcome

logger = logging.getLogger("rankstream.pipeline")


def wall_clock_ms() -> int:
    """The system wall clock in epoch milliseconds (read only at the service edge)."""
    return time.time_ns() // 1_000_000


AnswerEncoder = Callable[[IngestOutcome], bytes]
"""Turns a request's outcome into the answer the client gets (and a retry with the same
Idempotency-Key gets again): the HTTP layer decides the wire format, the pipeline stores it."""


@dataclass(slots=True)
class Submission:
    """One request's valid events (``raw``: each one's JSON, kept for analytics;
    ``positions``: their indexes in the request), its errors so far as ``(index, reason)``
    with their dead letters, its idempotency key, and its size in body bytes (for the
    queue bound)."""

    batch: EventBatch
    raw: list[bytes]
    positions: list[int]
    errors: list[tuple[int, str]]
    letters: list[DeadLetter] = field(default_factory=list)
    idempotency_key: str | None = None
    size: int = 0
    future: Future[tuple[bytes, bool]] = field(default_factory=Future)


@dataclass(frozen=True, slots=True)
class _Screened:
    answer: bytes
    batch: EventBatch
    raw: list[bytes]
    duplicates: int
    too_new: int
    over_capacity: int
    letters: list[DeadLetter]


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
    storage_errors: int = 0


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    """How often the writer ticks and checkpoints, how long keys are remembered, and how
    much may wait for the writer (requests and body bytes) before :meth:`admit` refuses."""

    tick_interval: float = 1.0
    checkpoint_interval: float = 60.0
    checkpoint_every_events: int = 2_000_000
    idempotency_ttl: float = 24 * 3600.0
    max_group: int = 256
    max_queued_requests: int = 1024
    max_queued_bytes: int = 256 * 1024 * 1024


class IngestPipeline:
    """Engine + durable log + checkpoints behind one writer thread. See the module docstring.

    ``submit`` may be called from any thread; ``top_k`` and ``status`` too (they take the
    engine lock briefly). ``start`` recovers, then starts the writer; ``close`` drains the
    queue, takes a final checkpoint and closes the log.

    A log write that fails (disk full, I/O error) fails only its group: those requests get
    :class:`~rankstream.errors.StorageFull` / :class:`StorageFailure`, nothing of them is
    kept, and the next group tries again, so ingest resumes by itself once space is freed.
    Only an unexpected error of the writer itself stops ingest for good (``failure``).
    """

    def __init__(
        self,
        engine_config: EngineConfig,
        event_log: SqliteEventLog,
        checkpoints: FileCheckpointStore,
        encode_answer: AnswerEncoder,
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
        self.encode_answer = encode_answer
        self.retention_floor: Callable[[int], int] = lambda checkpoint_seq: checkpoint_seq
        self.failure: str | None = None
        self.storage_problem: str | None = None  # the last log write failed (cleared on success)
        self._queued = [0, 0]  # requests and body bytes submitted, not yet answered
        self._queued_lock = threading.Lock()
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
        self.dead_letters.load(*self.log.dead_letters())
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
            self.engine.replay(record.batch, record.wall_time)  # logged: never refused
            self.engine.stats.duplicates += record.duplicates
            self.engine.stats.rejected_too_new += record.rejected
            self.engine.stats.rejected_over_capacity += record.over_capacity
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

    def admit(self) -> None:
        """Raise :class:`~rankstream.errors.Overloaded` if the queue is full (so a caller can
        refuse a request before reading its body), or :class:`StorageFailure` if ingest has
        stopped for good."""
        if self.failure is not None:
            raise StorageFailure(self.failure)
        requests, size = self._queued
        settings = self.settings
        if requests >= settings.max_queued_requests or size >= settings.max_queued_bytes:
            raise Overloaded(
                f"{requests} requests ({size} bytes) are waiting to be written; retry shortly"
            )

    def submit(self, submission: Submission) -> Future[tuple[bytes, bool]]:
        """Queue a request; the future yields ``(answer, replayed)`` once durable, or raises
        :class:`StorageFailure` (or :class:`~rankstream.errors.StorageFull`) if its group
        could not be logged. Raises :class:`~rankstream.errors.Overloaded` at once when the
        queue holds ``max_queued_requests`` requests, or ``max_queued_bytes`` bytes and this
        request would add more (a request larger than the bound is taken on an empty queue).
        """
        settings = self.settings
        with self._queued_lock:
            self.admit()
            requests, size = self._queued
            if size > 0 and size + submission.size > settings.max_queued_bytes:
                raise Overloaded(f"{size} bytes are waiting to be written; retry shortly")
            self._queued = [requests + 1, size + submission.size]
        self._queue.put(submission)
        return submission.future

    def _answered(self, group: list[Submission]) -> None:
        with self._queued_lock:
            requests, size = self._queued
            self._queued = [requests - len(group), size - sum(s.size for s in group)]

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
            "events_rejected": self.dead_letters.total,
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
            "queue_depth": self.queue_depth(),
            "queued_bytes": self.queued_bytes(),
            "memory": memory,
            "storage": self.storage_problem,
            "healthy": self.ingest_problem() is None,
            "failure": self.failure,
        }

    def ingest_problem(self) -> str | None:
        """Why ingest fails now (stopped for good, or the last log write failed), or ``None``."""
        return self.failure or self.storage_problem

    def queue_depth(self) -> int:
        """Requests submitted and not yet answered."""
        return self._queued[0]

    def queued_bytes(self) -> int:
        """Body bytes of the requests submitted and not yet answered."""
        return self._queued[1]

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
                except Exception as exc:  # a bug, not the disk: stop taking events, say why
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
                if self.storage_problem is not None:
                    self._probe_storage(wall)
            self._reclaim_log()
            due = now - last_checkpoint >= settings.checkpoint_interval
            many = self._events_since_checkpoint >= settings.checkpoint_every_events
            if (due or many) and not self._checkpoint_running():
                self._start_checkpoint()
                self._expire_keys()
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
        """Screen, log (one record and one transaction for the group), apply, answer.

        If the log cannot be written the group's requests fail with the storage error and
        nothing of them is kept or applied; the next group tries again.
        """
        wall = self.clock()  # one arrival time for the group, as replay will see it
        keys = [sub.idempotency_key for sub in group if sub.idempotency_key is not None]
        stored = self.log.responses_for(keys) if keys else {}
        answers: list[tuple[bytes, bool]] = []
        parts: list[EventBatch] = []
        raws: list[bytes] = []
        letters: list[DeadLetter] = []
        duplicates = too_new = over_capacity = 0
        with self._lock:
            screening = self.engine.screening(wall)  # changes nothing until committed
            for sub in group:
                key = sub.idempotency_key
                if key is not None and key in stored:
                    answers.append((stored[key], True))
                    continue
                screened = self._screen(sub, screening)
                if key is not None:
                    stored[key] = screened.answer
                answers.append((screened.answer, False))
                duplicates += screened.duplicates
                too_new += screened.too_new
                over_capacity += screened.over_capacity
                letters.extend(screened.letters)
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
            rejected=too_new,
            over_capacity=over_capacity,
            # A record also when nothing was accepted but some were refused by the engine:
            # replay restores those counts from it (a kill -9 must not lose them).
            payload=encode_events(raws)
            if len(batch) or duplicates or too_new or over_capacity
            else None,
            answers=fresh_keys,
            letters=letters,
        )
        started = time.perf_counter()
        try:
            seq = self.log.append(record)  # durable when this returns
        except StorageFailure as exc:
            self._refuse(group, exc)  # the screening is dropped: no trace of the group
            return
        self.stats.commit_seconds_total += time.perf_counter() - started
        self.storage_problem = None
        with self._lock:
            if seq is not None:
                self.engine.commit(screening, batch)  # cannot fail: every limit was screened
                self._publish()
                self.stats.last_applied_seq = seq
                self.stats.events_logged += len(batch)
                self._events_since_checkpoint += len(batch)
        self.dead_letters.extend(letters)
        self.stats.groups += 1
        self.stats.requests += len(group)
        self._answered(group)
        for sub, answer in zip(group, answers, strict=True):
            self.stats.idempotent_replays += answer[1]
            sub.future.set_result(answer)

    def _screen(self, sub: Submission, screening: Screening) -> _Screened:
        """The request's answer, its accepted events, their raw JSON, and its dead letters."""
        status = screening.screen(sub.batch)
        skew_s = self.engine_config.max_skew // 1000
        too_new = f"timestamp: more than {skew_s} s ahead of server time"
        refused = [(int(row), "timestamp", too_new) for row in np.flatnonzero(status == TOO_NEW)]
        too_new_count = len(refused)
        refused += [
            (r.row, r.field, f"{r.field}: {r.message}") for r in screening.capacity_reasons()
        ]
        errors = sorted([*sub.errors, *((sub.positions[row], why) for row, _, why in refused)])
        letters = list(sub.letters)
        letters += [
            dead_letter(sub.raw[row], at, why, screening.wall_time) for row, at, why in refused
        ]
        keep = np.flatnonzero(status == ACCEPTED)
        duplicates = int(np.count_nonzero(status == DUPLICATE))
        answer = self.encode_answer(IngestOutcome(len(keep), len(errors), duplicates, errors))
        batch, raw = sub.batch, sub.raw
        if len(keep) < len(batch):
            batch, raw = batch.take(keep), [raw[i] for i in keep.tolist()]
        over_capacity = len(refused) - too_new_count
        return _Screened(answer, batch, raw, duplicates, too_new_count, over_capacity, letters)

    def _probe_storage(self, wall: int) -> None:
        """While writes fail, try a tiny one each tick, so ``/health`` turns healthy again
        once space is freed even if no client writes (a load balancer may be waiting for
        health before it sends any)."""
        try:
            self.log.probe(wall)
        except StorageFailure:
            return
        logger.warning("the log can be written again: %s is over", self.storage_problem)
        self.storage_problem = None

    def _refuse(self, group: list[Submission], exc: StorageFailure) -> None:
        """The log could not take the group: answer its requests with the storage error."""
        self.storage_problem = str(exc)
        self.stats.storage_errors += 1
        logger.error("ingest refused: %s", exc)
        self._answered(group)
        for sub in group:
            sub.future.set_exception(exc)

    def _fail(self, group: list[Submission], exc: Exception) -> None:
        """An unexpected error in the writer: stop ingest for good (a restart recovers)."""
        self.failure = f"ingest writer failed: {exc!r}; restart the service"
        logger.error("%s", self.failure, exc_info=exc)
        self._answered([sub for sub in group if not sub.future.done()])
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
        self._answered(leftovers)
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
            try:
                self.log.truncate_through(through)
            except StorageFailure as exc:  # kept for the next checkpoint's reclaim
                logger.warning("log reclaim postponed: %s", exc)

    def _expire_keys(self) -> None:
        """Forget idempotency keys older than ``idempotency_ttl`` (writer thread only)."""
        try:
            self.log.expire_keys(self.clock() - int(self.settings.idempotency_ttl * 1000))
        except StorageFailure as exc:  # tried again at the next checkpoint
            logger.warning("idempotency key expiry postponed: %s", exc)
