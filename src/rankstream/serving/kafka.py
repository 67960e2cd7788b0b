"""Ingest for a stateless API replica: validated events are produced to the Kafka topic.

``POST /views`` validates as the embedded service does, refuses events too far ahead of
this replica's clock (the workers would refuse them too), and produces every valid event
with its video id as key (Kafka's murmur2 partitioner, so all events of a video share a
partition) and the arrival time as the message timestamp (the workers screen with it). The
answer (``202``) goes out only after the broker acknowledged every event (idempotent
producer, ``acks=all``).

A retry with the same ``Idempotency-Key`` counts once, on any replica, even if the first
replica crashed: the key's stored answer is returned if there is one (Redis), and events
without an ``event_id`` get one derived from the key and their index, so the workers'
de-duplication drops a re-sent copy (within the de-dup horizon).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import msgspec
import numpy as np

from rankstream.engine import EngineConfig
from rankstream.errors import Overloaded, StorageFailure
from rankstream.idempotency import IdempotencyStore
from rankstream.optional import require
from rankstream.service.deadletters import DeadLetters, dead_letter
from rankstream.service.outcome import IngestOutcome
from rankstream.service.writer import AnswerEncoder, Submission

logger = logging.getLogger("rankstream.api.kafka")

_object = msgspec.json.Decoder(dict[str, Any])


def derived_event_id(key: str, index: int) -> str:
    """The ``event_id`` given to event ``index`` of a request with Idempotency-Key ``key``
    that has none of its own (stable across replicas and retries)."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    return f"idem:{digest}:{index}"


def with_event_id(raw: bytes, event_id: str) -> bytes:
    """``raw`` (one event's JSON object) with ``event_id`` set."""
    event = _object.decode(raw)
    event["event_id"] = event_id
    return msgspec.json.encode(event)


class KafkaIngest:
    """Produces requests' valid events to ``topic``; see the module docstring."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        keys: IdempotencyStore,
        engine_config: EngineConfig,
        encode_answer: AnswerEncoder,
        clock: Callable[[], int],
        dead_letters: DeadLetters,
        status: Callable[[], dict[str, Any]],
        max_queued_events: int = 500_000,
        delivery_timeout_ms: int = 30_000,
    ) -> None:
        kafka = require("confluent_kafka", "the scale-out API")
        self.topic = topic
        self.keys = keys
        self.engine_config = engine_config
        self.encode_answer = encode_answer
        self.clock = clock
        self.dead_letters = dead_letters
        self.max_queued_events = max_queued_events
        self._status = status
        self.producer = kafka.Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "partitioner": "murmur2_random",  # Kafka's Java default: see docs/ENGINE.md
                "message.timeout.ms": delivery_timeout_ms,
                "compression.type": "lz4",
            }
        )
        self.events_produced = 0
        self.delivery_failures = 0
        self._problem: str | None = None
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="rankstream-producer", daemon=True)
        self._poller.start()

    def close(self) -> None:
        """Deliver what is queued (up to 30 s), then stop."""
        self.producer.flush(30)
        self._stop.set()
        self._poller.join()

    def admit(self) -> None:
        """See :class:`~rankstream.serving.Ingest`."""
        queued = len(self.producer)
        if queued >= self.max_queued_events:
            raise Overloaded(f"{queued} events are waiting for the broker; retry shortly")

    def ingest_problem(self) -> str | None:
        """Why the last delivery failed, until one succeeds again."""
        return self._problem

    def status(self) -> dict[str, Any]:
        """The replica's own counters and the partitions' progress."""
        return {
            **self._status(),
            "events_accepted": self.events_produced,
            "events_rejected": self.dead_letters.total,
            "queue_depth": len(self.producer),
            "storage": self._problem,
            "healthy": self._problem is None,
        }

    def submit(self, submission: Submission) -> Future[tuple[bytes, bool]]:
        """See :class:`~rankstream.serving.Ingest`."""
        self.admit()
        future = submission.future
        key = submission.idempotency_key
        if key is not None:
            stored = self.keys.answers_for([key])
            if key in stored:
                future.set_result((stored[key], True))
                return future
        wall = self.clock()
        errors, letters, keep = self._screen(submission, wall)
        answer = self.encode_answer(IngestOutcome(len(keep), len(errors), 0, errors))
        self.dead_letters.extend(letters)
        if not keep:
            self._answer(future, key, answer, wall)
            return future
        pending = [len(keep)]
        failures: list[str] = []
        lock = threading.Lock()

        def delivered(error: Any, _message: Any) -> None:
            with lock:
                pending[0] -= 1
                if error is not None:
                    failures.append(str(error))
                done = pending[0] == 0
            if not done:
                return
            if failures:
                self.delivery_failures += 1
                self._problem = f"the broker did not acknowledge events: {failures[0]}"
                future.set_exception(StorageFailure(self._problem))
            else:
                self._problem = None
                self.events_produced += len(keep)
                self._answer(future, key, answer, wall)

        _, event_ids, entities = submission.routed.first_fits()
        for row in keep:
            raw = submission.raw[row]
            if key is not None and event_ids[row] is None:
                raw = with_event_id(raw, derived_event_id(key, submission.positions[row]))
            self._produce(entities[row], raw, wall, delivered)
        return future

    def _produce(self, video_id: str, raw: bytes, wall: int, delivered: Any) -> None:
        while True:
            try:
                self.producer.produce(
                    self.topic, raw, video_id.encode(), on_delivery=delivered, timestamp=wall
                )
                return
            except BufferError:  # the local queue is full: let deliveries drain it
                self.producer.poll(0.05)

    def _answer(
        self, future: Future[tuple[bytes, bool]], key: str | None, answer: bytes, wall: int
    ) -> None:
        if key is not None:
            try:
                self.keys.remember([(key, answer)], wall)
            except Exception as exc:  # the derived event ids still make a retry count once
                logger.warning("idempotency key not stored: %r", exc)
        future.set_result((answer, False))

    def _screen(
        self, submission: Submission, wall: int
    ) -> tuple[list[tuple[int, str]], list[Any], list[int]]:
        """Errors (with dead letters) and the rows to produce: too-new events are refused
        here, as the workers would."""
        config = self.engine_config
        latest = config.latest_accepted(wall)
        stamps, _, _ = submission.routed.first_fits()
        too_new = np.flatnonzero(stamps > latest).tolist()
        why = config.too_new_reason
        errors = sorted(
            [*submission.errors, *((submission.positions[row], why) for row in too_new)]
        )
        letters = list(submission.letters)
        letters += [dead_letter(submission.raw[row], "timestamp", why, wall) for row in too_new]
        refused = set(too_new)
        keep = [row for row in range(len(submission.raw)) if row not in refused]
        return errors, letters, keep

    def _poll(self) -> None:
        """Serve delivery reports (they resolve the requests' futures) until closed."""
        while not self._stop.is_set():
            self.producer.poll(0.1)
