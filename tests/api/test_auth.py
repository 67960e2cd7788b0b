"""Bearer tokens: who may write, who may read, rotation, and tokens never echoed."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from rankstream.api import create_app
from rankstream.config import ServiceConfig
from tests.servers import ServiceProcess

OLD_WRITE = "old-write-token-0123456789"
NEW_WRITE = "new-write-token-0123456789"
READ = "read-token-0123456789abcd"
TOKENS = (OLD_WRITE, NEW_WRITE, READ)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def event() -> list[dict[str, object]]:
    return [{"video_id": "a", "ts": time.time_ns() // 1_000_000}]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    config = ServiceConfig.load(
        data_dir=tmp_path / "data",
        sync="NORMAL",
        write_token=(OLD_WRITE, NEW_WRITE),
        read_token=(READ,),
    )
    with TestClient(create_app(config)) as test_client:
        yield test_client


def test_writes_need_a_write_token_and_either_rotated_token_works(client: TestClient) -> None:
    missing = client.post("/views", json=event())
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="rankstream"'
    assert missing.json()["error"] == "unauthorized"
    wrong = client.post("/views", json=event(), headers=bearer("not-a-token-at-all-xx"))
    assert wrong.status_code == 401
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
    not_bearer = client.post("/views", json=event(), headers={"Authorization": f"Basic {READ}"})
    assert not_bearer.status_code == 401
    reader = client.post("/views", json=event(), headers=bearer(READ))
    assert reader.status_code == 403
    assert 'error="insufficient_scope"' in reader.headers["www-authenticate"]
    for token in (OLD_WRITE, NEW_WRITE):
        assert client.post("/views", json=event(), headers=bearer(token)).status_code == 202
        put = client.put("/videos/a", json={"title": "A"}, headers=bearer(token))
        assert put.status_code == 200
    assert client.put("/videos/a", json={"title": "A"}).status_code == 401
    status = client.get("/status", headers=bearer(READ)).json()
    assert status["events_accepted"] == 2  # refused calls kept nothing


def test_reads_need_a_read_or_write_token_and_public_calls_none(client: TestClient) -> None:
    for path in ("/views/top-k", "/videos/a", "/status", "/metrics", "/dead-letters"):
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers=bearer(READ)).status_code in (200, 404), path
        assert client.get(path, headers=bearer(NEW_WRITE)).status_code in (200, 404), path
    for path in ("/health", "/openapi.json", "/docs"):
        assert client.get(path).status_code == 200, path


def test_tokens_are_never_shown(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client.post("/views", json=event(), headers=bearer("not-a-token-at-all-xx"))
    client.post("/views", json=event(), headers=bearer(READ))
    shown = [
        client.get("/status", headers=bearer(READ)).text,
        client.get("/metrics", headers=bearer(READ)).text,
        client.get("/openapi.json").text,
        client.get("/docs").text,
        caplog.text,
    ]
    for text in shown:
        for token in TOKENS:
            assert token not in text
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert spec["paths"]["/views"]["post"]["security"] == [{"bearer": []}]
    assert "401" in spec["paths"]["/views/top-k"]["get"]["responses"]
    assert "security" not in spec["paths"]["/health"]["get"]


def test_without_read_tokens_reads_are_open(tmp_path: Path) -> None:
    config = ServiceConfig.load(data_dir=tmp_path / "d", sync="NORMAL", write_token=(NEW_WRITE,))
    with TestClient(create_app(config)) as open_reads:
        assert open_reads.get("/views/top-k").status_code == 200
        assert open_reads.post("/views", json=event()).status_code == 401
        spec = open_reads.get("/openapi.json").json()
        assert "security" not in spec["paths"]["/views/top-k"]["get"]


def test_the_generator_sends_its_token_to_a_guarded_server(
    service_factory: Callable[..., ServiceProcess],
) -> None:
    server = service_factory(env={"RANKSTREAM_WRITE_TOKEN": f"{OLD_WRITE},{NEW_WRITE}"})
    command = [
        sys.executable, "-m", "rankstream", "generate", "--target", server.url, "--rate", "500",
        "--duration", "1", "--videos", "50", "--no-metadata",
    ]  # fmt: skip
    refused = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert re.search(r"failed requests [1-9]", refused.stdout), refused.stdout  # 401s
    assert httpx.get(f"{server.url}/status").json()["events_accepted"] == 0
    env = {**os.environ, "RANKSTREAM_TOKEN": NEW_WRITE}
    sent = subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False, env=env
    )
    assert sent.returncode == 0, sent.stderr
    accepted = httpx.get(f"{server.url}/status").json()["events_accepted"]
    assert accepted > 0
    log = server.log_path.read_text()
    assert OLD_WRITE not in log
    assert NEW_WRITE not in log
