"""What each extra leaderboard costs at ingest, on one core (docs/BENCHMARKS.md).

The ``game`` scenario's score events (made and JSON-encoded before timing, as they arrive
in requests) go through :meth:`BoardSet.ingest <rankstream.boards.BoardSet.ingest>` (route:
decode per board; screen; count) in groups of ``--group`` events, with 1, 2 and 4 boards
declared: players (sum of score by team and region), then teams, regions and players by
count. Every event fits every board. Same-run baseline: the single-engine path the service
took before boards (one decode, ``TopKEngine.ingest``) on the same events. Measures, never
asserts. Each configuration runs ``--repeats`` times on fresh boards; the median is printed.

Usage: ``python benchmarks/bench_boards.py [--events 300000] [--group 1000] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import msgspec

from rankstream.boards import BoardSet, parse_boards
from rankstream.config import ServiceConfig
from rankstream.engine import EngineConfig, TopKEngine
from rankstream.engine.wire import EventDecoder
from rankstream.generator.game import GameModel, GameSpec
from rankstream.generator.scenarios import GAME_FIELDS

START = 1_795_400_000_000  # a fixed clock: the same events in every run
WINDOWS = ["10m", "1h", "24h", "all"]
BOARDS: list[dict[str, Any]] = [
    {
        "name": "players",
        "entity": "user_id",
        "measure": "sum(score)",
        "scopes": ["team_id", "region"],
        "windows": WINDOWS,
    },
    {"name": "teams", "entity": "team_id", "measure": "sum(score)", "windows": WINDOWS},
    {"name": "regions", "entity": "region", "windows": WINDOWS},
    {"name": "active", "entity": "user_id", "windows": WINDOWS},
]


def groups(events: int, size: int) -> list[tuple[list[bytes], int]]:
    model = GameModel(GameSpec(seed=7, run="b."), START)
    made = []
    for index in range(events // size):
        wall = START + index * 50
        batch = model.batch(index, size, wall)
        made.append(([msgspec.json.encode(e) for e in batch.events], wall))
    return made


def boards_rate(made: list[tuple[list[bytes], int]], count: int, config: EngineConfig) -> float:
    boards = BoardSet(parse_boards(BOARDS[:count], GAME_FIELDS), config)
    started = time.perf_counter()
    for raws, wall in made:
        boards.ingest(raws, wall)
    elapsed = time.perf_counter() - started
    assert boards.stats.accepted == sum(len(r) for r, _ in made)
    return sum(len(r) for r, _ in made) / elapsed


def engine_rate(made: list[tuple[list[bytes], int]], config: EngineConfig) -> float:
    (spec,) = parse_boards(BOARDS[:1], GAME_FIELDS)
    engine_config = EngineConfig(
        windows=spec.windows, measure=spec.engine_measure, max_skew=config.max_skew
    )
    engine = TopKEngine(engine_config)
    decoder = EventDecoder(spec.engine_measure)
    started = time.perf_counter()
    for raws, wall in made:
        engine.ingest(decoder.decode(raws).batch, wall)
    return sum(len(r) for r, _ in made) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--group", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    config = ServiceConfig().engine_config()
    made = groups(args.events, args.group)
    print(
        f"{args.events:,} game events in groups of {args.group:,},"
        f" one core, median of {args.repeats}"
    )
    baseline = statistics.median(engine_rate(made, config) for _ in range(args.repeats))
    print(f"  baseline, one engine (decode + TopKEngine.ingest): {baseline:,.0f} events/s")
    one = 0.0
    for count in (1, 2, 4):
        rate = statistics.median(boards_rate(made, count, config) for _ in range(args.repeats))
        one = one or rate
        extra = (1e6 / rate - 1e6 / one) / (count - 1) if count > 1 else 0.0
        print(
            f"  {count} board{'s' if count > 1 else ' '}: {rate:,.0f} events/s"
            f" ({rate / baseline:.2f}x the baseline"
            + (f"; {extra:.2f} us per event per extra board)" if count > 1 else ")")
        )


if __name__ == "__main__":
    main()
