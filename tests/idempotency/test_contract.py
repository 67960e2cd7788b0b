"""The IdempotencyStore contract, run over every implementation."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from rankstream.devservices.redis import RedisCluster, RedisServer
from rankstream.errors import StorageFailure
from rankstream.idempotency import IdempotencyStore, SqliteIdempotencyStore
from rankstream.idempotency.redis import PREFIX, RedisIdempotencyStore
from rankstream.log import SqliteEventLog

Factory = Callable[[], IdempotencyStore]  # a store over the same storage every call
TTL = 3_600_000  # the retention every store is built with (ms); callers expire(now - TTL)
NOW = int(time.time() * 1000)  # keys created "now" live an hour: no test sees them expire


def sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    logs: list[SqliteEventLog] = []

    def open_store() -> IdempotencyStore:
        log = SqliteEventLog(tmp_path / "log.sqlite3", "NORMAL")
        logs.append(log)
        return SqliteIdempotencyStore(log.database)

    yield open_store
    for log in logs:
        log.close()


def on_redis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    server: RedisServer = request.getfixturevalue("redis_server")
    server.flush()
    clients = []

    def open_store() -> IdempotencyStore:
        clients.append(server.client())
        return RedisIdempotencyStore(clients[-1], TTL)

    yield open_store
    for client in clients:
        client.close()


def on_redis_cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    cluster: RedisCluster = request.getfixturevalue("redis_cluster")
    cluster.flush()
    client = cluster.client()  # keys of one call land on several masters
    yield lambda: RedisIdempotencyStore(client, TTL)
    client.close()


IMPLEMENTATIONS = {"sqlite": sqlite, "redis": on_redis, "redis-cluster": on_redis_cluster}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    yield from IMPLEMENTATIONS[request.param](request, tmp_path)


def test_remembered_answers_come_back_and_unknown_keys_are_absent(open_store: Factory) -> None:
    store = open_store()
    store.remember([("a", b'{"accepted":1}'), ("b", b"two")], at=NOW)
    assert store.answers_for(["a", "b", "c"]) == {"a": b'{"accepted":1}', "b": b"two"}
    assert store.answers_for([]) == {}
    assert open_store().answers_for(["a"]) == {"a": b'{"accepted":1}'}  # durable


def test_a_key_keeps_its_first_answer(open_store: Factory) -> None:
    store = open_store()
    store.remember([("a", b"first")], at=NOW)
    store.remember([("a", b"second")], at=NOW + 1)
    assert store.answers_for(["a"]) == {"a": b"first"}


def test_expire_keeps_keys_created_at_or_after_the_cut(open_store: Factory) -> None:
    store = open_store()
    store.remember([("old", b"1")], at=NOW - TTL - 1)
    store.remember([("new", b"2")], at=NOW)
    store.expire(before=NOW - TTL)
    got = open_store().answers_for(["old", "new"])
    if store.expires_by_itself:  # stored just now: kept its TTL, whatever its `at`
        assert got == {"old": b"1", "new": b"2"}
    else:  # expire() is how keys go
        assert got == {"new": b"2"}


def test_the_first_answer_wins_within_one_call(open_store: Factory) -> None:
    store = open_store()
    store.remember([("a", b"first"), ("a", b"second")], at=NOW)
    assert store.answers_for(["a"]) == {"a": b"first"}


def test_keys_with_any_characters(open_store: Factory) -> None:
    keys = ["a b", "ü/ñ", "{tag}", "x" * 255, "rs:idem:nested"]
    open_store().remember([(key, key.encode()) for key in keys], at=NOW)
    assert open_store().answers_for(keys) == {key: key.encode() for key in keys}


def test_redis_keys_go_by_themselves_after_the_ttl(redis_db: redis.Redis) -> None:
    store = RedisIdempotencyStore(redis_db, TTL)
    store.remember([("k", b"answer")], at=NOW - 10 * TTL)  # whatever the replica's clock
    assert 0 < redis_db.pttl(PREFIX + "k") <= TTL
    redis_db.pexpire(PREFIX + "k", 50)  # as if TTL had nearly passed
    store.remember([("k", b"again")], at=NOW)  # a retry neither replaces nor extends it
    assert redis_db.pttl(PREFIX + "k") <= 50
    assert store.expire(before=NOW) == 0  # nothing to do
    give_up = time.monotonic() + 5
    while store.answers_for(["k"]):
        assert time.monotonic() < give_up, "the key outlived its TTL"
        time.sleep(0.01)


def test_redis_failures_raise_storage_failure(redis_server: RedisServer) -> None:
    client = redis.Redis(
        host="127.0.0.1",
        port=redis_server.port,
        socket_timeout=0.3,
        retry=Retry(NoBackoff(), retries=0),  # a failure shows at once
    )
    store = RedisIdempotencyStore(client, TTL)
    redis_server.pause()
    try:
        with pytest.raises(StorageFailure, match="cannot store"):
            store.remember([("k", b"v")], at=NOW)
        with pytest.raises(StorageFailure, match="cannot read"):
            store.answers_for(["k"])
    finally:
        redis_server.resume()
        client.close()


def test_many_keys_at_once(open_store: Factory) -> None:
    store = open_store()
    answers = [(f"key-{i}", str(i).encode()) for i in range(1_200)]
    store.remember(answers, at=NOW)
    assert store.answers_for([key for key, _ in answers]) == dict(answers)
