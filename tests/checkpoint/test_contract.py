"""The CheckpointStore contract, run over every implementation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from rankstream.checkpoint import Checkpoint, CheckpointStore, DirectoryCheckpointStore
from rankstream.checkpoint.s3 import S3CheckpointStore
from rankstream.devservices.s3 import S3Server

Factory = Callable[[int], CheckpointStore]  # keep -> a store (the same storage every call)


def directory(request: pytest.FixtureRequest, tmp_path: Path) -> Factory:
    return lambda keep: DirectoryCheckpointStore(tmp_path / "checkpoints", keep=keep)


def s3(request: pytest.FixtureRequest, tmp_path: Path) -> Factory:
    """A fresh bucket on the session's moto server, under a prefix (so keys have folders)."""
    server: S3Server = request.getfixturevalue("s3_server")
    bucket: str = request.getfixturevalue("s3_bucket")
    return lambda keep: S3CheckpointStore(server.client(), bucket, "rankstream/ckpt", keep=keep)


IMPLEMENTATIONS = {"directory": directory, "s3": s3}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Factory:
    return IMPLEMENTATIONS[request.param](request, tmp_path)


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


def test_partitions_with_a_common_prefix_stay_apart(open_store: Factory) -> None:
    store = open_store(2)
    store.save(Checkpoint(1, 3, b"one"))
    store.save(Checkpoint(10, 4, b"ten"))
    assert store.offsets(1) == [3]
    assert store.offsets(10) == [4]


def test_s3_store_without_prefix_and_from_url(s3_server: S3Server, s3_bucket: str) -> None:
    bare = S3CheckpointStore(s3_server.client(), s3_bucket, keep=1)
    bare.save(Checkpoint(0, 7, b"bare"))
    prefixed = S3CheckpointStore(s3_server.client(), s3_bucket, "/a/b/", keep=1)
    prefixed.save(Checkpoint(0, 9, b"prefixed"))
    assert bare.offsets(0) == [7]  # neither sees the other's folder
    assert [c.data for c in prefixed.newest_first(0)] == [b"prefixed"]


def test_a_failed_s3_put_raises_and_keeps_what_was_held(
    s3_server: S3Server, s3_bucket: str
) -> None:
    store = S3CheckpointStore(s3_server.client(), s3_bucket, "ckpt", keep=2)
    store.save(Checkpoint(0, 1, b"one"))
    store.save(Checkpoint(0, 2, b"two"))
    s3_server.deny_requests()
    try:
        with pytest.raises(ClientError, match="InvalidAccessKeyId"):
            store.save(Checkpoint(0, 3, b"three"))
    finally:
        s3_server.allow_requests()
    assert store.offsets(0) == [1, 2]
    assert [c.data for c in store.newest_first(0)] == [b"two", b"one"]
    store.save(Checkpoint(0, 4, b"four"))  # works again
    assert store.offsets(0) == [2, 4]


@pytest.mark.parametrize("after", [1, 2], ids=["listing-fails", "delete-fails"])
def test_an_s3_save_whose_put_succeeded_does_not_raise(
    s3_server: S3Server, s3_bucket: str, after: int
) -> None:
    """Only deleting older checkpoints failed: the save succeeded; the next one prunes."""
    store = S3CheckpointStore(s3_server.client(), s3_bucket, "ckpt", keep=2)
    store.save(Checkpoint(0, 1, b"one"))
    store.save(Checkpoint(0, 2, b"two"))
    s3_server.deny_requests(after=after)  # the PUT passes, then listing or deleting fails
    try:
        store.save(Checkpoint(0, 3, b"three"))
    finally:
        s3_server.allow_requests()
    assert store.offsets(0) == [1, 2, 3]
    store.save(Checkpoint(0, 4, b"four"))
    assert store.offsets(0) == [3, 4]


def test_directory_store_reads_the_earlier_single_file_layout(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / f"ckpt-{41:020d}.bin").write_bytes(b"old")  # covered the log through record 41
    store = DirectoryCheckpointStore(folder, keep=1)
    assert [(c.offset, c.data) for c in store.newest_first(0)] == [(42, b"old")]
    store.save(Checkpoint(0, 50, b"new"))
    assert store.offsets(0) == [50]  # the old file went once a newer one was kept
