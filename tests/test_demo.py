"""`rankstream demo` (what `make run` starts): serves, fills itself with traffic, stops
cleanly on Ctrl-C with a final checkpoint."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port


@contextlib.contextmanager
def demo(tmp_path: Path, *options: str) -> Iterator[tuple[str, dict[str, int], Path]]:
    """``rankstream demo`` on a free port, once it has accepted 500 events: its URL, its
    ``/status`` then, and its log. Stopped with Ctrl-C (SIGINT) on leaving, which must end
    it cleanly."""
    port = free_port()
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "rankstream", "demo", "--port", str(port),
             "--data-dir", str(tmp_path / "data"), "--rate", "500", *options],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        status: dict[str, int] = {"events_accepted": 0}
        while time.monotonic() < deadline and status["events_accepted"] < 500:
            with contextlib.suppress(httpx.HTTPError):
                status = httpx.get(f"{url}/status", timeout=2).json()
            time.sleep(0.2)
        assert status["events_accepted"] >= 500, log.read_text()
        yield url, status, log
        process.send_signal(signal.SIGINT)
        assert process.wait(60) in (0, -signal.SIGINT, 130)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_demo_serves_generated_traffic_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    with demo(tmp_path, "--videos", "200") as (url, _, log):
        top = httpx.get(f"{url}/views/top-k", params={"window": "1h", "k": 3}).json()
        assert len(top["items"]) == 3
        assert "title" in top["items"][0]  # the generator registered metadata
    assert list((tmp_path / "data" / "checkpoints").rglob("ckpt-*.bin")), log.read_text()
    assert f"API on {url}" in log.read_text()


@pytest.mark.parametrize(
    ("scenario", "questions"),
    [
        (
            "game",
            [
                ("/leaderboards/teams/top-k", {"window": "1h"}),
                ("/leaderboards/players/top-k", {"window": "10m"}),
                ("/leaderboards/players/rising", {"short": "10m", "long": "1h"}),
                ("/leaderboards/players/leaders", {"by": "team_id", "window": "1h"}),
            ],
        ),
        (
            "shop",
            [
                ("/leaderboards/product-views/top-k", {"window": "1h"}),
                ("/leaderboards/active-users/top-k", {"window": "10m"}),
            ],
        ),
    ],
)
def test_demo_scenarios_serve_their_boards(
    tmp_path: Path, scenario: str, questions: list[tuple[str, dict[str, str]]]
) -> None:
    with demo(tmp_path, "--scenario", scenario, "--no-analytics") as (url, status, log):
        assert status["events_rejected"] == 0  # every event fits some board
        for path, params in questions:
            answer = httpx.get(f"{url}{path}", params=params)
            assert answer.status_code == 200, answer.text
            assert answer.json()["items"], (path, answer.json())
    assert f"{url}/leaderboards" in log.read_text()
