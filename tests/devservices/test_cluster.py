"""``make run-cluster``'s launcher as a user runs it: the whole path answers through both API
replicas, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from rankstream.devservices.ports import free_ports

PATIENCE = 180.0  # JVM start, two consumer-group joins, the first publish: about 30 s


def children_of(pid: int) -> set[int]:
    """Every descendant of ``pid`` (from /proc)."""
    found: set[int] = set()
    pending = [pid]
    while pending:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = {int(k) for k in (task / "children").read_text().split()}
            except (FileNotFoundError, ProcessLookupError):
                continue
            pending += sorted(kids - found)
            found |= kids
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie does not count: it has exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def top(url: str) -> list[Any] | None:
    try:
        answer = httpx.get(f"{url}/views/top-k", params={"window": "1h", "k": 10}, timeout=5)
    except httpx.HTTPError:
        return None
    if answer.status_code != 200:
        return None
    items: list[Any] = answer.json()["items"]
    return items


def test_run_cluster_answers_through_both_replicas_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    ports = free_ports(2)
    work = tmp_path / "cluster"
    launcher = subprocess.Popen(
        [sys.executable, "-m", "rankstream.devservices.cluster", "--work-dir", str(work),
         "--api-ports", ",".join(map(str, ports)), "--rate", "2000", "--videos", "2000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + PATIENCE
        while not (work / "cluster.json").exists():
            assert launcher.poll() is None, launcher.communicate()[0].decode()
            assert time.monotonic() < deadline, "the cluster did not start"
            time.sleep(0.5)
        described = json.loads((work / "cluster.json").read_text())
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        assert described["api"] == urls
        assert set(described["pids"]) == {"worker-1", "worker-2", "api-1", "api-2", "generator"}
        first = second = None
        while not (first and first == second):
            assert time.monotonic() < deadline, (first, second)
            time.sleep(0.5)
            first, second = top(urls[0]), top(urls[1])
        descendants = children_of(launcher.pid)
        assert set(described["pids"].values()) <= descendants
        os.kill(launcher.pid, signal.SIGINT)
        output = launcher.communicate(timeout=120)[0].decode()
        assert launcher.returncode == 0, output
        assert "stopped" in output
        assert [pid for pid in descendants if alive(pid)] == []
        logs = (work / "worker-1.log").read_text() + (work / "worker-2.log").read_text()
        assert "revoked partitions" in logs or "assigned partitions" in logs
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()
