"""Limits a client cannot get past: head size and time (real server, raw sockets), body time,
and the bounded ingest queue (429 with Retry-After)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
from starlette.testclient import TestClient

from rankstream.api import create_app
from rankstream.config import ServiceConfig
from rankstream.log import LogPosition, SqliteEventLog
from tests.servers import ServiceProcess


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def exchange(port: int, data: bytes, pause: float = 0.0, rest: bytes = b"") -> bytes:
    """Send ``data`` (then, after ``pause`` s, ``rest``) and read the answer to the end."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        if pause:
            time.sleep(pause)
            with contextlib.suppress(OSError):  # the server may have closed already
                sock.sendall(rest)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def error_of(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, msgspec.json.decode(body)["error"]


def test_oversized_and_slow_heads_and_bodies_are_refused(
    service_factory: Callable[..., ServiceProcess],
) -> None:
    server = service_factory("--max-header-bytes", "4096", "--body-timeout", "1")
    huge = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    assert error_of(exchange(server.port, huge)) == (431, "headers_too_large")

    slow_head = b"GET /health HTTP/1.1\r\nHost: x\r\n"
    assert error_of(exchange(server.port, slow_head, pause=2.5, rest=b"\r\n")) == (
        408,
        "headers_timeout",
    )

    body = b'[{"video_id": "a", "ts": %d}]' % now_ms()
    head = (
        b"POST /views HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
        % len(body)
    )
    answer = exchange(server.port, head + body[:5], pause=2.5, rest=body[5:])
    assert error_of(answer) == (408, "body_timeout")

    ok = httpx.get(f"{server.url}/health", headers={"X-Pad": "p" * 3000})  # within the bound
    assert ok.status_code == 200
    status = httpx.get(f"{server.url}/status").json()
    assert status["events_accepted"] == 0


def test_a_full_ingest_queue_answers_429_with_retry_after(tmp_path: Path) -> None:
    config = ServiceConfig(data_dir=tmp_path / "data", sync="NORMAL", max_queued_requests=1)
    release = threading.Event()
    append = SqliteEventLog.append

    def slow_append(log: SqliteEventLog, record: object) -> LogPosition | None:
        release.wait(30)  # a disk that takes its time
        return append(log, record)  # type: ignore[arg-type]

    event = [{"video_id": "a", "ts": now_ms()}]
    with TestClient(create_app(config)) as client:
        state = client.app_state["app"]
        state.ingest.log.append = slow_append.__get__(state.ingest.log)
        first: list[Any] = []
        sender = threading.Thread(target=lambda: first.append(client.post("/views", json=event)))
        sender.start()
        deadline = time.monotonic() + 10
        while state.ingest.queue_depth() == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        refused = client.post("/views", json=event)
        assert refused.status_code == 429
        assert refused.json()["error"] == "overloaded"
        assert refused.headers["retry-after"] == "1"
        release.set()
        sender.join(30)
        assert first[0].status_code == 202
        assert client.post("/views", json=event).status_code == 202  # room again
        assert client.get("/status").json()["events_accepted"] == 2
        errors = client.get("/metrics").text
        assert 'rankstream_http_errors_total{code="overloaded",status="429"} 1.0' in errors


def test_connections_beyond_the_limit_get_a_json_503(
    service_factory: Callable[..., ServiceProcess],
) -> None:
    server = service_factory("--max-connections", "2")
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=30) for _ in range(2)]
    try:
        time.sleep(0.5)  # the server has accepted both
        answer = exchange(server.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert error_of(answer) == (503, "too_many_connections")
        assert b"retry-after: 1" in answer
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.5)
    assert httpx.get(f"{server.url}/health").status_code == 200
