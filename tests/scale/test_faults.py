"""Faults the scale-out mode survives, with real processes, Kafka, Redis and S3."""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis
from confluent_kafka import Consumer, Producer, TopicPartition
from starlette.testclient import TestClient

from rankstream.api import create_app
from rankstream.engine import EngineConfig, ViewEvent
from rankstream.errors import RankingUnavailable
from rankstream.serving.redis import RedisRankingSource
from tests.engine.oracle import Oracle
from tests.scale.cluster import WorkerProcess, WorkerThread, scale_config, wait_applied

WINDOWS = tuple(w.name for w in EngineConfig().windows)
CATEGORIES = ("music", "games", "news")
REGIONS = ("US", "DE", "BR")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Feed:
    """Unique events produced to the topic as a producer would (keyed by video id, Kafka's
    murmur2 partitioner, the wall time as timestamp), and the oracle of what they count."""

    def __init__(self, bootstrap: str, topic: str, seed: int) -> None:
        self.topic = topic
        self.rng = random.Random(seed)
        self.oracle = Oracle()
        self.produced = 0
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "partitioner": "murmur2_random",
                "linger.ms": 2,
            }
        )

    def send(self, count: int) -> None:
        rng = self.rng
        wall = now_ms()
        events = []
        for _ in range(count):
            event = ViewEvent(
                video_id=f"v{int(rng.paretovariate(1.1)) % 200}",
                timestamp=wall - rng.choice([1, 60, 3600]) * rng.randint(0, 1000),
                category=rng.choice((*CATEGORIES, None)),
                region=rng.choice((*REGIONS, None)),
            )
            body = {"video_id": event.video_id, "ts": event.timestamp}
            body |= {"category": event.category} if event.category else {}
            body |= {"region": event.region} if event.region else {}
            self.producer.produce(
                self.topic, msgspec.json.encode(body), event.video_id.encode(), timestamp=wall
            )
            events.append(event)
        assert self.producer.flush(30) == 0
        self.oracle.count(events, wall)
        self.produced += count


def assert_exact(source: RedisRankingSource, oracle: Oracle) -> None:
    """Every window x scope the source answers equals the brute-force count over the bounds
    it states."""
    scopes = [(None, None), *((c, None) for c in CATEGORIES), *((None, r) for r in REGIONS)]
    scopes += [(c, r) for c in CATEGORIES for r in REGIONS]
    for window in WINDOWS:
        for category, region in scopes:
            got = source.top_k(window, 50, category, region)
            expected = oracle.top_k(got.start, got.end, 50, category, region)
            assert list(got.items) == expected, (window, category, region)


def test_killed_and_stopped_workers_lose_nothing_and_count_nothing_twice(
    kafka_broker: Any,
    kafka_topic: Callable[..., str],
    redis_server: Any,
    tmp_path: Path,
    worker_processes: Callable[[list[str], str], WorkerProcess],
) -> None:
    redis_server.flush()
    topic = kafka_topic(4)
    args = [
        "--kafka", f"{kafka_broker.bootstrap}/{topic}", "--redis", redis_server.url,
        "--checkpoints", str(tmp_path / "checkpoints"), "--session-timeout-ms", "6000",
        "--publish-interval", "0.2", "--checkpoint-interval", "1",
    ]  # fmt: skip
    feed = Feed(kafka_broker.bootstrap, topic, seed=5)
    client = redis.Redis.from_url(redis_server.url)
    source = RedisRankingSource(client, "views", lambda: 4, WINDOWS, 100)
    first = worker_processes(args, "w1")
    second = worker_processes(args, "w2")
    for _ in range(10):
        feed.send(500)
        time.sleep(0.2)
    wait_applied(client, "views", 4, feed.produced)
    time.sleep(1.5)  # a checkpoint, then more log after it

    feed.send(2000)
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL  # mid-stream, no goodbye
    for _ in range(5):
        feed.send(500)
    wait_applied(client, "views", 4, feed.produced)  # the other took its partitions over
    assert_exact(source, feed.oracle)

    worker_processes(args, "w1-again")
    feed.send(1000)
    assert second.stop(signal.SIGTERM) == 0  # graceful: checkpoints and leaves the group
    feed.send(1000)
    wait_applied(client, "views", 4, feed.produced)
    assert_exact(source, feed.oracle)
    client.close()


def test_a_flushed_redis_is_republished_and_answers_503_meanwhile(
    kafka_broker: Any, kafka_topic: Callable[..., str], redis_server: Any, tmp_path: Path
) -> None:
    redis_server.flush()
    topic = kafka_topic(2)
    config = scale_config(kafka_broker.bootstrap, topic, redis_server.url, tmp_path)
    feed = Feed(kafka_broker.bootstrap, topic, seed=6)
    client = redis.Redis.from_url(redis_server.url)
    source = RedisRankingSource(client, "views", lambda: 2, WINDOWS, 100)
    worker = WorkerThread(config, now_ms, "w")
    try:
        feed.send(3000)
        wait_applied(client, "views", 2, feed.produced)
        assert_exact(source, feed.oracle)
        for lose in (redis_server.flush, redis_server.restart_empty):
            with worker.held_before_publishing():
                lose()
                with pytest.raises(RankingUnavailable):  # never wrong numbers
                    source.top_k("all", 10)
            wait_applied(client, "views", 2, feed.produced, timeout=30)  # republished
            assert_exact(source, feed.oracle)
        assert worker.worker.stats.republished >= 2
    finally:
        worker.stop()
        client.close()


def test_a_failing_s3_keeps_the_previous_checkpoint_and_commits_nothing_past_it(
    kafka_broker: Any,
    kafka_topic: Callable[..., str],
    redis_server: Any,
    s3_server: Any,
    s3_bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")):
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    redis_server.flush()
    topic = kafka_topic(1)
    config = scale_config(
        kafka_broker.bootstrap,
        topic,
        redis_server.url,
        tmp_path,
        checkpoints=f"s3://{s3_bucket}/ckpt",
        s3_endpoint=s3_server.endpoint_url,
    )
    feed = Feed(kafka_broker.bootstrap, topic, seed=7)
    client = redis.Redis.from_url(redis_server.url)
    worker = WorkerThread(config, now_ms, "w")
    committed = Consumer({"bootstrap.servers": kafka_broker.bootstrap, "group.id": "rankstream"})
    try:
        feed.send(1000)
        wait_applied(client, "views", 1, feed.produced)
        store = worker.worker.checkpoints
        partition = [TopicPartition(topic, 0)]
        deadline = time.monotonic() + 30
        while store.offsets(0)[-1:] != [1000] or committed.committed(partition)[0].offset != 1000:
            assert time.monotonic() < deadline, "no checkpoint covered the first 1000 events"
            time.sleep(0.05)
        s3_server.deny_requests()
        try:
            feed.send(500)
            wait_applied(client, "views", 1, feed.produced)
            failures = worker.worker.stats.checkpoint_failures
            deadline = time.monotonic() + 30
            while worker.worker.stats.checkpoint_failures == failures:
                assert time.monotonic() < deadline, "no checkpoint was attempted"
                time.sleep(0.05)
            offsets = committed.committed(partition, timeout=10)
            assert offsets[0].offset == 1000  # nothing committed past the kept checkpoint
        finally:
            s3_server.allow_requests()
        deadline = time.monotonic() + 30
        while store.offsets(0)[-2:] != [1000, 1500]:  # retried at the next interval
            assert time.monotonic() < deadline, store.offsets(0)
            time.sleep(0.1)
        deadline = time.monotonic() + 30
        while committed.committed(partition, timeout=10)[0].offset != 1500:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        committed.close()
        worker.stop()
        client.close()


def test_workers_and_replicas_wait_out_a_paused_broker(
    kafka_broker: Any, kafka_topic: Callable[..., str], redis_server: Any, tmp_path: Path
) -> None:
    redis_server.flush()
    topic = kafka_topic(2)
    config = scale_config(kafka_broker.bootstrap, topic, redis_server.url, tmp_path)
    feed = Feed(kafka_broker.bootstrap, topic, seed=8)
    client = redis.Redis.from_url(redis_server.url)
    worker = WorkerThread(config, now_ms, "w")
    replica = TestClient(create_app(config.model_copy(update={"produce_timeout_ms": 2000})))
    stamp = now_ms()
    event = {"video_id": "during-pause", "ts": stamp, "category": "news", "region": "US"}
    try:
        replica.__enter__()
        feed.send(1000)
        wait_applied(client, "views", 2, feed.produced)
        kafka_broker.pause()
        try:
            refused = replica.post("/views", json=[event], headers={"Idempotency-Key": "p1"})
            assert refused.status_code == 503  # not acknowledged: the client retries
            assert replica.get("/health").status_code == 503
            assert worker.thread.is_alive()  # the worker waits, no crash loop
        finally:
            kafka_broker.resume()
        deadline = time.monotonic() + 60
        while True:  # the client's retry, with the same key, once the broker is back
            retry = replica.post("/views", json=[event], headers={"Idempotency-Key": "p1"})
            if retry.status_code == 202:
                break
            assert time.monotonic() < deadline, retry.text
            time.sleep(0.5)
        assert replica.get("/health").status_code == 200
        feed.oracle.count([ViewEvent("during-pause", stamp, "news", "US")], now_ms())
        feed.send(1000)
        # The refused copy may have reached the log after all: its derived event_id makes
        # the workers drop the retry's copy then, so it counts once either way.
        wait_applied(client, "views", 2, feed.produced + 1, at_least=True)
        assert_exact(RedisRankingSource(client, "views", lambda: 2, WINDOWS, 100), feed.oracle)
    finally:
        replica.__exit__(None, None, None)
        worker.stop()
        client.close()
