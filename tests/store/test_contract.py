"""The MetadataStore contract, run over every implementation."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from rankstream.devservices.redis import RedisCluster, RedisServer
from rankstream.errors import StorageFailure
from rankstream.store import MetadataStore, SqliteMetadataStore, VideoMetadata
from rankstream.store.redis import RedisMetadataStore

Factory = Callable[[], MetadataStore]  # a store over the same storage every call
REFRESH = 0.05  # seconds between the Redis store's version checks in these tests


def sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    stores: list[MetadataStore] = []

    def open_store() -> MetadataStore:
        stores.append(SqliteMetadataStore(tmp_path / "metadata.sqlite3"))
        return stores[-1]

    yield open_store
    for store in stores:
        store.close()


def on_redis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    """Every store is a replica with its own client of one redis-server."""
    server: RedisServer = request.getfixturevalue("redis_server")
    server.flush()
    clients: list[redis.Redis] = []

    def open_store() -> MetadataStore:
        clients.append(server.client())
        return RedisMetadataStore(clients[-1], refresh=REFRESH)

    yield open_store
    for client in clients:
        client.close()


def on_redis_cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    cluster: RedisCluster = request.getfixturevalue("redis_cluster")
    cluster.flush()
    client = cluster.client()
    yield lambda: RedisMetadataStore(client, refresh=REFRESH)
    client.close()


IMPLEMENTATIONS = {"sqlite": sqlite, "redis": on_redis, "redis-cluster": on_redis_cluster}
SHARED = ("redis", "redis-cluster")  # stores every API replica shares


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    yield from IMPLEMENTATIONS[request.param](request, tmp_path)


@pytest.fixture(params=SHARED)
def open_replica(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    yield from IMPLEMENTATIONS[request.param](request, tmp_path)


def eventually(check: Callable[[], bool], deadline: float = 5.0) -> None:
    """Wait until ``check()`` holds, failing after ``deadline`` seconds."""
    give_up = time.monotonic() + deadline
    while not check():
        assert time.monotonic() < give_up, "not seen before the deadline"
        time.sleep(REFRESH / 5)


def test_put_then_get_and_replace(open_store: Factory) -> None:
    store = open_store()
    assert store.get("v1") is None
    assert len(store) == 0
    store.put("v1", VideoMetadata(title="One", duration_s=12.5))
    store.put("v2", VideoMetadata(channel="Two"))
    store.put("v1", VideoMetadata(title="Uno"))
    assert store.get("v1") == VideoMetadata(title="Uno")
    assert store.get("v2") == VideoMetadata(channel="Two")
    assert len(store) == 2
    reopened = open_store()
    assert reopened.get("v1") == VideoMetadata(title="Uno")  # durable
    assert len(reopened) == 2


def test_every_put_changes_the_version(open_store: Factory) -> None:
    store = open_store()
    versions = [store.version]
    for title in ("a", "b", "b"):
        store.put("v", VideoMetadata(title=title))
        versions.append(store.version)
    assert len(set(versions)) == len(versions)


def test_ids_with_any_characters(open_store: Factory) -> None:
    store = open_store()
    for video_id in ("a b", "ü/ñ", "x" * 128, "{tag}"):
        store.put(video_id, VideoMetadata(title=video_id))
    for video_id in ("a b", "ü/ñ", "x" * 128, "{tag}"):
        assert open_store().get(video_id) == VideoMetadata(title=video_id)


def test_the_id_version_is_a_video_like_any_other(open_store: Factory) -> None:
    store = open_store()
    store.put("version", VideoMetadata(title="v"))
    assert open_store().get("version") == VideoMetadata(title="v")
    assert len(open_store()) == 1


def test_a_put_on_one_replica_is_seen_by_another_within_its_refresh(
    open_replica: Factory,
) -> None:
    writer, reader = open_replica(), open_replica()
    assert reader.get("v") is None  # now cached as absent
    assert reader.get("w") is None
    before = reader.version
    writer.put("v", VideoMetadata(title="new"))
    eventually(lambda: reader.get("v") == VideoMetadata(title="new"))
    assert reader.version != before  # a cached top-k answer knows to join again
    seen = reader.version
    writer.put("v", VideoMetadata(title="replaced"))
    eventually(lambda: reader.get("v") == VideoMetadata(title="replaced"))
    assert reader.version not in (before, seen)
    assert len(reader) == 1


class _PutDuringRead:
    """A client whose next ``hget`` returns what it read only after ``meanwhile()`` ran: a
    reader thread slowed between reading Redis and caching what it read."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.meanwhile: Callable[[], object] | None = None

    def hget(self, key: str, field: str) -> Any:
        value = self.client.hget(key, field)
        meanwhile, self.meanwhile = self.meanwhile, None
        if meanwhile is not None:
            meanwhile()
        return value

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_a_read_overtaken_by_another_replicas_put_is_not_cached(redis_db: redis.Redis) -> None:
    writer = RedisMetadataStore(redis_db, refresh=0)
    slowed = _PutDuringRead(redis_db)
    reader = RedisMetadataStore(slowed, refresh=0)  # checks the version on every call
    writer.put("v", VideoMetadata(title="old"))
    reader.get("other")  # the reader has seen the counter once

    def replace_and_notice() -> None:
        writer.put("v", VideoMetadata(title="new"))
        reader.version  # noqa: B018  (another thread of the reader sees the change)

    slowed.meanwhile = replace_and_notice
    assert reader.get("v") == VideoMetadata(title="old")  # read before the put
    assert reader.get("v") == VideoMetadata(title="new")  # but not kept


def test_redis_put_failures_raise_and_reads_degrade_to_none(redis_server: RedisServer) -> None:
    client = redis.Redis(
        host="127.0.0.1", port=redis_server.port, socket_timeout=0.3, retry=Retry(NoBackoff(), 0)
    )
    store = RedisMetadataStore(client, refresh=0)
    redis_server.pause()
    try:
        with pytest.raises(StorageFailure, match="cannot write video metadata"):
            store.put("v", VideoMetadata(title="t"))
        assert store.get("v") is None
        assert len(store) == 0
    finally:
        redis_server.resume()
        client.close()
