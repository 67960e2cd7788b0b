"""Hot rankings: do read copies of the global ranking help on a Redis Cluster?

The design notes propose N read copies of a viral ranking so readers spread over nodes.
This publishes 16 partitions' rankings (depth 100) to a real 3-node Redis Cluster on
loopback, then runs reader processes that each query the global top-100 of one window
through :class:`RedisRankingSource` as fast as they can, with ``hot_copies`` 0 and 2, and
reports reads/s and latency percentiles, plus how many commands each node served.
Run: ``make bench-hot`` (about a minute). Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from rankstream.devservices.redis import RedisCluster
from rankstream.engine import EventBatch, TopKEngine
from rankstream.engine.partition import split_batch
from rankstream.serving.redis import RedisRankingSource
from rankstream.worker.publisher import PartitionPublisher, PublishStats, send

T0 = 1_795_341_600_000
PARTITIONS = 16
KINDS = frozenset({"all"})


def publish(url: str, copies: int) -> None:
    import redis.cluster

    client = redis.cluster.RedisCluster.from_url(url)
    rng = np.random.default_rng(1)
    count = 400_000
    videos = [f"video{v:07d}" for v in rng.zipf(1.2, count) % 200_000]
    stamps = T0 - rng.integers(0, 3_600_000, count)
    batch = EventBatch(videos, stamps.astype(np.int64), None, None, None, None)
    windows = ("1h",)
    for partition, piece in enumerate(split_batch(batch, PARTITIONS)):
        engine = TopKEngine()
        engine.ingest(piece, T0)
        publisher = PartitionPublisher("views", partition, windows, 100, KINDS, copies)
        send(client, publisher.writes(engine, None), PublishStats())
        manifest = publisher.manifest(engine, {"applied": 0, "checkpointed": 0, "end": 0}, T0, "b")
        send(client, {publisher.manifest_key: manifest}, PublishStats())
    client.close()


def read(url: str, copies: int, seconds: float, out: Any) -> None:
    import redis.cluster

    client = redis.cluster.RedisCluster.from_url(url)
    source = RedisRankingSource(client, "views", lambda: PARTITIONS, ("1h",), 100, copies)
    latencies = []
    end = time.perf_counter() + seconds
    while (now := time.perf_counter()) < end:
        source.top_k("1h", 100)
        latencies.append(time.perf_counter() - now)
    out.put(latencies)
    client.close()


def node_commands(cluster: RedisCluster) -> list[int]:
    client: Any = cluster.client()
    counts = [
        int(node.redis_connection.info("stats")["total_commands_processed"])
        for node in client.get_primaries()
    ]
    client.close()
    return counts


def run(cluster: RedisCluster, copies: int, readers: int, seconds: float) -> dict[str, float]:
    publish(cluster.url, copies)
    before = node_commands(cluster)
    queue: Any = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=read, args=(cluster.url, copies, seconds, queue))
        for _ in range(readers)
    ]
    for proc in procs:
        proc.start()
    latencies = np.concatenate([np.array(queue.get()) for _ in procs]) * 1000
    for proc in procs:
        proc.join()
    after = node_commands(cluster)
    spread = [a - b for a, b in zip(after, before, strict=True)]
    return {
        "reads/s": len(latencies) / seconds,
        "p50 ms": float(np.percentile(latencies, 50)),
        "p99 ms": float(np.percentile(latencies, 99)),
        "busiest node share": max(spread) / max(1, sum(spread)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work, RedisCluster(Path(work)) as cluster:
        results: dict[int, list[dict[str, float]]] = {0: [], 2: []}
        for _ in range(args.rounds):  # alternate, so drift hits both alike
            for copies in (0, 2):
                cluster.flush()
                results[copies].append(run(cluster, copies, args.readers, args.seconds))
    print(f"{args.readers} reader processes x {args.seconds:.0f} s, {args.rounds} rounds, medians:")
    for copies, rounds in results.items():
        medians = {key: float(np.median([r[key] for r in rounds])) for key in rounds[0]}
        print(
            f"  hot_copies={copies}: {medians['reads/s']:,.0f} reads/s, "
            f"p50 {medians['p50 ms']:.2f} ms, p99 {medians['p99 ms']:.2f} ms, "
            f"busiest node {medians['busiest node share']:.0%} of commands"
        )


if __name__ == "__main__":
    main()
