"""The scale-out worker: a member of a Kafka consumer group that keeps the declared boards
(:class:`~rankstream.boards.BoardSet`: one engine per board) of each assigned partition,
publishes their rankings to Redis and checkpoints them.

Kafka assigns partitions (we write no cluster manager). For each partition assigned:

1. restore the partition's newest readable checkpoint (or start empty) and seek the
   consumer to the offset it covers up to: the checkpoint's offset is the truth, the
   group's committed offset only shows lag;
2. consume in batches and apply (:mod:`.partition`);
3. every ``publish_interval`` (longer after a costly round, and while catching up with a
   backlog): tick every engine to one wall-clock cut and publish what changed
   (:mod:`.publisher`), then the partition manifests;
4. every ``checkpoint_interval``: save each partition's state with its next offset, then
   commit that offset. A failed save keeps the previous checkpoint and commits nothing.

On revocation it checkpoints what it holds and lets go. Boards keyed by another entity than
the topic's are repartitioned (:mod:`.repartition`): this worker produces their events to
their repartition topics and also runs, in threads, one downstream worker per such board
(the same code, a consumer group of its own, the board alone). Events of a partition are applied
in offset order, with wall times taken from the log, so a partition restored from a
checkpoint by any worker re-derives exactly the state the previous owner had: every event
in the topic counts exactly once, whoever applies it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rankstream.boards import VIDEOS, BoardSpec
from rankstream.checkpoint import Checkpoint, CheckpointStore
from rankstream.engine import EngineConfig
from rankstream.errors import ConfigError
from rankstream.optional import require
from rankstream.service.recovery import restore_boards
from rankstream.serving.layout import board_tag
from rankstream.worker.partition import BoardPublishers, PartitionState
from rankstream.worker.publisher import PartitionPublisher, PublishStats, send
from rankstream.worker.questions import QuestionPublisher
from rankstream.worker.repartition import (
    RepartitionProducer,
    encode_repartitioned,
    foreign_boards,
    repartition_group,
    repartition_topic,
    restore_repartitioned,
)

logger = logging.getLogger("rankstream.worker")

_CATCH_UP = 3  # under a backlog, apply 3x as long as a publish round takes between rounds


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """Where the worker reads and how often it publishes and checkpoints. ``board``: the
    Redis key namespace (the ``board`` setting; each board's keys are tagged by
    :func:`~rankstream.serving.layout.board_tag`); ``questions``: also publish rising
    lists and group leaders (:mod:`.questions`)."""

    bootstrap: str
    topic: str = "video_views"
    group: str = "rankstream"
    board: str = "views"
    publish_interval: float = 0.5
    checkpoint_interval: float = 30.0
    batch_size: int = 10_000
    depth: int = 100
    scope_kinds: frozenset[str] = frozenset({"all", "category", "region", "category_region"})
    hot_copies: int = 0
    session_timeout_ms: int = 10_000
    questions: bool = True
    name: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")


@dataclass(slots=True)
class WorkerStats:
    """Counters since start: consumed messages, publish and checkpoint figures, and the
    wall seconds spent in each step of the loop (where a slow worker's time goes)."""

    consumed: int = 0
    consume_seconds: float = 0.0  # in the consumer's poll, waiting or copying messages
    apply_seconds: float = 0.0  # decoding and applying events
    rank_seconds: float = 0.0  # computing the rankings and manifests to publish
    send_seconds: float = 0.0  # in Redis round trips
    checkpoint_seconds: float = 0.0
    checkpoints: int = 0
    checkpoint_failures: int = 0
    publish_failures: int = 0
    republished: int = 0
    publish: PublishStats = field(default_factory=PublishStats)


class Worker:
    """See the module docstring. :meth:`run` blocks until :meth:`stop` (any thread).
    ``boards``: the declared boards (default: the ``videos`` board); those keyed by another
    entity than the first board's are repartitioned, their downstream workers keeping
    checkpoints in ``repartition_checkpoints(board name)`` (:class:`ConfigError` if such a
    board is declared without it). ``downstream``: this worker counts a repartition topic
    (one board, de-duplicated by source offset)."""

    def __init__(
        self,
        settings: WorkerSettings,
        engine_config: EngineConfig,
        checkpoints: CheckpointStore,
        redis_client: Any,
        clock: Callable[[], int],
        boards: Sequence[BoardSpec] = (VIDEOS,),
        repartition_checkpoints: Callable[[str], CheckpointStore] | None = None,
        downstream: bool = False,
    ) -> None:
        kafka = require("confluent_kafka", "the scale-out worker")
        self.foreign = foreign_boards(boards)
        if self.foreign and repartition_checkpoints is None:
            names = ", ".join(b.name for b in self.foreign)
            raise ConfigError(f"boards {names} are repartitioned: give their checkpoints a place")
        self.settings = settings
        self.engine_config = engine_config
        self.boards = tuple(boards)
        self.published = tuple(b for b in self.boards if b not in self.foreign)
        self.repartition_checkpoints = repartition_checkpoints
        self.downstream = downstream
        self.forwarder: RepartitionProducer | None = None
        self.children: list[tuple[Worker, threading.Thread]] = []
        self.checkpoints = checkpoints
        self.redis = redis_client
        self.clock = clock
        self.partitions: dict[int, PartitionState] = {}
        self.stats = WorkerStats()
        self._stop = threading.Event()
        self._kafka = kafka
        self.consumer = kafka.Consumer(
            {
                "bootstrap.servers": settings.bootstrap,
                "group.id": settings.group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": settings.session_timeout_ms,
                "heartbeat.interval.ms": max(100, settings.session_timeout_ms // 5),
                "queued.min.messages": 200_000,
                "client.id": settings.name,
            }
        )

    # ------------------------------------------------------------------ lifecycle

    def stop(self) -> None:
        """Ask :meth:`run` to checkpoint, leave the group and return."""
        self._stop.set()

    def run(self) -> None:
        """Consume, apply, publish and checkpoint until :meth:`stop`."""
        settings = self.settings
        if self.foreign:
            self._start_downstream()
        self.consumer.subscribe(
            [settings.topic], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        last_checkpoint = last_round = time.monotonic()
        took = 0.0  # how long the last publish round took
        try:
            while not self._stop.is_set():
                self._check_children()
                # Publish once publish_interval has passed, or as long as the last round took
                # if that is longer (a round costs about the same however many events it
                # covers); while the consumer hands over full batches (a backlog), only
                # after _CATCH_UP times as long, so catching up is mostly applying. The
                # moment a batch is not full, the backlog is gone: publish when due.
                due = last_round + max(settings.publish_interval, took)
                wait = min(settings.publish_interval, max(0.0, due - time.monotonic()))
                polled = time.monotonic()
                messages = self.consumer.consume(settings.batch_size, wait)
                consumed = time.monotonic()
                self._apply(messages)
                now = time.monotonic()
                self.stats.consume_seconds += consumed - polled
                self.stats.apply_seconds += now - consumed
                backlog = len(messages) >= settings.batch_size
                catching_up = now < last_round + max(settings.publish_interval, took * _CATCH_UP)
                if now >= due and not (backlog and catching_up):
                    self._publish()
                    last_round = time.monotonic()
                    took = last_round - now
                if now - last_checkpoint >= settings.checkpoint_interval:
                    self._checkpoint(list(self.partitions.values()))
                    last_checkpoint = now
                    self.stats.checkpoint_seconds += time.monotonic() - now
            self._checkpoint(list(self.partitions.values()))
        finally:
            self.consumer.close()  # leaves the group: the others take the partitions over
            for child, thread in self.children:
                child.stop()
                thread.join(60)
            if self.forwarder is not None:
                self.forwarder.close()

    # ------------------------------------------------------------------ repartitioning

    def _start_downstream(self) -> None:
        """Create the repartition topics (the source topic's partition count) and start
        one downstream worker per board keyed by another entity, each in a thread."""
        settings = self.settings
        assert self.repartition_checkpoints is not None
        self.forwarder = RepartitionProducer(settings.bootstrap, settings.topic, settings.name)
        self.forwarder.ensure_topics(self.foreign, self._source_partitions())
        for spec in self.foreign:
            child_settings = dataclasses.replace(
                settings,
                topic=repartition_topic(settings.topic, spec.name),
                group=repartition_group(settings.group, spec.name),
                name=f"{settings.name}/{spec.name}",
            )
            child = Worker(
                child_settings,
                self.engine_config,
                self.repartition_checkpoints(spec.name),
                self.redis,
                self.clock,
                (spec,),
                downstream=True,
            )
            thread = threading.Thread(target=child.run, name=child_settings.name, daemon=True)
            thread.start()
            self.children.append((child, thread))

    def _source_partitions(self) -> int:
        metadata = self.consumer.list_topics(self.settings.topic, timeout=30)
        found = metadata.topics.get(self.settings.topic)
        if found is None or found.error is not None or not found.partitions:
            raise ConfigError(f"kafka: topic {self.settings.topic!r} not found")
        return len(found.partitions)

    def _check_children(self) -> None:
        """A downstream worker that died stops this one (its thread logged why)."""
        for child, thread in self.children:
            if not thread.is_alive() and not child._stop.is_set():
                raise RuntimeError(f"downstream worker {child.settings.name} stopped")

    # ------------------------------------------------------------------ assignment

    def _on_assign(self, consumer: Any, assigned: list[Any]) -> None:
        """Restore each newly assigned partition and seek to its checkpoint's offset."""
        for tp in assigned:
            state = self.partitions.get(tp.partition) or self._restore(tp.partition)
            self.partitions[tp.partition] = state
            tp.offset = state.next_offset
        consumer.assign(assigned)
        logger.info("assigned partitions %s", sorted(tp.partition for tp in assigned))

    def _on_revoke(self, consumer: Any, revoked: list[Any]) -> None:
        """Checkpoint the revoked partitions and let them go."""
        leaving = [
            self.partitions[tp.partition] for tp in revoked if tp.partition in self.partitions
        ]
        self._checkpoint(leaving)
        for state in leaving:
            del self.partitions[state.partition]
        logger.info("revoked partitions %s", sorted(tp.partition for tp in revoked))

    def _restore(self, partition: int) -> PartitionState:
        """The partition's newest readable checkpoint (an unreadable one, or one holding
        another partition's state, is skipped with a warning), or empty boards."""
        sources: dict[int, int] | None = None
        if self.downstream:
            boards, sources, position = restore_repartitioned(
                self.boards, self.engine_config, self.checkpoints, partition
            )
        else:
            boards, position = restore_boards(
                self.boards, self.engine_config, self.checkpoints, partition
            )
        offset = position.of(partition)
        settings = self.settings
        publishers = {}
        for spec in self.published:
            tag = board_tag(settings.board, spec.name)
            rankings = PartitionPublisher(
                tag,
                partition,
                tuple(w.name for w in spec.windows),
                settings.depth,
                settings.scope_kinds,
                settings.hot_copies,
            )
            questions = (
                QuestionPublisher(tag, partition, spec, settings.depth, settings.scope_kinds)
                if settings.questions
                else None
            )
            publishers[spec.name] = BoardPublishers(rankings, questions)
        state = PartitionState(partition, boards, publishers, offset, offset, sources=sources)
        if self.forwarder is not None:
            forwarder, names = self.forwarder, [b.name for b in self.foreign]
            state.forward = lambda p, run, offsets: forwarder.forward(names, p, run, offsets)
        return state

    # ------------------------------------------------------------------ the loop

    def _apply(self, messages: list[Any]) -> None:
        by_partition: dict[int, list[Any]] = {}
        for message in messages:
            if message.error() is not None:
                if message.error().code() != self._kafka.KafkaError._PARTITION_EOF:
                    logger.warning("consume: %s", message.error())
                continue
            by_partition.setdefault(message.partition(), []).append(message)
        for partition, batch in by_partition.items():
            state = self.partitions.get(partition)
            if state is None:  # revoked meanwhile
                continue
            state.apply(batch)
            self.stats.consumed += len(batch)

    def _publish(self) -> None:
        """Tick every board to one wall-clock cut, then publish what changed. With
        repartitioned boards, every event forwarded so far is acknowledged first, so a
        manifest never claims offsets whose forwarded events are not in Kafka."""
        if self.forwarder is not None:
            self.forwarder.flush()  # raises if the producer failed: the worker stops
        cut = self.clock()
        stats = self.stats.publish
        try:
            states = list(self.partitions.values())
            missing = self._manifests_missing(states)
            writes: dict[str, bytes] = {}
            ranking = time.monotonic()
            for state in states:
                state.boards.tick(cut)
                if state.partition in missing:
                    for publishers in state.publishers.values():
                        publishers.forget()  # Redis lost it: republish everything
                    state.touched = None
                    self.stats.republished += 1
                for name, publishers in state.publishers.items():
                    engine = state.boards.engines[name]
                    touched = None if state.touched is None else state.touched.get(name, set())
                    writes.update(publishers.rankings.writes(engine, touched))
                    if publishers.questions is not None:
                        writes.update(publishers.questions.writes(engine, touched))
            sending = time.monotonic()
            self.stats.rank_seconds += sending - ranking
            send(self.redis, writes, stats)
            self.stats.send_seconds += time.monotonic() - sending
            manifests = {}
            for state in states:
                state.end = self._end_offset(state.partition, state.next_offset)
                offsets = {
                    "applied": state.next_offset,
                    "checkpointed": state.checkpointed,
                    "end": state.end,
                }
                for name, publishers in state.publishers.items():
                    rankings = publishers.rankings
                    manifests[rankings.manifest_key] = rankings.manifest(
                        state.boards.engines[name],
                        offsets,
                        cut,
                        self.settings.name,
                        questions=publishers.questions is not None,
                    )
                state.touched = {}
            send(self.redis, manifests, stats)
            stats.rankings += len(writes)
            stats.rounds += 1
        except Exception as exc:  # Redis down: republish everything once it is back
            self.stats.publish_failures += 1
            logger.warning("publish failed, retrying: %r", exc)
            for state in self.partitions.values():
                for publishers in state.publishers.values():
                    publishers.forget()
                state.touched = None

    def _manifests_missing(self, states: list[PartitionState]) -> set[int]:
        """Partitions a manifest of which is gone from Redis (flushed or restarted empty)."""
        published = [
            (state.partition, p.rankings.manifest_key)
            for state in states
            for p in state.publishers.values()
            if p.rankings.bounds
        ]
        if not published:
            return set()
        pipe = self.redis.pipeline(transaction=False)
        for _, key in published:
            pipe.exists(key)
        found = pipe.execute()
        self.stats.publish.commands += len(published)
        return {p for (p, _), n in zip(published, found, strict=True) if not n}

    def _end_offset(self, partition: int, default: int) -> int:
        tp = self._kafka.TopicPartition(self.settings.topic, partition)
        try:
            _, high = self.consumer.get_watermark_offsets(tp, cached=True)
        except self._kafka.KafkaException:
            return default
        return int(high) if high is not None and high >= 0 else default

    def _checkpoint(self, states: list[PartitionState]) -> None:
        """Save each partition's state with its next offset, then commit those offsets.
        With repartitioned boards, every event forwarded so far is acknowledged first
        (:mod:`.repartition`, step 2)."""
        if self.forwarder is not None:
            self.forwarder.flush()
        committed = []
        for state in states:
            if state.next_offset == state.checkpointed and state.events_since_checkpoint == 0:
                continue
            data = (
                state.boards.snapshot()
                if state.sources is None
                else encode_repartitioned(state.sources, state.boards)
            )
            try:
                self.checkpoints.save(Checkpoint(state.partition, state.next_offset, data))
            except Exception as exc:  # keep the previous checkpoint; retried next interval
                self.stats.checkpoint_failures += 1
                logger.warning("partition %d: checkpoint failed: %r", state.partition, exc)
                continue
            state.checkpointed = state.next_offset
            state.events_since_checkpoint = 0
            self.stats.checkpoints += 1
            committed.append(
                self._kafka.TopicPartition(self.settings.topic, state.partition, state.next_offset)
            )
        if committed:
            try:
                self.consumer.commit(offsets=committed, asynchronous=False)
            except self._kafka.KafkaException as exc:  # lag reporting only: the checkpoint rules
                logger.warning("offset commit failed: %r", exc)
