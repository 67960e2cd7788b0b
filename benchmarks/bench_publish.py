"""One partition's publish rounds, in-process: how long ``PartitionPublisher.writes`` takes
to recompute the rankings a round of events touched (docs/BENCHMARKS.md, "Where the time
goes now"). Checks nothing; no service is started.

An engine gets ``--history`` generated views (Zipf 1.1 over 100 k videos, 20 categories x 30
regions), everything is published once, then each of ``--rounds`` rounds ingests
``--per-round`` more views and publishes the scopes they touched. Prints the median, fastest
and slowest round. The clock is fixed, so every run sees the same events; to compare two
versions, run the same script with each one's ``src`` first on ``PYTHONPATH``.

Usage: ``python benchmarks/bench_publish.py [--rounds 10] [--per-round 5000]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import msgspec

import rankstream
from rankstream.config import ServiceConfig
from rankstream.engine import EventBatch, TopKEngine
from rankstream.engine.wire import EventDecoder
from rankstream.generator.traffic import TrafficModel, TrafficSpec
from rankstream.worker.publisher import PartitionPublisher, scopes_of

START = 1_795_400_000_000  # a fixed clock: the same events in every run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=400_000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=5_000)
    args = parser.parse_args()
    config = ServiceConfig()
    engine_config = config.engine_config()
    engine = TopKEngine(engine_config)
    decoder = EventDecoder(engine_config.measure)
    model = TrafficModel(TrafficSpec(videos=100_000, seed=7, run="p."), START)
    windows = tuple(w.name for w in engine_config.windows)
    publisher = PartitionPublisher("views", 0, windows, 100, frozenset(config.scope_kinds))

    def batch(number: int, size: int) -> EventBatch:
        made = model.batch(number, size, START + number * 200)
        return decoder.decode([msgspec.json.encode(e) for e in made.events]).batch

    history = args.history // 10_000
    for number in range(history):
        engine.ingest(batch(number, 10_000), START + number * 200 + 1000)
    publisher.writes(engine, None)
    took: list[float] = []
    written = 0
    for number in range(history, history + args.rounds):
        events = batch(number, args.per_round)
        engine.ingest(events, START + number * 200 + 1000)
        absent = [None] * len(events)
        touched = scopes_of(events.categories or absent, events.regions or absent)
        started = time.perf_counter()
        written = len(publisher.writes(engine, touched))
        took.append(time.perf_counter() - started)
    print(
        f"{rankstream.__file__}: publish round median {statistics.median(took) * 1e3:.0f} ms,"
        f" fastest {min(took) * 1e3:.0f} ms, slowest {max(took) * 1e3:.0f} ms;"
        f" {written} rankings in the last round"
    )


if __name__ == "__main__":
    main()
