"""Produce live traffic from :mod:`rankstream.generator.traffic` straight to a Kafka topic.

The Kafka counterpart of :mod:`rankstream.generator.sender`: where the sender posts batches
to an API replica, :func:`produce` writes every event as one message, as an API replica
would, so the workers can be fed without any HTTP in the way:

- key: the event's ``video_id`` (for a malformed row, the id it was made from; the ``game``
  and ``shop`` scenarios key by ``user_id``), partitioned by ``murmur2_random``, Kafka's
  Java default (:func:`rankstream.engine.partition.partition_of` gives the same partition);
- value: the event's JSON, malformed rows included (the workers count and skip them);
- timestamp: the wall time in ms when the batch was produced (the workers screen with it).

The producer is idempotent with ``acks=all``. A run, in order:

1. Build the traffic model (seeded catalogue) and a producer; check the topic exists.
2. Make batches at wall time, paced by a token bucket to ``rate`` events/s (0: as fast as
   librdkafka takes them), and hand every event to the producer. A full local queue blocks
   the loop until deliveries drain it.
3. Stop after ``duration`` seconds (or once ``rate * duration`` events are made when paced),
   flush (up to ``flush_timeout`` s) and return a :class:`ProduceReport`.

Ctrl-C once stops making batches and flushes what is queued; a second one abandons the
queue. Either way :func:`produce` returns its report with ``interrupted`` set.
"""

from __future__ import annotations

import math
import signal
import time
import urllib.parse
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import msgspec

from rankstream.errors import ConfigError, require
from rankstream.generator.live import LiveModel
from rankstream.generator.scenarios import DEFAULT_SCENARIO, RunSettings, scenario_named
from rankstream.generator.sender import MAX_ERROR_SAMPLES, TokenBucket
from rankstream.optional import require as require_module

MAX_BATCH = 100_000
"""The most events made (and handed to the producer) at one wall time."""
BATCHES_PER_SECOND = 20
"""When paced, batches are at most ``rate / 20`` events, so pacing stays smooth."""


@dataclass(frozen=True, slots=True)
class KafkaTarget:
    """Where to produce: ``kafka://HOST:PORT[,HOST:PORT...]/TOPIC``."""

    bootstrap: str
    topic: str

    @classmethod
    def parse(cls, target: str) -> KafkaTarget:
        """The target in ``target``, or :class:`ConfigError` if it is not one."""
        parts = urllib.parse.urlsplit(target)
        topic = parts.path.strip("/")
        if parts.scheme != "kafka" or not parts.netloc or not topic or "/" in topic:
            raise ConfigError(f"target must look like kafka://host:port/topic, got {target!r}")
        return cls(parts.netloc, topic)

    def __str__(self) -> str:
        return f"kafka://{self.bootstrap}/{self.topic}"


@dataclass(slots=True)
class ProduceReport:
    """What a run produced. ``produced``: events the broker acknowledged (``malformed``
    of them broken on purpose); ``failed``: events it did not (delivery errors, or still
    queued when the flush timed out or was abandoned). ``errors`` keeps the first
    :data:`~rankstream.generator.sender.MAX_ERROR_SAMPLES` delivery errors."""

    target: str
    produced: int = 0
    failed: int = 0
    malformed: int = 0
    batches: int = 0
    elapsed: float = 0.0
    interrupted: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def achieved_rate(self) -> float:
        """Acknowledged events per second of the run (flush included)."""
        return self.produced / self.elapsed if self.elapsed > 0 else 0.0

    def summary(self) -> str:
        """A few lines for a terminal."""
        lines = [
            f"produced {self.produced:,} events in {self.batches:,} batches to {self.target} "
            f"in {self.elapsed:.2f} s: {self.achieved_rate:,.0f} events/s",
            f"malformed on purpose {self.malformed:,} | not acknowledged {self.failed:,}",
        ]
        if self.interrupted:
            lines.append("interrupted: stopped early on Ctrl-C")
        lines.extend(f"  error: {e}" for e in self.errors)
        return "\n".join(lines)


def producer_config(bootstrap: str) -> dict[str, Any]:
    """librdkafka settings of the generator's producer (idempotent, ``acks=all``, Kafka's
    murmur2 partitioning; large batches, for throughput)."""
    return {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "partitioner": "murmur2_random",
        "linger.ms": 5,
        "batch.size": 1_000_000,
        "compression.type": "lz4",
        "queue.buffering.max.messages": 1_000_000,
        "delivery.report.only.error": True,
    }


def produce(
    target: str,
    rate: float,
    duration: float,
    videos: int,
    seed: int,
    *,
    batch_size: int = 10_000,
    malformed_share: float = 0.0,
    spike_at: float | None = None,
    diurnal: bool = False,
    flush_timeout: float = 30.0,
    scenario: str = DEFAULT_SCENARIO,
) -> ProduceReport:
    """Produce generated events of ``scenario`` (views by default) to ``target`` for
    ``duration`` seconds; blocks until the run ends (see the module docstring). ``rate`` is
    events/s (0: as fast as possible).

    Raises :class:`ConfigError` before producing anything for a bad argument, an unusable
    target or a topic the broker does not have; after that it never raises for delivery
    failures: they are counted in the report.
    """
    where = KafkaTarget.parse(target)
    checks = [
        (rate >= 0 and math.isfinite(rate), "rate must be >= 0 (0: as fast as possible)"),
        (duration > 0 and math.isfinite(duration), "duration must be > 0 seconds"),
        (1 <= batch_size <= MAX_BATCH, f"batch_size must be 1 to {MAX_BATCH}"),
        (flush_timeout >= 0, "flush_timeout must be >= 0"),
    ]
    require(checks)
    kafka = require_module("confluent_kafka", "a kafka:// target")
    created_ms = int(time.time() * 1000)
    settings = RunSettings(
        seed=seed,
        run=f"{seed:x}.{created_ms:x}.",
        start_ms=created_ms,
        videos=videos,
        malformed_share=malformed_share,
        spike_offset_s=min(60.0, duration / 3) if spike_at is None else spike_at,
    )
    # ConfigError for an unknown scenario or bad traffic settings
    model = scenario_named(scenario).build(settings)
    report = ProduceReport(target=str(where))

    def delivered(error: Any, _message: Any) -> None:  # only errors are reported
        report.failed += 1
        if len(report.errors) < MAX_ERROR_SAMPLES:
            report.errors.append(str(error))

    producer = kafka.Producer({**producer_config(where.bootstrap), "on_delivery": delivered})
    _check_topic(producer, where, kafka)
    run = _Run(producer, model.starting_at(int(time.time() * 1000)), where.topic, report)
    per_batch = batch_size if rate == 0 else min(batch_size, math.ceil(rate / BATCHES_PER_SECOND))
    total = None if rate == 0 or diurnal else round(rate * duration)
    with run.interrupts():
        run.loop(rate, duration, per_batch, total, diurnal)
        run.flush(flush_timeout)
    return report


def _check_topic(producer: Any, where: KafkaTarget, kafka: Any) -> None:
    try:
        metadata = producer.list_topics(where.topic, timeout=10)
    except kafka.KafkaException as exc:
        raise ConfigError(f"cannot reach Kafka at {where.bootstrap}: {exc}") from exc
    topic = metadata.topics.get(where.topic)
    if topic is None or topic.error is not None or not topic.partitions:
        raise ConfigError(
            f"topic {where.topic!r} not found at {where.bootstrap}; create it first "
            "(the generator never creates topics)"
        )


@dataclass(slots=True)
class _Run:
    producer: Any
    model: LiveModel
    topic: str
    report: ProduceReport
    handed: int = 0  # events given to the producer
    ctrl_c: int = 0
    started: float = field(default_factory=time.monotonic)

    def interrupts(self) -> _Interrupts:
        return _Interrupts(self)

    def loop(
        self, rate: float, duration: float, per_batch: int, total: int | None, diurnal: bool
    ) -> None:
        """Make and produce batches until the duration, the total or a Ctrl-C."""
        bucket = TokenBucket(rate) if rate > 0 else None
        deadline = self.started + duration
        encode = msgspec.json.encode
        index = 0
        while not self.ctrl_c:
            count = per_batch if total is None else min(per_batch, total - self.handed)
            now = time.monotonic()
            if count <= 0 or now >= deadline:
                return
            if bucket is not None:
                curve = self.model.rate_multiplier(int(time.time() * 1000)) if diurnal else 1.0
                wait = bucket.delay(count, now, rate * curve)
                if wait > 0:
                    self._sleep(min(wait, deadline - now))
                if self.ctrl_c or time.monotonic() >= deadline:
                    return
            wall = int(time.time() * 1000)
            batch = self.model.batch(index, count, wall)
            for key, event in zip(batch.keys, batch.events, strict=True):
                self._produce(key.encode(), encode(event), wall)
            self.report.malformed += len(batch.malformed)
            self.report.batches += 1
            self.handed += count
            index += 1

    def _produce(self, key: bytes, value: bytes, wall: int) -> None:
        while True:
            try:
                self.producer.produce(self.topic, value, key, timestamp=wall)
                return
            except BufferError:  # the local queue is full: serve deliveries to drain it
                self.producer.poll(0.05)

    def _sleep(self, seconds: float) -> None:
        # Serve delivery reports meanwhile (poll blocks at most `seconds`).
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0 and not self.ctrl_c:
            self.producer.poll(min(left, 0.05))

    def flush(self, timeout: float) -> None:
        """Wait for the broker's acknowledgements (until ``timeout`` or a second Ctrl-C)."""
        end = time.monotonic() + timeout
        while len(self.producer) and self.ctrl_c < 2 and time.monotonic() < end:
            self.producer.flush(min(0.1, max(0.0, end - time.monotonic())))
        report = self.report
        report.failed += len(self.producer)  # still queued: given up on
        report.produced = self.handed - report.failed
        report.elapsed = time.monotonic() - self.started


class _Interrupts:
    """SIGINT to the run while inside: the first stops making batches, the second abandons
    the flush (main thread only; elsewhere Ctrl-C is left alone)."""

    def __init__(self, run: _Run) -> None:
        self._run = run
        self._before: Any = None

    def _handle(self, _signum: int, _frame: FrameType | None) -> None:
        self._run.ctrl_c += 1
        self._run.report.interrupted = True

    def __enter__(self) -> None:
        try:
            self._before = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread
            self._before = None

    def __exit__(self, *_exc: object) -> None:
        if self._before is not None:
            signal.signal(signal.SIGINT, self._before)
