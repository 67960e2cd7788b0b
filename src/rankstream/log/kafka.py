"""The event log as a Kafka topic: one message per event, as the API replicas produce them.

Layout: each accepted event is one message; key = its entity id (``video_id``), so
Kafka's murmur2 partitioner (``murmur2_random``, the Java clients' default) puts every
event of a video in one partition; value = the event's JSON as received; timestamp = the
wall time it was screened at (``GroupRecord.wall_time``). Workers read the same messages
(:mod:`rankstream.worker.partition`), so whatever this log appends, they count.

How it differs from the embedded SQLite log (see :class:`~rankstream.log.EventLog`):

1. Not atomic. :meth:`KafkaEventLog.append` produces and waits until the broker
   acknowledged every event (idempotent producer, ``acks=all``), so an acknowledged
   append stays even if the :meth:`~KafkaEventLog.transaction` block around it raises
   later: Kafka cannot take a message back. Nor is it atomic with other stores (Redis
   idempotency keys): a crash between the two leaves events without their key, which the
   events' derived ``event_id`` covers (:mod:`rankstream.serving.kafka`). An append that
   raises may still have delivered some of its events.
2. Events, not records. A record's events spread over partitions, and :meth:`read` groups
   each partition's messages into runs of equal timestamps (the workers' rule), so batches
   do not match appended records one to one. A record's refusal counts (duplicates, too
   new, over capacity) and its dead letters are not kept: workers decide duplicates
   themselves, and API replicas keep dead letters in memory.
3. Retention is the broker's: :meth:`reclaim` does nothing, records go by the topic's
   ``retention.ms`` / ``retention.bytes``. A position older than the oldest kept message
   reads from the oldest kept one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Generator, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import msgspec

from rankstream.engine.measure import VIEWS, Measure
from rankstream.engine.wire import Decoder, EventDecoder
from rankstream.errors import StorageFailure
from rankstream.log.messages import arrival_time, screening_time
from rankstream.log.position import LogPosition
from rankstream.log.protocol import GroupRecord
from rankstream.log.records import DeadLetter, LoggedBatch
from rankstream.optional import require

logger = logging.getLogger("rankstream.log.kafka")

_raw_list = msgspec.json.Decoder(list[msgspec.Raw])


class KafkaEventLog:
    """The log on ``topic`` of the brokers at ``bootstrap``; see the module docstring.

    One writer at a time (:meth:`transaction`, :meth:`append`); :meth:`read`, :meth:`end`
    and :meth:`probe` may run beside it (each read has its own consumer). ``measure``
    names the entity field that keys the messages. ``delivery_timeout_ms`` bounds how long
    an append waits for the broker; ``request_timeout`` (seconds) bounds metadata and
    watermark requests and a read that stops making progress; ``producer_config`` adds to
    or overrides the producer's librdkafka settings.
    """

    atomic = False  # see the module docstring, 1.
    keeps_refusals = False  # see 2.

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        measure: Measure = VIEWS,
        delivery_timeout_ms: int = 30_000,
        request_timeout: float = 10.0,
        max_batch: int = 10_000,
        producer_config: Mapping[str, Any] | None = None,
    ) -> None:
        self._kafka = require("confluent_kafka", "the Kafka event log")
        self.bootstrap = bootstrap
        self.topic = topic
        self.delivery_timeout_ms = delivery_timeout_ms
        self.request_timeout = request_timeout
        self.max_batch = max_batch
        self.producer_config = dict(producer_config or {})
        self._keys = EventDecoder(measure)
        self._fatal: str | None = None  # set by the producer's error callback
        self._producer = self._new_producer()
        self._metadata = self._new_consumer()  # watermarks and metadata, under _lock
        self._lock = threading.Lock()
        errors = self._kafka.KafkaError
        self._leader_moved = {
            errors.NOT_LEADER_FOR_PARTITION,
            errors.LEADER_NOT_AVAILABLE,
            errors.UNKNOWN_TOPIC_OR_PART,  # a new topic, not yet on every broker
        }
        self._written: dict[int, int] | None = None  # partition -> offset after our last
        self._closed = False

    def _new_producer(self) -> Any:
        return self._kafka.Producer(
            {
                "bootstrap.servers": self.bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "partitioner": "murmur2_random",  # Kafka's Java default: see docs/ENGINE.md
                "message.timeout.ms": self.delivery_timeout_ms,
                "compression.type": "lz4",
                "error_cb": self._on_error,
                **self.producer_config,
            }
        )

    def _on_error(self, error: Any) -> None:
        if error.fatal():
            self._fatal = error.str()

    def _new_consumer(self) -> Any:
        return self._kafka.Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": "rankstream-log-reader",  # required by the client; never joined
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",  # a position older than retention
                "socket.timeout.ms": max(1, int(self.request_timeout * 1000)),
            }
        )

    # ------------------------------------------------------------------ writing

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A block after which every append made in it is acknowledged by the broker
        (each :meth:`append` waits for its own). Not atomic: appends acknowledged before
        the block raised stay (module docstring, 1.)."""
        self._check_open()
        yield

    def append(self, record: GroupRecord) -> LogPosition | None:
        """Produce each event of ``record`` as one message and block until the broker
        acknowledged them all; raises :class:`StorageFailure` with the broker's reason if
        one was not (some may have been: not atomic).

        Returns the position after the record: for each partition, the offset after this
        log's newest acknowledged message, or after the partition's end when this log
        first appended. With one writer that is the position after every record so far;
        with several, reading from it may also yield others' messages appended
        concurrently, never miss one appended after it returned. ``None`` without a
        payload: the dead letters of the record are not kept (module docstring, 2.)."""
        self._check_open()
        if record.payload is None:
            return None
        raws = [bytes(raw) for raw in _raw_list.decode(record.payload)]
        decoded = self._keys.decode(raws)
        if decoded.errors:  # a caller's bug: its events were screened before the append
            raise ValueError(f"record holds an invalid event: {decoded.errors[0][2]}")
        if self._written is None:
            self._written = dict(self.end().offsets)
        delivered: dict[int, int] = {}
        failures: list[str] = []

        def on_delivery(error: Any, message: Any) -> None:
            if error is not None:
                failures.append(error.str())
            else:
                partition = message.partition()
                delivered[partition] = max(delivered.get(partition, 0), message.offset() + 1)

        for video_id, raw in zip(decoded.batch.video_ids, raws, strict=True):
            self._produce(raw, video_id.encode(), record.wall_time, on_delivery)
        self._await_deliveries(len(raws), failures)
        for partition, offset in delivered.items():
            self._written[partition] = max(self._written.get(partition, 0), offset)
        return LogPosition(dict(self._written))

    def _produce(self, value: bytes, key: bytes, timestamp: int, on_delivery: Any) -> None:
        while True:
            try:
                self._producer.produce(
                    self.topic, value, key, on_delivery=on_delivery, timestamp=timestamp
                )
                return
            except BufferError:  # the local queue is full: let deliveries drain it
                self._producer.poll(0.05)
            except self._kafka.KafkaException as exc:
                fatal = self._replace_if_fatal()
                raise StorageFailure(
                    f"cannot produce to Kafka topic {self.topic}: {exc}{fatal}"
                ) from exc

    def _await_deliveries(self, count: int, failures: list[str]) -> None:
        timeout = self.delivery_timeout_ms / 1000 + self.request_timeout
        waiting = self._producer.flush(timeout)
        fatal = self._replace_if_fatal()
        if failures:
            raise StorageFailure(
                f"the Kafka broker did not acknowledge {len(failures)} of {count} events"
                f" for topic {self.topic}: {failures[0]}{fatal}"
            )
        if waiting:
            raise StorageFailure(
                f"{waiting} events for topic {self.topic} were not acknowledged within"
                f" {timeout:.0f} s (they may still be delivered)"
            )

    def _replace_if_fatal(self) -> str:
        """After a fatal error an idempotent producer refuses everything: start a new one
        (what the old one still held is lost, as a failed append may lose it)."""
        if self._fatal is None:
            return ""
        why, self._fatal = self._fatal, None
        self._producer = self._new_producer()
        return f" (the producer was restarted after a fatal error: {why})"

    # ------------------------------------------------------------------ reading

    def read(
        self, start: LogPosition, decoder: Decoder, *, until: LogPosition | None = None
    ) -> Iterator[LoggedBatch]:
        """Every message at or after ``start`` up to each partition's end at call time, in
        offset order per partition (partitions interleave), as runs of equal timestamps
        (at most ``max_batch`` events; wall time = the timestamp, the workers' rule). A
        message that is not a valid event is skipped with a warning, as the workers skip
        it; its run's offsets still cover it. Raises :class:`StorageFailure` if the broker
        stops answering for ``request_timeout``.

        ``until``: read no message at or after it, and only the partitions it names (a run
        is cut there, as at the end), so a range read again later has the same cut."""
        runs = self.read_runs(start, until=until)
        try:
            for run in runs:
                yield run.decoded(decoder)
        finally:
            runs.close()

    def read_runs(
        self, start: LogPosition, *, until: LogPosition | None = None
    ) -> Generator[RawRun, None, None]:
        """As :meth:`read`, the runs undecoded: each message's value as it is, valid or not
        (for readers that decide by other rules, e.g. several boards')."""
        ends = {
            p: end if until is None else min(end, until.of(p))
            for p, end in self.end().offsets.items()
        }
        ends = {p: end for p, end in ends.items() if start.of(p) < end}
        if not ends:
            return
        consumer = self._new_consumer()
        try:
            tp = self._kafka.TopicPartition
            consumer.assign([tp(self.topic, p, start.of(p)) for p in sorted(ends)])
            runs = {p: _Run(p, start.of(p)) for p in ends}  # `after`: a lower bound (gaps)
            stalled = time.monotonic() + self.request_timeout
            while ends:
                # consume() waits until it has as many messages as asked, or the timeout:
                # ask for what is left at most (a partition's EOF answers too).
                left = sum(end - runs[p].after for p, end in ends.items())
                messages = consumer.consume(max(1, min(self.max_batch, left)), 0.1)
                if messages:
                    stalled = time.monotonic() + self.request_timeout
                elif time.monotonic() > stalled:
                    raise StorageFailure(
                        f"reading Kafka topic {self.topic}: no answer within"
                        f" {self.request_timeout} s (partitions {sorted(ends)} unfinished)"
                    )
                for message in messages:
                    partition = message.partition()
                    if partition not in ends:
                        continue
                    run, end = runs[partition], ends[partition]
                    error = message.error()
                    if error is not None:
                        if error.code() != self._kafka.KafkaError._PARTITION_EOF:
                            raise StorageFailure(f"reading Kafka topic {self.topic}: {error.str()}")
                        done = message.offset() >= end
                    elif message.offset() >= end:  # appended after the call
                        done = True
                    else:
                        stamp = arrival_time(message)
                        if run.raws and (stamp != run.wall or len(run.raws) >= self.max_batch):
                            yield run.take()
                        run.add(message.offset(), stamp, message.value() or b"")
                        done = run.after >= end
                    if done:
                        if run.raws:
                            yield run.take()
                        del ends[partition]
                        consumer.pause([tp(self.topic, partition)])
        finally:
            consumer.close()

    def end(self) -> LogPosition:
        """Every partition's high watermark: the offset its next message gets. Retries
        what the broker calls retriable (a leader just elected) for ``request_timeout``."""
        with self._lock:
            self._check_open()
            try:
                return LogPosition({p: self._high_watermark(p) for p in self._partitions()})
            except self._kafka.KafkaException as exc:
                raise StorageFailure(f"cannot read Kafka topic {self.topic}'s end: {exc}") from exc

    def _high_watermark(self, partition: int) -> int:
        give_up = time.monotonic() + self.request_timeout
        tp = self._kafka.TopicPartition(self.topic, partition)
        while True:
            try:
                _, high = self._metadata.get_watermark_offsets(
                    tp, timeout=self.request_timeout, cached=False
                )
                return int(high)
            except self._kafka.KafkaException as exc:
                error = exc.args[0]
                # librdkafka does not flag a leader change as retriable here
                moved = error.code() in self._leader_moved
                if not (error.retriable() or moved) or time.monotonic() > give_up:
                    raise
                time.sleep(0.05)

    def _partitions(self) -> list[int]:
        metadata = self._metadata.list_topics(self.topic, timeout=self.request_timeout)
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            why = "no such topic" if topic is None else topic.error or "no partitions"
            raise StorageFailure(f"Kafka topic {self.topic} is not available: {why}")
        return sorted(topic.partitions)

    # ------------------------------------------------------------------ the rest

    def reclaim(self, before: LogPosition) -> None:
        """Nothing: the topic's retention settings decide when messages go."""

    def dead_letters(self) -> tuple[list[DeadLetter], dict[str, int]]:
        """None kept: API replicas keep dead letters in memory (module docstring, 2.)."""
        return [], {}

    def probe(self, at: int) -> None:
        """A metadata request for the topic (nothing is written); raises
        :class:`StorageFailure` if the broker does not answer within ``request_timeout``
        or the topic is missing."""
        with self._lock:
            self._check_open()
            try:
                self._partitions()
            except self._kafka.KafkaException as exc:
                raise StorageFailure(f"the Kafka broker does not answer: {exc}") from exc

    def size_bytes(self) -> int:
        """0: the broker's disk use is not this process's to report."""
        return 0

    def close(self) -> None:
        """Deliver what is queued (up to ``delivery_timeout_ms``), then let go of the
        clients. Idempotent; afterwards every call raises :class:`StorageFailure`."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._producer.flush(self.delivery_timeout_ms / 1000)
            self._metadata.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StorageFailure(f"the Kafka log of topic {self.topic} is closed")


class _Run:
    """Consecutive messages of one partition with one timestamp, being gathered."""

    def __init__(self, partition: int, after: int) -> None:
        self.partition = partition
        self.first = self.after = after  # the run's first offset; the offset after it
        self.wall = 0
        self.raws: list[bytes] = []

    def add(self, offset: int, wall: int, raw: bytes) -> None:
        if not self.raws:
            self.first, self.wall = offset, wall
        self.raws.append(raw)
        self.after = offset + 1

    def take(self) -> RawRun:
        """The run gathered so far; empties it."""
        raws, self.raws = self.raws, []
        return RawRun(self.partition, self.first, self.after, self.wall, raws)


class RawRun(msgspec.Struct, frozen=True):
    """Consecutive messages of one partition with one timestamp, undecoded: at offsets
    ``offset`` up to (before) ``next_offset``, each message's value in ``raws``;
    ``arrival``: their timestamp (:func:`~rankstream.log.messages.arrival_time`)."""

    partition: int
    offset: int
    next_offset: int
    arrival: int
    raws: list[bytes]

    def decoded(self, decoder: Decoder) -> LoggedBatch:
        """The run as a batch (its invalid events skipped, with a warning). Its wall time
        follows :mod:`rankstream.log.messages`, as the workers' does."""
        decoded = decoder.decode(self.raws)
        if decoded.errors:
            logger.warning(
                "Kafka partition %d: %d invalid events skipped at offsets %d..%d (first: %s)",
                self.partition,
                len(decoded.errors),
                self.offset,
                self.next_offset - 1,
                decoded.errors[0][2],
            )
        wall = screening_time(self.arrival, decoded.batch)
        return LoggedBatch(
            self.partition, self.offset, self.next_offset, wall, decoded.batch, decoded.raw
        )
