"""The scale-out analytics loader: the Kafka topic -> the analytics store, exactly once.

``rankstream analytics-loader`` runs one :class:`KafkaAnalyticsLoader`. It joins a consumer
group of its own on the topic, only so that Kafka assigns it partitions (it consumes
nothing through the group: the assigned partitions are paused). The store's
``load_progress`` is the truth of where each partition is loaded up to; the group's
committed offset is that position, committed after each batch for lag monitoring only.

For each assigned partition it keeps an :class:`~rankstream.analytics.loader.AnalyticsLoader`
over a :class:`~rankstream.analytics.screened.ScreenedPartition`: the partition's messages
decided by the workers' boards, so only the events the workers count are loaded
(duplicates by ``event_id``, too new, over capacity and invalid ones are not). Batches,
intents and de-duplication tokens ``log:P:START:END`` are the embedded loader's, with
Kafka offsets.

Opening a partition (at assignment, and after any failure in it):

1. ``L`` = where the store has loaded it: the start of its newest batch if that is not
   done, else its end (0 if none);
2. restore the newest boards checkpoint at an offset ``C <= L`` (``--analytics-checkpoints``,
   the loader's own; a newer one, say of a store restored from a backup, is passed over),
   or empty boards at 0;
3. decide ``C..L`` through the boards without loading anything: they are now exactly as
   they were when ``L`` was loaded (they are deterministic, the messages are the same);
4. recover the loader: the batch in flight, if any, is read again from ``L`` (screened:
   the same accepted events, cut at the same offsets) and inserted with its token.

A checkpoint is saved only when the partition has no batch in flight, so its offset is a
done batch's end (``C = L`` then; later batches move ``L`` on), every
``checkpoint_interval`` seconds while loading, and when the partition is revoked or the
loader stops.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from rankstream.analytics.loader import AnalyticsLoader
from rankstream.analytics.queries import AnalyticsQueries
from rankstream.analytics.screened import ScreenedPartition
from rankstream.analytics.store import AnalyticsStore
from rankstream.boards import VIDEOS, BoardRouter, BoardSpec
from rankstream.checkpoint import Checkpoint, CheckpointStore
from rankstream.engine import EngineConfig
from rankstream.log.kafka import KafkaEventLog
from rankstream.optional import require
from rankstream.service.recovery import restore_boards

logger = logging.getLogger("rankstream.analytics")

RETRY_SECONDS = (1.0, 60.0)
"""First and longest wait before a partition that failed is opened again (doubling)."""


@dataclass(frozen=True, slots=True)
class KafkaLoaderSettings:
    """Where the loader reads, how much it inserts at once, how often it checkpoints.
    ``instance``: a static group membership id (``group.instance.id``), the same at every
    start of the loader of one store, so a restart after a crash takes the partitions back
    at once instead of waiting out the dead member's session."""

    bootstrap: str
    topic: str = "video_views"
    group: str = "rankstream-analytics"
    batch_rows: int = 100_000
    checkpoint_interval: float = 60.0
    session_timeout_ms: int = 10_000
    poll_interval: float = 0.2
    instance: str | None = None
    name: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")


class _AtMost:
    """A checkpoint store seen without the checkpoints past ``offset``."""

    def __init__(self, checkpoints: CheckpointStore, offset: int) -> None:
        self.checkpoints = checkpoints
        self.offset = offset

    def save(self, checkpoint: Checkpoint) -> None:
        raise RuntimeError("read-only view")  # restore_boards only reads

    def offsets(self, partition: int) -> list[int]:
        return [o for o in self.checkpoints.offsets(partition) if o <= self.offset]

    def newest_first(self, partition: int) -> Iterator[Checkpoint]:
        for checkpoint in self.checkpoints.newest_first(partition):
            if checkpoint.offset <= self.offset:
                yield checkpoint


@dataclass(slots=True)
class _Partition:
    """An open partition: its screened log, its loader, its newest checkpoint's offset."""

    screened: ScreenedPartition
    loader: AnalyticsLoader
    checkpointed: int
    restored_from: int
    replayed_events: int
    committed: int = -1
    checkpoint_due: float = 0.0


@dataclass(slots=True)
class _Failed:
    """A partition whose last attempt failed: when to try again, and why."""

    retry_at: float
    wait: float
    problem: str


class KafkaAnalyticsLoader:
    """See the module docstring. :meth:`run` blocks until :meth:`stop` (from any thread);
    :meth:`status`, :meth:`loaded_through` and :attr:`queries` may be used from any thread
    meanwhile. Owns ``store`` (closes it in :meth:`close`). ``boards``: the workers'
    declared boards (default: the ``videos`` board)."""

    def __init__(
        self,
        settings: KafkaLoaderSettings,
        engine_config: EngineConfig,
        store: AnalyticsStore,
        checkpoints: CheckpointStore,
        boards: Sequence[BoardSpec] = (VIDEOS,),
    ) -> None:
        self._kafka = require("confluent_kafka", "the analytics loader")
        self.settings = settings
        self.engine_config = engine_config
        self.boards = tuple(boards)
        self.store = store
        self.queries = AnalyticsQueries(store)
        self.checkpoints = checkpoints
        self.decoder = BoardRouter.of(self.boards)  # every accepted event, whatever its boards
        self.log = KafkaEventLog(settings.bootstrap, settings.topic, measure=engine_config.measure)
        self.assigned: set[int] = set()
        self.partitions: dict[int, _Partition] = {}
        self.failed: dict[int, _Failed] = {}
        self.failures = 0
        self.events_loaded = 0
        self._newest = store.newest_event()
        self._stop = threading.Event()
        self._finished = threading.Event()
        self.consumer = self._kafka.Consumer(
            {
                "bootstrap.servers": settings.bootstrap,
                "group.id": settings.group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": settings.session_timeout_ms,
                "heartbeat.interval.ms": max(100, settings.session_timeout_ms // 5),
                "client.id": settings.name,
                **({"group.instance.id": settings.instance} if settings.instance else {}),
            }
        )

    # ------------------------------------------------------------------ lifecycle

    def stop(self) -> None:
        """Ask :meth:`run` to finish its current batch, checkpoint and return."""
        self._stop.set()

    def run(self) -> None:
        """Load every assigned partition until :meth:`stop`; then checkpoint and leave the
        group."""
        self.consumer.subscribe(
            [self.settings.topic], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        try:
            while not self._stop.is_set():
                loaded = self._round()
                self.consumer.poll(0 if loaded else self.settings.poll_interval)
            self._checkpoint(list(self.partitions))
        finally:
            self._finished.set()
            self.consumer.close()  # leaves the group

    @property
    def finished(self) -> bool:
        """Whether :meth:`run` has returned (or raised)."""
        return self._finished.is_set()

    def close(self) -> None:
        """Close the store and the Kafka clients (after :meth:`run` returned)."""
        self.log.close()
        self.store.close()

    # ------------------------------------------------------------------ assignment

    def _on_assign(self, consumer: Any, assigned: list[Any]) -> None:
        """Take the partitions (opened by the loop, not in this callback) and pause them:
        the group only assigns, :class:`KafkaEventLog` reads."""
        consumer.assign(assigned)
        consumer.pause(assigned)
        self.assigned |= {tp.partition for tp in assigned}
        logger.info("analytics: assigned partitions %s", sorted(self.assigned))

    def _on_revoke(self, consumer: Any, revoked: list[Any]) -> None:
        """Checkpoint the partitions leaving and let them go."""
        leaving = [tp.partition for tp in revoked]
        self._checkpoint([p for p in leaving if p in self.partitions])
        for partition in leaving:
            self.assigned.discard(partition)
            self.partitions.pop(partition, None)
            self.failed.pop(partition, None)
        logger.info("analytics: revoked partitions %s", sorted(leaving))

    def _open(self, partition: int) -> _Partition:
        """Steps 1-4 of the module docstring (blocks while it replays)."""
        newest = self.store.last_intents().get(partition)
        loaded = 0
        if newest is not None:
            intent, done = newest
            loaded = intent.end if done else intent.start
        boards, position = restore_boards(
            self.boards, self.engine_config, _AtMost(self.checkpoints, loaded), partition
        )
        restored = position.of(partition)
        screened = ScreenedPartition(self.log, partition, boards, restored)
        replayed = screened.replay(loaded, self.decoder)
        loader = AnalyticsLoader(
            self.store, screened, self.decoder, self.settings.batch_rows, partition=partition
        )
        loader.recover()
        logger.info(
            "analytics: partition %d loaded up to %d; boards restored at %d, %d events replayed",
            partition,
            loader.position.of(partition),
            restored,
            replayed,
        )
        due = time.monotonic() + self.settings.checkpoint_interval
        return _Partition(screened, loader, restored, restored, replayed, checkpoint_due=due)

    # ------------------------------------------------------------------ the loop

    def _round(self) -> int:
        """Open what is assigned and not open, load one batch of each partition, checkpoint
        what is due, commit positions. Returns the offsets loaded."""
        loaded = 0
        now = time.monotonic()
        for partition in sorted(self.assigned):
            failed = self.failed.get(partition)
            if failed is not None and now < failed.retry_at:
                continue
            try:
                state = self.partitions.get(partition)
                if state is None:
                    state = self.partitions[partition] = self._open(partition)
                events = state.loader.stats.events
                loaded += state.loader.load_batch()
                self.events_loaded += state.loader.stats.events - events
            except Exception as exc:  # rebuild the partition from a checkpoint, later
                self._fail(partition, exc)
                continue
            self.failed.pop(partition, None)
            newest = state.loader.loaded_through
            if newest is not None and (self._newest is None or newest > self._newest):
                self._newest = newest
        self._checkpoint([p for p, s in self.partitions.items() if s.checkpoint_due <= now])
        self._commit()
        return loaded

    def _fail(self, partition: int, exc: Exception) -> None:
        self.failures += 1
        self.partitions.pop(partition, None)  # its engine may be ahead of what is loaded
        before = self.failed.get(partition)
        wait = RETRY_SECONDS[0] if before is None else min(before.wait * 2, RETRY_SECONDS[1])
        problem = f"partition {partition}: {exc}"
        self.failed[partition] = _Failed(time.monotonic() + wait, wait, problem)
        logger.warning("analytics: %s (retried in %.0f s)", problem, wait)

    def _checkpoint(self, partitions: list[int]) -> None:
        """Save the engines of ``partitions`` that have no batch in flight and moved since
        their newest checkpoint. A failed save keeps the previous checkpoint."""
        for partition in partitions:
            state = self.partitions[partition]
            state.checkpoint_due = time.monotonic() + self.settings.checkpoint_interval
            at = state.screened.screened
            if state.loader.pending or at == state.checkpointed:
                continue
            data = state.screened.boards.snapshot()
            try:
                self.checkpoints.save(Checkpoint(partition, at, data))
            except Exception as exc:
                self.failures += 1
                logger.warning("analytics: partition %d: checkpoint failed: %r", partition, exc)
                continue
            state.checkpointed = at

    def _commit(self) -> None:
        """Commit each partition's loaded position to the group (for lag monitoring)."""
        offsets = []
        for partition, state in self.partitions.items():
            position = state.loader.position.of(partition)
            if position != state.committed:
                offsets.append(self._kafka.TopicPartition(self.settings.topic, partition, position))
                state.committed = position
        if offsets:
            try:
                self.consumer.commit(offsets=offsets, asynchronous=True)
            except self._kafka.KafkaException as exc:  # monitoring only
                logger.warning("analytics: offset commit failed: %r", exc)

    # ------------------------------------------------------------------ status

    def loaded_through(self) -> int | None:
        """The newest event time loaded, over every partition (epoch ms), or ``None``."""
        return self._newest

    def status(self) -> dict[str, Any]:
        """Per partition: loaded position, topic end, lag (end - loaded), checkpoint; the
        store's size; failures. Asks the broker for the ends (blocks briefly)."""
        partitions = dict(self.partitions)
        failed = dict(self.failed)
        try:
            ends: dict[int, int] | None = self.log.end().offsets
            problem = None
        except Exception as exc:
            ends, problem = None, f"cannot read the topic's end: {exc}"
        rows, size = self.store.size()
        progress = []
        for partition in sorted(self.assigned | set(partitions)):
            state = partitions.get(partition)
            loaded = None if state is None else state.loader.position.of(partition)
            end = None if ends is None else ends.get(partition)
            progress.append(
                {
                    "partition": partition,
                    "loaded": loaded,
                    "end": end,
                    "lag": None if loaded is None or end is None else max(0, end - loaded),
                    "checkpointed": None if state is None else state.checkpointed,
                    "events_refused": None if state is None else state.screened.events_refused,
                    "problem": failed[partition].problem if partition in failed else None,
                }
            )
        problems = [f.problem for f in failed.values()] + ([problem] if problem else [])
        return {
            "topic": self.settings.topic,
            "group": self.settings.group,
            "partitions": progress,
            "lag": sum(p["lag"] or 0 for p in progress),
            "loaded_through": self._newest,
            "events_loaded": self.events_loaded,
            "rows": rows,
            "bytes": size,
            "failures": self.failures,
            "problem": "; ".join(problems) if problems else None,
        }
