"""``make bench-dashboard``: what open dashboards cost the service (loopback only).

Starts ``rankstream serve`` (``--sync NORMAL``, analytics off, a temporary data directory,
on a free 127.0.0.1 port) and measures, each phase for ``--seconds``:

1. idle, no dashboard: the server's CPU (the same-run baseline);
2. idle, one real dashboard in Debian's headless Chromium: its requests/s (counted by the
   browser) and the server's CPU above the baseline;
3. idle, 20 simulated dashboards: the same requests as the page makes (``/views/top-k``,
   ``/rising``, ``/leaders``, ``/status``, ``/metrics`` together every 2 s, as a browser
   does them in parallel), from another process: requests/s and server CPU per dashboard;
4. ingesting ``--rate`` events/s (``rankstream generate`` in its own process) with no
   dashboard: ``GET /views/top-k?window=1h&k=10`` latency of one client (p50, p99);
5. the same with 20 simulated dashboards open.

CPU is the server process's user + system time from ``/proc`` over the phase. The server,
the load, the dashboards and the probe share the machine's cores: figures are for
comparison within the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np

PAGE_PATHS = (
    "/views/top-k?window=1h&k=10",
    "/leaderboards/videos/rising?short=1h&long=24h&k=10",
    "/leaderboards/videos/leaders?by=category&window=1h&k=10",
    "/status",
    "/metrics",
)
"""One refresh round of the dashboard of the default configuration (the ``videos`` board)."""
REFRESH_S = 2.0
DASHBOARDS = 20
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server(data_dir: Path) -> Iterator[tuple[str, int]]:
    """``rankstream serve`` on a free loopback port; yields its URL and process id."""
    port = free_port()
    command = [sys.executable, "-m", "rankstream", "serve", "--host", "127.0.0.1",
               "--port", str(port), "--data-dir", str(data_dir), "--sync", "NORMAL",
               "--no-analytics"]  # fmt: skip
    log_path = data_dir.parent / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{log_path.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.05)
        yield url, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def cpu_share(pid: int, out: dict[str, float]) -> Iterator[None]:
    """Sets ``out["cpu"]`` to the share of one core ``pid`` used in the block."""
    start, wall = cpu_seconds(pid), time.monotonic()
    yield
    out["cpu"] = (cpu_seconds(pid) - start) / (time.monotonic() - wall)


def _dashboards(url: str, count: int, seconds: float, out: multiprocessing.Queue[int]) -> None:
    """``count`` simulated dashboards for ``seconds``; puts the number of requests made."""

    async def one(client: httpx.AsyncClient, deadline: float, offset: float) -> int:
        await asyncio.sleep(offset)  # dashboards opened at different moments
        made = 0
        while time.monotonic() < deadline:
            started = time.monotonic()
            answers = await asyncio.gather(*(client.get(path) for path in PAGE_PATHS))
            made += sum(1 for a in answers if a.status_code == 200)
            await asyncio.sleep(max(0.0, REFRESH_S - (time.monotonic() - started)))
        return made

    async def main() -> int:
        limits = httpx.Limits(max_connections=count * len(PAGE_PATHS))
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as client:
            deadline = time.monotonic() + seconds
            made = await asyncio.gather(
                *(one(client, deadline, REFRESH_S * i / count) for i in range(count))
            )
            return sum(made)

    out.put(asyncio.run(main()))


@contextlib.contextmanager
def simulated(url: str, count: int, seconds: float, out: dict[str, float]) -> Iterator[None]:
    """Run ``count`` simulated dashboards in another process around the block; sets
    ``out["rps"]`` to their requests/s."""
    ctx = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[int] = ctx.Queue()
    process = ctx.Process(target=_dashboards, args=(url, count, seconds + 1, queue))
    process.start()
    time.sleep(1)  # let them start
    try:
        yield
    finally:
        made = queue.get(timeout=seconds + 60)
        process.join(30)
        out["rps"] = made / (seconds + 1)


def real_dashboard(url: str, seconds: float, pid: int) -> tuple[float, float]:
    """One dashboard in headless Chromium for ``seconds``: its requests/s and server CPU."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        sys.exit("bench_dashboard: chromium is not installed (make services installs it)")
    requests: list[float] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.on("request", lambda _: requests.append(time.monotonic()))
        page.goto(f"{url}/#window=1h&k=10")
        page.wait_for_selector("body[data-state='live']")
        start = time.monotonic()
        out: dict[str, float] = {}
        with cpu_share(pid, out):
            time.sleep(seconds)
        counted = sum(1 for t in requests if t >= start)
        browser.close()
    return counted / seconds, out["cpu"]


def probe(url: str, seconds: float) -> tuple[float, float, int]:
    """``GET /views/top-k?window=1h&k=10`` back to back from one client: p50, p99 (ms), n."""
    times: list[float] = []
    with httpx.Client(base_url=url, timeout=10) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            answer = client.get(PAGE_PATHS[0])
            times.append(time.perf_counter() - started)
            assert answer.status_code == 200
            time.sleep(0.005)
    ms = np.asarray(times) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), len(times)


@contextlib.contextmanager
def ingesting(url: str, rate: float, seconds: float, out: dict[str, float]) -> Iterator[None]:
    """``rankstream generate`` at ``rate`` around the block; sets ``out["rate"]`` achieved."""
    before = httpx.get(f"{url}/status").json()["events_accepted"]
    command = [sys.executable, "-m", "rankstream", "generate", "--target", url, "--rate",
               str(rate), "--duration", str(seconds + 30), "--videos", "100000", "--seed", "9",
               "--batch-size", "5000", "--concurrency", "4", "--no-metadata",
               "--malformed-share", "0"]  # fmt: skip
    load = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while httpx.get(f"{url}/status").json()["events_accepted"] - before < rate:
            time.sleep(0.1)  # the load has started
        start, wall = httpx.get(f"{url}/status").json()["events_accepted"], time.monotonic()
        yield
        accepted = httpx.get(f"{url}/status").json()["events_accepted"]
        out["rate"] = (accepted - start) / (time.monotonic() - wall)
    finally:
        load.send_signal(signal.SIGINT)
        try:
            load.wait(30)
        except subprocess.TimeoutExpired:
            load.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=20, help="length of each phase")
    parser.add_argument("--rate", type=float, default=50_000, help="events/s while ingesting")
    options = parser.parse_args()
    seconds = options.seconds
    history = ["--rate", "20000", "--duration", "3", "--videos", "100000", "--seed", "7"]
    with (
        tempfile.TemporaryDirectory(prefix="rankstream-bench-dashboard-") as work,
        server(Path(work) / "data") as (url, pid),
    ):
        command = [sys.executable, "-m", "rankstream", "generate", "--target", url, *history]
        subprocess.run(command, check=True, capture_output=True)  # some history, with metadata
        idle: dict[str, float] = {}
        with cpu_share(pid, idle):
            time.sleep(seconds)
        one_rps, one_cpu = real_dashboard(url, seconds, pid)
        many: dict[str, float] = {}
        with simulated(url, DASHBOARDS, seconds, many), cpu_share(pid, many):
            time.sleep(seconds)
        base: dict[str, float] = {}
        with ingesting(url, options.rate, seconds, base), cpu_share(pid, base):
            base_p50, base_p99, base_n = probe(url, seconds)
        loaded: dict[str, float] = {}
        with (
            ingesting(url, options.rate, seconds, loaded),
            simulated(url, DASHBOARDS, seconds, loaded),
            cpu_share(pid, loaded),
        ):
            p50, p99, n = probe(url, seconds)
    rows = [
        ("idle, no dashboard: server CPU", f"{idle['cpu']:.1%} of a core"),
        ("idle, 1 dashboard in Chromium", f"{one_rps:.2f} requests/s, server CPU"
         f" {one_cpu:.1%} (+{one_cpu - idle['cpu']:.1%})"),
        (f"idle, {DASHBOARDS} simulated dashboards", f"{many['rps']:.1f} requests/s"
         f" ({many['rps'] / DASHBOARDS:.2f} each), server CPU {many['cpu']:.1%}"
         f" (+{(many['cpu'] - idle['cpu']) / DASHBOARDS:.2%} each)"),
        (f"ingesting {base['rate']:,.0f} ev/s, no dashboard: top-k k=10",
         f"p50 {base_p50:.2f} ms, p99 {base_p99:.2f} ms ({base_n} requests), server CPU"
         f" {base['cpu']:.0%}"),
        (f"ingesting {loaded['rate']:,.0f} ev/s, {DASHBOARDS} dashboards: top-k k=10",
         f"p50 {p50:.2f} ms, p99 {p99:.2f} ms ({n} requests), server CPU {loaded['cpu']:.0%};"
         f" dashboards {loaded['rps']:.1f} requests/s"),
    ]  # fmt: skip
    print(f"bench_dashboard: {seconds:.0f} s phases, {os.cpu_count()} cores")
    print("| measurement | figure |\n|---|---|")
    for label, figure in rows:
        print(f"| {label} | {figure} |")


if __name__ == "__main__":
    main()
