"""The scale-out analytics loader, with real processes, a real Kafka broker, Redis and chDB.

Events are produced to the topic as API replicas produce them (keyed by video id, Kafka's
murmur2 partitioner, the arrival time as timestamp), including what the workers refuse:
re-sent events with the same ``event_id`` and events too far ahead of their arrival. The
oracle (:class:`tests.engine.oracle.Oracle`) decides each event by the documented rules;
the store must hold exactly the events it accepts.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from confluent_kafka import Producer
from starlette.testclient import TestClient

from rankstream.api import create_app
from rankstream.engine import ViewEvent
from tests.engine.oracle import Oracle
from tests.scale.cluster import scale_config
from tests.scale.test_boards import TOML as GAME_TOML
from tests.scale.test_boards import GameFeed
from tests.servers import free_port

MAX_QUERY_MS = 4_102_444_800_000
PARTITIONS = 3


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Feed:
    """Events produced to the topic, one arrival time per :meth:`send`, and the oracle of
    which of them the workers count. Every event with an id has a unique one, except the
    re-sent copies (same video, so same partition, within the de-dup horizon)."""

    def __init__(self, bootstrap: str, topic: str, seed: int) -> None:
        self.topic = topic
        self.rng = random.Random(seed)
        self.oracle = Oracle()
        self.produced = 0
        self.sent: list[ViewEvent] = []
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
            roll = rng.random()
            retried = [e for e in self.sent[-200:] if e.event_id is not None]
            if roll < 0.1 and retried:  # a retried duplicate
                events.append(rng.choice(retried))
                continue
            ahead = roll < 0.15  # too new: more than max_skew (5 min) ahead of arrival
            events.append(
                ViewEvent(
                    video_id=f"v{int(rng.paretovariate(1.2)) % 40}",
                    timestamp=wall + 600_000 if ahead else wall - rng.randrange(3 * 86_400_000),
                    category=rng.choice(("music", "games", None)),
                    region=rng.choice(("US", "JP", None)),
                    event_id=None if roll > 0.9 else f"e{self.produced + len(events)}",
                )
            )
        for event in events:
            body: dict[str, Any] = {"video_id": event.video_id, "timestamp": event.timestamp}
            for name in ("category", "region", "event_id"):
                if getattr(event, name) is not None:
                    body[name] = getattr(event, name)
            self.producer.produce(
                self.topic, msgspec.json.encode(body), event.video_id.encode(), timestamp=wall
            )
        assert self.producer.flush(30) == 0
        self.oracle.ingest(events, wall)
        self.sent += events
        self.produced += count

    def expected(self) -> Counter[str]:
        return Counter(e.video_id for e in self.oracle.accepted)


class LoaderProcess:
    """``rankstream analytics-loader`` in a subprocess on a loopback port."""

    def __init__(self, data_dir: Path, bootstrap: str, topic: str, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"{data_dir.name}-loader.log"
        command = [
            sys.executable, "-m", "rankstream", "analytics-loader",
            "--kafka", f"{bootstrap}/{topic}", "--data-dir", str(data_dir),
            "--host", "127.0.0.1", "--port", str(self.port), "--session-timeout-ms", "6000",
            *args,
        ]  # fmt: skip
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"loader not healthy:\n{self.log.read_text()}")

    def status(self) -> dict[str, Any]:
        answer = httpx.get(f"{self.url}/status", timeout=30)
        assert answer.status_code == 200, answer.text
        status: dict[str, Any] = answer.json()
        return status

    def caught_up(self, timeout: float = 120) -> dict[str, Any]:
        """Until every partition is open and loaded up to the topic's end."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status()
            parts = status["partitions"]
            if len(parts) == PARTITIONS and all(
                p["loaded"] is not None and p["loaded"] == p["end"] for p in parts
            ):
                return status
            time.sleep(0.1)
        raise AssertionError(f"not caught up: {status}\n{self.log.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, sig)
            self.process.wait(60)


@pytest.fixture
def loaders() -> Iterator[Callable[..., LoaderProcess]]:
    started: list[LoaderProcess] = []

    def start(*args: Any) -> LoaderProcess:
        started.append(LoaderProcess(*args))
        return started[-1]

    yield start
    for loader in started:
        loader.stop(signal.SIGKILL)


def top_k(url: str, client: Any = httpx) -> dict[str, Any]:
    answer = client.get(f"{url}/analytics/top-k", params={"from": 0, "to": MAX_QUERY_MS, "k": 1000})
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def assert_exact(answer: dict[str, Any], expected: Counter[str]) -> None:
    items = answer["items"]
    assert {i["video_id"]: i["views"] for i in items} == expected
    assert [(-i["views"], i["video_id"]) for i in items] == sorted(
        (-i["views"], i["video_id"]) for i in items
    )


def test_the_store_holds_what_the_workers_count_and_replicas_forward_to_it(
    kafka_broker: Any,
    kafka_topic: Callable[..., str],
    redis_server: Any,
    tmp_path: Path,
    loaders: Callable[..., LoaderProcess],
) -> None:
    topic = kafka_topic(PARTITIONS)
    feed = Feed(kafka_broker.bootstrap, topic, seed=3)
    for _ in range(5):
        feed.send(400)
    assert feed.oracle.duplicates > 0
    assert feed.oracle.rejected_too_new > 0
    loader = loaders(tmp_path / "loader", kafka_broker.bootstrap, topic)
    feed.send(400)  # also while it runs
    status = loader.caught_up()
    assert status["rows"] == len(feed.oracle.accepted)
    refused = sum(p["events_refused"] for p in status["partitions"])
    assert refused == feed.oracle.duplicates + feed.oracle.rejected_too_new
    direct = top_k(loader.url)
    assert_exact(direct, feed.expected())
    metrics = httpx.get(f"{loader.url}/metrics").text
    assert "rankstream_analytics_lag_messages{partition=" in metrics

    redis_server.flush()
    data = tmp_path / "replica"
    forwarding = scale_config(
        kafka_broker.bootstrap, topic, redis_server.url, data / "a", analytics_url=loader.url
    )
    alone = scale_config(kafka_broker.bootstrap, topic, redis_server.url, data / "b")
    with TestClient(create_app(forwarding)) as replica, TestClient(create_app(alone)) as bare:
        video = direct["items"][0]["video_id"]
        put = replica.put(
            f"/videos/{video}",
            json={"title": "T", "channel": "C", "thumbnail_url": "https://x/t.jpg",
                  "duration_s": 60, "category": "music"},
        )  # fmt: skip
        assert put.status_code in (200, 201, 204), put.text
        forwarded = top_k("", replica)
        assert [(i["video_id"], i["views"]) for i in forwarded["items"]] == [
            (i["video_id"], i["views"]) for i in direct["items"]
        ]
        assert forwarded["items"][0]["title"] == "T"  # joined with the replica's metadata
        trend = replica.get(
            f"/analytics/videos/{video}/trend", params={"from": 0, "to": 86_400_000 * 7}
        )
        assert trend.status_code == 200, trend.text
        bad = replica.get("/analytics/top-k", params={"from": 5, "to": 5})
        assert bad.status_code == 400
        assert bad.json()["error"] == "invalid_query"
        for client in (bare, replica):
            if client is replica:
                loader.stop()
            down = client.get("/analytics/top-k", params={"from": 0, "to": 1})
            assert down.status_code == 503, down.text
            assert down.json()["error"] == "analytics_unavailable"
            assert down.headers["retry-after"] == "5"
            assert down.json()["message"]


def test_a_loader_killed_while_it_loads_loses_and_doubles_nothing(
    kafka_broker: Any,
    kafka_topic: Callable[..., str],
    tmp_path: Path,
    loaders: Callable[..., LoaderProcess],
) -> None:
    topic = kafka_topic(PARTITIONS)
    feed = Feed(kafka_broker.bootstrap, topic, seed=9)
    for _ in range(10):
        feed.send(500)
    data = tmp_path / "loader"
    args = (data, kafka_broker.bootstrap, topic)
    small = ("--analytics-batch-rows", "40", "--checkpoint-interval", "0.3")
    rng = random.Random(4)
    killed_while_loading = 0
    for _ in range(4):
        loader = loaders(*args, *small)
        feed.send(200)
        time.sleep(rng.uniform(0.5, 2.0))
        killed_while_loading += loader.status()["lag"] > 0
        loader.stop(signal.SIGKILL)
    assert killed_while_loading > 0, "no kill came while the loader had a backlog"

    final = loaders(*args)
    status = final.caught_up()
    expected = feed.expected()
    assert status["rows"] == sum(expected.values())
    assert_exact(top_k(final.url), expected)
    final.stop()

    from tests.analytics.test_query_command import run_query

    checks = run_query(
        data,
        "SELECT count() AS raw, uniqExact(event_id, video_id, timestamp) AS distinct_rows,"
        " (SELECT sum(views) FROM views_hourly) AS rolled FROM views",
        "--format",
        "json",
    )
    counts = {k: int(v) for k, v in msgspec.json.decode(checks.stdout).items()}
    accepted = len(feed.oracle.accepted)
    assert counts == {"raw": accepted, "distinct_rows": accepted, "rolled": accepted}


def test_with_declared_boards_the_store_holds_every_event_the_boards_accept(
    kafka_broker: Any,
    kafka_topic: Callable[..., str],
    tmp_path: Path,
    loaders: Callable[..., LoaderProcess],
) -> None:
    topic = kafka_topic(PARTITIONS)
    feed = GameFeed(kafka_broker.bootstrap, topic, seed=21)  # some events re-sent
    for _ in range(4):
        feed.send(300)
    config = tmp_path / "game.toml"
    config.write_text(GAME_TOML)  # players by user (the topic key), teams repartitioned
    loader = loaders(tmp_path / "loader", kafka_broker.bootstrap, topic, "--config", str(config))
    status = loader.caught_up()
    assert status["rows"] == len(feed.events)
    refused = sum(p["events_refused"] for p in status["partitions"])
    assert refused == feed.produced - len(feed.events) > 0  # the re-sent copies
    users = Counter(user for user, *_ in feed.events.values())
    answer = top_k(loader.url)  # the typed columns hold the first board's entity
    assert {i["video_id"]: i["views"] for i in answer["items"]} == dict(users.most_common(1000))
