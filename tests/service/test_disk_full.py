"""A full disk: ingest answers 503, reads keep working, nothing acknowledged is lost, and
ingest resumes by itself once space is freed. On a real, small filesystem: a tmpfs the test
mounts (root is needed; a machine that refuses the mount fails the test, never skips it)."""

from __future__ import annotations

import errno
import random
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import httpx
import pytest

from tests.engine.oracle import Oracle
from tests.servers import ServiceProcess
from tests.service.test_durability import as_views, assert_matches_oracle

FILESYSTEM_BYTES = 8 * 1024 * 1024


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs mounted for the test."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={FILESYSTEM_BYTES}", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.fail(f"this test mounts a small tmpfs and needs root: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(directory: Path) -> Path:
    """Write a file until the filesystem is full; the file (delete it to free the space)."""
    filler = directory / "filler"
    for size in (65536, 512):  # big blocks, then the last partial one
        with open(filler, "ab", buffering=0) as handle:  # unbuffered: close flushes nothing
            while wrote(handle, b"\0" * size):
                pass
    return filler


def wrote(handle: BinaryIO, chunk: bytes) -> bool:
    """Whether ``chunk`` was written; ``False`` when the disk is full (other errors raise)."""
    try:
        handle.write(chunk)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        return False
    return True


def request_body(rng: random.Random, serial: int, size: int) -> list[dict[str, Any]]:
    t = time.time_ns() // 1_000_000
    return [
        {
            "video_id": f"v{min(int(rng.paretovariate(1.2)), 40)}",
            "ts": t - rng.randrange(0, 3_600_000),
            "category": rng.choice(["music", "news"]),
            "event_id": f"e{serial}-{i}",  # a refused request must not leave its ids behind
            "title": "x" * 40,  # bulk, so the log needs new space soon
        }
        for i in range(size)
    ]


def test_disk_full_refuses_ingest_keeps_reads_and_recovers_by_itself(
    service_factory: Callable[..., ServiceProcess], small_filesystem: Path
) -> None:
    data = small_filesystem / "data"
    args = ("--checkpoint-interval", "3600", "--sync", "FULL")
    server = service_factory(*args, data_dir=data)
    rng = random.Random(3)
    oracle = Oracle()
    with httpx.Client(timeout=30) as client:
        run_until_full_and_back(client, server, small_filesystem, rng, oracle)
    server.stop(signal.SIGKILL)  # and all of it is durable
    restarted = service_factory(*args, data_dir=data)
    assert_matches_oracle(restarted.url, oracle)


def run_until_full_and_back(
    client: httpx.Client,
    server: ServiceProcess,
    filesystem: Path,
    rng: random.Random,
    oracle: Oracle,
) -> None:
    """Ingest, fill the disk, check the refusals and reads, free the disk, retry."""
    for serial in range(3):
        body = request_body(rng, serial, 200)
        answer = client.post(
            f"{server.url}/views", json=body, headers={"Idempotency-Key": f"k{serial}"}
        )
        assert answer.status_code == 202
        oracle.accepted.extend(as_views(body))
    filler = fill(filesystem)

    refused: tuple[str, list[dict[str, Any]]] | None = None
    for serial in range(3, 203):  # the log's free pages run out within a few requests
        key, body = f"k{serial}", request_body(rng, serial, 2000)
        answer = client.post(f"{server.url}/views", json=body, headers={"Idempotency-Key": key})
        if answer.status_code == 503:
            assert answer.json()["error"] == "storage_full"
            assert int(answer.headers["retry-after"]) > 0
            refused = (key, body)
            break
        assert answer.status_code == 202, answer.text
        oracle.accepted.extend(as_views(body))
    assert refused is not None, "the disk never filled up"

    # Full: reads work, health says why, nothing acknowledged is missing.
    assert_matches_oracle(server.url, oracle)
    health = client.get(f"{server.url}/health")
    assert health.status_code == 503
    assert "disk is full" in health.json()["message"]
    status = client.get(f"{server.url}/status").json()
    assert status["storage"] is not None
    key, body = refused
    again = client.post(f"{server.url}/views", json=body, headers={"Idempotency-Key": key})
    assert again.status_code == 503  # still full: still refused, still nothing kept

    filler.unlink()  # space is freed: health recovers by itself, before any client writes
    deadline = time.monotonic() + 30
    while client.get(f"{server.url}/health").status_code != 200:
        assert time.monotonic() < deadline, "health did not recover after space was freed"
        time.sleep(0.1)
    # ...and the same retry is taken, once, with no restart
    retried = client.post(f"{server.url}/views", json=body, headers={"Idempotency-Key": key})
    assert retried.status_code == 202, retried.text
    assert retried.json()["accepted"] == len(body)  # no event_id was left "seen" by the refusal
    assert retried.json()["duplicates"] == 0
    oracle.accepted.extend(as_views(body))
    assert client.get(f"{server.url}/health").status_code == 200
    assert_matches_oracle(server.url, oracle)
