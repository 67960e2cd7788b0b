"""The IdempotencyStore contract, run over every implementation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rankstream.idempotency import IdempotencyStore, SqliteIdempotencyStore
from rankstream.log import SqliteEventLog

Factory = Callable[[], IdempotencyStore]  # a store over the same storage every call


def sqlite(tmp_path: Path) -> Iterator[Factory]:
    logs: list[SqliteEventLog] = []

    def open_store() -> IdempotencyStore:
        log = SqliteEventLog(tmp_path / "log.sqlite3", "NORMAL")
        logs.append(log)
        return SqliteIdempotencyStore(log.database)

    yield open_store
    for log in logs:
        log.close()


IMPLEMENTATIONS = {"sqlite": sqlite}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    yield from IMPLEMENTATIONS[request.param](tmp_path)


def test_remembered_answers_come_back_and_unknown_keys_are_absent(open_store: Factory) -> None:
    store = open_store()
    store.remember([("a", b'{"accepted":1}'), ("b", b"two")], at=1_000)
    assert store.answers_for(["a", "b", "c"]) == {"a": b'{"accepted":1}', "b": b"two"}
    assert store.answers_for([]) == {}
    assert open_store().answers_for(["a"]) == {"a": b'{"accepted":1}'}  # durable


def test_a_key_keeps_its_first_answer(open_store: Factory) -> None:
    store = open_store()
    store.remember([("a", b"first")], at=1_000)
    store.remember([("a", b"second")], at=2_000)
    assert store.answers_for(["a"]) == {"a": b"first"}


def test_expire_forgets_keys_created_before_the_cut(open_store: Factory) -> None:
    store = open_store()
    store.remember([("old", b"1")], at=1_000)
    store.remember([("new", b"2")], at=5_000)
    store.expire(before=5_000)
    assert store.answers_for(["old", "new"]) == {"new": b"2"}


def test_many_keys_at_once(open_store: Factory) -> None:
    store = open_store()
    answers = [(f"key-{i}", str(i).encode()) for i in range(1_200)]
    store.remember(answers, at=1_000)
    assert store.answers_for([key for key, _ in answers]) == dict(answers)
