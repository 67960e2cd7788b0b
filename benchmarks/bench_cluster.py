"""Scale-out on one machine: a Kafka broker, redis-server, two workers and an API replica
sharing its cores. Records figures, checks nothing (docs/BENCHMARKS.md).

For each partition count (``--partitions``, 4,16,64), on a new topic:

1. **Throughput**: ``--events`` generated views (made and encoded before timing) are produced
   as fast as librdkafka takes them; the clock stops when the API replica's ``/status`` says
   the workers applied every one (and so published rankings that hold them).
2. **Redis**: the workers' own publish counters (``Worker.stats.publish``, dumped by each
   worker process every 0.5 s) per 1,000 events of the throughput phase, and the seconds
   of each step of their loop; ``INFO memory`` before the first ranking and after the
   phase, per ranking key.
3. **Freshness**, at each of ``--loads``: while ``rankstream generate --target
   kafka://...`` adds that many views/s (``half``: half the measured throughput, at most
   ``--rate``), one probe view at a time (its own category) is produced and the API polled
   every 5 ms until the probe is counted: produce -> visible through the API.
4. **Top-k latency** through the API replica at k=100 (four scopes in turn, one request
   at a time, keep-alive) under each of the same loads.

Then the **Kafka ceiling**: the same events produced the same way to a new topic (the first
partition count) and consumed by two bare consumer-group members that only decode them:
what the broker, the producer and the consumer client carry on this machine with no
engine and no Redis, so no scale-out pipeline here can beat it.

Same-run baseline (once, on the first partition count's events, Redis flushed, no worker
running): the design notes' approach, one ZINCRBY per view for each of its 4 keys (window,
category, region, category x region), pipelined 1,000 views per round trip, decoding the
same JSON values first. It keeps one window only (the engine keeps 8).

Usage: ``python benchmarks/bench_cluster.py [--quick] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
from confluent_kafka import Producer

from rankstream.devservices._process import ServiceProcess
from rankstream.devservices.kafka import KafkaBroker
from rankstream.devservices.ports import LOOPBACK, free_port
from rankstream.devservices.redis import RedisServer
from rankstream.generator.producer import producer_config
from rankstream.generator.traffic import TrafficModel, TrafficSpec

PROBE_CATEGORY = "zz-probe"
SCOPES: tuple[dict[str, str], ...] = (
    {},
    {"category": "music"},
    {"region": "US"},
    {"category": "music", "region": "US"},
)


def now_ms() -> int:
    return int(time.time() * 1000)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# ---------------------------------------------------------------- worker process mode


def worker_main(args: argparse.Namespace) -> None:
    """A worker that dumps ``Worker.stats`` to ``--stats`` every 0.5 s and at exit."""
    from rankstream.backends import open_worker
    from rankstream.config import ServiceConfig
    from rankstream.service.pipeline import wall_clock_ms

    declared: dict[str, Any] = {}  # --fields / --boards (JSON): the declared boards, if any
    if args.fields:
        declared["fields"] = json.loads(args.fields)
    if args.boards:
        declared["boards"] = tuple(json.loads(args.boards))
    config = ServiceConfig(
        kafka=args.kafka,
        redis=args.redis,
        checkpoints=args.checkpoints,
        data_dir=Path(args.checkpoints).parent,
        session_timeout_ms=6000,
        **declared,
    )
    worker = open_worker(config, wall_clock_ms, args.name)
    stats_path = Path(args.stats)
    done = threading.Event()

    def dump() -> None:
        data = dataclasses.asdict(worker.stats)
        tmp = stats_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(stats_path)

    def dumper() -> None:
        while not done.wait(0.5):
            dump()

    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    threading.Thread(target=dumper, daemon=True).start()
    worker.run()
    done.set()
    dump()


def consumer_main(args: argparse.Namespace) -> None:
    """A bare consumer-group member: consume and decode, nothing else; writes how many
    events it decoded to ``--stats`` every 0.1 s (the Kafka ceiling, see ``kafka_ceiling``)."""
    from confluent_kafka import Consumer

    from rankstream.config import ServiceConfig
    from rankstream.engine.wire import EventDecoder

    bootstrap, topic = args.kafka.split("/", 1)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"ceiling-{topic}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
            "queued.min.messages": 200_000,
        }
    )
    consumer.subscribe([topic])
    decoder = EventDecoder(ServiceConfig().engine_config().measure)
    stats_path = Path(args.stats)
    decoded = 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    last = 0.0
    while not stop.is_set():
        messages = consumer.consume(10_000, 0.1)
        values = [m.value() or b"" for m in messages if m.error() is None]
        if values:
            decoded += len(decoder.decode(values).batch)
        if time.monotonic() - last > 0.1:
            stats_path.write_text(str(decoded))
            last = time.monotonic()
    consumer.close()


# ---------------------------------------------------------------- the benchmark


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its waited-for children (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def make_events(count: int, seed: int) -> tuple[list[bytes], list[bytes], list[Any]]:
    """``count`` views made now: keys, encoded values, and the views themselves."""
    model = TrafficModel(TrafficSpec(videos=100_000, seed=seed, run=f"b{seed}."), now_ms())
    keys: list[bytes] = []
    values: list[bytes] = []
    views: list[Any] = []
    encode = msgspec.json.encode
    for index in range(0, count, 10_000):
        batch = model.batch(index // 10_000, min(10_000, count - index), now_ms())
        keys += [v.encode() for v in batch.video_ids]
        values += [encode(e) for e in batch.events]
        views += batch.events
    return keys, values, views


def produce_all(producer: Producer, topic: str, keys: list[bytes], values: list[bytes]) -> None:
    for start in range(0, len(keys), 10_000):
        wall = now_ms()
        for key, value in zip(
            keys[start : start + 10_000], values[start : start + 10_000], strict=True
        ):
            while True:
                try:
                    producer.produce(topic, value, key, timestamp=wall)
                    break
                except BufferError:
                    producer.poll(0.01)
        producer.poll(0)
    producer.flush(60)


class Cluster:
    """Two worker processes and one API replica on a new topic of ``partitions``.

    ``fields`` and ``boards`` (the settings of the same names) declare leaderboards for the
    workers and the replica alike; ``None``: the default ``videos`` board. ``name`` tells
    the work directory apart when one partition count runs more than one cluster."""

    def __init__(
        self,
        broker: KafkaBroker,
        server: RedisServer,
        partitions: int,
        work: Path,
        *,
        fields: dict[str, str] | None = None,
        boards: tuple[dict[str, Any], ...] | None = None,
        name: str = "",
    ) -> None:
        self.partitions = partitions
        self.topic = f"bench-{name}{partitions}-{now_ms()}"
        broker.create_topic(self.topic, partitions)
        server.flush()
        self.work = work / f"{name}p{partitions}"
        declared: list[str] = []
        env: dict[str, str] | None = None
        if fields is not None and boards is not None:
            declared = ["--fields", json.dumps(fields), "--boards", json.dumps(list(boards))]
            env = {
                **os.environ,
                "RANKSTREAM_FIELDS": json.dumps(fields),
                "RANKSTREAM_BOARDS": json.dumps(list(boards)),
            }
        self.kafka = f"{broker.bootstrap}/{self.topic}"
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.children: list[ServiceProcess] = []
        self.stats_files = [self.work / f"w{i}.json" for i in (1, 2)]
        for number, stats in enumerate(self.stats_files, 1):
            command = [
                sys.executable, __file__, "--worker-mode", "--kafka", self.kafka,
                "--redis", server.url, "--checkpoints", str(self.work / "checkpoints"),
                "--name", f"w{number}", "--stats", str(stats), *declared,
            ]  # fmt: skip
            self._start(f"worker-{number}", command, lambda: True)
        command = [
            sys.executable, "-m", "rankstream", "api", "--kafka", self.kafka,
            "--redis", server.url, "--port", str(self.port),
            "--data-dir", str(self.work / "api"),
        ]  # fmt: skip
        self._start("api", command, self._healthy, env)
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def _start(
        self, name: str, command: list[str], ready: Any, env: dict[str, str] | None = None
    ) -> None:
        process = ServiceProcess(name, command, self.work / f"{name}.log", env=env)
        self.children.append(process)
        process.start(ready, 120)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def applied(self) -> int | None:
        """Events applied and published over every partition (``None``: not all yet)."""
        answer = self.http.get("/status")
        parts = answer.json().get("partitions", [])
        if len(parts) != self.partitions or any(p["applied"] is None for p in parts):
            return None
        return sum(int(p["applied"]) for p in parts)

    def wait_applied(
        self, events: int, timeout: float = 600, trace: list[tuple[float, int]] | None = None
    ) -> float:
        """Block until ``events`` are applied; the monotonic time they were. ``trace`` gets
        (monotonic time, events applied) about every 0.25 s."""
        deadline = time.monotonic() + timeout
        sampled = 0.0
        while time.monotonic() < deadline:
            applied = self.applied()
            now = time.monotonic()
            if trace is not None and applied is not None and now - sampled >= 0.25:
                trace.append((now, applied))
                sampled = now
            if applied is not None and applied >= events:
                return now
            time.sleep(0.02)
        raise TimeoutError(f"workers applied {self.applied()} of {events} in {timeout} s")

    def publish_stats(self) -> dict[str, float]:
        """The two workers' publish counters and seconds per loop step, summed."""
        total: dict[str, float] = {}
        for path in self.stats_files:
            if path.exists():
                data = json.loads(path.read_text())
                steps = {k: v for k, v in data.items() if k.endswith("_seconds")}
                for key, value in {**data["publish"], **steps}.items():
                    total[key] = total.get(key, 0) + value
        return total

    def pids(self) -> dict[str, int]:
        return {c.name: c.process.pid for c in self.children if c.process is not None}

    def stop(self) -> None:
        self.http.close()
        for child in reversed(self.children):
            child.stop(grace=60)


def throughput(
    cluster: Cluster, server: RedisServer, broker: KafkaBroker, events: int, seed: int
) -> dict[str, Any]:
    keys, values, _ = make_events(events, seed)
    client = server.client()
    memory_before = int(client.info("memory")["used_memory"])
    stats_before = cluster.publish_stats()
    producer = Producer(producer_config(broker.bootstrap.split("/")[0]))
    pids = {**cluster.pids(), "broker": broker._process.process.pid}  # type: ignore[union-attr]
    pids["redis"] = server._process.process.pid  # type: ignore[union-attr]
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    cpu_before["bench (producer)"] = time.process_time()
    started = time.monotonic()
    produce_all(producer, cluster.topic, keys, values)
    produced = time.monotonic()
    cpu_after_produce = time.process_time()
    trace: list[tuple[float, int]] = []
    done = cluster.wait_applied(events, trace=trace)
    cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
    cpu["bench (producer)"] = cpu_after_produce - cpu_before["bench (producer)"]
    time.sleep(1.5)  # two publish rounds more: the counters are dumped every 0.5 s
    stats = cluster.publish_stats()
    delta = {k: stats.get(k, 0) - stats_before.get(k, 0) for k in stats}
    memory_after = int(client.info("memory")["used_memory"])
    ranking_keys = [
        k for k in client.scan_iter(match="rs:{*}:p*", count=10_000) if b"manifest" not in k
    ]
    sample = ranking_keys[:: max(1, len(ranking_keys) // 500)]
    usage = [int(client.memory_usage(k) or 0) for k in sample]
    lengths = [int(client.strlen(k)) for k in sample]
    client.close()
    elapsed = done - started
    return {
        "events": events,
        "produce_s": produced - started,
        "end_to_end_s": elapsed,
        "events_per_s": events / elapsed,
        "producer_events_per_s": events / (produced - started),
        "cpu_seconds": cpu,
        "redis_commands_per_1000": 1000 * delta.get("commands", 0) / events,
        "redis_bytes_per_1000": 1000 * delta.get("bytes", 0) / events,
        "applied_over_time": [(round(t - started, 2), n) for t, n in trace],
        "publish_rounds": delta.get("rounds", 0),
        "worker_seconds": {k: v for k, v in delta.items() if k.endswith("_seconds")},
        "rankings_written": delta.get("rankings", 0),
        "ranking_keys": len(ranking_keys),
        "redis_memory_delta": memory_after - memory_before,
        "memory_per_ranking": (memory_after - memory_before) / max(1, len(ranking_keys)),
        "memory_usage_per_key_mean": statistics.mean(usage) if usage else 0,
        "value_bytes_mean": statistics.mean(lengths) if lengths else 0,
    }


def background(cluster: Cluster, broker: KafkaBroker, rate: float, seconds: float) -> Any:
    command = [
        sys.executable, "-m", "rankstream", "generate", "--target",
        f"kafka://{broker.bootstrap}/{cluster.topic}", "--rate", str(rate),
        "--duration", str(seconds), "--videos", "100000", "--batch-size", "10000",
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def freshness(cluster: Cluster, broker: KafkaBroker, probes: int, label: str) -> list[float]:
    """Seconds from producing one probe view to seeing it counted through the API (each
    load ``label`` has its own probe category, so earlier probes never count); ``inf`` for
    a probe not seen within 15 s."""
    producer = Producer(producer_config(broker.bootstrap))
    seen: list[float] = []
    category = f"{PROBE_CATEGORY}-{label}"
    for number in range(1, probes + 1):
        event = {"video_id": "probe-video", "timestamp": now_ms(), "category": category}
        sent = time.monotonic()
        producer.produce(cluster.topic, msgspec.json.encode(event), b"probe-video")
        producer.flush(10)
        params: dict[str, str | int] = {"window": "1h", "k": 1, "category": category}
        deadline = sent + 15
        while time.monotonic() < deadline:
            answer = cluster.http.get("/views/top-k", params=params)
            items = answer.json().get("items", []) if answer.status_code == 200 else []
            if items and items[0]["views"] >= number:
                seen.append(time.monotonic() - sent)
                break
            time.sleep(0.005)
        else:
            seen.append(math.inf)  # not visible within 15 s: counts in the percentiles as such
        time.sleep(0.1)
    return seen


def top_k_latency(cluster: Cluster, seconds: float) -> list[float]:
    """Milliseconds per ``GET /views/top-k?k=100`` (client side), back to back."""
    latencies: list[float] = []
    end = time.monotonic() + seconds
    number = 0
    while time.monotonic() < end:
        params: dict[str, str | int] = {"window": "1h", "k": 100, **SCOPES[number % len(SCOPES)]}
        started = time.perf_counter()
        answer = cluster.http.get("/views/top-k", params=params)
        latencies.append((time.perf_counter() - started) * 1000)
        if answer.status_code != 200:
            raise RuntimeError(f"top-k answered {answer.status_code}: {answer.text[:200]}")
        number += 1
    return latencies


def zincrby_baseline(server: RedisServer, values: list[bytes]) -> dict[str, float]:
    """The notes' approach: 4 ZINCRBY per view, pipelined 1,000 views per round trip."""
    server.flush()
    client = server.client()
    decode = msgspec.json.Decoder(dict[str, Any]).decode
    started = time.perf_counter()
    for start in range(0, len(values), 1000):
        pipe = client.pipeline(transaction=False)
        for raw in values[start : start + 1000]:
            view = decode(raw)
            video, category, region = view["video_id"], view.get("category"), view.get("region")
            pipe.zincrby("top:1h", 1, video)
            pipe.zincrby(f"top:1h:c:{category}", 1, video)
            pipe.zincrby(f"top:1h:r:{region}", 1, video)
            pipe.zincrby(f"top:1h:cr:{category}:{region}", 1, video)
        pipe.execute()
    elapsed = time.perf_counter() - started
    memory = int(client.info("memory")["used_memory"])
    keys = int(client.dbsize())
    client.close()
    return {"events": len(values), "events_per_s": len(values) / elapsed, "keys": keys,
            "used_memory": memory}  # fmt: skip


def kafka_ceiling(
    broker: KafkaBroker, partitions: int, work: Path, keys: list[bytes], values: list[bytes]
) -> dict[str, Any]:
    """What Kafka alone carries on this machine: the same events produced the same way to a
    new topic of ``partitions``, consumed and decoded by two bare consumer-group members
    (no engine, no Redis); the clock stops when both together decoded every event."""
    topic = f"ceiling-{partitions}-{now_ms()}"
    broker.create_topic(topic, partitions)
    stats = [work / f"ceiling-{n}.txt" for n in (1, 2)]
    children = []
    for number, path in enumerate(stats, 1):
        path.write_text("0")
        command = [
            sys.executable, __file__, "--consumer-mode", "--kafka",
            f"{broker.bootstrap}/{topic}", "--stats", str(path),
        ]  # fmt: skip
        child = ServiceProcess(f"ceiling-{number}", command, work / f"ceiling-{number}.log")
        child.start(lambda: True, 60)
        children.append(child)
    try:
        time.sleep(8)  # both members joined (session.timeout.ms 6000) before the clock starts
        producer = Producer(producer_config(broker.bootstrap.split("/")[0]))
        pids = {c.name: c.process.pid for c in children if c.process is not None}
        pids["broker"] = broker._process.process.pid  # type: ignore[union-attr]
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        producer_cpu = time.process_time()
        started = time.monotonic()
        produce_all(producer, topic, keys, values)
        produced = time.monotonic()
        producer_cpu = time.process_time() - producer_cpu
        deadline = started + 600
        while sum(int(p.read_text() or 0) for p in stats) < len(values):
            if time.monotonic() > deadline:
                raise TimeoutError("the bare consumers did not decode every event in 600 s")
            time.sleep(0.02)
        elapsed = time.monotonic() - started
        cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
        cpu["bench (producer)"] = producer_cpu
    finally:
        for child in children:
            child.stop(grace=30)
    return {
        "events": len(values),
        "events_per_s": len(values) / elapsed,
        "producer_events_per_s": len(values) / (produced - started),
        "cpu_seconds": cpu,
    }


def under_load(
    cluster: Cluster, broker: KafkaBroker, rate: float, label: str, args: argparse.Namespace
) -> dict[str, Any]:
    """Freshness and top-k latency while ``rankstream generate`` adds ``rate`` views/s."""
    load = background(cluster, broker, rate, 3600)
    try:
        time.sleep(3)
        fresh = freshness(cluster, broker, args.probes, label)
        latencies = top_k_latency(cluster, args.latency_seconds)
    finally:
        load.send_signal(signal.SIGINT)
        load.wait(60)
    return {
        "rate": rate,
        "freshness_s": [x for x in fresh if x != math.inf],
        "probes_unseen_after_15_s": sum(1 for x in fresh if x == math.inf),
        "freshness_p50_s": percentile(fresh, 0.5),
        "freshness_p99_s": percentile(fresh, 0.99),
        "top_k_requests": len(latencies),
        "top_k_p50_ms": percentile(latencies, 0.5),
        "top_k_p99_ms": percentile(latencies, 0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker-mode", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--consumer-mode", action="store_true", help=argparse.SUPPRESS)
    for name in (
        "--kafka",
        "--redis",
        "--checkpoints",
        "--name",
        "--stats",
        "--fields",
        "--boards",
    ):
        parser.add_argument(name, help=argparse.SUPPRESS)
    parser.add_argument("--partitions", default="4,16,64")
    parser.add_argument("--events", type=int, default=600_000, help="Views produced per count.")
    parser.add_argument(
        "--rate", type=float, default=50_000, help="Most background views/s of the 'half' load."
    )
    parser.add_argument(
        "--loads",
        default="2000,10000,half",
        help="Background loads for freshness and top-k: views/s, or 'half' (of the measured"
        " throughput, at most --rate).",
    )
    parser.add_argument("--probes", type=int, default=30)
    parser.add_argument("--latency-seconds", type=float, default=10)
    parser.add_argument("--quick", action="store_true", help="200 k events, 10 probes, 4 s")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.worker_mode:
        worker_main(args)
        return
    if args.consumer_mode:
        consumer_main(args)
        return
    # SIGTERM (a timeout) unwinds like Ctrl-C, so every child is stopped on the way out.
    signal.signal(signal.SIGTERM, _interrupt)
    if args.quick:
        args.events, args.probes, args.latency_seconds = 200_000, 10, 4
    report: dict[str, Any] = {"partitions": {}, "args": {k: str(v) for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        work = Path(tmp)
        with (
            KafkaBroker(work / "kafka", quick_jit=False, heap="1g") as broker,
            RedisServer(work / "redis") as server,
        ):
            for number, partitions in enumerate(int(p) for p in args.partitions.split(",")):
                print(f"== {partitions} partitions", flush=True)
                cluster = Cluster(broker, server, partitions, work)
                try:
                    cluster.wait_applied(0, timeout=120)  # every partition published a manifest
                    figures = throughput(cluster, server, broker, args.events, seed=7 + number)
                    print(json.dumps(figures, indent=1), flush=True)
                    # Fixed loads, and half the measured (backlog-draining) throughput: a
                    # load the workers cannot sustain measures the backlog, not the path.
                    half = min(args.rate, 0.5 * figures["events_per_s"])
                    figures["loads"] = {}
                    for label in args.loads.split(","):
                        rate = half if label == "half" else float(label)
                        figures["loads"][label] = under_load(cluster, broker, rate, label, args)
                    print(json.dumps(figures["loads"]), flush=True)
                    report["partitions"][partitions] = figures
                finally:
                    cluster.stop()
            keys, values, _ = make_events(args.events, seed=7)
            report["zincrby_baseline"] = zincrby_baseline(server, values)
            print(json.dumps(report["zincrby_baseline"]), flush=True)
            first_count = int(args.partitions.split(",")[0])
            report["kafka_ceiling"] = kafka_ceiling(broker, first_count, work, keys, values)
            print(json.dumps(report["kafka_ceiling"]), flush=True)
    first = next(iter(report["partitions"].values()))
    report["ratio_vs_zincrby"] = first["events_per_s"] / report["zincrby_baseline"]["events_per_s"]
    report["ratio_vs_kafka_ceiling"] = (
        first["events_per_s"] / report["kafka_ceiling"]["events_per_s"]
    )
    summary(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def summary(report: dict[str, Any]) -> None:
    print("\n== summary")
    base = report["zincrby_baseline"]["events_per_s"]
    print(f"ZINCRBY baseline (4 keys per view, pipelined 1,000 views): {base:,.0f} views/s")
    ceiling = report["kafka_ceiling"]
    print(
        f"Kafka ceiling (produce -> 2 bare consumers decode, no engine): "
        f"{ceiling['events_per_s']:,.0f} ev/s "
        f"(producer alone {ceiling['producer_events_per_s']:,.0f})"
    )
    cpu = ceiling["cpu_seconds"]
    per_event = 1e6 * sum(cpu.values()) / ceiling["events"]
    print(
        f"   CPU s: {', '.join(f'{k} {v:.2f}' for k, v in cpu.items())}; "
        f"{per_event:.1f} us of CPU per event"
    )
    for partitions, f in report["partitions"].items():
        print(
            f"P={partitions}: end-to-end {f['events_per_s']:,.0f} ev/s "
            f"({f['events_per_s'] / base:.2f}x ZINCRBY, "
            f"{f['events_per_s'] / ceiling['events_per_s']:.2f}x the Kafka ceiling; producer alone "
            f"{f['producer_events_per_s']:,.0f}); Redis {f['redis_commands_per_1000']:.1f} cmds, "
            f"{f['redis_bytes_per_1000']:,.0f} B per 1k events; {f['ranking_keys']:,} ranking "
            f"keys, {f['memory_per_ranking']:,.0f} B each (value {f['value_bytes_mean']:,.0f} B)"
        )
        for label, load in f["loads"].items():
            print(
                f"   load {label} ({load['rate']:,.0f} ev/s): freshness p50 "
                f"{load['freshness_p50_s']:.2f} s p99 {load['freshness_p99_s']:.2f} s; top-k "
                f"k=100 p50 {load['top_k_p50_ms']:.2f} ms p99 {load['top_k_p99_ms']:.2f} ms"
            )
        steps = ", ".join(f"{k[:-8]} {v:.1f}" for k, v in f["worker_seconds"].items())
        print(f"   worker seconds during throughput (both): {steps}")
        cpu = ", ".join(f"{k} {v:.1f}" for k, v in f["cpu_seconds"].items())
        per_event = 1e6 * sum(f["cpu_seconds"].values()) / f["events"]
        print(
            f"   CPU s during throughput ({f['end_to_end_s']:.1f} s wall): {cpu}; "
            f"{per_event:.1f} us of CPU per event"
        )


if __name__ == "__main__":
    main()
