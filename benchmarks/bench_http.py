"""Benchmark of the HTTP service on loopback: ingest, top-k under load, freshness.

Run with ``.venv/bin/python benchmarks/bench_http.py`` (``--quick`` for a short run,
``--help`` for the knobs). Measures, never asserts; every loop is bounded by a count and a
time limit, so the run ends by itself. Steps:

1. Sender ceiling: :func:`rankstream.generator.sender.run` against a null sink (a process
   that answers every request with a fixed 202): what one core of the sender can push.
2. Start ``rankstream serve`` on a free 127.0.0.1 port with a temporary data dir and wait
   for ``/health``.
3. Ingest: pre-encoded traffic (no duplicates, nothing malformed) posted in batches of 1,000
   and of 10,000 events over 4 keep-alive connections; acknowledged events/s (every request
   must be a 202), beside ``msgspec.json.decode`` of the same bodies in this process.
4. ``GET /views/top-k?window=1h&k=100``: latency of one client (p50/p99) and requests/s of
   16 concurrent connections, idle and while a separate process sends 50,000 events/s.
5. Freshness, idle and under the same load: time from the 202 of a request holding 1,000
   views of a brand-new video (in a category of its own) until ``top-k`` filtered on that
   category shows all 1,000 (the service answers 202 only once a batch is applied, so this
   is about one round trip), and the POST's own time from send to 202; ~50 trials each.

The HTTP client is a minimal keep-alive HTTP/1.1 client on asyncio streams, so the figures
are bound by the server rather than by a client library.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgspec
import numpy as np

from rankstream.devservices.ports import LOOPBACK, free_port
from rankstream.generator.sender import send
from rankstream.generator.traffic import TrafficModel, TrafficSpec, View

TOP_K_PATH = "/views/top-k?window=1h&k=100"
LOAD_RATE = 50_000
VIDEOS = 100_000
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Settings:
    """Sizes and time limits of one run."""

    phase_s: float
    ingest_events: int
    freshness_trials: int
    sync: str

    @classmethod
    def of(cls, args: argparse.Namespace) -> Settings:
        if args.quick:
            return cls(phase_s=2.0, ingest_events=100_000, freshness_trials=20, sync=args.sync)
        return cls(phase_s=5.0, ingest_events=500_000, freshness_trials=50, sync=args.sync)


# ---------------------------------------------------------------- a minimal HTTP client


class Connection:
    """One keep-alive HTTP/1.1 connection, one request at a time (no pipelining).

    Reads answers by ``Content-Length`` only, which every answer of the service carries.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> Connection:
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()

    async def request(
        self, method: str, target: str, body: bytes = b"", headers: str = ""
    ) -> tuple[int, bytes]:
        """Send one request and read its answer: ``(status, body)``."""
        if self._reader is None or self._writer is None:
            raise RuntimeError("use the connection inside `async with`")
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Content-Length: {len(body)}\r\n{headers}\r\n"
        )
        self._writer.write(head.encode())
        if body:
            self._writer.write(body)
        await self._writer.drain()
        header = await self._reader.readuntil(b"\r\n\r\n")
        status = int(header[9:12])
        lower = header.lower()
        at = lower.find(b"content-length:")
        if at < 0:
            raise RuntimeError(f"answer without Content-Length: {header[:200]!r}")
        length = int(lower[at + 15 : lower.find(b"\r\n", at)])
        return status, await self._reader.readexactly(length)


# ---------------------------------------------------------------- processes


@contextlib.contextmanager
def running_server(
    options: list[str], log_path: Path, env: dict[str, str] | None = None
) -> Iterator[tuple[str, int]]:
    """``rankstream serve`` with ``options`` on a free loopback port (its output in
    ``log_path``); yields its URL and process id once ``/health`` answers, and stops it
    (SIGTERM, then SIGKILL after 60 s) on leaving."""
    port = free_port()
    command = [sys.executable, "-m", "rankstream", "serve", "--host", LOOPBACK,
               "--port", str(port), *options]  # fmt: skip
    url = f"http://{LOOPBACK}:{port}"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
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


@contextlib.contextmanager
def server(data_dir: Path, sync: str) -> Iterator[int]:
    """``rankstream serve`` on a free loopback port; yields the port once healthy."""
    options = ["--data-dir", str(data_dir), "--sync", sync]
    with running_server(options, data_dir.parent / "server.log") as (url, _):
        yield int(url.rsplit(":", 1)[1])


def _null_sink(port: int, ready: Any) -> None:
    """A process answering every HTTP request with the same 202 (reads bodies fully)."""
    answer = b'{"accepted":0,"rejected":0,"duplicates":0,"errors":[]}'
    reply = b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n"
    reply += b"Content-Length: %d\r\n\r\n%s" % (len(answer), answer)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                header = (await reader.readuntil(b"\r\n\r\n")).lower()
                at = header.find(b"content-length:")
                if at >= 0:
                    await reader.readexactly(int(header[at + 15 : header.find(b"\r\n", at)]))
                writer.write(reply)
                await writer.drain()
        writer.close()

    async def main() -> None:
        sink = await asyncio.start_server(handle, "127.0.0.1", port)
        ready.set()
        async with sink:
            await sink.serve_forever()

    asyncio.run(main())


def _background_load(url: str, rate: float, duration: float, out: Queue[tuple[Any, ...]]) -> None:
    """A process sending ``rate`` events/s to ``url`` until its duration or a SIGINT."""
    report = send(
        url,
        rate=rate,
        duration=duration,
        videos=VIDEOS,
        seed=99,
        batch_size=5000,
        concurrency=4,
        register_metadata=False,
        progress=False,
    )
    out.put((report.sent, report.elapsed, report.failed_requests))


# ---------------------------------------------------------------- measurements


def sender_ceiling(seconds: float) -> float:
    """Events/s the sender pushes (rate 0, batches of 1,000) into a null sink."""
    ctx = multiprocessing.get_context("spawn")
    port = free_port()
    ready = ctx.Event()
    sink = ctx.Process(target=_null_sink, args=(port, ready), daemon=True)
    sink.start()
    try:
        if not ready.wait(60):
            raise RuntimeError("the null sink did not start")
        report = send(
            f"http://127.0.0.1:{port}",
            rate=0,
            duration=seconds,
            videos=VIDEOS,
            seed=1,
            register_metadata=False,
            progress=False,
        )
        return report.achieved_rate
    finally:
        sink.terminate()
        sink.join(10)


def bodies(batch_size: int, events: int, seed: int) -> list[bytes]:
    """Encoded batches of unique, valid events stamped with the current time."""
    spec = TrafficSpec(videos=VIDEOS, duplicate_share=0.0, seed=seed, run=f"b{seed}-")
    model = TrafficModel(spec, int(time.time() * 1000) - 3_600_000)  # no spike
    now = int(time.time() * 1000)
    return [model.batch(i, batch_size, now).encode() for i in range(events // batch_size)]


async def ingest(port: int, payloads: list[bytes], batch_size: int, seconds: float) -> float:
    """Acknowledged events/s posting ``payloads`` over 4 connections (stops at ``seconds``)."""
    pending = iter(payloads)
    acked = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal acked
        async with Connection(port) as conn:
            for body in pending:
                if time.perf_counter() > deadline:
                    return
                status, answer = await conn.request(
                    "POST", "/views", body, "Content-Type: application/json\r\n"
                )
                if status != 202:
                    raise RuntimeError(f"POST /views answered {status}: {answer[:300]!r}")
                acked += batch_size

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(4)))
    return acked / (time.perf_counter() - started)


def decode_ceiling(payloads: list[bytes], batch_size: int) -> float:
    """Events/s of ``msgspec.json.decode`` over the same bodies, in this process."""
    decode = msgspec.json.decode
    started = time.perf_counter()
    for body in payloads:
        decode(body)
    return len(payloads) * batch_size / (time.perf_counter() - started)


@dataclass(frozen=True, slots=True)
class TopK:
    p50_ms: float
    p99_ms: float
    rps: float
    concurrent_p99_ms: float


async def top_k(port: int, seconds: float, connections: int = 16) -> TopK:
    """Latency of one sequential client, then requests/s of ``connections`` clients."""
    latencies: list[float] = []
    async with Connection(port) as conn:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline and len(latencies) < 200_000:
            started = time.perf_counter()
            status, _ = await conn.request("GET", TOP_K_PATH)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                raise RuntimeError(f"top-k answered {status}")
    concurrent: list[float] = []

    async def client(deadline: float) -> None:
        async with Connection(port) as conn:
            while time.perf_counter() < deadline and len(concurrent) < 1_000_000:
                started = time.perf_counter()
                status, _ = await conn.request("GET", TOP_K_PATH)
                concurrent.append(time.perf_counter() - started)
                if status != 200:
                    raise RuntimeError(f"top-k answered {status}")

    started = time.perf_counter()
    await asyncio.gather(*(client(started + seconds) for _ in range(connections)))
    rps = len(concurrent) / (time.perf_counter() - started)
    ms = np.asarray(latencies) * 1000
    return TopK(
        p50_ms=float(np.percentile(ms, 50)),
        p99_ms=float(np.percentile(ms, 99)),
        rps=rps,
        concurrent_p99_ms=float(np.percentile(np.asarray(concurrent) * 1000, 99)),
    )


async def freshness(port: int, trials: int, tag: str) -> tuple[list[float], list[float]]:
    """Seconds from the 202 of 1,000 views of a new video until top-k shows all of them, and
    seconds the POST itself took (send to 202), per trial."""
    times: list[float] = []
    posts: list[float] = []
    async with Connection(port) as post, Connection(port) as poll:
        for trial in range(trials):
            video = f"fresh-{tag}-{trial}"
            category = f"fresh-{tag}-{trial}"
            now = int(time.time() * 1000)
            events = [View(video, now, category, event_id=f"{video}-{i}") for i in range(1000)]
            body = msgspec.json.encode(events)
            sent = time.perf_counter()
            status, answer = await post.request(
                "POST", "/views", body, "Content-Type: application/json\r\n"
            )
            if status != 202:
                raise RuntimeError(f"POST /views answered {status}: {answer[:300]!r}")
            acked = time.perf_counter()
            posts.append(acked - sent)
            target = f"/views/top-k?window=1h&k=1&category={category}"
            while time.perf_counter() - acked < 10:
                _, body = await poll.request("GET", target)
                items = msgspec.json.decode(body)["items"]
                if items and items[0]["views"] == 1000:
                    times.append(time.perf_counter() - acked)
                    break
            await asyncio.sleep(0.02)  # trials apart, not back to back
    return times, posts


def under_load(
    port: int, seconds: float, work: Callable[[], Coroutine[Any, Any, T]]
) -> tuple[T, float]:
    """Run ``work`` while another process sends :data:`LOAD_RATE` events/s; returns its result
    and the load's achieved events/s."""
    ctx = multiprocessing.get_context("spawn")
    out: Queue[tuple[Any, ...]] = ctx.Queue()
    url = f"http://127.0.0.1:{port}"
    loader = ctx.Process(target=_background_load, args=(url, LOAD_RATE, seconds, out))
    loader.start()
    try:
        _wait_for_traffic(url)
        result = asyncio.run(work())
    finally:
        if loader.pid is not None and loader.is_alive():
            os.kill(loader.pid, signal.SIGINT)  # the sender stops cleanly and reports
        sent, elapsed, failed = out.get(timeout=120)
        loader.join(30)
    if failed:
        print(f"warning: the load sender gave up on {failed} requests", file=sys.stderr)
    return result, sent / elapsed if elapsed > 0 else 0.0


def _wait_for_traffic(url: str) -> None:
    """Wait (at most 60 s) until the server has accepted a second of load traffic."""
    first = httpx.get(f"{url}/status").json()["events_accepted"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if httpx.get(f"{url}/status").json()["events_accepted"] - first >= LOAD_RATE:
            return
        time.sleep(0.1)
    raise RuntimeError("the background load never reached the server")


# ---------------------------------------------------------------- report


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, {sys.platform}"


def percentile_ms(times: list[float], q: float) -> str:
    return f"{np.percentile(np.asarray(times) * 1000, q):.1f} ms" if times else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short phases, fewer trials")
    parser.add_argument("--sync", default="FULL", choices=["FULL", "NORMAL"], help="log sync")
    settings = Settings.of(parser.parse_args())
    rows: list[tuple[str, str]] = []
    print(f"machine: {machine()}", file=sys.stderr)
    print("1/5 sender ceiling against a null sink", file=sys.stderr)
    ceiling = sender_ceiling(settings.phase_s)
    rows.append(("sender ceiling (null sink, batches of 1,000)", f"{ceiling:,.0f} events/s"))
    with tempfile.TemporaryDirectory() as tmp, server(Path(tmp) / "data", settings.sync) as port:
        for batch_size in (1000, 10_000):
            print(f"2/5 ingest, batches of {batch_size:,}", file=sys.stderr)
            payloads = bodies(batch_size, settings.ingest_events, seed=batch_size)
            rate = asyncio.run(ingest(port, payloads, batch_size, 2 * settings.phase_s))
            ceiling = decode_ceiling(payloads, batch_size)
            name = f"ingest, batches of {batch_size:,} (4 connections, all 202)"
            figure = f"{rate:,.0f} events/s (msgspec decode of the same bodies: {ceiling:,.0f}/s)"
            rows.append((name, figure))
            del payloads
        print("3/5 top-k, idle", file=sys.stderr)
        idle = asyncio.run(top_k(port, settings.phase_s))
        rows += _top_k_rows("idle", idle)
        print("4/5 freshness, idle", file=sys.stderr)
        fresh = asyncio.run(freshness(port, settings.freshness_trials, "idle"))
        rows += _freshness_rows("idle", fresh, settings.freshness_trials)
        print(f"5/5 top-k and freshness under {LOAD_RATE:,} events/s", file=sys.stderr)

        async def loaded() -> tuple[TopK, tuple[list[float], list[float]]]:
            answer = await top_k(port, settings.phase_s)
            return answer, await freshness(port, settings.freshness_trials, "load")

        (busy, fresh), load = under_load(port, 10 * settings.phase_s + 30, loaded)
        rows += _top_k_rows(f"under load ({load:,.0f} events/s achieved)", busy)
        rows += _freshness_rows("under load", fresh, settings.freshness_trials)
    print(f"\nMachine: {machine()}; server `--sync {settings.sync}`, loopback only.\n")
    print("| measurement | figure |\n|---|---|")
    for name, figure in rows:
        print(f"| {name} | {figure} |")


def _top_k_rows(label: str, result: TopK) -> list[tuple[str, str]]:
    latency = f"p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms"
    throughput = f"{result.rps:,.0f} requests/s (p99 {result.concurrent_p99_ms:.1f} ms)"
    return [
        (f"`GET {TOP_K_PATH}` latency, one client, {label}", latency),
        (f"`GET {TOP_K_PATH}` throughput, 16 connections, {label}", throughput),
    ]


def _freshness_rows(
    label: str, result: tuple[list[float], list[float]], trials: int
) -> list[tuple[str, str]]:
    times, posts = result
    seen = f"{len(times)}/{trials} trials seen within 10 s"
    return [
        (
            f"freshness (202 to visible in top-k), {label}",
            f"p50 {percentile_ms(times, 50)}, p99 {percentile_ms(times, 99)} ({seen})",
        ),
        (
            f"the POST of those 1,000 views (send to 202), {label}",
            f"p50 {percentile_ms(posts, 50)}, p99 {percentile_ms(posts, 99)}",
        ),
    ]


if __name__ == "__main__":
    main()
