"""Crash and restart of the real service process: acknowledged views are never lost or
double counted, checked against a brute-force count in every window and scope."""

from __future__ import annotations

import random
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from rankstream.engine import ViewEvent
from tests.engine.oracle import Oracle
from tests.servers import ServiceProcess

WINDOWS = ["1h", "24h", "7d", "30d", "hour", "day", "month", "all"]
CATEGORIES = [None, "music", "news"]
REGIONS = [None, "US", "JP"]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def make_request(rng: random.Random, size: int) -> list[dict[str, Any]]:
    t = now_ms()
    events = []
    for _ in range(size):
        event: dict[str, Any] = {
            "video_id": f"v{min(int(rng.paretovariate(1.2)), 60)}",
            "ts": t - rng.randrange(0, 3 * 3_600_000),
        }
        category = rng.choice(CATEGORIES)
        region = rng.choice(REGIONS)
        if category:
            event["category"] = category
        if region:
            event["region"] = region
        events.append(event)
    return events


def as_views(body: list[dict[str, Any]]) -> list[ViewEvent]:
    return [ViewEvent(e["video_id"], e["ts"], e.get("category"), e.get("region")) for e in body]


def assert_matches_oracle(url: str, oracle: Oracle) -> None:
    status = httpx.get(f"{url}/status").json()
    assert status["events_accepted"] == len(oracle.accepted)
    assert status["events_applied"] == status["events_accepted"]
    for window in WINDOWS:
        for category in CATEGORIES:
            for region in REGIONS:
                params = {"window": window, "k": "1000"}
                if category:
                    params["category"] = category
                if region:
                    params["region"] = region
                answer = httpx.get(f"{url}/views/top-k", params=params).json()
                expected = oracle.top_k(
                    answer["window_start"], answer["window_end"], 1000, category, region
                )
                got = [(i["rank"], i["video_id"], i["views"]) for i in answer["items"]]
                assert got == [(e.rank, e.video_id, e.views) for e in expected], params


class Sender(threading.Thread):
    """Posts requests with Idempotency-Keys until stopped; remembers what was acknowledged
    and the request in flight when the connection broke."""

    def __init__(self, url: str, seed: int) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.rng = random.Random(seed)
        self.acknowledged: list[dict[str, Any]] = []
        self.in_flight: tuple[str, list[dict[str, Any]]] | None = None
        self.requests = 0

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while True:
                body = make_request(self.rng, self.rng.randrange(1, 400))
                key = f"req-{self.requests}"
                self.in_flight = (key, body)
                try:
                    response = client.post(
                        f"{self.url}/views", json=body, headers={"Idempotency-Key": key}
                    )
                except httpx.HTTPError:
                    return  # the server died under us: in_flight is the open question
                assert response.status_code == 202, response.text
                assert response.json()["accepted"] == len(body)
                self.acknowledged.extend(body)
                self.requests += 1
                self.in_flight = None


def test_kill_9_mid_ingest_loses_nothing_and_counts_nothing_twice(
    service_factory: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    args = ("--checkpoint-interval", "0.5", "--tick-interval", "0.2")
    first = service_factory(*args, data_dir=data)
    sender = Sender(first.url, seed=11)
    sender.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # a checkpoint, then more log after it
        position = httpx.get(f"{first.url}/status").json()["last_checkpoint"]["position"]
        checkpoint = position.get("0", 0)  # the next log record it does not cover
        if checkpoint > 0 and sender.requests > checkpoint + 20:
            break
        time.sleep(0.05)
    first.stop(signal.SIGKILL)
    sender.join(30)
    assert sender.requests > 20
    assert sender.in_flight is not None  # killed with a request on the wire

    second = service_factory(*args, data_dir=data)
    key, body = sender.in_flight
    retry = httpx.post(f"{second.url}/views", json=body, headers={"Idempotency-Key": key})
    assert retry.status_code == 202
    assert retry.json()["accepted"] == len(body)  # counted before the crash, or now: once
    acknowledged = sender.acknowledged + body
    oracle = Oracle()
    oracle.accepted.extend(as_views(acknowledged))
    assert_matches_oracle(second.url, oracle)

    again = httpx.post(f"{second.url}/views", json=body, headers={"Idempotency-Key": key})
    assert again.headers["idempotent-replayed"] == "true"
    assert_matches_oracle(second.url, oracle)
    recovery = httpx.get(f"{second.url}/status").json()["recovery"]
    assert recovery["restored_from"].get("0", 0) > 0  # restored from a checkpoint...
    assert recovery["replayed_batches"] > 0  # ...and the log after it


def test_graceful_restart_checkpoints_and_reclaims_the_log(
    service_factory: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = service_factory("--checkpoint-interval", "3600", data_dir=data)
    rng = random.Random(5)
    oracle = Oracle()
    for i in range(10):
        body = make_request(rng, 100)
        response = httpx.post(f"{first.url}/views", json=body, headers={"Idempotency-Key": f"k{i}"})
        assert response.status_code == 202
        oracle.accepted.extend(as_views(body))
    # uvicorn drains, runs our shutdown (checkpoint), then re-raises SIGTERM as it exits
    assert first.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    with sqlite3.connect(data / "log.sqlite3") as db:  # the checkpoint covers every record
        assert db.execute("SELECT COUNT(*) FROM batches").fetchone() == (0,)

    second = service_factory("--checkpoint-interval", "3600", data_dir=data)
    status = httpx.get(f"{second.url}/status").json()
    assert status["recovery"]["restored_from"] == {"0": 11}  # covers records 1 to 10
    assert status["recovery"]["replayed_batches"] == 0  # the log was covered and reclaimed
    assert_matches_oracle(second.url, oracle)
    replay = httpx.post(
        f"{second.url}/views",
        json=[{"video_id": "x", "ts": now_ms()}],
        headers={"Idempotency-Key": "k3"},
    )
    assert replay.headers["idempotent-replayed"] == "true"  # keys outlive the checkpoint
    assert_matches_oracle(second.url, oracle)
