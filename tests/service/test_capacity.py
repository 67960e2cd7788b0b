"""Every capacity limit of the engine, driven from outside over HTTP against a real server:
events over a limit are rejected with their reason before anything is logged, the rest are
kept, the service keeps serving, and it restarts cleanly (even with lowered limits: logged
events are replayed, never refused)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.engine.oracle import Oracle
from tests.servers import ServiceProcess
from tests.service.test_durability import as_views, assert_matches_oracle

MAX_CELLS = 12
LIMITS = (
    "--max-videos", "6", "--max-categories", "2", "--max-regions", "2",
    "--max-cells", str(MAX_CELLS),
)  # fmt: skip


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def event(video: str, category: str | None = None, region: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"video_id": video, "ts": now_ms() - 60_000}
    if category:
        body["category"] = category
    if region:
        body["region"] = region
    return body


def post(url: str, body: list[dict[str, Any]], key: str) -> dict[str, Any]:
    answer = httpx.post(f"{url}/views", json=body, headers={"Idempotency-Key": key}, timeout=30)
    assert answer.status_code == 202, answer.text
    result: dict[str, Any] = answer.json()
    return result


def accept(oracle: Oracle, body: list[dict[str, Any]], answer: dict[str, Any]) -> None:
    rejected = {error["index"] for error in answer["errors"]}
    oracle.accepted.extend(as_views([e for i, e in enumerate(body) if i not in rejected]))


def test_each_limit_refuses_new_values_first_come_first_served_and_survives_restarts(
    service_factory: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    server = service_factory(*LIMITS, data_dir=data)
    oracle = Oracle()

    # videos: six fit, the seventh and eighth are new and refused; known ones still count
    body = [event(f"v{i}") for i in range(8)] + [event("v0")]
    answer = post(server.url, body, "videos")
    assert (answer["accepted"], answer["rejected"]) == (7, 2)
    assert [e["index"] for e in answer["errors"]] == [6, 7]
    assert all(e["error"].startswith("video_id: ") for e in answer["errors"])
    assert "max_videos" in answer["errors"][0]["error"]
    accept(oracle, body, answer)

    # categories and regions: two of each fit (on known videos)
    body = [event("v0", "music"), event("v1", "news"), event("v2", "sport"), event("v3", "music")]
    answer = post(server.url, body, "categories")
    assert [(e["index"], e["error"].split(":")[0]) for e in answer["errors"]] == [(2, "category")]
    assert "max_categories" in answer["errors"][0]["error"]
    accept(oracle, body, answer)
    body = [event("v0", None, "JP"), event("v0", None, "US"), event("v0", None, "FR")]
    answer = post(server.url, body, "regions")
    assert [(e["index"], e["error"].split(":")[0]) for e in answer["errors"]] == [(2, "region")]
    accept(oracle, body, answer)

    # cells, i.e. (video, category, region): 6 + 3 + 2 = 11 held so far, room for one more
    cells = httpx.get(f"{server.url}/status").json()["memory"]["cells"]
    assert cells == 11
    fresh = [event(f"v{i}", "news", "US") for i in range(6)]  # six new cells
    answer = post(server.url, fresh, "cells")
    room = MAX_CELLS - cells
    assert answer["accepted"] == room
    assert [e["index"] for e in answer["errors"]] == list(range(room, 6))
    assert all(e["error"].startswith("event: ") for e in answer["errors"])
    assert "max_cells" in answer["errors"][0]["error"]
    accept(oracle, fresh, answer)

    # the service keeps serving, counts the refusals by field and keeps them as dead letters
    assert_matches_oracle(server.url, oracle)
    letters = httpx.get(f"{server.url}/dead-letters").json()
    assert letters["totals"] == {"video_id": 2, "category": 1, "region": 1, "event": 6 - room}
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'rankstream_events_rejected_total{field="category"} 1.0' in metrics
    assert httpx.get(f"{server.url}/health").status_code == 200

    # kill -9 and restart: clean, same state, same limits, refusals remembered
    server.stop(signal.SIGKILL)
    server = service_factory(*LIMITS, data_dir=data)
    assert_matches_oracle(server.url, oracle)
    again = post(server.url, [event("v0", "music"), event("v9")], "after-restart")
    assert [e["index"] for e in again["errors"]] == [1]  # a known cell counts; a new video not
    accept(oracle, [event("v0", "music"), event("v9")], again)
    kept = httpx.get(f"{server.url}/dead-letters").json()
    assert kept["totals"]["video_id"] == 3  # two from before the crash, one after
    assert len(kept["items"]) == sum(kept["totals"].values())  # the letters themselves too

    # a restart with lower limits replays every logged event (they were acknowledged)
    server.stop(signal.SIGKILL)
    lowered = ("--max-videos", "1", "--max-categories", "1", "--max-regions", "1")
    server = service_factory(*lowered, "--max-cells", "1", data_dir=data)
    assert_matches_oracle(server.url, oracle)
    refused = post(server.url, [event("v5", "news", "JP")], "lowered")  # a new cell
    assert refused["accepted"] == 0
    known = post(server.url, [event("v0")], "known")  # nothing new: always counted
    assert known["accepted"] == 1
    accept(oracle, [event("v0")], known)
    assert_matches_oracle(server.url, oracle)
