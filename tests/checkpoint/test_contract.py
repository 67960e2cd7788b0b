"""The CheckpointStore contract, run over every implementation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rankstream.checkpoint import Checkpoint, CheckpointStore, DirectoryCheckpointStore

Factory = Callable[[int], CheckpointStore]  # keep -> a store (the same storage every call)


def directory(tmp_path: Path) -> Factory:
    return lambda keep: DirectoryCheckpointStore(tmp_path / "checkpoints", keep=keep)


IMPLEMENTATIONS = {"directory": directory}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Factory:
    return IMPLEMENTATIONS[request.param](tmp_path)


def test_an_empty_store_holds_nothing(open_store: Factory) -> None:
    store = open_store(2)
    assert store.offsets(0) == []
    assert list(store.newest_first(0)) == []


def test_saved_checkpoints_come_back_newest_first_per_partition(open_store: Factory) -> None:
    store = open_store(3)
    for partition, offset in [(0, 5), (1, 7), (0, 9), (0, 12), (1, 8)]:
        store.save(Checkpoint(partition, offset, f"{partition}@{offset}".encode()))
    assert store.offsets(0) == [5, 9, 12]
    assert store.offsets(1) == [7, 8]
    assert [c.offset for c in store.newest_first(0)] == [12, 9, 5]
    newest = next(iter(store.newest_first(1)))
    assert newest == Checkpoint(1, 8, b"1@8")
    assert newest.position.of(1) == 8


def test_only_the_newest_keep_are_kept_and_a_reopened_store_sees_them(open_store: Factory) -> None:
    store = open_store(2)
    for offset in (1, 2, 3, 4):
        store.save(Checkpoint(0, offset, bytes([offset]) * 1000))
    reopened = open_store(2)
    assert reopened.offsets(0) == [3, 4]
    assert [c.data for c in reopened.newest_first(0)] == [b"\x04" * 1000, b"\x03" * 1000]


def test_saving_the_same_offset_again_replaces_it(open_store: Factory) -> None:
    store = open_store(2)
    store.save(Checkpoint(0, 4, b"first"))
    store.save(Checkpoint(0, 4, b"second"))
    assert [c.data for c in store.newest_first(0)] == [b"second"]


def test_reading_is_lazy_so_a_caller_can_stop_at_the_first_good_one(open_store: Factory) -> None:
    store = open_store(3)
    for offset in (1, 2, 3):
        store.save(Checkpoint(0, offset, b"x"))
    checkpoints = store.newest_first(0)
    assert next(iter(checkpoints)).offset == 3  # the others need not have been read


def test_directory_store_reads_the_earlier_single_file_layout(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / f"ckpt-{41:020d}.bin").write_bytes(b"old")  # covered the log through record 41
    store = DirectoryCheckpointStore(folder, keep=1)
    assert [(c.offset, c.data) for c in store.newest_first(0)] == [(42, b"old")]
    store.save(Checkpoint(0, 50, b"new"))
    assert store.offsets(0) == [50]  # the old file went once a newer one was kept
