"""Restart time of the embedded service with N logged events (default 10 million).

Fills a data directory's durable log with a realistic stream (as the service would have
logged it: one record per request of ``--request-size`` events), then measures recovery:

- ``replay all``: no checkpoint, the whole log replayed through the engine;
- ``checkpoint + tail``: a checkpoint of the first N - tail events, then the tail replayed;
- ``serve to healthy``: the real ``rankstream serve`` process from start to ``/health``
  (with the checkpoint + tail state), measured on 127.0.0.1.

Baseline in the same run: decoding every log record without the engine (the I/O floor).

    .venv/bin/python benchmarks/bench_restart.py [--events 10000000] [--tail 500000]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import msgspec

from rankstream.api.answers import encode_ingest_answer
from rankstream.boards import VIDEOS
from rankstream.checkpoint import Checkpoint, DirectoryCheckpointStore
from rankstream.engine import VIEWS, EngineConfig, EventBatch, TopKEngine
from rankstream.engine.wire import EventDecoder
from rankstream.generator import StreamSpec, generate_columns
from rankstream.idempotency import SqliteIdempotencyStore
from rankstream.log import GroupRecord, LogPosition, SqliteEventLog, encode_events
from rankstream.service.pipeline import IngestPipeline, PipelineSettings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.servers import free_port


def fill_log(data: Path, events: int, request_size: int, checkpoint_at: int | None) -> int:
    """Write the stream to ``data``'s log; optionally checkpoint after ``checkpoint_at``."""
    spec = StreamSpec(events=events, videos=1_000_000, days=30, seed=3)
    columns = generate_columns(spec)
    log = SqliteEventLog(data / "log.sqlite3", "NORMAL")
    engine = TopKEngine() if checkpoint_at is not None else None
    written = 0
    for batch, wall in columns.batches(request_size):
        with log.transaction():
            log.append(GroupRecord(wall, len(batch), 0, 0, encode_events(as_json(batch))))
        if engine is not None and written < (checkpoint_at or 0):
            engine.ingest(batch, wall)
        written += len(batch)
        if engine is not None and written == checkpoint_at:
            end = log.end().of(0)
            DirectoryCheckpointStore(data / "checkpoints").save(
                Checkpoint(0, end, engine.snapshot())
            )
    log.close()
    return written


class _Event(msgspec.Struct, omit_defaults=True):
    video_id: str
    timestamp: int
    category: str | None = None
    region: str | None = None


def as_json(batch: EventBatch) -> list[bytes]:
    """Each event's JSON, as a client would have sent it."""
    categories = batch.categories or [None] * len(batch)
    regions = batch.regions or [None] * len(batch)
    encode = msgspec.json.encode
    return [
        encode(_Event(v, t, c, r))
        for v, t, c, r in zip(
            batch.video_ids, batch.timestamps.tolist(), categories, regions, strict=True
        )
    ]


def recover(data: Path) -> tuple[float, IngestPipeline]:
    log = SqliteEventLog(data / "log.sqlite3", "NORMAL")
    pipeline = IngestPipeline(
        (VIDEOS,),
        EngineConfig(),
        log,
        SqliteIdempotencyStore(log.database),
        DirectoryCheckpointStore(data / "checkpoints"),
        encode_ingest_answer,
        PipelineSettings(),
        clock=lambda: 1_742_409_000_000,
    )
    started = time.perf_counter()
    pipeline.recover()
    return time.perf_counter() - started, pipeline


def decode_floor(data: Path) -> float:
    log = SqliteEventLog(data / "log.sqlite3", "NORMAL")
    started = time.perf_counter()
    count = sum(len(record.batch) for record in log.read(LogPosition(), EventDecoder(VIEWS)))
    elapsed = time.perf_counter() - started
    log.close()
    assert count > 0
    return elapsed


def serve_to_healthy(data: Path) -> float:
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "rankstream", "serve", "--port", str(port), "--data-dir", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not become healthy")
    finally:
        process.kill()
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--tail", type=int, default=500_000)
    parser.add_argument("--request-size", type=int, default=10_000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="rankstream-restart-"))
    try:
        full = root / "full"
        written = fill_log(full, args.events, args.request_size, None)
        log_bytes = (full / "log.sqlite3").stat().st_size
        floor = decode_floor(full)
        replay_seconds, pipeline = recover(full)
        assert pipeline.boards.stats.accepted == written
        memory = pipeline.boards.memory()[VIDEOS.name]
        pipeline.log.close()

        tail = root / "tail"
        fill_log(tail, args.events, args.request_size, args.events - args.tail)
        tail_seconds, tail_pipeline = recover(tail)
        assert tail_pipeline.boards.stats.accepted == written
        checkpoint_bytes = sum(p.stat().st_size for p in (tail / "checkpoints").rglob("*.bin"))
        tail_pipeline.log.close()
        healthy = serve_to_healthy(tail)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    cpu = platform.processor() or "?"
    with open("/proc/cpuinfo") as info:
        cpu = next((ln.split(":", 1)[1].strip() for ln in info if "model name" in ln), cpu)
    mib = 2**20
    rows = [
        ("baseline: read and decode the whole log, no engine", floor, written / floor),
        (
            f"replay all {written:,} events (no checkpoint)",
            replay_seconds,
            written / replay_seconds,
        ),
        (f"checkpoint ({checkpoint_bytes / mib:.0f} MiB) + replay {args.tail:,}", tail_seconds, 0),
        ("`rankstream serve` start to healthy (checkpoint + tail)", healthy, 0),
    ]
    print(f"machine: {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}")
    print(
        f"events logged: {written:,} (requests of {args.request_size:,}), {log_bytes / mib:.0f} MiB"
    )
    print("| restart | seconds | events/s |\n|---|---|---|")
    for name, seconds, rate in rows:
        print(f"| {name} | {seconds:.1f} | {f'{rate:,.0f}' if rate else ''} |")
    print(
        f"engine: {memory['videos']:,} videos, {memory['series']:,} series, "
        f"{memory['bucket_entries']:,} bucket entries"
    )


if __name__ == "__main__":
    main()
