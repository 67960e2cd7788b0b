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
5. the same with 20 simulated dashboards that leave out the rising panel;
6. the same with 20 simulated dashboards (every panel), and each path's p99 for them.

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
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench_http import running_server

PAGE_PATHS = (
    "/views/top-k?window=1h&k=10",
    "/leaderboards/videos/rising?short=1h&long=24h&k=10",
    "/leaderboards/videos/leaders?by=category&window=1h&k=10",
    "/status",
    "/metrics",
)
"""One refresh round of the dashboard of the default configuration (the ``videos`` board)."""
REFRESH_S = 2.0
SLOW_S = 0.25
"""As the page (``app.js`` ``SLOW_MS``): a panel answering slower is asked for again only
after 20x its time."""
DASHBOARDS = 20
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@contextlib.contextmanager
def server(data_dir: Path) -> Iterator[tuple[str, int]]:
    """``rankstream serve`` on a free loopback port; yields its URL and process id."""
    options = ["--data-dir", str(data_dir), "--sync", "NORMAL", "--no-analytics"]
    with running_server(options, data_dir.parent / "server.log") as started:
        yield started


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


def _dashboards(
    url: str,
    count: int,
    seconds: float,
    paths: tuple[str, ...],
    adaptive: bool,
    out: multiprocessing.Queue[dict[str, list[float]]],
) -> None:
    """``count`` simulated dashboards asking for ``paths`` every 2 s for ``seconds``; puts
    each path's latencies (s), a failed or timed-out request as infinity."""
    times: dict[str, list[float]] = {path: [] for path in paths}

    async def timed(client: httpx.AsyncClient, path: str, next_at: dict[str, float]) -> None:
        started = time.perf_counter()
        try:
            ok = (await client.get(path)).status_code == 200
        except httpx.HTTPError:
            ok = False
        took = time.perf_counter() - started
        times[path].append(took if ok else float("inf"))
        if adaptive and took > SLOW_S:  # as the page: a slow panel is asked for less often
            next_at[path] = time.monotonic() + min(60.0, max(REFRESH_S, 20 * took))

    async def one(client: httpx.AsyncClient, deadline: float, offset: float) -> None:
        await asyncio.sleep(offset)  # dashboards opened at different moments
        next_at = dict.fromkeys(paths, 0.0)
        while time.monotonic() < deadline:
            started = time.monotonic()
            due = [path for path in paths if next_at[path] <= started]
            await asyncio.gather(*(timed(client, path, next_at) for path in due))
            await asyncio.sleep(max(0.0, REFRESH_S - (time.monotonic() - started)))

    async def run() -> None:
        limits = httpx.Limits(max_connections=count * len(paths))
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as client:
            deadline = time.monotonic() + seconds
            await asyncio.gather(
                *(one(client, deadline, REFRESH_S * i / count) for i in range(count))
            )

    asyncio.run(run())
    out.put(times)


@contextlib.contextmanager
def simulated(
    url: str,
    seconds: float,
    out: dict[str, float],
    paths: tuple[str, ...] = PAGE_PATHS,
    adaptive: bool = True,
) -> Iterator[None]:
    """Run :data:`DASHBOARDS` simulated dashboards in another process around the block; sets
    ``out["rps"]`` (answered requests/s), ``out["failed"]`` and each path's p99 (ms)."""
    ctx = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[dict[str, list[float]]] = ctx.Queue()
    process = ctx.Process(
        target=_dashboards, args=(url, DASHBOARDS, seconds + 1, paths, adaptive, queue)
    )
    process.start()
    time.sleep(1)  # let them start
    try:
        yield
    finally:
        times = queue.get(timeout=seconds + 60)
        process.join(30)
        every = [t for path in paths for t in times[path]]
        out["rps"] = sum(1 for t in every if t != float("inf")) / (seconds + 1)
        out["failed"] = sum(1 for t in every if t == float("inf"))
        for path in paths:
            out[f"p99 {path}"] = _percentile(times[path], 0.99) * 1000


def _percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile by rank (infinity stays infinity: no interpolation)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


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
            page.wait_for_timeout(
                seconds * 1000
            )  # (Playwright delivers events only inside its calls)
        counted = sum(1 for t in requests if t >= start)
        browser.close()
    return counted / seconds, out["cpu"]


def probe(url: str, seconds: float) -> str:
    """``GET /views/top-k?window=1h&k=10`` back to back from one client: p50 and p99 (a
    request over 10 s counts as infinitely slow)."""
    times: list[float] = []
    with httpx.Client(base_url=url, timeout=10) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                ok = client.get(PAGE_PATHS[0]).status_code == 200
            except httpx.HTTPError:
                ok = False
            times.append(time.perf_counter() - started if ok else float("inf"))
            time.sleep(0.005)
    p50, p99 = (_percentile(times, q) * 1000 for q in (0.5, 0.99))
    return f"p50 {_ms(p50)}, p99 {_ms(p99)} ({len(times)} requests)"


def _ms(value: float) -> str:
    return "> 10 s" if value == float("inf") else f"{value:.2f} ms"


@contextlib.contextmanager
def ingesting(url: str, rate: float, seconds: float, out: dict[str, float]) -> Iterator[None]:
    """``rankstream generate`` at ``rate`` around the block; sets ``out["rate"]`` achieved."""
    before = httpx.get(f"{url}/status", timeout=120).json()["events_accepted"]
    command = [sys.executable, "-m", "rankstream", "generate", "--target", url, "--rate",
               str(rate), "--duration", str(seconds + 30), "--videos", "100000", "--seed", "9",
               "--batch-size", "5000", "--concurrency", "4", "--no-metadata",
               "--malformed-share", "0"]  # fmt: skip
    load = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while httpx.get(f"{url}/status", timeout=120).json()["events_accepted"] - before < rate:
            time.sleep(0.1)  # the load has started
        start, wall = (
            httpx.get(f"{url}/status", timeout=120).json()["events_accepted"],
            time.monotonic(),
        )
        yield
        accepted = httpx.get(f"{url}/status", timeout=120).json()["events_accepted"]
        out["rate"] = (accepted - start) / (time.monotonic() - wall)
    finally:
        load.send_signal(signal.SIGINT)
        try:
            load.wait(30)
        except subprocess.TimeoutExpired:
            load.kill()


def settle(url: str) -> None:
    """Wait (at most 2 minutes) until the server answers ``/status`` within 50 ms again, so
    that a phase does not inherit the previous one's backlog."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        started = time.perf_counter()
        httpx.get(f"{url}/status", timeout=120)
        if time.perf_counter() - started < 0.05:
            return
        time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=15, help="length of each phase")
    parser.add_argument("--rate", type=float, default=50_000, help="events/s while ingesting")
    options = parser.parse_args()
    seconds = options.seconds
    history = ["--rate", "20000", "--duration", "3", "--videos", "100000", "--seed", "7"]
    no_rising = tuple(p for p in PAGE_PATHS if "/rising" not in p)
    rows: list[tuple[str, str]] = []
    phases: list[tuple[str, dict[str, float], tuple[str, ...]]] = []
    with (
        tempfile.TemporaryDirectory(prefix="rankstream-bench-dashboard-") as work,
        server(Path(work) / "data") as (url, pid),
    ):
        command = [sys.executable, "-m", "rankstream", "generate", "--target", url, *history]
        subprocess.run(command, check=True, capture_output=True)  # some history, with metadata
        idle: dict[str, float] = {}
        with cpu_share(pid, idle):
            time.sleep(seconds)
        rows.append(("idle, no dashboard: server CPU", f"{idle['cpu']:.1%} of a core"))
        rps, cpu = real_dashboard(url, seconds, pid)
        rows.append(("idle, 1 dashboard in Chromium", f"{rps:.2f} requests/s, server CPU"
                     f" {cpu:.1%} (+{cpu - idle['cpu']:.1%})"))  # fmt: skip
        many: dict[str, float] = {}
        with simulated(url, seconds, many), cpu_share(pid, many):
            time.sleep(seconds)
        phases.append((f"idle, {DASHBOARDS} dashboards", many, PAGE_PATHS))
        rows.append((f"idle, {DASHBOARDS} simulated dashboards",
                     f"{many['rps']:.1f} requests/s ({many['rps'] / DASHBOARDS:.2f} each),"
                     f" server CPU {many['cpu']:.1%}"
                     f" (+{(many['cpu'] - idle['cpu']) / DASHBOARDS:.2%} each)"))  # fmt: skip
        for label, paths, adaptive in (
            ("no dashboard", (), True),
            (f"{DASHBOARDS} dashboards without the rising panel", no_rising, True),
            (f"{DASHBOARDS} dashboards as shipped (slow panels less often)", PAGE_PATHS, True),
            (f"{DASHBOARDS} dashboards, every panel every 2 s", PAGE_PATHS, False),
        ):
            settle(url)
            out: dict[str, float] = {}
            with contextlib.ExitStack() as stack:
                stack.enter_context(ingesting(url, options.rate, seconds, out))
                if paths:
                    stack.enter_context(simulated(url, seconds, out, paths, adaptive))
                stack.enter_context(cpu_share(pid, out))
                figure = probe(url, seconds)
            rows.append((f"ingesting, {label}: top-k k=10, one client",
                         f"{figure}; {out['rate']:,.0f} ev/s achieved; server CPU"
                         f" {out['cpu']:.0%}"))  # fmt: skip
            if paths:
                phases.append((f"ingesting, {label}", out, paths))
    for label, phase, paths in phases:
        rows.append((f"{label}: dashboards' answered requests/s, failed or > 10 s",
                     f"{phase['rps']:.1f}, {phase['failed']:.0f}"))  # fmt: skip
        rows.extend((f"{label}: `{path}` p99", _ms(phase[f"p99 {path}"])) for path in paths)
    print(f"bench_dashboard: {seconds:.0f} s phases, {os.cpu_count()} cores")
    print("| measurement | figure |\n|---|---|")
    for label, figure in rows:
        print(f"| {label} | {figure} |")


if __name__ == "__main__":
    main()
