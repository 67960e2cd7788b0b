"""``kill -9`` of the service while it loads the log into the analytics store: after the
restarts, every acknowledged view is in the store exactly once, raw and rolled up.

A first service takes 6,000 views with analytics off (so the log holds a backlog nobody
has loaded; checkpoints are held back so the log keeps it all). Then services with
analytics on, loading one log record per insert, are killed with SIGKILL at moments drawn
from a seeded generator, shortly after they come up, while the loader works through the
backlog; more views arrive in between. A last service loads the rest. Each view carries a
unique ``event_id``: the store must hold each exactly once, and the hourly rollup must sum
to the same count, per video too.
"""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import msgspec

from tests.servers import ServiceProcess

MAX_QUERY_MS = 4_102_444_800_000


def post(service: ServiceProcess, events: list[dict[str, object]]) -> None:
    answer = httpx.post(f"{service.url}/views", content=msgspec.json.encode(events), timeout=60)
    assert answer.status_code == 202, answer.text
    assert answer.json()["accepted"] == len(events)


def views(rng: random.Random, now: int, first_id: int, count: int) -> list[dict[str, object]]:
    return [
        {
            "video_id": f"v{rng.randrange(30)}",
            "timestamp": now - rng.randrange(3 * 86_400_000),
            "region": rng.choice(["JP", "US"]),
            "event_id": f"e{first_id + i}",
        }
        for i in range(count)
    ]


def test_kill_during_loading_loses_and_doubles_nothing(
    service_factory: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    rng = random.Random(11)
    data_dir = tmp_path / "data"
    now = int(time.time() * 1000)
    sent: list[dict[str, object]] = []
    held = ("--checkpoint-interval", "3600", "--sync", "NORMAL")
    backlog = service_factory("--no-analytics", *held, data_dir=data_dir)
    for _ in range(60):
        batch = views(rng, now, len(sent), 100)
        post(backlog, batch)
        sent += batch
    backlog.stop(signal.SIGKILL)

    killed_while_loading = 0
    for _ in range(4):
        service = service_factory("--analytics-batch-rows", "1", *held, data_dir=data_dir)
        batch = views(rng, now, len(sent), 100)
        post(service, batch)
        sent += batch
        time.sleep(rng.uniform(0.05, 1.0))
        status = httpx.get(f"{service.url}/status").json()["analytics"]
        killed_while_loading += status["lag_records"] > 0
        service.stop(signal.SIGKILL)
    assert killed_while_loading > 0, "no kill came while the loader had a backlog"

    final = service_factory(*held, data_dir=data_dir)
    for _ in range(1200):
        status = httpx.get(f"{final.url}/status").json()["analytics"]
        if status["lag_records"] == 0:
            break
        time.sleep(0.1)
    assert status["lag_records"] == 0, status
    assert status["rows"] == len(sent)
    expected = Counter(str(e["video_id"]) for e in sent)
    top = httpx.get(
        f"{final.url}/analytics/top-k", params={"from": 0, "to": MAX_QUERY_MS, "k": 100}
    ).json()
    assert {item["video_id"]: item["views"] for item in top["items"]} == expected
    final.stop(signal.SIGTERM)

    from tests.analytics.test_query_command import run_query

    checks = run_query(
        data_dir,
        "SELECT count() AS raw, uniqExact(event_id) AS ids,"
        " (SELECT sum(views) FROM views_hourly) AS rolled FROM views",
        "--format",
        "json",
    )
    counts = {name: int(value) for name, value in msgspec.json.decode(checks.stdout).items()}
    assert counts == {"raw": len(sent), "ids": len(sent), "rolled": len(sent)}
