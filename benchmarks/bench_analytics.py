"""Historical analytics: chDB (the analytics store) against naive PostgreSQL, same run.

Generates ``--rows`` views (default 50 million) over ``--days`` (182: six months) of
``--videos`` videos (Zipf 1.1 popularity, 20 categories, 30 regions, 3 devices), as JSON
events in log records, and:

1. loads them into a fresh analytics store through the loader's own path (decode the
   record, build the rows, one de-duplicated INSERT per ``--batch-rows``, rollup by the
   materialized view): rows/s;
2. loads the same rows into PostgreSQL with the design notes' naive schema (one row per
   view, an index on timestamp), by ``COPY``, then builds the index and analyzes;
3. asks both the same questions: the trend of one video over the six months by day
   (videos drawn by popularity), the top 100 of an arbitrary 24 h and of an arbitrary
   30 days (starts not on the hour), and the growth top 100 of 7 days against the 7 before.

PostgreSQL runs as a throw-away cluster in a temporary directory on a free loopback port
(``initdb`` + ``postgres``, as the ``postgres`` user when run as root), with durability
off for loading speed (the naive baseline is about query time). ``make bench-analytics``
installs Debian's ``postgresql`` first if it is missing.

    .venv/bin/python benchmarks/bench_analytics.py [--rows 50000000] [--no-postgres]
"""

from __future__ import annotations

import argparse
import glob
import io
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from rankstream.analytics import AnalyticsQueries, AnalyticsStore, LoadIntent
from rankstream.analytics.loader import token
from rankstream.analytics.periods import DAY_MS
from rankstream.analytics.rows import load_rows
from rankstream.engine import VIEWS
from rankstream.engine.wire import EventDecoder
from rankstream.log import LoggedBatch, decode_events

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.servers import free_port

END = 1_795_305_600_000  # 2026-11-23T00:00:00Z: the stream ends here
DEVICES = ("mobile", "desktop", "tv")


class View(msgspec.Struct, gc=False):
    """A view as the generator would send it (the notes' fields)."""

    video_id: str
    timestamp: int
    category: str
    region: str
    device: str
    user_id: str
    watch_time_sec: int


def chunks(rows: int, videos: int, days: int, chunk: int, seed: int) -> Iterator[dict[str, Any]]:
    """The stream in chunks of columns (numpy), reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, videos + 1) ** 1.1
    cdf = np.cumsum(weights / weights.sum())
    category_of = rng.integers(0, 20, videos)
    start = END - days * DAY_MS
    done = 0
    while done < rows:
        n = min(chunk, rows - done)
        video = np.minimum(np.searchsorted(cdf, rng.random(n)), videos - 1)
        yield {
            "video": video,
            "timestamp": rng.integers(start, END, n),
            "category": category_of[video],
            "region": np.minimum(rng.zipf(1.3, n) - 1, 29),
            "device": rng.integers(0, 3, n),
            "user": rng.integers(0, 5_000_000, n),
            "watch": rng.integers(1, 600, n),
        }
        done += n


def as_record(columns: dict[str, Any], offset: int, decoder: EventDecoder) -> LoggedBatch:
    """The chunk as one log record, decoded as the loader decodes what it reads."""
    encode = msgspec.json.encode
    raws = [
        encode(View(f"v{v}", t, f"c{c}", f"r{r}", DEVICES[d], f"u{u}", w))
        for v, t, c, r, d, u, w in zip(
            columns["video"].tolist(),
            columns["timestamp"].tolist(),
            columns["category"].tolist(),
            columns["region"].tolist(),
            columns["device"].tolist(),
            columns["user"].tolist(),
            columns["watch"].tolist(),
            strict=True,
        )
    ]
    batch, raw = decode_events(b"[" + b",".join(raws) + b"]", decoder)
    return LoggedBatch(0, offset, offset + 1, 0, batch, raw)


def timed(runs: int, ask: Callable[[int], object]) -> list[float]:
    """Seconds of each of ``runs`` calls of ``ask(i)``."""
    seconds = []
    for i in range(runs):
        started = time.perf_counter()
        ask(i)
        seconds.append(time.perf_counter() - started)
    return seconds


def summary(seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return f"p50 {statistics.median(ms):8.1f} ms  p99 {p99:8.1f} ms  (n={len(ms)})"


# ---------------------------------------------------------------------- PostgreSQL


def pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        raise SystemExit(f"{name} not found: apt-get install postgresql (make bench-analytics)")
    return found[-1]


@contextmanager
def postgres_cluster(root: Path) -> Iterator[str]:
    """A throw-away PostgreSQL cluster in ``root`` on a free loopback port: its conninfo."""
    data = root / "pg"
    data.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        shutil.chown(root, "postgres")
        shutil.chown(data, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [*as_user, pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        "unix_socket_directories": str(root),
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "shared_buffers": "4GB",
        "work_mem": "256MB",
        "maintenance_work_mem": "2GB",
        "max_wal_size": "16GB",
        "max_parallel_workers_per_gather": "2",
    }
    options = [arg for k, v in settings.items() for arg in ("-c", f"{k}={v}")]
    server = subprocess.Popen(
        [*as_user, pg_bin("postgres"), "-D", str(data), *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    conninfo = f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    try:
        import psycopg

        for _ in range(300):
            try:
                psycopg.connect(conninfo).close()
                break
            except psycopg.OperationalError:
                time.sleep(0.1)
        yield conninfo
    finally:
        server.terminate()
        server.wait(60)


PG_SCHEMA = """
CREATE TABLE video_views (
    timestamp timestamptz NOT NULL,
    video_id text NOT NULL,
    user_id text,
    category text,
    region text,
    device text,
    watch_time_sec integer
)
"""


def pg_csv(columns: dict[str, Any]) -> bytes:
    """The chunk as CSV rows of ``video_views``."""
    table = pa.table(
        {
            "timestamp": pa.array(columns["timestamp"], pa.timestamp("ms", tz="UTC")),
            "video_id": [f"v{v}" for v in columns["video"].tolist()],
            "user_id": [f"u{u}" for u in columns["user"].tolist()],
            "category": [f"c{c}" for c in columns["category"].tolist()],
            "region": [f"r{r}" for r in columns["region"].tolist()],
            "device": [DEVICES[d] for d in columns["device"].tolist()],
            "watch_time_sec": pa.array(columns["watch"], pa.int32()),
        }
    )
    sink = io.BytesIO()
    pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False))
    return sink.getvalue()


PG_TREND = (
    "SELECT date_trunc('day', timestamp) AS day, count(*) FROM video_views"
    " WHERE video_id = %s AND timestamp >= to_timestamp(%s / 1000.0)"
    " AND timestamp < to_timestamp(%s / 1000.0) GROUP BY day ORDER BY day"
)
PG_TOP = (
    "SELECT video_id, count(*) AS views FROM video_views"
    " WHERE timestamp >= to_timestamp(%s / 1000.0) AND timestamp < to_timestamp(%s / 1000.0)"
    " GROUP BY video_id ORDER BY views DESC, video_id LIMIT 100"
)
PG_GROWTH = """
WITH this_week AS (
  SELECT video_id, count(*) AS views FROM video_views
  WHERE timestamp >= to_timestamp(%(mid)s / 1000.0) AND timestamp < to_timestamp(%(end)s / 1000.0)
  GROUP BY video_id),
last_week AS (
  SELECT video_id, count(*) AS views FROM video_views
  WHERE timestamp >= to_timestamp(%(start)s / 1000.0) AND timestamp < to_timestamp(%(mid)s / 1000.0)
  GROUP BY video_id)
SELECT t.video_id, t.views, coalesce(l.views, 0) AS previous,
       t.views - coalesce(l.views, 0) AS growth
FROM this_week t LEFT JOIN last_week l ON t.video_id = l.video_id
ORDER BY growth DESC, t.video_id LIMIT 100
"""


# ---------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--videos", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=182)
    parser.add_argument("--batch-rows", type=int, default=1_000_000)
    parser.add_argument("--trend-runs", type=int, default=200)
    parser.add_argument("--range-runs", type=int, default=20)
    parser.add_argument("--pg-runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--postgres", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores,"
        f" Python {platform.python_version()}; {args.rows:,} views, {args.videos:,} videos,"
        f" {args.days} days"
    )
    root = Path(tempfile.mkdtemp(prefix="rankstream-bench-analytics-"))
    try:
        run(args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(args: argparse.Namespace, root: Path) -> None:
    decoder = EventDecoder(VIEWS)
    store = AnalyticsStore(root / "analytics", ttl_days=0)
    prepare = insert = 0.0
    for offset, columns in enumerate(
        chunks(args.rows, args.videos, args.days, args.batch_rows, args.seed)
    ):
        record = as_record(columns, offset, decoder)  # what the log holds: not timed
        started = time.perf_counter()
        rows = load_rows([record])
        middle = time.perf_counter()
        intent = LoadIntent(0, offset, offset + 1, rows.count, rows.newest_event)
        store.record(intent, done=False)
        store.insert_views(rows, token(intent))
        store.record(intent, done=True)
        insert += time.perf_counter() - middle
        prepare += middle - started
    total = prepare + insert
    raw_rows, size = store.size()
    print("\n== chDB analytics store (rankstream.analytics)")
    print(
        f"load: {args.rows / total:,.0f} rows/s ({total:.1f} s: rows {prepare:.1f} s,"
        f" INSERT + rollup {insert:.1f} s); {raw_rows:,} rows, {size / 2**30:.2f} GiB on disk"
    )
    hourly = store.query("SELECT count() AS n FROM views_hourly")[0]["n"]
    print(f"rollup rows (before merges settle): {hourly:,}")
    queries = AnalyticsQueries(store)
    rng = np.random.default_rng(args.seed + 1)
    popular = [f"v{v}" for v in next(chunks(args.trend_runs, args.videos, 1, 10**6, 9))["video"]]
    first = END - args.days * DAY_MS
    day_starts = rng.integers(first, END - DAY_MS, args.range_runs)
    month_starts = rng.integers(first, END - 30 * DAY_MS, args.range_runs)
    growth_ends = rng.integers(first + 14 * DAY_MS, END, args.range_runs)
    results = {
        "trend 6 months by day": timed(
            args.trend_runs, lambda i: queries.trend(popular[i], first, END, "day")
        ),
        "top-100 of 24 h": timed(
            args.range_runs,
            lambda i: queries.top_k(int(day_starts[i]), int(day_starts[i]) + DAY_MS, 100),
        ),
        "top-100 of 30 days": timed(
            args.range_runs,
            lambda i: queries.top_k(int(month_starts[i]), int(month_starts[i]) + 30 * DAY_MS, 100),
        ),
        "growth top-100, 7 d": timed(
            args.range_runs, lambda i: queries.growth(int(growth_ends[i]), 7 * DAY_MS, 100)
        ),
    }
    for name, seconds in results.items():
        print(f"{name:24s} {summary(seconds)}")
    check = queries.top_k(int(day_starts[0]), int(day_starts[0]) + DAY_MS, 100)
    store.close()
    if not args.postgres:
        return

    import psycopg

    print("\n== PostgreSQL, naive schema (one row per view, index on timestamp)")
    with postgres_cluster(root) as conninfo, psycopg.connect(conninfo, autocommit=True) as pg:
        version = pg.execute("SHOW server_version").fetchone()
        print(f"PostgreSQL {version[0] if version else '?'}")
        pg.execute(PG_SCHEMA)
        copy_seconds = 0.0
        for columns in chunks(args.rows, args.videos, args.days, args.batch_rows, args.seed):
            data = pg_csv(columns)
            started = time.perf_counter()
            with pg.cursor().copy("COPY video_views FROM STDIN (FORMAT csv)") as copy:
                copy.write(data)
            copy_seconds += time.perf_counter() - started
        started = time.perf_counter()
        pg.execute("CREATE INDEX ON video_views (timestamp)")
        index_seconds = time.perf_counter() - started
        started = time.perf_counter()
        pg.execute("VACUUM ANALYZE video_views")
        analyze_seconds = time.perf_counter() - started
        print(
            f"load: {args.rows / copy_seconds:,.0f} rows/s by COPY ({copy_seconds:.1f} s);"
            f" index {index_seconds:.1f} s; VACUUM ANALYZE {analyze_seconds:.1f} s"
        )
        runs = min(args.pg_runs, args.range_runs)
        pg_results = {
            "trend 6 months by day": timed(
                runs, lambda i: pg.execute(PG_TREND, (popular[i], first, END)).fetchall()
            ),
            "top-100 of 24 h": timed(
                runs,
                lambda i: pg.execute(
                    PG_TOP, (int(day_starts[i]), int(day_starts[i]) + DAY_MS)
                ).fetchall(),
            ),
            "top-100 of 30 days": timed(
                runs,
                lambda i: pg.execute(
                    PG_TOP, (int(month_starts[i]), int(month_starts[i]) + 30 * DAY_MS)
                ).fetchall(),
            ),
            "growth top-100, 7 d": timed(
                runs,
                lambda i: pg.execute(
                    PG_GROWTH,
                    {
                        "start": int(growth_ends[i]) - 14 * DAY_MS,
                        "mid": int(growth_ends[i]) - 7 * DAY_MS,
                        "end": int(growth_ends[i]),
                    },
                ).fetchall(),
            ),
        }
        same = pg.execute(PG_TOP, (int(day_starts[0]), int(day_starts[0]) + DAY_MS)).fetchall()
        assert [(r.video_id, r.views) for r in check] == [(v, n) for v, n in same], "differ"
        print("(the 24 h top-100 of both is the same list)")
        for name, seconds in pg_results.items():
            ratio = statistics.median(seconds) / statistics.median(results[name])
            print(f"{name:24s} {summary(seconds)}  = {ratio:,.1f}x chDB's p50")


if __name__ == "__main__":
    main()
