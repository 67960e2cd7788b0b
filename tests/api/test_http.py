"""The HTTP API in-process (Starlette's TestClient runs the real app and its lifespan)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from starlette.testclient import TestClient

from rankstream.api import create_app
from rankstream.config import ServiceConfig
from rankstream.engine import ViewEvent
from tests.engine.oracle import Oracle

WINDOWS = ["1h", "24h", "7d", "30d", "hour", "day", "month", "all"]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    config = ServiceConfig(data_dir=tmp_path / "data", max_events_per_request=50, sync="NORMAL")
    with TestClient(create_app(config)) as test_client:
        yield test_client


def test_single_event_array_and_ndjson_are_accepted(client: TestClient) -> None:
    t = now_ms()
    one = client.post("/views", json={"video_id": "a", "timestamp": t})
    assert one.status_code == 202
    assert one.json() == {"accepted": 1, "rejected": 0, "duplicates": 0, "errors": []}
    many = client.post("/views", json=[{"videoId": "b", "ts": t}, {"video_id": "a", "ts": t}])
    assert many.json()["accepted"] == 2
    ndjson = b'{"video_id": "c", "ts": %d}\n\n{"video_id": "a", "ts": %d}\n' % (t, t)
    lines = client.post("/views", content=ndjson, headers={"content-type": "application/x-ndjson"})
    assert lines.json()["accepted"] == 2
    top = client.get("/views/top-k", params={"window": "1h", "k": 2}).json()
    assert [(i["video_id"], i["views"]) for i in top["items"]] == [("a", 3), ("b", 1)]
    status = client.get("/status").json()
    assert status["events_accepted"] == status["events_applied"] == 5


def test_invalid_events_are_rejected_individually_and_dead_lettered(client: TestClient) -> None:
    t = now_ms()
    body = [
        {"video_id": "ok", "ts": t},
        {"video_id": 7, "ts": t},
        "not an object",
        {"video_id": "late", "ts": t + 3_600_000},
        {"video_id": "ok", "ts": "2026-01-01T00:00:00"},
    ]
    answer = client.post("/views", json=body).json()
    assert answer["accepted"] == 1
    assert answer["rejected"] == 4
    assert [e["index"] for e in answer["errors"]] == [1, 2, 3, 4]
    assert "video_id" in answer["errors"][0]["error"]
    assert "ahead of server time" in answer["errors"][2]["error"]
    assert "timezone" in answer["errors"][3]["error"]
    letters = client.get("/dead-letters", params={"limit": 10}).json()
    assert len(letters["items"]) == 4
    assert letters["totals"] == {"video_id": 1, "event": 1, "timestamp": 1, "ts": 1}
    assert client.get("/status").json()["events_rejected"] == 4
    ndjson = b'{"video_id": "x", "ts": %d}\nnot json\n' % t
    mixed = client.post("/views", content=ndjson, headers={"content-type": "application/x-ndjson"})
    assert mixed.json()["accepted"] == 1
    assert mixed.json()["errors"][0]["index"] == 1


@pytest.mark.parametrize(
    ("content", "headers", "status", "code"),
    [
        (b"not json", {}, 400, "invalid_json"),
        (b"\xff\xfe\x00", {}, 400, "invalid_json"),
        (b"", {}, 400, "invalid_body"),
        (b"42", {}, 400, "invalid_body"),
        (b'"a string"', {}, 400, "invalid_body"),
        (b"[" + b",".join([b"{}"] * 51) + b"]", {}, 413, "too_many_events"),
        (b" \n\t", {"content-type": "application/x-ndjson"}, 400, "invalid_body"),
        (b"{}", {"idempotency-key": "x" * 201}, 400, "invalid_header"),
        (b"{}", {"idempotency-key": "two words"}, 400, "invalid_header"),
    ],
)
def test_bad_bodies_are_4xx_and_accept_nothing(
    client: TestClient, content: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    response = client.post("/views", content=content, headers=headers)
    assert response.status_code == status
    assert response.json()["error"] == code
    assert response.json()["message"]
    assert client.get("/status").json()["events_accepted"] == 0


def test_oversized_body_is_413(tmp_path: Path) -> None:
    config = ServiceConfig(data_dir=tmp_path / "d", max_body_bytes=1000, sync="NORMAL")
    with TestClient(create_app(config)) as small:
        response = small.post("/views", content=b"[" + b" " * 2000 + b"]")
        assert response.status_code == 413
        assert response.json()["error"] == "body_too_large"


@pytest.mark.parametrize(
    "params",
    [
        {"window": "2h"},
        {"k": "0"},
        {"k": "1001"},
        {"k": "abc"},
        {"k": "-1"},
        {"k": "1e3"},
        {"k": "99999999999999999999"},
        {"category": "c" * 65},
        {"region": ""},
    ],
)
def test_bad_queries_are_400(client: TestClient, params: dict[str, str]) -> None:
    response = client.get("/views/top-k", params=params)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_query"


def test_unknown_routes_and_methods_are_json_4xx(client: TestClient) -> None:
    assert client.get("/nope").json()["error"] == "not_found"
    wrong = client.delete("/views")
    assert wrong.status_code == 405
    assert wrong.json()["error"] == "method_not_allowed"


def test_idempotency_key_makes_a_retry_count_once(client: TestClient) -> None:
    t = now_ms()
    body = [{"video_id": "a", "ts": t}, {"video_id": "b", "ts": t}]
    first = client.post("/views", json=body, headers={"Idempotency-Key": "req-1"})
    again = client.post("/views", json=body, headers={"Idempotency-Key": "req-1"})
    assert again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert client.get("/status").json()["events_accepted"] == 2


def test_event_ids_are_deduplicated(client: TestClient) -> None:
    t = now_ms()
    body = [{"video_id": "a", "ts": t, "event_id": "e1"}] * 3
    answer = client.post("/views", json=body).json()
    assert (answer["accepted"], answer["duplicates"]) == (1, 2)
    assert client.get("/status").json()["duplicates"] == 2


def test_metadata_put_get_and_join(client: TestClient) -> None:
    meta = {"title": "Cats", "channel": "pets", "thumbnail_url": "http://x/1.png"}
    put = client.put("/videos/v%2F1", json={**meta, "duration_s": 61.5, "category": "pets"})
    assert put.status_code == 200
    assert client.get("/videos/v%2F1").json()["title"] == "Cats"
    assert client.get("/videos/unknown").status_code == 404
    assert client.put("/videos/x", json={"bogus": 1}).json()["error"] == "invalid_metadata"
    assert client.put("/videos/x", json={"title": "t" * 501}).status_code == 400
    assert client.put("/videos/x", content=b"nope").status_code == 400
    client.post("/views", json={"video_id": "v/1", "ts": now_ms()})
    item = client.get("/views/top-k", params={"window": "all"}).json()["items"][0]
    assert item == {"rank": 1, "video_id": "v/1", "views": 1, **meta}
    client.put("/videos/v%2F1", json={**meta, "title": "Cats, renamed"})  # same ranking...
    again = client.get("/views/top-k", params={"window": "all"}).json()["items"][0]
    assert again["title"] == "Cats, renamed"  # ...but the answer joins the new metadata


def test_rankings_match_brute_force_over_stated_bounds(client: TestClient) -> None:
    t = now_ms()
    oracle = Oracle()
    body = []
    for i in range(50):
        event = {
            "video_id": f"v{i % 7}",
            "ts": t - (i * 7_919_000) % (40 * 86_400_000),
            "category": ["m", "g", None][i % 3],
            "region": ["us", "jp"][i % 2],
        }
        body.append(event)
        oracle.accepted.append(
            ViewEvent(event["video_id"], event["ts"], event["category"], event["region"])  # type: ignore[arg-type]
        )
    assert client.post("/views", json=body).json()["accepted"] == 50
    for window in WINDOWS:
        for category in (None, "m"):
            for region in (None, "jp"):
                params = {"window": window, "k": "5"}
                if category:
                    params["category"] = category
                if region:
                    params["region"] = region
                answer = client.get("/views/top-k", params=params).json()
                expected = oracle.top_k(
                    answer["window_start"], answer["window_end"], 5, category, region
                )
                got = [(i["rank"], i["video_id"], i["views"]) for i in answer["items"]]
                assert got == [(e.rank, e.video_id, e.views) for e in expected]
                assert answer["as_of"] >= t


def test_status_metrics_openapi_docs_health(client: TestClient) -> None:
    client.post("/views", json={"video_id": "a", "ts": now_ms()})
    client.get("/views/top-k")
    status = client.get("/status").json()
    for key in (
        "events_accepted",
        "events_applied",
        "events_rejected",
        "late_dropped",
        "duplicates",
        "watermark",
        "last_checkpoint",
    ):
        assert key in status
    metrics = client.get("/metrics").text
    for name in (
        "rankstream_events_accepted_total",
        "rankstream_apply_lag_events",
        "rankstream_checkpoint_age_seconds",
        "rankstream_query_seconds_bucket",
    ):
        assert name in metrics
    spec = client.get("/openapi.json").json()
    assert "/views/top-k" in spec["paths"]
    assert "/views/top-k" in client.get("/docs").text
    assert client.get("/health").json() == {"status": "ok"}
    assert msgspec.json.decode(client.get("/dead-letters").content)["items"] == []


def test_an_unexpected_exception_is_a_logged_counted_json_500(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = ServiceConfig(data_dir=tmp_path / "data", sync="NORMAL")
    with TestClient(create_app(config), raise_server_exceptions=False) as client:
        state = client.app_state["app"]

        def broken() -> dict[str, object]:
            raise RuntimeError("a bug")

        state.ingest.status = broken  # a bug in one endpoint's service call
        answer = client.get("/status", headers={"X-Request-ID": "trace-42"})
        assert answer.status_code == 500
        assert answer.headers["content-type"] == "application/json"
        assert answer.json() == {
            "error": "internal_error",
            "message": "unexpected error; request id trace-42",
            "request_id": "trace-42",
        }
        assert answer.headers["x-request-id"] == "trace-42"
        assert "trace-42" in caplog.text
        assert "a bug" in caplog.text
        counted = state.registry.get_sample_value("rankstream_http_server_errors_total")
        assert counted == 1
        assert client.get("/health").status_code == 200  # one request failed, not the service
        fresh = client.get("/health")
        assert fresh.headers["x-request-id"] != "trace-42"


@pytest.mark.parametrize("path", ["/videos/a%0Ab", "/videos/%0A", "/videos/a%7Fb"])
def test_a_video_id_with_a_control_character_is_a_400_not_a_404(
    client: TestClient, path: str
) -> None:
    # Found by make fuzz (Schemathesis): the router's `path` convertor stops at a newline.
    for answer in (client.put(path, json={"title": "t"}), client.get(path)):
        assert answer.status_code == 400
        assert answer.json()["error"] == "invalid_path"
        assert "video_id" in answer.json()["message"]
