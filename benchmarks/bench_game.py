"""The game scenario end to end, embedded and scale-out, with its freshness (issue 9).
Records figures, checks nothing (docs/BENCHMARKS.md).

Boards: the game scenario's (``rankstream.generator.scenarios.GAME_FIELDS`` and
``GAME_BOARDS``: ``players``, sum(score) by user with scopes team_id and region, and
``teams``, sum(score) by team; windows 10m 1h 24h all), declared with ``players`` first so
the topic's key (the first board's entity) is ``user_id``, the key ``rankstream generate
--scenario game`` produces with: ``teams`` then goes through the repartition topic.

**Embedded** (``rankstream serve --no-analytics`` on a free 127.0.0.1 port, a temporary
data directory, the boards from ``RANKSTREAM_FIELDS``/``RANKSTREAM_BOARDS``):

1. **Ingest**: ``--events`` game events (made and encoded before timing, 1,000 per
   ``POST /views``, 4 keep-alive connections, ``bench_http``'s client). A 202 means the
   events are logged and applied, so events/s is until every event is applied; ``/status``
   then confirms the accepted count. Same-run baseline: the same number of ``views``
   events on a second server with the default ``videos`` board, the same way.
2. **Freshness** while ``rankstream generate --scenario game --rate --load`` feeds the
   server: one probe score at a time (a new player in a new team, a score larger than any
   team's, so the team ranks first) is posted, and ``/leaderboards/players/top-k?window=
   10m&team_id=<probe team>`` and ``/leaderboards/teams/top-k?window=10m&k=1`` polled every
   5 ms until each counts it; a probe not seen within 15 s counts as ``inf``.
3. **Latency** (one client, keep-alive, back to back, same load): players ``rising``
   (10m over 1h, k=10), ``leaders`` by team_id (1h, k=10) and top-k (1h, k=100).

**Scale-out** (``bench_cluster.Cluster``: one Kafka broker, redis-server, two worker
processes, one API replica on a new topic of ``--partitions``): the same events, keyed by
``user_id``, produced as ``bench_cluster.produce_all`` does; the clock stops when the
published manifests of both boards (read from Redis: ``players`` per source partition,
``teams`` per repartition partition) say every event is applied and published. Then
freshness and latency as above through the replica, under ``--load`` game events/s from
``rankstream generate --target kafka://``. Same-run baseline: ``bench_cluster``'s own
throughput and freshness for ``views`` with the same event count on a cluster of the same
partitions.

Usage: ``python benchmarks/bench_game.py [--quick] [--mode both|embedded|scale-out]
[--json out.json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
from confluent_kafka import Producer

import bench_cluster
from bench_cluster import Cluster, cpu_seconds, now_ms, percentile, produce_all
from bench_http import bodies as views_bodies
from bench_http import ingest as http_ingest
from bench_http import machine, running_server
from rankstream.devservices.kafka import KafkaBroker
from rankstream.devservices.redis import RedisServer
from rankstream.generator.game import GameModel, GameSpec
from rankstream.generator.producer import producer_config
from rankstream.generator.scenarios import GAME_BOARDS, GAME_FIELDS
from rankstream.serving.layout import board_tag, decode_manifest, manifest_key

BOARDS: tuple[dict[str, Any], ...] = GAME_BOARDS  # players first: the topic's key
BATCH = 1000
PROBE_SCORE = 100_000_000  # more than any team's 10m total: a probe team ranks first
QUESTIONS: dict[str, tuple[str, dict[str, str | int]]] = {
    "rising": ("/leaderboards/players/rising", {"short": "10m", "long": "1h", "k": 10}),
    "leaders": ("/leaderboards/players/leaders", {"by": "team_id", "window": "1h", "k": 10}),
    "top_k": ("/leaderboards/players/top-k", {"window": "1h", "k": 100}),
}
LOADS: list[tuple[float, float, float]] = []  # (monotonic time, 1-min, 5-min load average)


def sample_load() -> None:
    one, five, _ = os.getloadavg()
    LOADS.append((time.monotonic(), one, five))


def game_events(count: int, seed: int) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """``count`` game events made now: Kafka keys (user_id), encoded events, and bodies of
    ``BATCH`` events for ``POST /views``."""
    model = GameModel(GameSpec(seed=seed, run=f"g{seed}."), now_ms())
    keys: list[bytes] = []
    values: list[bytes] = []
    posts: list[bytes] = []
    encode = msgspec.json.encode
    for index in range(count // BATCH):
        batch = model.batch(index, BATCH, now_ms())
        keys += [k.encode() for k in batch.keys]
        values += [encode(e) for e in batch.events]
        posts.append(batch.encode())
    return keys, values, posts


def declared_env() -> dict[str, str]:
    return {
        **os.environ,
        "RANKSTREAM_FIELDS": json.dumps(GAME_FIELDS),
        "RANKSTREAM_BOARDS": json.dumps(list(BOARDS)),
    }


def probe_event(tag: str, number: int) -> dict[str, Any]:
    """A score of a new player in a new team (both unique to this probe)."""
    return {
        "event_id": f"probe-{tag}-{number}-{now_ms()}",
        "timestamp": now_ms(),
        "user_id": f"probe-player-{tag}-{number}",
        "team_id": f"probe-team-{tag}-{number}",
        "score": PROBE_SCORE + number,
        "region": "ZZ",
    }


def watch_probe(http: httpx.Client, event: dict[str, Any], sent: float) -> tuple[float, float]:
    """Seconds from ``sent`` until the probe is counted on players (its team's scope) and
    on teams (ranked first), polling every 5 ms; ``inf`` if not within 15 s."""
    players: dict[str, str | int] = {"window": "10m", "k": 1, "team_id": event["team_id"]}
    teams: dict[str, str | int] = {"window": "10m", "k": 1}
    seen = {"players": math.inf, "teams": math.inf}
    deadline = sent + 15
    while time.monotonic() < deadline and math.inf in seen.values():
        for board, params in (("players", players), ("teams", teams)):
            if seen[board] != math.inf:
                continue
            answer = http.get(f"/leaderboards/{board}/top-k", params=params)
            items = answer.json().get("items", []) if answer.status_code == 200 else []
            entity = event["user_id"] if board == "players" else event["team_id"]
            if items and items[0]["entity"] == entity:
                seen[board] = time.monotonic() - sent
        time.sleep(0.005)
    return seen["players"], seen["teams"]


def latencies(http: httpx.Client, seconds: float) -> dict[str, Any]:
    """p50/p99 ms of each of ``QUESTIONS``, one request at a time for ``seconds`` each."""
    figures: dict[str, Any] = {}
    for name, (path, params) in QUESTIONS.items():
        times: list[float] = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.perf_counter()
            answer = http.get(path, params=params)
            times.append((time.perf_counter() - started) * 1000)
            if answer.status_code != 200:
                raise RuntimeError(f"{path} answered {answer.status_code}: {answer.text[:200]}")
        figures[name] = {
            "requests": len(times),
            "p50_ms": percentile(times, 0.5),
            "p99_ms": percentile(times, 0.99),
        }
    return figures


def fresh_figures(players: list[float], teams: list[float]) -> dict[str, Any]:
    return {
        f"{board}_{key}": value
        for board, seen in (("players", players), ("teams", teams))
        for key, value in (
            ("p50_s", percentile(seen, 0.5)),
            ("p99_s", percentile(seen, 0.99)),
            ("unseen_after_15_s", sum(1 for x in seen if x == math.inf)),
        )
    }


# ---------------------------------------------------------------- embedded


@contextlib.contextmanager
def serve(work: Path, name: str, env: dict[str, str] | None) -> Iterator[tuple[str, int]]:
    """``rankstream serve --no-analytics`` on a free loopback port: (its URL, its pid)."""
    options = ["--data-dir", str(work / name), "--no-analytics"]
    with running_server(options, work / f"{name}.log", env) as started:
        yield started


def embedded_ingest(url: str, pid: int, posts: list[bytes]) -> dict[str, Any]:
    """Acknowledged (= applied) events/s of ``posts``; ``/status`` must say all accepted."""
    before = httpx.get(f"{url}/status").json()
    cpu = cpu_seconds(pid)
    port = int(url.rsplit(":", 1)[1])
    started = time.monotonic()
    rate = asyncio.run(http_ingest(port, posts, BATCH, 600))
    elapsed = time.monotonic() - started
    after = httpx.get(f"{url}/status").json()
    accepted = after["events_accepted"] - before["events_accepted"]
    if accepted != len(posts) * BATCH:
        raise RuntimeError(f"accepted {accepted} of {len(posts) * BATCH} events")
    sample_load()
    return {
        "events": accepted,
        "seconds": elapsed,
        "events_per_s": rate,
        "applied": after.get("events_applied"),
        "server_cpu_s": cpu_seconds(pid) - cpu,
    }


def game_load(target: str, rate: float) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "rankstream", "generate", "--scenario", "game",
               "--target", target, "--rate", str(rate), "--duration", "3600",
               "--seed", "11", "--batch-size", "1000"]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_load(load: subprocess.Popen[bytes]) -> None:
    load.send_signal(signal.SIGINT)
    try:
        load.wait(60)
    except subprocess.TimeoutExpired:
        load.kill()
        load.wait()


def under_load(
    http: httpx.Client,
    start_load: Callable[[], subprocess.Popen[bytes]],
    send: Callable[[dict[str, Any]], None],
    tag: str,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Freshness of ``args.probes`` probes (``send`` delivers one) and the questions'
    latency while ``start_load()`` runs."""
    load = start_load()
    try:
        time.sleep(4)  # the generator's start-up and first seconds of traffic
        players: list[float] = []
        teams: list[float] = []
        for number in range(1, args.probes + 1):
            event = probe_event(tag, number)
            sent = time.monotonic()
            send(event)
            seen = watch_probe(http, event, sent)
            players.append(seen[0])
            teams.append(seen[1])
            time.sleep(0.1)
        sample_load()
        figures = fresh_figures(players, teams)
        figures["players_freshness_s"] = players
        figures["teams_freshness_s"] = teams
        figures["latency"] = latencies(http, args.latency_seconds)
        sample_load()
    finally:
        stop_load(load)
    return figures


def embedded(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    report: dict[str, Any] = {}
    print("== embedded: views baseline", flush=True)
    views = views_bodies(BATCH, args.events, seed=7)
    with serve(work, "views", None) as (url, pid):
        report["views_ingest"] = embedded_ingest(url, pid, views)
    del views
    print(json.dumps(report["views_ingest"]), flush=True)
    print("== embedded: game", flush=True)
    _, _, posts = game_events(args.events, seed=7)
    with serve(work, "game", declared_env()) as (url, pid):
        report["game_ingest"] = embedded_ingest(url, pid, posts)
        print(json.dumps(report["game_ingest"]), flush=True)
        with httpx.Client(base_url=url, timeout=30) as http:

            def send(event: dict[str, Any]) -> None:
                answer = http.post("/views", json=[event])
                if answer.status_code != 202 or answer.json()["accepted"] != 1:
                    raise RuntimeError(f"probe answered {answer.status_code}: {answer.text}")

            loaded = under_load(http, lambda: game_load(url, args.load), send, "e", args)
            loaded["rate"] = args.load
            report["game_loaded"] = loaded
    report["ratio_game_vs_views"] = (
        report["game_ingest"]["events_per_s"] / report["views_ingest"]["events_per_s"]
    )
    return report


# ---------------------------------------------------------------- scale-out


def board_applied(client: Any, board: str, partitions: int) -> int | None:
    """Events applied and published over ``board``'s partitions (``None``: not all yet)."""
    keys = [manifest_key(board_tag("views", board), p) for p in range(partitions)]
    values = client.mget(keys)
    if any(v is None for v in values):
        return None
    return sum(decode_manifest(v).applied for v in values)


def scale_out_game(
    cluster: Cluster, server: RedisServer, broker: KafkaBroker, args: argparse.Namespace
) -> dict[str, Any]:
    client = server.client()
    deadline = time.monotonic() + 120
    while board_applied(client, "players", cluster.partitions) is None:
        if time.monotonic() > deadline:
            raise TimeoutError("the players board's partitions published no manifest")
        time.sleep(0.1)
    keys, values, _ = game_events(args.events, seed=8)
    stats_before = cluster.publish_stats()
    producer = Producer(producer_config(broker.bootstrap))
    pids = {**cluster.pids(), "broker": broker._process.process.pid}  # type: ignore[union-attr]
    pids["redis"] = server._process.process.pid  # type: ignore[union-attr]
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    producer_cpu = time.process_time()
    started = time.monotonic()
    produce_all(producer, cluster.topic, keys, values)
    produced = time.monotonic()
    producer_cpu = time.process_time() - producer_cpu
    done: dict[str, float] = {}
    trace: list[tuple[float, int | None, int | None]] = []
    deadline = started + 600
    while len(done) < 2:
        now = time.monotonic()
        if now > deadline:
            raise TimeoutError(f"applied {trace[-1:]} of {len(values)} in 600 s")
        applied = {b: board_applied(client, b, cluster.partitions) for b in ("players", "teams")}
        if not trace or now - trace[-1][0] >= 0.25:
            trace.append((now, applied["players"], applied["teams"]))
        for board, count in applied.items():
            if board not in done and count is not None and count >= len(values):
                done[board] = now
        time.sleep(0.02)
    cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
    cpu["bench (producer)"] = producer_cpu
    client.close()
    time.sleep(1.5)  # the workers dump their counters every 0.5 s
    stats = cluster.publish_stats()
    delta = {k: stats.get(k, 0) - stats_before.get(k, 0) for k in stats}
    sample_load()
    elapsed = max(done.values()) - started
    return {
        "events": len(values),
        "produce_s": produced - started,
        "players_s": done["players"] - started,
        "teams_s": done["teams"] - started,
        "end_to_end_s": elapsed,
        "events_per_s": len(values) / elapsed,
        "cpu_seconds": cpu,
        "worker_seconds": {k: v for k, v in delta.items() if k.endswith("_seconds")},
        "redis_commands_per_1000": 1000 * delta.get("commands", 0) / len(values),
        "redis_bytes_per_1000": 1000 * delta.get("bytes", 0) / len(values),
        "applied_over_time": [(round(t - started, 2), p, m) for t, p, m in trace],
    }


def scale_out(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    report: dict[str, Any] = {}
    partitions = args.partitions
    loads = argparse.Namespace(probes=args.probes, latency_seconds=args.latency_seconds)
    with (
        KafkaBroker(work / "kafka", quick_jit=False, heap="1g") as broker,
        RedisServer(work / "redis") as server,
    ):
        print(f"== scale-out, {partitions} partitions: views baseline", flush=True)
        cluster = Cluster(broker, server, partitions, work, name="views")
        try:
            cluster.wait_applied(0, timeout=120)
            views = bench_cluster.throughput(cluster, server, broker, args.events, seed=7)
            views["loaded"] = bench_cluster.under_load(
                cluster, broker, args.load, f"{args.load:g}", loads
            )
        finally:
            cluster.stop()
        sample_load()
        report["views"] = {
            k: v for k, v in views.items() if k not in ("applied_over_time", "freshness_s")
        }
        print(json.dumps(report["views"]), flush=True)
        print(f"== scale-out, {partitions} partitions: game", flush=True)
        cluster = Cluster(
            broker, server, partitions, work, fields=GAME_FIELDS, boards=BOARDS, name="game"
        )
        producers: list[Producer] = []
        try:
            report["game"] = scale_out_game(cluster, server, broker, args)
            print(json.dumps({k: v for k, v in report["game"].items() if k[0] != "a"}))
            producers.append(Producer(producer_config(broker.bootstrap)))

            def send(event: dict[str, Any]) -> None:
                producer = producers[0]
                producer.produce(cluster.topic, msgspec.json.encode(event), event["user_id"])
                producer.flush(10)

            target = f"kafka://{broker.bootstrap}/{cluster.topic}"
            loaded = under_load(cluster.http, lambda: game_load(target, args.load), send, "s", args)
            loaded["rate"] = args.load
            report["game_loaded"] = loaded
        finally:
            producers.clear()  # gone before the broker, so it logs no failed reconnects
            cluster.stop()
    report["ratio_game_vs_views"] = report["game"]["events_per_s"] / report["views"]["events_per_s"]
    return report


# ---------------------------------------------------------------- report


def summary(report: dict[str, Any]) -> None:
    print("\n== summary")
    print(f"Machine: {report['machine']}; load average {report['load_average']}")
    if "embedded" in report:
        e = report["embedded"]
        v, g = e["views_ingest"], e["game_ingest"]
        print(
            f"embedded ingest, {g['events']:,} events, POST 1,000 x 4 connections: game "
            f"{g['events_per_s']:,.0f} ev/s (server CPU {g['server_cpu_s']:.1f} s), views "
            f"baseline {v['events_per_s']:,.0f} ev/s (CPU {v['server_cpu_s']:.1f} s): "
            f"{e['ratio_game_vs_views']:.2f}x"
        )
        per_event = [1e6 * x["server_cpu_s"] / x["events"] for x in (g, v)]
        print(
            f"   server CPU per event: game {per_event[0]:.1f} us, views {per_event[1]:.1f} us "
            f"({per_event[0] / per_event[1]:.2f}x)"
        )
        loaded(e["game_loaded"])
    if "scale_out" in report:
        s = report["scale_out"]
        v, g = s["views"], s["game"]
        print(
            f"scale-out, {report['args']['partitions']} partitions, {g['events']:,} events: game "
            f"{g['events_per_s']:,.0f} ev/s (players applied at {g['players_s']:.1f} s, teams via "
            f"repartition at {g['teams_s']:.1f} s), views baseline {v['events_per_s']:,.0f} ev/s: "
            f"{s['ratio_game_vs_views']:.2f}x"
        )
        cpu = ", ".join(f"{k} {x:.1f}" for k, x in g["cpu_seconds"].items())
        per_event = 1e6 * sum(g["cpu_seconds"].values()) / g["events"]
        print(f"   game CPU s: {cpu}; {per_event:.1f} us per event")
        steps = ", ".join(f"{k[:-8]} {x:.1f}" for k, x in g.get("worker_seconds", {}).items())
        print(
            f"   game worker seconds (source workers, both): {steps}; Redis "
            f"{g.get('redis_commands_per_1000', 0):.1f} cmds, "
            f"{g.get('redis_bytes_per_1000', 0):,.0f} B per 1k events"
        )
        cpu = ", ".join(f"{k} {x:.1f}" for k, x in v["cpu_seconds"].items())
        per_event = 1e6 * sum(v["cpu_seconds"].values()) / v["events"]
        print(f"   views CPU s: {cpu}; {per_event:.1f} us per event")
        vl = v["loaded"]
        print(
            f"   views at {vl['rate']:,.0f} ev/s: freshness p50 {vl['freshness_p50_s']:.2f} s "
            f"p99 {vl['freshness_p99_s']:.2f} s; top-k p50 {vl['top_k_p50_ms']:.2f} ms "
            f"p99 {vl['top_k_p99_ms']:.2f} ms"
        )
        loaded(s["game_loaded"])


def loaded(figures: dict[str, Any]) -> None:
    print(
        f"   game at {figures['rate']:,.0f} ev/s: freshness players p50 "
        f"{figures['players_p50_s']:.3f} s p99 {figures['players_p99_s']:.3f} s, teams p50 "
        f"{figures['teams_p50_s']:.3f} s p99 {figures['teams_p99_s']:.3f} s (unseen after "
        f"15 s: {figures['players_unseen_after_15_s']} / {figures['teams_unseen_after_15_s']})"
    )
    for name, f in figures["latency"].items():
        print(
            f"   {name}: p50 {f['p50_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms ({f['requests']} req)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--mode", choices=("both", "embedded", "scale-out"), default="both")
    parser.add_argument("--events", type=int, default=600_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--load", type=float, default=2000, help="Background events/s.")
    parser.add_argument("--probes", type=int, default=30)
    parser.add_argument("--latency-seconds", type=float, default=8)
    parser.add_argument("--quick", action="store_true", help="200 k events, 10 probes, 3 s")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, bench_cluster._interrupt)  # unwind: children stopped
    if args.quick:
        args.events, args.probes, args.latency_seconds = 200_000, 10, 3
    args.events -= args.events % BATCH
    report: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    report["machine"] = machine()
    sample_load()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-game-") as tmp:
        if args.mode in ("both", "embedded"):
            report["embedded"] = embedded(args, Path(tmp))
        if args.mode in ("both", "scale-out"):
            report["scale_out"] = scale_out(args, Path(tmp))
    sample_load()
    ones = [one for _, one, _ in LOADS]
    report["load_average"] = (
        f"1-min {min(ones):.1f}-{max(ones):.1f} over the run ({len(ones)} samples), "
        f"5-min {LOADS[-1][2]:.1f} at the end"
    )
    report["seconds"] = time.monotonic() - started
    summary(report)
    print(f"({report['seconds']:.0f} s in all)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
