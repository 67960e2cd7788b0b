"""Shared fixtures: real service processes on ephemeral loopback ports."""

from __future__ import annotations

import itertools
import re
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import redis

import tests.budget  # noqa: F401  (loads the Hypothesis profile before any test runs)
from rankstream.devservices import ServiceStartError
from rankstream.devservices.kafka import KafkaBroker
from rankstream.devservices.redis import RedisCluster, RedisServer
from rankstream.devservices.s3 import S3Server
from tests.servers import ServiceProcess


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """Start ``rankstream serve`` processes; every one is killed at teardown."""
    started: list[ServiceProcess] = []

    def start(
        *args: str, data_dir: Path | None = None, env: dict[str, str] | None = None
    ) -> ServiceProcess:
        service = ServiceProcess(data_dir or tmp_path / "data", *args, env=env).start()
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop(signal.SIGKILL)


# --- Real services on loopback (rankstream.devservices; `make services` installs them) ---------
# A fixture that cannot start its service fails the test with the service's log tail: tests that
# need Kafka, Redis or S3 always run, never skip.


_Service = TypeVar("_Service", KafkaBroker, RedisServer, RedisCluster, S3Server)


def _started(service: _Service) -> _Service:
    try:
        return service.start()
    except ServiceStartError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """One KRaft broker for the session (its JVM takes seconds to start); 4 partitions by
    default. A test that pauses it resumes it before it ends."""
    broker = _started(KafkaBroker(tmp_path_factory.mktemp("kafka")))
    yield broker
    broker.stop()


@pytest.fixture
def kafka_topic(kafka_broker: KafkaBroker, request: pytest.FixtureRequest) -> Callable[..., str]:
    """``kafka_topic(partitions=None) -> name``: create a topic named after the test, unique in
    the session, and return its name."""

    def create(partitions: int | None = None) -> str:
        test = re.sub(r"[^A-Za-z0-9._-]", "-", request.node.name)[:200]
        name = f"{test}-{next(_topic_numbers)}"
        kafka_broker.create_topic(name, partitions)
        return name

    return create


_topic_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session; use ``redis_db`` for a flushed client."""
    server = _started(RedisServer(tmp_path_factory.mktemp("redis")))
    yield server
    server.stop()


@pytest.fixture
def redis_db(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client of the session's redis-server, every database flushed before the test."""
    redis_server.flush()
    with redis_server.client() as client:
        yield client


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A three-master Redis Cluster for the module, all slots served."""
    cluster = _started(RedisCluster(tmp_path_factory.mktemp("redis-cluster")))
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's S3 server for the session. A test that denies requests or pauses it undoes that
    before it ends."""
    server = _started(S3Server(tmp_path_factory.mktemp("s3")))
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A new, empty bucket on the session's S3 server; returns its name."""
    name = f"rankstream-test-{next(_bucket_numbers)}"
    s3_server.create_bucket(name)
    return name


_bucket_numbers = itertools.count(1)
