"""Scale-out end to end against real Kafka and Redis: the same answers as embedded."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from starlette.testclient import TestClient

from rankstream.api import create_app
from rankstream.config import ServiceConfig
from tests.scale.cluster import WorkerThread, scale_config, wait_applied

T0 = 1_795_341_600_000  # 2026-11-23T10:00:00Z
HOUR = 3_600_000


def requests(seed: int, count: int) -> list[tuple[str, list[dict[str, Any]]]]:
    """Requests with keys: videos, categories, regions, re-sent event ids, old and too-new
    timestamps, and a few invalid events."""
    rng = random.Random(seed)
    made = []
    for number in range(count):
        body: list[dict[str, Any]] = []
        for _ in range(rng.randint(1, 30)):
            event: dict[str, Any] = {
                "video_id": f"v{int(rng.paretovariate(1.2)) % 60}",
                "ts": T0 - rng.choice([1, 1, 1, 30, 400, 3000]) * rng.randint(1, 60_000),
            }
            if rng.random() < 0.7:
                event["category"] = rng.choice(["music", "games", "news"])
            if rng.random() < 0.6:
                event["region"] = rng.choice(["US", "DE", "BR", "IN"])
            if rng.random() < 0.2:
                event["event_id"] = f"e{rng.randint(0, 40)}-{event['video_id']}"
            if rng.random() < 0.02:
                event["ts"] = T0 + 2 * HOUR  # too new
            if rng.random() < 0.02:
                event["video_id"] = ""  # invalid
            body.append(event)
        made.append((f"key-{seed}-{number}", body))
    return made


def every_query(client: TestClient) -> list[dict[str, str]]:
    """Every window x scope of the embedded service's engine."""
    state = client.app_state["app"]
    engine = state.ingest.boards.engines["videos"]
    windows = [w.name for w in engine.config.windows]
    return [
        {"window": w, **({"category": c} if c else {}), **({"region": r} if r else {})}
        for w in windows
        for c, r in engine.scopes()
    ]


def test_scale_out_answers_exactly_what_the_embedded_service_answers(
    kafka_topic: Callable[..., str], kafka_broker: Any, redis_server: Any, tmp_path: Path
) -> None:
    redis_server.flush()
    topic = kafka_topic(4)
    scaled = scale_config(kafka_broker.bootstrap, topic, redis_server.url, tmp_path / "scale")
    client = redis.Redis.from_url(redis_server.url)
    try:
        assert_same_answers(scaled, client, 4, tmp_path, requests(seed=3, count=60))
    finally:
        client.close()


def test_scale_out_on_a_redis_cluster(
    kafka_topic: Callable[..., str], kafka_broker: Any, redis_cluster: Any, tmp_path: Path
) -> None:
    redis_cluster.flush()
    topic = kafka_topic(3)
    scaled = scale_config(
        kafka_broker.bootstrap, topic, redis_cluster.url, tmp_path / "scale", redis_cluster=True
    )
    client = redis_cluster.client()
    try:
        assert_same_answers(scaled, client, 3, tmp_path, requests(seed=4, count=20))
        nodes_used = sum(1 for node in client.get_primaries() if node.redis_connection.dbsize())
        assert nodes_used == 3  # the rankings spread over every node (hash tags per ranking)
    finally:
        client.close()


def assert_same_answers(
    scaled: ServiceConfig,
    client: Any,
    partitions: int,
    tmp_path: Path,
    bodies: list[tuple[str, list[dict[str, Any]]]],
) -> None:
    """Feed ``bodies`` to an embedded service and to a scale-out replica with two workers;
    every window x scope must answer the same."""
    clock = lambda: T0  # noqa: E731  (one wall time for both modes: the same decisions)
    embedded = ServiceConfig(data_dir=tmp_path / "embedded", sync="NORMAL")
    workers = [WorkerThread(scaled, clock, f"w{i}") for i in range(2)]
    try:
        with (
            TestClient(create_app(embedded, clock)) as one,
            TestClient(create_app(scaled, clock)) as api,
        ):
            produced = 0
            for key, body in bodies:
                headers = {"Idempotency-Key": key}
                first = one.post("/views", json=body, headers=headers)
                second = api.post("/views", json=body, headers=headers)
                assert first.status_code == second.status_code == 202
                assert first.json()["rejected"] == second.json()["rejected"]
                produced += second.json()["accepted"]
                retry = api.post("/views", json=body, headers=headers)  # counts once
                assert retry.headers["idempotent-replayed"] == "true"
            wait_applied(client, "views", partitions, produced)
            queries = every_query(one)
            assert len(queries) == 8 * 20  # 8 windows x (all, 3 categories, 4 regions, 12 pairs)
            for query in queries:
                expected = one.get("/views/top-k", params={**query, "k": 100}).json()
                got = api.get("/views/top-k", params={**query, "k": 100}).json()
                assert got["items"] == expected["items"], query
                assert (got["window_start"], got["window_end"]) == (
                    expected["window_start"],
                    expected["window_end"],
                ), query
            status = api.get("/status").json()
            assert status["mode"] == "scale-out"
            assert sum(p["applied"] for p in status["partitions"]) == produced
            assert all(p["lag"] == 0 for p in status["partitions"])
            metrics = api.get("/metrics").text
            assert f"rankstream_events_produced_total {float(produced)}" in metrics
            assert 'rankstream_partition_lag_events{partition="0"} 0.0' in metrics
    finally:
        for worker in workers:
            worker.stop()
