"""The analytics API in the embedded service: the same numbers as the streaming rankings,
bounds and completeness stated, bad parameters 4xx, and the read-only SQL command.

The app runs in-process with a fixed clock, so the windows of ``/views/top-k`` are known;
every event is posted through ``POST /views`` and reaches the analytics store through the
log and the loader, as in production.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from starlette.testclient import TestClient

from rankstream.api import create_app
from rankstream.api.analytics import MAX_QUERY_MS, MAX_TREND_BUCKETS
from rankstream.config import ServiceConfig

NOW = 1_795_343_400_000  # 2026-11-23T10:30:00Z
HOUR = 3_600_000
WINDOWS = ["1h", "24h", "7d", "30d", "hour", "day", "month"]


def wait_loaded(client: TestClient, events: int) -> dict[str, object]:
    """The analytics status once ``events`` events are loaded (fails after a minute)."""
    for _ in range(600):
        status = client.get("/status").json()
        analytics: dict[str, object] = status["analytics"]
        if analytics["lag_records"] == 0 and analytics["rows"] == events:
            return analytics
        time.sleep(0.1)
    raise AssertionError(f"analytics did not load {events} events: {status}")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("analytics-api") / "data"


@pytest.fixture(scope="module")
def client(data_dir: Path) -> Iterator[TestClient]:
    """A service holding 3,000 views of 40 videos over the last 35 days, half of them in
    the last two hours (seeded)."""
    config = ServiceConfig(data_dir=data_dir, sync="NORMAL", analytics_batch_rows=500)
    rng = random.Random(8)
    with TestClient(create_app(config, clock=lambda: NOW)) as test_client:
        for request in range(6):
            recent = request % 2 == 0  # half of the views in the last two hours
            events = [
                {
                    "video_id": f"v{min(int(rng.paretovariate(1.2)), 40)}",
                    "timestamp": NOW - rng.randrange((2 if recent else 35 * 24) * HOUR),
                    "category": rng.choice(["music", "news", None]),
                    "region": rng.choice(["JP", "US", "FR"]),
                    "device": rng.choice(["mobile", "tv"]),
                }
                for _ in range(500)
            ]
            answer = test_client.post("/views", content=msgspec.json.encode(events))
            assert answer.status_code == 202, answer.text
        wait_loaded(test_client, 3000)
        yield test_client


@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("scope", [{}, {"category": "music"}, {"region": "JP"}])
def test_range_top_k_equals_the_streaming_top_k(
    client: TestClient, window: str, scope: dict[str, str]
) -> None:
    streaming = client.get("/views/top-k", params={"window": window, "k": 20, **scope}).json()
    bounds = {"from": streaming["window_start"], "to": streaming["window_end"]}
    answer = client.get("/analytics/top-k", params={**bounds, "k": 20, **scope}).json()
    assert streaming["items"], "the window should not be empty"
    assert answer["items"] == streaming["items"]
    assert (answer["from"], answer["to"]) == (bounds["from"], bounds["to"])
    assert answer["loaded_through"] == client.get("/status").json()["analytics"]["loaded_through"]


def test_trend_growth_breakdown_answer_their_bounds(client: TestClient) -> None:
    trend = client.get(
        "/analytics/videos/v1/trend", params={"from": NOW - 30 * 24 * HOUR, "to": NOW}
    ).json()
    assert (trend["from"], trend["to"], trend["grain"]) == (NOW - 30 * 24 * HOUR, NOW, "day")
    assert len(trend["buckets"]) == 31  # 10:30 to 10:30: the edge days are partial
    month = client.get(
        "/analytics/top-k", params={"from": NOW - 30 * 24 * HOUR, "to": NOW, "k": 1}
    ).json()
    assert month["items"][0]["video_id"] == "v1"
    assert sum(b["views"] for b in trend["buckets"]) == month["items"][0]["views"]

    growth = client.get("/analytics/growth", params={"period": "7d", "k": 5}).json()
    assert (growth["current_from"], growth["current_to"]) == (NOW - 7 * 24 * HOUR, NOW)
    assert growth["previous_to"] == growth["current_from"]
    changes = [item["change"] for item in growth["items"]]
    assert changes == sorted(changes, reverse=True)

    breakdown = client.get(
        "/analytics/breakdown", params={"video_id": "v1", "by": "device", "from": 0, "to": NOW}
    ).json()
    assert {item["label"] for item in breakdown["items"]} == {"mobile", "tv"}
    assert sum(item["views"] for item in breakdown["items"]) == breakdown["total"]
    assert abs(sum(item["share"] for item in breakdown["items"]) - 1) < 1e-9


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/analytics/top-k", {"from": "10", "to": "5"}),  # inverted
        ("/analytics/top-k", {"from": "5", "to": "5"}),  # empty
        ("/analytics/top-k", {"from": "0", "to": "10", "k": "0"}),
        ("/analytics/top-k", {"from": "0", "to": "10", "k": "1001"}),
        ("/analytics/top-k", {"from": "0"}),  # to missing
        ("/analytics/top-k", {"from": "-1", "to": "10"}),
        ("/analytics/top-k", {"from": "0", "to": str(MAX_QUERY_MS + 1)}),
        ("/analytics/top-k", {"from": "0", "to": "10", "window": "1h"}),  # unknown parameter
        ("/analytics/videos/v1/trend", {"from": "0", "to": "10", "grain": "second"}),
        ("/analytics/videos/v1/trend", {"from": "0", "to": str(NOW), "grain": "minute"}),
        ("/analytics/videos/v1/trend", {"from": "0", "to": str(NOW), "grain": "hour"}),
        ("/analytics/growth", {"period": "2d"}),
        ("/analytics/growth", {"period": "30d", "to": "1000"}),  # no previous period
        ("/analytics/breakdown", {"video_id": "v1", "by": "user", "from": "0", "to": "9"}),
        ("/analytics/breakdown", {"video_id": "", "from": "0", "to": "9"}),
        ("/analytics/breakdown", {"video_id": "v\u0001", "from": "0", "to": "9"}),
    ],
)
def test_bad_parameters_are_400(client: TestClient, path: str, params: dict[str, str]) -> None:
    answer = client.get(path, params=params)
    assert answer.status_code == 400, answer.text
    assert set(answer.json()) == {"error", "message", "request_id"}


def test_a_trend_of_the_most_buckets_allowed_is_answered(client: TestClient) -> None:
    start = NOW - MAX_TREND_BUCKETS * 60_000
    trend = client.get(
        "/analytics/videos/v1/trend", params={"from": start, "to": NOW, "grain": "minute"}
    )
    assert trend.status_code == 200
    assert len(trend.json()["buckets"]) == MAX_TREND_BUCKETS


def test_metrics_show_the_loader(client: TestClient) -> None:
    metrics = client.get("/metrics").text
    assert "rankstream_analytics_lag_records 0.0" in metrics
    assert "rankstream_analytics_rows 3000.0" in metrics


def test_without_a_store_the_analytics_calls_say_so(tmp_path: Path) -> None:
    config = ServiceConfig(data_dir=tmp_path / "data", sync="NORMAL", analytics=False)
    with TestClient(create_app(config, clock=lambda: NOW)) as plain:
        answer = plain.get("/analytics/top-k", params={"from": 0, "to": NOW})
        assert answer.status_code == 503
        assert answer.json()["error"] == "analytics_unavailable"
        assert "analytics" not in plain.get("/status").json()
        assert not (tmp_path / "data" / "analytics").exists()
