"""A whole scale-out cluster on this machine, for ``make run-cluster``.

``python -m rankstream.devservices.cluster`` starts, in order, each waiting until it answers:

1. an Apache Kafka broker (KRaft) with the topic ``video_views`` (``--partitions``, 4);
2. ``redis-server`` and moto's S3, with the bucket ``rankstream``;
3. ``--workers`` (2) ``rankstream worker`` processes, checkpointing to
   ``s3://rankstream/checkpoints`` on the moto endpoint (dummy AWS credentials in their
   environment: moto checks none);
4. one ``rankstream api`` replica per ``--api-ports`` port (8001,8002) on 127.0.0.1;
5. ``rankstream generate`` posting ``--rate`` (3000) events/s to the first replica over
   HTTP, so the whole path runs: HTTP -> Kafka -> workers -> Redis -> every replica.

It prints the URLs and a ``cluster.json`` (URLs and process ids) in the work directory, then
waits. Ctrl-C (or SIGTERM) stops everything in the reverse order: the generator, the API
replicas (they flush to Kafka), the workers (they checkpoint to S3 and leave the group), then
S3, Redis and Kafka. A child that exits on its own stops the cluster too (exit status 1).
Every child logs to a file in the work directory; each runs in its own session, so the
terminal's Ctrl-C reaches only this launcher, which stops them in order.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx

from rankstream.devservices._process import ServiceProcess, ServiceStartError, log_tail
from rankstream.devservices.kafka import KafkaBroker
from rankstream.devservices.ports import LOOPBACK
from rankstream.devservices.redis import RedisServer
from rankstream.devservices.s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Server

TOPIC = "video_views"
BUCKET = "rankstream"
CHECKPOINTS = f"s3://{BUCKET}/checkpoints"


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """What to start (see the module docstring)."""

    work_dir: Path
    api_ports: tuple[int, ...] = (8001, 8002)
    workers: int = 2
    partitions: int = 4
    rate: float = 3000.0
    videos: int = 10_000
    start_timeout: float = 120.0


def aws_environment(base: dict[str, str]) -> dict[str, str]:
    """``base`` with dummy AWS credentials and region for the moto endpoint."""
    return {
        **base,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
    }


def _answers_health(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class Cluster:
    """The running cluster; :meth:`start` and :meth:`stop` (idempotent, reverse order)."""

    settings: ClusterSettings
    broker: KafkaBroker | None = None
    redis: RedisServer | None = None
    s3: S3Server | None = None
    children: list[ServiceProcess] = field(default_factory=list)  # workers, APIs, generator

    @property
    def api_urls(self) -> list[str]:
        return [f"http://{LOOPBACK}:{port}" for port in self.settings.api_ports]

    def start(self) -> None:
        """Start every service and process, in order, each once it answers; raises
        :class:`ServiceStartError` (the caller stops what did start)."""
        s = self.settings
        work = s.work_dir
        self.broker = KafkaBroker(work / "kafka", partitions=s.partitions)
        self.broker.start()
        self.broker.create_topic(TOPIC, s.partitions)
        self.redis = RedisServer(work / "redis").start()
        self.s3 = S3Server(work / "s3").start()
        self.s3.create_bucket(BUCKET)
        scale = [
            "--kafka", f"{self.broker.bootstrap}/{TOPIC}", "--redis", self.redis.url,
            "--s3-endpoint", self.s3.endpoint_url,
        ]  # fmt: skip
        env = aws_environment(dict(os.environ))
        rankstream = [sys.executable, "-m", "rankstream"]
        for number in range(1, s.workers + 1):
            name = f"worker-{number}"
            command = [
                *rankstream, "worker", *scale, "--checkpoints", CHECKPOINTS, "--name", name,
                "--session-timeout-ms", "6000", "--data-dir", str(work / name),
            ]  # fmt: skip
            self._start(name, command, env, lambda: True)
        for number, (port, url) in enumerate(zip(s.api_ports, self.api_urls, strict=True), 1):
            command = [*rankstream, "api", *scale, "--host", LOOPBACK, "--port", str(port)]
            command += ["--data-dir", str(work / f"api-{number}")]
            self._start(f"api-{number}", command, env, functools.partial(_answers_health, url))
        command = [
            *rankstream, "generate", "--target", self.api_urls[0], "--rate", str(s.rate),
            "--duration", str(365 * 86_400), "--videos", str(s.videos),
        ]  # fmt: skip
        self._start("generator", command, env, lambda: True)

    def _start(
        self, name: str, command: list[str], env: dict[str, str], ready: Callable[[], bool]
    ) -> None:
        process = ServiceProcess(name, command, self.settings.work_dir / f"{name}.log", env=env)
        self.children.append(process)
        process.start(ready, self.settings.start_timeout)

    def describe(self) -> dict[str, object]:
        """URLs and process ids (what ``cluster.json`` holds)."""
        if self.broker is None or self.redis is None or self.s3 is None:
            raise RuntimeError("the cluster is not started")
        processes = {c.name: c.process.pid for c in self.children if c.process is not None}
        return {
            "api": self.api_urls,
            "docs": [f"{url}/docs" for url in self.api_urls],
            "kafka": f"{self.broker.bootstrap}/{TOPIC}",
            "redis": self.redis.url,
            "s3": f"{self.s3.endpoint_url} ({CHECKPOINTS})",
            "pids": processes,
            "logs": str(self.settings.work_dir),
        }

    def exited(self) -> ServiceProcess | None:
        """A child that exited on its own, if any."""
        return next((c for c in self.children if not c.running), None)

    def stop(self) -> None:
        """Stop everything, the reverse of the start order. Idempotent."""
        for child in reversed(self.children):
            child.stop(grace=30.0)  # workers checkpoint to S3 before they exit
        for service in (self.s3, self.redis, self.broker):
            if service is not None:
                service.stop()


def _stop_on(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the cluster as Ctrl-C does


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rankstream.devservices.cluster",
        description="Run Kafka, Redis, S3 (moto), workers, API replicas and the traffic "
        "generator on this machine; Ctrl-C stops them all.",
    )
    parser.add_argument("--api-ports", default="8001,8002", help="API replicas' ports.")
    parser.add_argument("--workers", type=int, default=2, help="Worker processes.")
    parser.add_argument("--partitions", type=int, default=4, help="Partitions of the topic.")
    parser.add_argument("--rate", type=float, default=3000, help="Generated events/s.")
    parser.add_argument("--videos", type=int, default=10_000, help="Videos in the catalogue.")
    parser.add_argument("--work-dir", type=Path, help="Logs and data (default: a temp dir).")
    args = parser.parse_args(argv)
    ports = tuple(int(p) for p in args.api_ports.split(",") if p)
    if not ports or args.workers < 1 or args.partitions < 1 or args.rate <= 0:
        parser.error("need at least one API port and worker, partitions >= 1 and rate > 0")
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="rankstream-cluster-"))
    work.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(
        ClusterSettings(work, ports, args.workers, args.partitions, args.rate, args.videos)
    )
    signal.signal(signal.SIGTERM, _stop_on)
    status = 0
    try:
        print(f"starting the cluster (logs in {work}) ...", flush=True)
        cluster.start()
        described = cluster.describe()
        (work / "cluster.json").write_text(json.dumps(described, indent=2))
        _print(cluster, described)
        while (gone := cluster.exited()) is None:
            time.sleep(0.5)
        print(f"{gone.name} exited; stopping the cluster\n{log_tail(gone.log_path)}", flush=True)
        status = 1
    except ServiceStartError as exc:
        print(f"the cluster did not start: {exc}", file=sys.stderr, flush=True)
        status = 1
    except KeyboardInterrupt:
        print("stopping the cluster ...", flush=True)
    finally:
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C: the atexit net kills
            cluster.stop()
    print("stopped", flush=True)
    return status


def _print(cluster: Cluster, described: dict[str, object]) -> None:
    lines = ["rankstream cluster running; Ctrl-C stops it"]
    for url in cluster.api_urls:
        doc = f"{url}/docs"
        lines.append(f"  API replica  {url}   (docs {doc}, try {url}/views/top-k?window=1h&k=10)")
    lines += [
        f"  Kafka        {described['kafka']}",
        f"  Redis        {described['redis']}",
        f"  S3 (moto)    {described['s3']}",
        f"  logs         {described['logs']}  (cluster.json: URLs and pids)",
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
