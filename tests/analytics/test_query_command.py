"""``rankstream analytics query``: read-only SQL against the store of a stopped service."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import msgspec
import pytest

from rankstream.analytics import AnalyticsError, AnalyticsStore
from tests.servers import ServiceProcess


def run_query(data_dir: Path, sql: str, *options: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "rankstream", "analytics", "query", "--data-dir"]
    return subprocess.run(
        [*command, str(data_dir), *options, sql], capture_output=True, text=True, timeout=120
    )


def test_analytics_query_is_read_only_sql(
    service_factory: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    service = service_factory(data_dir=data_dir)
    now = int(time.time() * 1000)
    events = [{"video_id": f"v{i % 7}", "timestamp": now - i * 1000} for i in range(300)]
    assert httpx.post(f"{service.url}/views", json=events).status_code == 202
    for _ in range(600):
        if httpx.get(f"{service.url}/status").json()["analytics"]["rows"] == 300:
            break
        time.sleep(0.1)
    in_use = run_query(data_dir, "SELECT count() FROM views")
    assert in_use.returncode == 1
    assert "one process at a time" in in_use.stderr
    assert service.stop(signal.SIGTERM) in (0, -signal.SIGTERM)  # uvicorn re-raises it

    counted = run_query(data_dir, "SELECT count() AS n FROM views", "--format", "json")
    assert counted.returncode == 0, counted.stderr
    assert int(msgspec.json.decode(counted.stdout)["n"]) == 300
    table = run_query(data_dir, "SELECT sum(views) AS rolled FROM views_hourly")
    assert "300" in table.stdout
    csv = run_query(data_dir, "SELECT 1 AS a, 'x,y' AS b", "--format", "csv")
    assert csv.stdout.splitlines() == ['"a","b"', '1,"x,y"']
    refused = run_query(data_dir, "DROP TABLE views")
    assert refused.returncode == 1
    assert "readonly" in refused.stderr, refused.stderr

    store = AnalyticsStore(data_dir / "analytics", read_only=True)  # as the command opens it
    try:
        for statement in [
            "INSERT INTO views (video_id) VALUES ('x')",
            "ALTER TABLE views DELETE WHERE 1",
            "CREATE TABLE t (x Int8) ENGINE = Memory",
            "SET readonly = 0",
            "TRUNCATE TABLE views_hourly",
        ]:
            with pytest.raises(AnalyticsError, match="readonly"):
                store.text(statement, "CSV")
        assert store.text("SELECT count() FROM views", "CSV").strip() == "300"
    finally:
        store.close()
