"""The MetadataStore contract, run over every implementation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rankstream.store import MetadataStore, SqliteMetadataStore, VideoMetadata

Factory = Callable[[], MetadataStore]  # a store over the same storage every call


def sqlite(tmp_path: Path) -> Iterator[Factory]:
    stores: list[MetadataStore] = []

    def open_store() -> MetadataStore:
        stores.append(SqliteMetadataStore(tmp_path / "metadata.sqlite3"))
        return stores[-1]

    yield open_store
    for store in stores:
        store.close()


IMPLEMENTATIONS = {"sqlite": sqlite}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    yield from IMPLEMENTATIONS[request.param](tmp_path)


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
