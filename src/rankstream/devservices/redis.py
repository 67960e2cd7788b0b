"""``redis-server`` on loopback: one standalone server, or a three-master Redis Cluster.

The binaries come from Debian's ``redis-server`` and ``redis-tools`` (``make services``).
Nothing is persisted: no RDB snapshots, no append-only file.
"""

from __future__ import annotations

import shutil
import subprocess
from functools import partial
from pathlib import Path
from types import TracebackType

from rankstream.devservices._process import (
    OneProcessService,
    ServiceProcess,
    ServiceStartError,
    log_tail,
    wait_until,
)
from rankstream.devservices.ports import LOOPBACK, free_ports

try:
    import redis
    import redis.cluster
except ImportError as error:  # pragma: no cover - the hint is the point
    raise ImportError(
        "rankstream.devservices.redis needs redis-py: pip install 'rankstream[scale]'"
    ) from error

NO_PERSISTENCE = ("--save", "", "--appendonly", "no")


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ServiceStartError(f"no `{name}` on the PATH: run `make services`")
    return path


def _answers_ping(port: int) -> bool:
    client = redis.Redis(host=LOOPBACK, port=port, socket_timeout=1.0)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


class RedisServer(OneProcessService):
    """One ``redis-server`` on 127.0.0.1, started on a free port, its files under ``work_dir``.

    The port stays the same across :meth:`restart_empty`, so clients can reconnect.
    """

    service_name = "redis-server"

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self) -> RedisServer:
        """Start and block until it answers PING; raises :class:`ServiceStartError`."""
        command = [
            _binary("redis-server"),
            "--port",
            str(self.port),
            "--bind",
            LOOPBACK,
            *NO_PERSISTENCE,
            "--dir",
            str(self.work_dir),
        ]
        self._launch(command, "redis.log", lambda: _answers_ping(self.port))
        return self

    def client(self) -> redis.Redis:
        """A new client for database 0 (the caller closes it)."""
        return redis.Redis.from_url(self.url)

    def flush(self) -> None:
        """FLUSHALL: every key of every database is gone when this returns."""
        with self.client() as client:
            client.flushall()

    def restart_empty(self) -> None:
        """Stop (SIGTERM) and start again on the same port: every connection is dropped and
        every key lost, as when a cache node restarts. Blocks until it answers again."""
        self.stop()
        self.start()


class RedisCluster:
    """A Redis Cluster of ``masters`` nodes (no replicas) on 127.0.0.1, each in its own folder
    under ``work_dir``.

    Each node gets two free ports, its client port and its cluster-bus port (``--cluster-port``:
    the default, port + 10000, may be taken or past 65535). :meth:`start` blocks until every
    node reports ``cluster_state:ok``, so all 16384 slots are served.
    """

    def __init__(self, work_dir: Path, *, masters: int = 3, start_timeout: float = 60.0) -> None:
        if masters < 3:
            raise ValueError(f"a Redis Cluster needs at least 3 masters, not {masters}")
        self.work_dir = work_dir
        self.start_timeout = start_timeout
        ports = free_ports(2 * masters)
        self.ports = ports[:masters]
        self.bus_ports = ports[masters:]
        self._nodes: list[ServiceProcess] = []

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        """``(host, port)`` of every node."""
        return [(LOOPBACK, port) for port in self.ports]

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT`` of the first node: a cluster client finds the others."""
        return f"redis://{LOOPBACK}:{self.ports[0]}"

    def start(self) -> RedisCluster:
        """Start the nodes, assign the slots (``redis-cli --cluster create``) and block until
        the cluster state is ok on every node; raises :class:`ServiceStartError`."""
        if self._nodes:
            raise RuntimeError("this RedisCluster was already started; make a new one")
        server = _binary("redis-server")
        for port, bus_port in zip(self.ports, self.bus_ports, strict=True):
            node_dir = self.work_dir / f"node-{port}"
            node_dir.mkdir(parents=True, exist_ok=True)
            command = [
                server,
                "--port",
                str(port),
                "--bind",
                LOOPBACK,
                *NO_PERSISTENCE,
                "--dir",
                str(node_dir),
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                str(bus_port),
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "5000",
            ]
            node = ServiceProcess(f"redis-server (cluster node {port})", command, node_dir / "log")
            self._nodes.append(node)
            node.start(partial(_answers_ping, port), self.start_timeout)
        self._create_cluster()
        if not wait_until(self._all_ok, self.start_timeout):
            self.stop()
            states = "\n".join(f"{port}: {self._state(port)}" for port in self.ports)
            raise ServiceStartError(
                f"Redis Cluster not ok within {self.start_timeout} s:\n{states}\n"
                f"--- {self._nodes[0].log_path} ---\n{log_tail(self._nodes[0].log_path)}"
            )
        return self

    def _create_cluster(self) -> None:
        command = [
            _binary("redis-cli"),
            "--cluster",
            "create",
            *(f"{host}:{port}" for host, port in self.startup_nodes),
            "--cluster-replicas",
            "0",
            "--cluster-yes",
        ]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=self.start_timeout, check=False
        )
        if result.returncode != 0:
            self.stop()
            raise ServiceStartError(
                f"redis-cli --cluster create failed ({result.returncode}): "
                f"{' '.join(command)}\n{result.stdout}{result.stderr}"
            )

    def _all_ok(self) -> bool:
        return all(self._state(port) == "ok" for port in self.ports)

    @staticmethod
    def _state(port: int) -> str:
        """``cluster_state`` of the node on ``port`` (or the error asking for it)."""
        client = redis.Redis(host=LOOPBACK, port=port, socket_timeout=1.0, decode_responses=True)
        try:
            return str(client.cluster("INFO").get("cluster_state"))
        except redis.RedisError as error:
            return repr(error)
        finally:
            client.close()

    def client(self) -> redis.cluster.RedisCluster:
        """A new cluster client (the caller closes it)."""
        return redis.cluster.RedisCluster(host=LOOPBACK, port=self.ports[0])

    def flush(self) -> None:
        """FLUSHALL on every node."""
        for port in self.ports:
            with redis.Redis(host=LOOPBACK, port=port) as client:
                client.flushall()

    def stop(self) -> None:
        """Stop every node (SIGTERM, SIGKILL after 10 s). Idempotent."""
        for node in self._nodes:
            node.stop()

    def __enter__(self) -> RedisCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
