"""The HTTP app's own time per request, without a network or a server: raw ASGI calls.

``bench_http.py`` measures the whole service over loopback, where the client, the server
and the writer share two cores, so a few microseconds of Python per request disappear in
the noise. This calls the app in-process (lifespan started, a cached top-k answer, an idle
writer) and reports the fastest of several repetitions, which is what the request path
itself costs. Run it on two checkouts to compare them (see docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from rankstream.api import create_app
from rankstream.config import ServiceConfig

PATHS = [("/views/top-k", b"window=1h&k=100"), ("/health", b"")]
HEADERS = [(b"host", b"127.0.0.1"), (b"user-agent", b"bench"), (b"accept", b"*/*")]


def http_scope(path: str, query: bytes, state: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": HEADERS,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
        "state": dict(state),
    }


async def measure(requests: int, repeats: int) -> dict[str, float]:
    """The fastest microseconds per request of each path, over ``repeats`` runs."""
    data = Path(tempfile.mkdtemp(prefix="rankstream-bench-app-")) / "data"
    app = create_app(ServiceConfig(data_dir=data, sync="NORMAL"))
    state: dict[str, Any] = {}
    lifespan: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started: list[MutableMapping[str, Any]] = []
    await lifespan.put({"type": "lifespan.startup"})

    async def lifespan_send(message: MutableMapping[str, Any]) -> None:
        started.append(message)

    lifespan_scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": state}
    running = asyncio.create_task(app(lifespan_scope, lifespan.get, lifespan_send))
    while not started:
        await asyncio.sleep(0.01)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        return None

    best: dict[str, float] = {}
    for path, query in PATHS:
        for _ in range(requests):  # warm: caches filled, code paths hot
            await app(http_scope(path, query, state), receive, send)
        for _ in range(repeats):
            began = time.perf_counter()
            for _ in range(requests):
                await app(http_scope(path, query, state), receive, send)
            took = (time.perf_counter() - began) / requests * 1e6
            best[path] = min(best.get(path, took), took)
    await lifespan.put({"type": "lifespan.shutdown"})
    await running
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000, help="Requests per repetition.")
    parser.add_argument("--repeats", type=int, default=15, help="Repetitions; the fastest counts.")
    args = parser.parse_args()
    for path, micros in asyncio.run(measure(args.requests, args.repeats)).items():
        print(
            f"GET {path}: {micros:.1f} us per request (fastest of {args.repeats} x {args.requests})"
        )


if __name__ == "__main__":
    main()
