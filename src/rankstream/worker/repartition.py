"""Boards keyed by another entity than the topic's: a repartition topic per board.

A board whose entity is not the topic's key (teams, when the topic is keyed by user) has
its entities' events spread over every partition, so nothing of it could be merged exactly.
As Kafka Streams does, its events are repartitioned through Kafka:

1. **Upstream**, the worker of a source partition decides each run with *all* boards (the
   one rule, :func:`~rankstream.worker.boards.decide_run`) and produces every accepted event
   that fits such a board to ``<topic>-repartition-<board>`` (:func:`repartition_topic`,
   created with the source topic's partition count), keyed by the board's entity (Kafka's
   murmur2 partitioner), timestamped with the run's wall time, its ``event_id`` set to
   ``rp:<source partition>:<source offset>`` (unique, and the same each time the offset is
   replayed) and the source position in the :data:`SOURCE_HEADER` header. The producer is
   idempotent with no message timeout and the gapless guarantee: what it delivers of one
   source partition reaches each repartition partition in source offset order, without a
   gap (a gap would stop the worker).
2. Before a source partition's checkpoint is saved, and before its manifest is published,
   every event produced for it is acknowledged (:meth:`RepartitionProducer.flush`): a
   checkpoint at offset ``C`` means all repartitioned events of offsets below ``C`` are in
   the repartition topics.
3. **Downstream**, the same worker code consumes each repartition topic in a consumer group
   of its own (``<group>-repartition-<board>``) with a BoardSet holding only that board,
   publishing it as any board. Each downstream partition remembers, per source partition,
   the highest source offset it applied (kept in its checkpoint with the board), and skips
   a message at or below it.

**Exactly once.** A source partition restored from checkpoint ``C`` after a crash re-decides
the same runs and re-produces identical messages from ``C`` on; by 2. everything below
``C`` was already in the topic, so in each repartition partition a source partition's
messages form sequences each increasing from some point at or below where the previous one
reached: the downstream high-water mark applies every source offset exactly once, whoever
produced it, even a *zombie* worker producing beside the new owner (its messages are the
same). Downstream crashes are ordinary worker crashes: checkpoint, then replay.

**Cost.** Every event of such a board is written to Kafka and read once more (broker
traffic and storage for it double), upstream keeps the board's engine too (for the one
decision: duplicates and limits are decided with every board), and its answers trail the
source by one more consume-apply-publish step. Capacity limits apply again downstream, per
repartition partition: an event over one there is not counted on that board (counted in
the downstream's ``over_capacity``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import msgspec

from rankstream.boards import BoardSet, BoardSpec
from rankstream.checkpoint import CheckpointStore
from rankstream.engine import ACCEPTED, EngineConfig
from rankstream.errors import ConfigError, SnapshotError
from rankstream.log import LogPosition
from rankstream.optional import require
from rankstream.worker.boards import DecidedRun, topic_key

logger = logging.getLogger("rankstream.worker")

SOURCE_HEADER = "rs-source"
"""Header of a repartitioned message: ``<source partition>:<source offset>`` (ASCII)."""

_raw_object = msgspec.json.Decoder(dict[str, msgspec.Raw])


def repartition_topic(topic: str, board: str) -> str:
    """The repartition topic of ``board`` for source ``topic``."""
    return f"{topic}-repartition-{board}"


def repartition_group(group: str, board: str) -> str:
    """The consumer group that counts ``board`` from its repartition topic."""
    return f"{group}-repartition-{board}"


def with_event_id(raw: bytes, event_id: str) -> bytes:
    """``raw`` (an event's JSON object) with ``event_id`` set, every other value kept
    byte for byte (numbers are not re-formatted)."""
    event = _raw_object.decode(raw)
    event["event_id"] = msgspec.Raw(msgspec.json.encode(event_id))
    return msgspec.json.encode(event)


def source_of(message: Any) -> tuple[int, int] | None:
    """The source (partition, offset) of a repartitioned message, ``None`` if it has none."""
    for name, value in message.headers() or ():
        if name == SOURCE_HEADER and value:
            partition, _, offset = bytes(value).decode("ascii").partition(":")
            return int(partition), int(offset)
    return None


def foreign_boards(boards: Sequence[BoardSpec]) -> tuple[BoardSpec, ...]:
    """The boards whose entity is not the topic's key (:func:`~.boards.topic_key`)."""
    key = topic_key(boards)
    return tuple(b for b in boards if b.entity != key)


class RepartitionProducer:
    """Produces accepted events of boards keyed by another entity to their repartition
    topics (step 1 of the module docstring). Thread-safe as confluent-kafka's producer."""

    def __init__(self, bootstrap: str, topic: str, name: str) -> None:
        self._kafka = require("confluent_kafka", "the scale-out worker")
        self.bootstrap = bootstrap
        self.topic = topic
        self.failure: str | None = None
        self.produced = 0
        self.producer = self._kafka.Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "enable.gapless.guarantee": True,
                "acks": "all",
                "message.timeout.ms": 0,  # never give a message up: no gap, ever
                "linger.ms": 5,
                "partitioner": "murmur2_random",
                "compression.type": "lz4",
                "client.id": f"{name}-repartition",
                "error_cb": self._error,
            }
        )

    def _error(self, error: Any) -> None:
        if error.fatal():
            self.failure = f"repartition producer: {error.str()}"
            logger.error("%s", self.failure)

    def _delivered(self, error: Any, _message: Any) -> None:
        if error is not None:
            self.failure = f"repartition producer: a message was not delivered: {error}"

    def ensure_topics(self, boards: Sequence[BoardSpec], partitions: int) -> None:
        """Create the boards' repartition topics with ``partitions`` partitions where
        missing; :class:`ConfigError` if one exists with another count (the replicas read
        every board over the source topic's partition count)."""
        admin_module = require("confluent_kafka.admin", "the scale-out worker")
        admin = admin_module.AdminClient({"bootstrap.servers": self.bootstrap})
        names = [repartition_topic(self.topic, b.name) for b in boards]
        existing = admin.list_topics(timeout=30).topics
        wanted = [
            admin_module.NewTopic(
                n,
                num_partitions=partitions,
                replication_factor=-1,  # the broker's default
                config={"message.timestamp.type": "CreateTime"},  # the run's wall time
            )
            for n in names
            if n not in existing
        ]
        if wanted:
            for name, future in admin.create_topics(wanted, operation_timeout=30).items():
                try:
                    future.result()
                except self._kafka.KafkaException as exc:
                    if exc.args[0].code() != self._kafka.KafkaError.TOPIC_ALREADY_EXISTS:
                        raise ConfigError(
                            f"cannot create repartition topic {name}: {exc}"
                        ) from None
        for name in names:
            deadline = time.monotonic() + 30
            while True:  # a topic just created (here or by another worker) takes a moment
                found = admin.list_topics(name, timeout=30).topics.get(name)
                count = 0 if found is None or found.error else len(found.partitions)
                if count or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            if count != partitions:
                raise ConfigError(
                    f"repartition topic {name} has {count} partitions; it must have the"
                    f" source topic's {partitions}: delete it or give it {partitions}"
                )

    def forward(
        self, boards: Sequence[str], partition: int, run: DecidedRun, offsets: list[int]
    ) -> None:
        """Queue the accepted events of ``run`` (messages at ``offsets`` of source
        ``partition``) that fit ``boards``, each to its board's repartition topic."""
        accepted = run.decided.status == ACCEPTED
        for board in boards:
            route = run.routed.routes.get(board)
            if route is None:
                continue
            keys = route.batch.video_ids  # the board's entity of each fitting event
            for position, row in enumerate(route.rows):
                if accepted[row]:
                    self.produce(
                        board, keys[position], run.raws[row], run.wall, partition, offsets[row]
                    )

    def produce(
        self, board: str, key: str, raw: bytes, wall: int, partition: int, offset: int
    ) -> None:
        """Queue one accepted event of source ``partition`` at ``offset`` for ``board``."""
        value = with_event_id(raw, f"rp:{partition}:{offset}")
        headers = [(SOURCE_HEADER, f"{partition}:{offset}".encode("ascii"))]
        topic = repartition_topic(self.topic, board)
        while True:
            try:
                self.producer.produce(
                    topic,
                    value,
                    key.encode(),
                    timestamp=wall,
                    headers=headers,
                    on_delivery=self._delivered,
                )
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                self.producer.poll(0.05)
        self.produced += 1

    def flush(self) -> None:
        """Block until every queued event is acknowledged (step 2 of the module
        docstring); raises :class:`RuntimeError` if the producer failed (the worker must
        stop: its partitions are re-decided by another from their checkpoints)."""
        while self.producer.flush(1.0):
            if self.failure:
                break
        if self.failure:
            raise RuntimeError(self.failure)

    def close(self) -> None:
        self.producer.flush(30)


class RepartitionedState(msgspec.Struct, array_like=True, tag="repartitioned-1"):
    """A downstream partition's checkpoint: the highest source offset applied per source
    partition, and the board's snapshot."""

    sources: dict[int, int]
    boards: bytes


def encode_repartitioned(sources: dict[int, int], boards: BoardSet) -> bytes:
    """A downstream partition's checkpoint data."""
    return msgspec.msgpack.encode(RepartitionedState(dict(sources), boards.snapshot()))


def restore_repartitioned(
    boards: Sequence[BoardSpec],
    config: EngineConfig,
    checkpoints: CheckpointStore,
    partition: int,
) -> tuple[BoardSet, dict[int, int], LogPosition]:
    """A downstream partition's newest readable checkpoint (its board, source high-water
    marks and position), or an empty board at the start; an unreadable checkpoint is
    skipped with a warning, as the workers' are."""
    for checkpoint in checkpoints.newest_first(partition):
        try:
            saved = msgspec.msgpack.decode(checkpoint.data, type=RepartitionedState)
            restored = BoardSet.restore(saved.boards, boards, config)
        except (msgspec.DecodeError, SnapshotError) as exc:
            logger.warning(
                "skipping unreadable repartition checkpoint of partition %d at %d: %s",
                partition,
                checkpoint.offset,
                exc,
            )
            continue
        if restored.partition == partition:
            return restored, dict(saved.sources), checkpoint.position
    return BoardSet(boards, config, partition=partition), {}, LogPosition()
