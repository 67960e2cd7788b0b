"""A single-node Apache Kafka broker in KRaft mode, for tests and benchmarks.

The broker's jars come from Maven Central through ``make services`` (see
``services/kafka/pom.xml``: Kafka 4.1.1). :class:`KafkaBroker` writes a ``server.properties``
for one combined broker+controller on two free loopback ports, formats the log directory
(``kafka.tools.StorageTool format``), starts ``java ... kafka.Kafka server.properties`` and
waits until the broker answers a metadata request.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from rankstream.devservices._process import (
    OneProcessService,
    ServiceProcess,
    ServiceStartError,
    log_tail,
)
from rankstream.devservices.ports import LOOPBACK, free_ports, port_open

try:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic
except ImportError as error:  # pragma: no cover - the hint is the point
    raise ImportError(
        "rankstream.devservices.kafka needs confluent-kafka: pip install 'rankstream[scale]'"
    ) from error

KAFKA_LIBS_ENV = "RANKSTREAM_KAFKA_LIBS"
BROKER_MAIN = "kafka.Kafka"
STORAGE_TOOL_MAIN = "kafka.tools.StorageTool"

LOG4J2_PROPERTIES = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = info
logger.state.name = state.change.logger
logger.state.level = warn
"""


def repo_root() -> Path | None:
    """The checkout holding ``services/kafka/pom.xml``: searched upwards from this file (an
    editable install), then from the working directory; None if neither is inside one."""
    for start in (Path(__file__).resolve(), Path.cwd().resolve()):
        for folder in (start, *start.parents):
            if (folder / "services" / "kafka" / "pom.xml").is_file():
                return folder
    return None


def kafka_libs() -> Path:
    """The folder of the broker's jars: ``$RANKSTREAM_KAFKA_LIBS`` if set (for instance the
    ``libs/`` of an unpacked Kafka 4 distribution), else ``<repo>/.services/kafka/libs``.

    Raises :class:`ServiceStartError` saying to run ``make services`` if it holds no broker.
    """
    configured = os.environ.get(KAFKA_LIBS_ENV)
    root = repo_root()
    if configured:
        libs = Path(configured)
    elif root is not None:
        libs = root / ".services" / "kafka" / "libs"
    else:
        raise ServiceStartError(
            f"cannot find the Kafka broker's jars: not inside a rankstream checkout; set "
            f"{KAFKA_LIBS_ENV} to a folder holding kafka_2.13-*.jar"
        )
    if not any(libs.glob("kafka_2.13-*.jar")):
        raise ServiceStartError(
            f"no Kafka broker jars in {libs}: run `make services` in the rankstream checkout "
            f"(or set {KAFKA_LIBS_ENV} to a folder holding kafka_2.13-*.jar)"
        )
    return libs


def java_command() -> str:
    """``$JAVA_HOME/bin/java`` if set, else ``java`` on the PATH."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if java is None or not Path(java).exists():
        raise ServiceStartError("no `java` found: install a JDK 17+ (Debian: openjdk-17-jre)")
    return java


def random_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (22 characters)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


class KafkaBroker(OneProcessService):
    """One KRaft broker+controller on 127.0.0.1, its files under ``work_dir``.

    ``partitions`` is the broker's ``num.partitions`` (the default for :meth:`create_topic`);
    topics are never created automatically. ``heap`` is the JVM's ``-Xmx``. ``quick_jit`` keeps
    the JVM to its first JIT tier: start-up takes about half as long, peak throughput is lower,
    so benchmarks pass False. Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    service_name = "the Kafka broker"

    def __init__(
        self,
        work_dir: Path,
        *,
        partitions: int = 4,
        heap: str = "512m",
        quick_jit: bool = True,
        start_timeout: float = 90.0,
    ) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be at least 1, not {partitions}")
        self.work_dir = work_dir
        self.partitions = partitions
        self.heap = heap
        self.quick_jit = quick_jit
        self.start_timeout = start_timeout
        self.port, self.controller_port = free_ports(2)
        self.properties_path = work_dir / "server.properties"
        self.log_path = work_dir / "server.log"
        self._process: ServiceProcess | None = None

    @property
    def bootstrap(self) -> str:
        """``bootstrap.servers`` for clients: ``"127.0.0.1:PORT"``."""
        return f"{LOOPBACK}:{self.port}"

    def server_properties(self) -> str:
        """The broker's configuration: single node, no replication, no automatic topics, no
        delay before the first consumer-group rebalance."""
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{LOOPBACK}:{self.controller_port}",
            "listeners": (
                f"PLAINTEXT://{LOOPBACK}:{self.port},CONTROLLER://{LOOPBACK}:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.work_dir / "data"),
            "num.partitions": str(self.partitions),
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",  # 50 by default: slow first group join
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
        }
        return "".join(f"{key}={value}\n" for key, value in settings.items())

    def start(self) -> KafkaBroker:
        """Write the configuration, format the storage and start the broker; blocks until it
        answers a metadata request. Raises :class:`ServiceStartError` with the log tail."""
        if self._process is not None:
            raise RuntimeError("this KafkaBroker was already started; make a new one")
        classpath = str(kafka_libs() / "*")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.properties_path.write_text(self.server_properties())
        log4j = self.work_dir / "log4j2.properties"
        log4j.write_text(LOG4J2_PROPERTIES.format(log=self.log_path))
        java = [
            java_command(),
            f"-Xmx{self.heap}",
            "-Xms64m",
            "-XX:+UseSerialGC",  # two cores: no parallel GC threads competing with the test
            "-Djava.awt.headless=true",
            *(["-XX:TieredStopAtLevel=1"] if self.quick_jit else []),
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            classpath,
        ]
        self._format_storage(java)
        self._process = ServiceProcess(
            "Kafka broker",
            [*java, BROKER_MAIN, str(self.properties_path)],
            self.log_path,
            cwd=self.work_dir,
        )
        self._process.start(self._answers_metadata, self.start_timeout)
        return self

    def _format_storage(self, java: list[str]) -> None:
        # KRaft refuses to start on an unformatted log dir; with a static quorum
        # (controller.quorum.voters) the format needs no --standalone.
        command = [
            *java,
            STORAGE_TOOL_MAIN,
            "format",
            "--cluster-id",
            random_cluster_id(),
            "--config",
            str(self.properties_path),
            "--ignore-formatted",
        ]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=self.start_timeout, check=False
        )
        if result.returncode != 0:
            raise ServiceStartError(
                f"Kafka storage format failed ({result.returncode}): {' '.join(command)}\n"
                f"{result.stdout}{result.stderr}\n--- {self.log_path} ---\n"
                f"{log_tail(self.log_path)}"
            )

    def _answers_metadata(self) -> bool:
        if not port_open(LOOPBACK, self.port):
            return False
        try:
            metadata = self.admin().list_topics(timeout=2.0)
        except KafkaException:
            return False
        return bool(metadata.brokers)

    def admin(self) -> AdminClient:
        """A new AdminClient for this broker."""
        return AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 3})

    def create_topic(
        self, name: str, partitions: int | None = None, *, timeout: float = 30.0
    ) -> None:
        """Create ``name`` with ``partitions`` (default ``num.partitions``), replication 1.

        Blocks until every partition has a leader, so a producer can write at once. Raises
        ``KafkaException`` if the topic exists or the broker refuses.
        """
        count = self.partitions if partitions is None else partitions
        admin = self.admin()
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=count, replication_factor=1)],
            operation_timeout=timeout,
            request_timeout=timeout,
        )
        futures[name].result(timeout)
        deadline = time.monotonic() + timeout
        while True:
            topic = admin.list_topics(name, timeout=timeout).topics.get(name)
            if (
                topic is not None
                and topic.error is None
                and len(topic.partitions) == count
                and all(p.leader >= 0 for p in topic.partitions.values())
            ):
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"topic {name} has no leader for every partition yet")
            time.sleep(0.05)
