"""The writer thread: groups of requests in, durable and applied events out.

A request's valid events become a :class:`Submission`. The writer takes every submission
waiting (a *group*) and, for each group:

1. answers requests whose ``Idempotency-Key`` is already stored with the stored answer;
2. screens the others through the engine (too new? duplicate ``event_id``? over a limit?);
3. in ONE log transaction, appends the accepted events and the group's dead letters and
   remembers the answers by key, and waits for it to be durable (group commit);
4. applies the accepted events to the engine, in log order, and tells the listeners;
5. resolves the requests' futures: only now does the client get its ``202``.

Between groups it ticks the engine clock with wall time, starts checkpoints and expires
idempotency keys. A log write that fails (disk full, I/O error) fails only its group: those
requests get :class:`~rankstream.errors.StorageFull` / :class:`StorageFailure`, nothing of
them is kept, and the next group tries again. Only an unexpected error of the writer itself
stops ingest for good (``failure``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from rankstream.boards import BoardScreening, Routed
from rankstream.engine import ACCEPTED, DUPLICATE, OVER_CAPACITY, TOO_NEW, EngineConfig
from rankstream.errors import Overloaded, StorageFailure
from rankstream.idempotency import IdempotencyStore
from rankstream.log import DeadLetter, EventLog, GroupRecord, LogPosition, encode_events
from rankstream.service.checkpointer import Checkpointer
from rankstream.service.deadletters import DeadLetters, dead_letter
from rankstream.service.live import LiveEngine
from rankstream.service.outcome import IngestOutcome

logger = logging.getLogger("rankstream.writer")

AnswerEncoder = Callable[[IngestOutcome], bytes]
"""Turns a request's outcome into the answer the client gets (and a retry with the same
Idempotency-Key gets again): the HTTP layer decides the wire format, the writer stores it."""


@dataclass(frozen=True, slots=True)
class AppliedGroup:
    """A change notification: a group's accepted events (their JSON as received), now
    durable at ``position`` and counted in the rankings, arrived at ``wall_time``."""

    position: LogPosition
    wall_time: int
    raw: list[bytes]


Listener = Callable[[AppliedGroup], None]
"""Called on the writer thread after each applied group; must be quick. An exception is
logged and does not stop ingest."""


@dataclass(slots=True)
class Submission:
    """One request's valid events (those that fit some board: ``routed``, numbered as
    ``raw`` holds each one's JSON; ``positions``: their indexes in the request), its errors
    so far as ``(index, reason)`` with their dead letters, its idempotency key, and its
    size in body bytes (for the queue bound)."""

    routed: Routed
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
    raw: list[bytes]
    duplicates: int
    too_new: int
    over_capacity: int
    letters: list[DeadLetter]


@dataclass(slots=True)
class WriterStats:
    """Counters for ``/status`` and ``/metrics``."""

    events_logged: int = 0
    requests: int = 0
    idempotent_replays: int = 0
    groups: int = 0
    commit_seconds_total: float = 0.0
    storage_errors: int = 0


@dataclass(frozen=True, slots=True)
class WriterSettings:
    """How often the writer ticks and checkpoints, how long keys are remembered, and how
    much may wait for the writer (requests and body bytes) before :meth:`Writer.admit`
    refuses."""

    tick_interval: float = 1.0
    checkpoint_interval: float = 60.0
    checkpoint_every_events: int = 2_000_000
    idempotency_ttl: float = 24 * 3600.0
    max_group: int = 256
    max_queued_requests: int = 1024
    max_queued_bytes: int = 256 * 1024 * 1024


class Writer:
    """The one thread that writes the log and changes the engine; see the module docstring.

    :meth:`admit` and :meth:`submit` may be called from any thread.
    """

    def __init__(
        self,
        live: LiveEngine,
        log: EventLog,
        keys: IdempotencyStore,
        checkpointer: Checkpointer,
        engine_config: EngineConfig,
        encode_answer: AnswerEncoder,
        settings: WriterSettings,
        clock: Callable[[], int],
        dead_letters: DeadLetters,
        listeners: Sequence[Listener] = (),
    ) -> None:
        self.live = live
        self.log = log
        self.keys = keys
        self.checkpointer = checkpointer
        self.engine_config = engine_config
        self.encode_answer = encode_answer
        self.settings = settings
        self.clock = clock
        self.dead_letters = dead_letters
        self.listeners = tuple(listeners)
        self.stats = WriterStats()
        self.failure: str | None = None
        self.storage_problem: str | None = None  # the last log write failed (cleared on success)
        self._queued = [0, 0]  # requests and body bytes submitted, not yet answered
        self._queued_lock = threading.Lock()
        self._queue: queue.Queue[Submission | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ any thread

    def start(self) -> None:
        """Start the writer thread."""
        self._thread = threading.Thread(target=self._run, name="rankstream-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Answer what is queued, then stop the thread. Idempotent."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    @property
    def running(self) -> bool:
        """Whether the writer thread was started and not stopped."""
        return self._thread is not None

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

    def queue_depth(self) -> int:
        """Requests submitted and not yet answered."""
        return self._queued[0]

    def queued_bytes(self) -> int:
        """Body bytes of the requests submitted and not yet answered."""
        return self._queued[1]

    def _answered(self, group: list[Submission]) -> None:
        with self._queued_lock:
            requests, size = self._queued
            self._queued = [requests - len(group), size - sum(s.size for s in group)]

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
        checkpointer = self.checkpointer
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
                with self.live.lock:
                    self.live.boards.tick(wall)
                    self.live.publish()
                last_tick = now
                if self.storage_problem is not None:
                    self._probe_storage(wall)
            checkpointer.reclaim()
            due = now - last_checkpoint >= settings.checkpoint_interval
            many = checkpointer.events_since >= settings.checkpoint_every_events
            if (due or many) and not checkpointer.running():
                checkpointer.start()
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
        stored = self.keys.answers_for(keys) if keys else {}
        answers: list[tuple[bytes, bool]] = []
        raws: list[bytes] = []
        letters: list[DeadLetter] = []
        duplicates = too_new = over_capacity = 0
        with self.live.lock:
            screening = self.live.boards.screening(wall)  # changes nothing until committed
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
                raws.extend(screened.raw)
        fresh_keys = [
            (sub.idempotency_key, answer)
            for sub, (answer, replayed) in zip(group, answers, strict=True)
            if sub.idempotency_key is not None and not replayed
        ]
        record = GroupRecord(
            wall_time=wall,
            events=len(raws),
            duplicates=duplicates,
            rejected=too_new,
            over_capacity=over_capacity,
            # A record also when nothing was accepted but some were refused by the engine:
            # replay restores those counts from it (a kill -9 must not lose them).
            payload=encode_events(raws) if raws or duplicates or too_new or over_capacity else None,
            letters=letters,
        )
        started = time.perf_counter()
        try:
            with self.log.transaction():  # durable when the block ends
                position = self.log.append(record)
                if fresh_keys:
                    self.keys.remember(fresh_keys, wall)
        except StorageFailure as exc:
            self._refuse(group, exc)  # the screening is dropped: no trace of the group
            return
        self.stats.commit_seconds_total += time.perf_counter() - started
        self.storage_problem = None
        if position is not None:
            with self.live.lock:
                screening.commit()  # cannot fail: limits were screened
                self.live.position = position
                self.live.publish()
            self.stats.events_logged += len(raws)
            self.checkpointer.events_since += len(raws)
            self._notify(AppliedGroup(position, wall, raws))
        self.dead_letters.extend(letters)
        self.stats.groups += 1
        self.stats.requests += len(group)
        self._answered(group)
        for sub, answer in zip(group, answers, strict=True):
            self.stats.idempotent_replays += answer[1]
            sub.future.set_result(answer)

    def _screen(self, sub: Submission, screening: BoardScreening) -> _Screened:
        """The request's answer, its accepted events' raw JSON, and its dead letters."""
        decided = screening.screen(sub.routed)
        status = decided.status
        too_new = self.engine_config.too_new_reason
        refused = [(int(row), "timestamp", too_new) for row in np.flatnonzero(status == TOO_NEW)]
        too_new_count = len(refused)
        refused += [
            (row, at, why)
            for row, (at, why) in sorted(decided.reasons.items())
            if status[row] == OVER_CAPACITY
        ]
        errors = sorted([*sub.errors, *((sub.positions[row], why) for row, _, why in refused)])
        letters = list(sub.letters)
        letters += [
            dead_letter(sub.raw[row], at, why, screening.wall_time) for row, at, why in refused
        ]
        keep = np.flatnonzero(status == ACCEPTED).tolist()
        duplicates = int(np.count_nonzero(status == DUPLICATE))
        answer = self.encode_answer(IngestOutcome(len(keep), len(errors), duplicates, errors))
        raw = sub.raw if len(keep) == len(sub.raw) else [sub.raw[i] for i in keep]
        over_capacity = len(refused) - too_new_count
        return _Screened(answer, raw, duplicates, too_new_count, over_capacity, letters)

    def _notify(self, change: AppliedGroup) -> None:
        for listener in self.listeners:
            try:
                listener(change)
            except Exception:  # a listener's bug must not stop ingest
                logger.exception("change listener %r failed", listener)

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

    def _expire_keys(self) -> None:
        """Forget idempotency keys older than ``idempotency_ttl``."""
        try:
            self.keys.expire(self.clock() - int(self.settings.idempotency_ttl * 1000))
        except StorageFailure as exc:  # tried again at the next checkpoint
            logger.warning("idempotency key expiry postponed: %s", exc)
