"""Benchmark of the engine on one core: ingest throughput, top-k latency and memory.

Run with ``make bench`` (= ``.venv/bin/python benchmarks/bench_engine.py``); ``--quick`` for a
1 M-event run, ``--help`` for the knobs. Measures, never asserts. Steps:

1. Pin the process to core 0 and generate a stream (1 M videos, Zipf 1.1, 20 categories,
   200 regions, 30 days plus a live tail). Build every batch's string columns before timing,
   so the engine pays for interning ids exactly as it would behind a decoder.
2. Same-run baselines over the same events: ``numpy.bincount`` on the integer video codes
   (the practical ceiling) and ``collections.Counter`` on the id strings (plain Python).
3. Freeze the benchmark's own objects out of the cyclic GC (``gc.freeze``), so the GC pauses
   reported are the engine's; ingest the stream in batches; report events/s spent inside
   ``TopKEngine.ingest``.
4. Memory: the retained size of the engine's object graph, RSS growth, and bytes per live
   (video, bucket) pair, per event and per distinct video.
5. Query latency for k = 100 and 1000, over every window and scope kind, cold (first query
   after the bulk ingest), warm (repeated) and fresh (right after a 1,000-event ingest).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import io
import json
import os
import platform
import pstats
import resource
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from types import BuiltinFunctionType, FunctionType, ModuleType
from typing import Any

import numpy as np

import rankstream.engine
from rankstream.engine import EventBatch, TopKEngine
from rankstream.generator import StreamColumns, StreamSpec, generate_columns
from rankstream.generator.synthetic import HOUR, MINUTE

KS = (100, 1000)
FRESH_BATCH = 1000
Scope = tuple[str, str | None, str | None]  # (kind, category, region)


@dataclass(slots=True)
class Sample:
    """One timed top-k query."""

    mode: str
    k: int
    kind: str
    window: str
    ns: int
    gc: bool
    """A gen-2 collection of Python's cyclic GC ran inside the call."""


class GcPauses:
    """A ``gc.callbacks`` hook that records every collection's generation and duration."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, int]] = []  # (generation, ns)
        self.full = 0  # gen-2 collections so far
        self._started = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter_ns()
            return
        self.pauses.append((info["generation"], time.perf_counter_ns() - self._started))
        self.full += info["generation"] == 2

    def summary(self, start: int, stop: int) -> dict[str, float]:
        """Count, total and max (ms) of the gen-2 pauses among pauses ``[start, stop)``."""
        full = [ns for gen, ns in self.pauses[start:stop] if gen == 2]
        return {
            "collections": stop - start,
            "full": len(full),
            "full_total_ms": sum(full) / 1e6,
            "full_max_ms": max(full, default=0) / 1e6,
        }


GC = GcPauses()


# ---------------------------------------------------------------------------- machine


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    model = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "pinned_cores": sorted(os.sched_getaffinity(0)),
        "cpu": model,
        "memory_gib": round(_meminfo_kib("MemTotal") / 2**20, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "rankstream": version("rankstream"),
        "engine_digest": engine_digest(),
    }


def engine_digest() -> str:
    """A short hash of the engine's source files: which engine the figures belong to."""
    digest = hashlib.sha256()
    for path in sorted(Path(rankstream.engine.__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _meminfo_kib(field: str, path: str = "/proc/meminfo") -> int:
    with open(path, encoding="utf-8") as info:
        for line in info:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_bytes() -> int:
    """Resident set size of this process."""
    return _meminfo_kib("VmRSS", "/proc/self/status") * 1024


# ---------------------------------------------------------------------------- memory


def retained_size(root: object, seen: set[int] | None = None) -> int:
    """Bytes of every object reachable from ``root`` (each counted once across calls that
    share ``seen``); numpy arrays count their buffer once, through the array that owns it.
    Classes, modules and functions are not followed."""
    seen = set() if seen is None else seen
    skip = (type, ModuleType, FunctionType, BuiltinFunctionType)
    stack = [root]
    total = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, skip):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)  # an ndarray that owns its data includes the buffer
        if isinstance(obj, np.ndarray):
            if obj.base is not None:
                stack.append(obj.base)
            if obj.dtype == object:
                stack.extend(obj.ravel().tolist())
            continue
        stack.extend(gc.get_referents(obj))
    return total


def live_pairs(columns: StreamColumns, stop: int, oldest: dict[int, int]) -> dict[str, int]:
    """Distinct (video, bucket) and (cell, bucket) pairs among events ``[0, stop)`` whose
    bucket is at or after ``oldest[resolution]``: what the engine's buckets must retain."""
    ts = columns.timestamps[:stop]
    videos = columns.videos[:stop]
    cells = (videos * 65_536 + columns.categories[:stop]) * 65_536 + columns.regions[:stop]
    out: dict[str, int] = {}
    for resolution, start in oldest.items():
        buckets = ts // resolution
        keep = buckets >= start // resolution
        offset = buckets[keep] - start // resolution  # < 2**11 buckets at these resolutions
        name = "minute" if resolution == MINUTE else "hour" if resolution == HOUR else resolution
        out[f"video_{name}"] = len(np.unique((videos[keep] << 11) | offset))
        out[f"cell_{name}"] = len(np.unique((cells[keep] << 11) | offset))
    return out


# ---------------------------------------------------------------------------- helpers


@contextmanager
def profiled(enabled: bool, title: str, sink: list[str]) -> Iterator[None]:
    """Run the block under cProfile when ``enabled``; append to ``sink`` its top functions by
    own time and the callers of the first four."""
    if not enabled:
        yield
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        text = io.StringIO()
        stats = pstats.Stats(profile, stream=text).sort_stats("tottime")
        stats.print_stats(12)
        stats.print_callers(4)  # who calls the four costliest functions
        sink.append(f"## cProfile: {title} (by own time)\n{text.getvalue()}")


def timed_ns(action: Callable[[], object]) -> int:
    """Nanoseconds one call of ``action`` takes."""
    started = time.perf_counter_ns()
    action()
    return time.perf_counter_ns() - started


def percentiles(values: list[int]) -> tuple[float, float, float]:
    """p50, p99 and max of ``values`` (nanoseconds), in milliseconds."""
    arr = np.asarray(values, dtype=np.float64) / 1e6
    p50, p99 = np.percentile(arr, [50, 99])
    return float(p50), float(p99), float(arr.max())


def markdown(headers: list[str], rows: list[list[str]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- phases


def baselines(
    columns: StreamColumns, batches: list[tuple[EventBatch, int]], stop: int
) -> dict[str, float]:
    """events/s of ``numpy.bincount`` (best of 3) and ``Counter`` over the same events."""
    codes = columns.videos[:stop]
    best = min(timed_ns(lambda: np.bincount(codes)) for _ in range(3))

    def count_strings() -> Counter[str]:
        counter: Counter[str] = Counter()
        for batch, _ in batches:
            counter.update(batch.video_ids)
        return counter

    counter_ns = timed_ns(count_strings)
    return {"bincount_eps": stop / best * 1e9, "counter_eps": stop / counter_ns * 1e9}


def ingest(engine: TopKEngine, batches: list[tuple[EventBatch, int]]) -> dict[str, Any]:
    """Feed every batch; the time counted is inside ``engine.ingest`` only."""
    per_batch = []
    for batch, wall_time in batches:
        started = time.perf_counter_ns()
        engine.ingest(batch, wall_time)
        per_batch.append(time.perf_counter_ns() - started)
    events = sum(len(b) for b, _ in batches)
    total = sum(per_batch)
    p50, _, worst = percentiles(per_batch)
    return {
        "events": events,
        "seconds": total / 1e9,
        "events_per_s": events / total * 1e9,
        "batch_ms_p50": p50,
        "batch_ms_max": worst,
    }


def live_batches(
    engine: TopKEngine, bulk: list[tuple[EventBatch, int]], count: int
) -> list[tuple[EventBatch, int]]:
    """The last ``count`` bulk batches again, re-timed as live traffic after the engine's
    clock (one minute per batch): known videos and cells, the steady state of a service."""
    now = engine.now or 0
    out = []
    for i, (batch, _) in enumerate(bulk[-count:]):
        n = len(batch)
        stamps = now + (i + 1) * 60_000 + np.arange(n, dtype=np.int64) * 60_000 // max(n, 1)
        live = EventBatch(batch.video_ids, stamps, batch.categories, batch.regions)
        out.append((live, int(stamps.max())))
    return out


def pick_scopes(columns: StreamColumns, stop: int, rng: np.random.Generator) -> list[Scope]:
    """Global; the most viewed category, region and pair; three random ones of each kind
    (categories and regions uniformly, pairs from random events so they exist)."""
    categories, regions = columns.category_names, columns.region_names
    top_c = str(categories[np.bincount(columns.categories[:stop]).argmax()])
    top_r = str(regions[np.bincount(columns.regions[:stop]).argmax()])
    scopes: list[Scope] = [
        ("global", None, None),
        ("category", top_c, None),
        ("region", None, top_r),
        ("category+region", top_c, top_r),
    ]
    for _ in range(3):
        event = int(rng.integers(stop))
        scopes += [
            ("category", str(categories[rng.integers(len(categories))]), None),
            ("region", None, str(regions[rng.integers(len(regions))])),
            (
                "category+region",
                str(categories[columns.categories[event]]),
                str(regions[columns.regions[event]]),
            ),
        ]
    return scopes


def query(engine: TopKEngine, mode: str, window: str, k: int, scope: Scope) -> Sample:
    """Time one ``top_k`` call."""
    full = GC.full
    started = time.perf_counter_ns()
    engine.top_k(window, k, category=scope[1], region=scope[2])
    ns = time.perf_counter_ns() - started
    return Sample(mode, k, scope[0], window, ns, GC.full != full)


def query_phases(
    engine: TopKEngine,
    scopes: list[Scope],
    fresh: list[tuple[EventBatch, int]],
    repeats: int,
) -> tuple[list[Sample], list[int]]:
    """Cold, warm and fresh query samples, and the fresh ingest times (ns).

    Cold: the first query of each (window, scope), k alternating so both sizes are seen.
    Warm: ``repeats`` rounds of every (window, scope, k). Fresh: per small batch ingested,
    one query of each (window, scope), k alternating from round to round.
    """
    windows = [w.name for w in engine.config.windows]
    samples = [
        query(engine, "cold", window, KS[(wi + si) % 2], scope)
        for wi, window in enumerate(windows)
        for si, scope in enumerate(scopes)
    ]
    for _ in range(repeats):
        samples += [
            query(engine, "warm", window, k, scope)
            for window in windows
            for scope in scopes
            for k in KS
        ]
    ingest_ns = []
    for round_no, (batch, wall_time) in enumerate(fresh):
        started = time.perf_counter_ns()
        engine.ingest(batch, wall_time)
        ingest_ns.append(time.perf_counter_ns() - started)
        samples += [
            query(engine, "fresh", window, KS[(round_no + wi + si) % 2], scope)
            for wi, window in enumerate(windows)
            for si, scope in enumerate(scopes)
        ]
    return samples, ingest_ns


# ---------------------------------------------------------------------------- report


def latency_rows(samples: list[Sample]) -> list[dict[str, Any]]:
    """p50/p99/max (ms) per (mode, k, scope kind), plus an "any" row per (mode, k)."""
    groups: dict[tuple[str, int, str], list[Sample]] = {}
    for s in samples:
        groups.setdefault((s.mode, s.k, s.kind), []).append(s)
        groups.setdefault((s.mode, s.k, "any"), []).append(s)
    rows = []
    for (mode, k, kind), group in sorted(groups.items(), key=_group_order):
        values = [s.ns for s in group]
        p50, p99, worst = percentiles(values)
        rows.append(
            {
                "mode": mode,
                "k": k,
                "scope": kind,
                "n": len(values),
                "p50": p50,
                "p99": p99,
                "max": worst,
                "gc_hit": sum(s.gc for s in group),
            }
        )
    return rows


def _group_order(item: tuple[tuple[str, int, str], list[Sample]]) -> tuple[int, int, int]:
    mode, k, kind = item[0]
    kinds = ["any", "global", "category", "region", "category+region"]
    return ["cold", "warm", "fresh"].index(mode), k, kinds.index(kind)


def window_rows(samples: list[Sample]) -> list[dict[str, Any]]:
    """p50/p99/max (ms) per window over every mode, k and scope."""
    groups: dict[str, list[int]] = {}
    for s in samples:
        groups.setdefault(s.window, []).append(s.ns)
    rows = []
    for window, values in groups.items():
        p50, p99, worst = percentiles(values)
        rows.append({"window": window, "n": len(values), "p50": p50, "p99": p99, "max": worst})
    return rows


def _gc_line(phase: str, gc_stats: dict[str, float]) -> str:
    return (
        f"Python's cyclic GC during {phase}: {gc_stats['collections']:.0f} collections, "
        f"{gc_stats['full']:.0f} of generation 2 taking {gc_stats['full_total_ms']:,.0f} ms "
        f"in all (longest {gc_stats['full_max_ms']:,.0f} ms)."
    )


def _traced_rows(traced: tuple[int, int] | None) -> list[list[str]]:
    if traced is None:
        return []
    return [
        ["tracemalloc: allocated during ingest, still live", f"{traced[0] / 2**20:,.1f} MiB"],
        ["tracemalloc: peak during ingest", f"{traced[1] / 2**20:,.1f} MiB"],
    ]


def render(result: dict[str, Any]) -> str:
    """The whole result as markdown."""
    machine, run, ing, base, mem = (
        result[key] for key in ("machine", "run", "ingest", "baselines", "memory")
    )
    eps = ing["events_per_s"]
    parts = [
        "**cProfile or tracemalloc was on: timings are inflated, use them only for ratios.**"
        if run["distorted"]
        else "",
        f"Machine: {machine['cpu']}, {machine['nproc']} cores (pinned to "
        f"{machine['pinned_cores']}), {machine['memory_gib']} GiB; Python {machine['python']}, "
        f"numpy {machine['numpy']}; engine source digest `{machine['engine_digest']}`.",
        f"Stream: {run['events']:,} events ingested in batches of {run['batch_size']:,}, "
        f"{mem['distinct_videos']:,} distinct videos (catalogue {run['videos']:,}), "
        f"Zipf {run['zipf']}, {run['categories']} categories, {run['regions']} regions, "
        f"{run['days']} days + {run['live_minutes']} min live tail; seed {run['seed']}.",
        "",
        "### Ingest (one core)",
        markdown(
            ["method", "events/s", "vs engine"],
            [
                ["`TopKEngine.ingest` (string ids, 8 windows, 4 scope kinds)", f"{eps:,.0f}", "1x"],
                [
                    "steady state: the last 20 batches again as live traffic (known videos)",
                    f"{result['steady_ingest']['events_per_s']:,.0f}",
                    f"{result['steady_ingest']['events_per_s'] / eps:,.1f}x",
                ],
                [
                    "`numpy.bincount` on int codes (ceiling)",
                    f"{base['bincount_eps']:,.0f}",
                    f"{base['bincount_eps'] / eps:,.0f}x",
                ],
                [
                    "`collections.Counter` on id strings (plain Python)",
                    f"{base['counter_eps']:,.0f}",
                    f"{base['counter_eps'] / eps:,.1f}x",
                ],
            ],
        ),
        f"Per batch: p50 {ing['batch_ms_p50']:.1f} ms, max {ing['batch_ms_max']:.1f} ms; "
        f"total {ing['seconds']:.1f} s in `ingest`. Small batches of {FRESH_BATCH:,} during the "
        f"fresh phase: p50 {result['fresh_ingest_ms'][0]:.2f} ms, "
        f"p99 {result['fresh_ingest_ms'][1]:.2f} ms.",
        "",
        _gc_line("ingest", result["gc"]["ingest"]),
        _gc_line("the query phases", result["gc"]["queries"]),
        "",
        "### Memory",
        markdown(
            ["measure", "value"],
            [
                ["engine retained size (object graph)", f"{mem['engine_bytes'] / 2**20:,.1f} MiB"],
                [
                    "... after the query phases (with cached leaderboards)",
                    f"{mem['engine_bytes_after_queries'] / 2**20:,.1f} MiB",
                ],
                ["RSS growth during ingest", f"{mem['rss_growth'] / 2**20:,.1f} MiB"],
                *_traced_rows(mem["traced"]),
                [
                    "peak RSS of the benchmark (stream, batches, baselines, engine)",
                    f"{mem['process_peak_rss'] / 2**30:,.1f} GiB",
                ],
                ["live (video, minute bucket) pairs", f"{mem['pairs']['video_minute']:,}"],
                ["live (video, hour bucket) pairs", f"{mem['pairs']['video_hour']:,}"],
                [
                    "live (cell, minute/hour bucket) pairs, cell = video x category x region",
                    f"{mem['pairs']['cell_minute'] + mem['pairs']['cell_hour']:,}",
                ],
                ["**bytes per live (video, bucket) pair**", f"{mem['bytes_per_pair']:.1f}"],
                ["bytes per event", f"{mem['bytes_per_event']:.1f}"],
                ["bytes per distinct video", f"{mem['bytes_per_video']:,.0f}"],
            ]
            + [
                [f"of which `TopKEngine.{name}`", f"{size / 2**20:,.1f} MiB"]
                for name, size in sorted(mem["breakdown"].items(), key=lambda kv: -kv[1])
                if size >= 2**20 / 10
            ],
        ),
        "",
        "### top-k latency (ms)",
        markdown(
            ["mode", "k", "scope", "n", "p50", "p99", "max", "hit by gen-2 GC"],
            [
                [
                    r["mode"],
                    str(r["k"]),
                    r["scope"],
                    str(r["n"]),
                    f"{r['p50']:.3f}",
                    f"{r['p99']:.3f}",
                    f"{r['max']:.3f}",
                    str(r["gc_hit"]),
                ]
                for r in result["latency"]
            ],
        ),
        "",
        "### top-k latency by window (ms, every mode, k and scope)",
        markdown(
            ["window", "n", "p50", "p99", "max"],
            [
                [r["window"], str(r["n"]), f"{r['p50']:.3f}", f"{r['p99']:.3f}", f"{r['max']:.3f}"]
                for r in result["latency_by_window"]
            ],
        ),
    ]
    return "\n".join(parts)


# ---------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=10_000_000, help="events to ingest")
    parser.add_argument("--videos", type=int, default=1_000_000, help="catalogue size")
    parser.add_argument("--quick", action="store_true", help="1M events, 100k videos")
    parser.add_argument("--batch-size", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--fresh-rounds", type=int, default=40, help="1,000-event batches")
    parser.add_argument("--warm-repeats", type=int, default=5)
    parser.add_argument("--json", metavar="PATH", help="also write the result as JSON")
    parser.add_argument("--profile", action="store_true", help="cProfile ingest and queries")
    parser.add_argument(
        "--tracemalloc", action="store_true", help="trace the ingest's allocations (slower)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.videos = 1_000_000, 100_000
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def memory(engine: TopKEngine, columns: StreamColumns, stop: int) -> dict[str, Any]:
    """Retained engine bytes, per attribute, and per live pair, event and distinct video."""
    oldest: dict[int, int] = {}
    for w in engine.config.windows:
        start = engine.top_k(w.name, 1).start
        if w.kind != "all" and start is not None:
            oldest[w.resolution] = min(oldest.get(w.resolution, start), start)
    pairs = live_pairs(columns, stop, oldest)
    seen: set[int] = set()
    breakdown = {name: retained_size(value, seen) for name, value in vars(engine).items()}
    engine_bytes = sum(breakdown.values())
    distinct = len(np.unique(columns.videos[:stop]))
    return {
        "engine_bytes": engine_bytes,
        "breakdown": breakdown,
        "pairs": pairs,
        "distinct_videos": distinct,
        "bytes_per_pair": engine_bytes / (pairs["video_minute"] + pairs["video_hour"]),
        "bytes_per_event": engine_bytes / stop,
        "bytes_per_video": engine_bytes / distinct,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run every phase (see the module docstring), print the markdown report, return it."""
    args = parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})  # one core: the engine is single-threaded by contract
    spec = StreamSpec(
        events=args.events + args.fresh_rounds * FRESH_BATCH,
        videos=args.videos,
        seed=args.seed,
        cover_catalogue=args.events >= 5 * args.videos,
    )
    log(f"generating {spec.events:,} events, building batches of strings ...")
    columns = generate_columns(spec)
    stop, size = args.events, args.batch_size
    bulk = [
        (batch, int(batch.timestamps.max()))
        for batch in (columns.batch(lo, min(lo + size, stop)) for lo in range(0, stop, size))
    ]
    fresh = list(columns.batches(FRESH_BATCH, start=stop))
    log("baselines ...")
    base = baselines(columns, bulk, stop)
    # The stream and its batches belong to the benchmark, not the engine: keep them out of
    # the cyclic GC's traversals, so the GC pauses reported are those the engine causes.
    gc.collect()
    gc.freeze()
    profiles: list[str] = []
    gc.callbacks.append(GC)
    rss_before, gc_start = rss_bytes(), len(GC.pauses)
    if args.tracemalloc:
        tracemalloc.start()
    log("ingesting ...")
    engine = TopKEngine()
    with profiled(args.profile, "bulk ingest", profiles):
        ing = ingest(engine, bulk)
    gc_ingest = GC.summary(gc_start, len(GC.pauses))
    traced = tracemalloc.get_traced_memory() if args.tracemalloc else None
    tracemalloc.stop()
    rss_growth = rss_bytes() - rss_before
    log("measuring memory ...")
    mem = memory(engine, columns, stop) | {"rss_growth": rss_growth, "traced": traced}
    log("querying ...")
    scopes = pick_scopes(columns, stop, np.random.default_rng(args.seed))
    gc_start = len(GC.pauses)
    with profiled(args.profile, "queries (cold, warm, fresh incl. small ingests)", profiles):
        samples, fresh_ns = query_phases(engine, scopes, fresh, args.warm_repeats)
    gc_queries = GC.summary(gc_start, len(GC.pauses))
    log("steady-state ingest ...")
    steady = ingest(engine, live_batches(engine, bulk, min(20, len(bulk))))
    gc.callbacks.remove(GC)
    gc.unfreeze()
    mem["engine_bytes_after_queries"] = retained_size(engine)
    mem["process_peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result: dict[str, Any] = {
        "machine": machine_info(),
        "run": {name: getattr(spec, name) for name in _SPEC_FIELDS}
        | {"events": stop, "batch_size": size, "distorted": args.profile or args.tracemalloc},
        "ingest": ing,
        "steady_ingest": steady,
        "baselines": base,
        "fresh_ingest_ms": percentiles(fresh_ns)[:2] if fresh_ns else (0.0, 0.0),
        "gc": {"ingest": gc_ingest, "queries": gc_queries},
        "memory": mem,
        "scopes": scopes,
        "latency": latency_rows(samples),
        "latency_by_window": window_rows(samples),
    }
    print(render(result))
    print("\n".join(["", *profiles]))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(result, out, indent=2)
    return result


_SPEC_FIELDS = ("videos", "categories", "regions", "zipf", "days", "live_minutes", "seed")


if __name__ == "__main__":
    main()
