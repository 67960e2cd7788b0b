"""Snapshots: the typed state, its partition tag, and snapshots of the previous format."""

from __future__ import annotations

import zlib
from pathlib import Path

import msgspec
import pytest

from rankstream.engine import EngineConfig, EngineState, EventBatch, TopKEngine, ViewEvent
from rankstream.engine.snapshot import VERSION, decode, encode
from rankstream.engine.windows import DAY, HOUR, MINUTE
from rankstream.errors import SnapshotError

T0 = 1_795_341_600_000  # 2026-11-22T10:00:00Z
WINDOWS = ("1h", "24h", "7d", "30d", "hour", "day", "month", "all")
V1_SNAPSHOT = Path(__file__).parent / "data" / "snapshot-v1.bin"


def v1_recipe() -> TopKEngine:
    """The engine whose snapshot is ``data/snapshot-v1.bin``: written by this recipe with
    the release before typed states (commit 42fceae, snapshot format version 1). Tables,
    scopes, a late event, de-dup memory, a duplicate, a too-new event and a tick."""
    engine = TopKEngine()
    engine.ingest(
        EventBatch.from_events(
            [
                ViewEvent("a", T0 - 2 * DAY, "music", "us", "e1"),
                ViewEvent("b", T0 - 40 * DAY, "gaming"),
                ViewEvent("c", T0 - 5 * MINUTE, None, "jp", "e2"),
                ViewEvent("é😀", T0 - HOUR, "music", "jp"),
                ViewEvent("a", T0, "music", "us", "e3"),
            ]
        ),
        T0,
    )
    engine.ingest(
        EventBatch.from_events(
            [
                ViewEvent("a", T0 + MINUTE, event_id="e1"),  # duplicate
                ViewEvent("d", T0 + MINUTE, "gaming", "us", quantity=3),
                ViewEvent("b", T0 + 10 * MINUTE),  # too new
            ]
        ),
        T0 + 2 * MINUTE,
    )
    engine.tick(T0 + 3 * MINUTE)
    return engine


def as_v1(state: EngineState) -> bytes:
    """``state`` in the version-1 layout: an untyped map, no partition, stats as a list."""
    raw = msgspec.to_builtins(state, builtin_types=(bytes,))
    del raw["partition"]
    raw["stats"] = list(raw["stats"].values())
    return wrap(1, msgspec.msgpack.encode(raw))


def wrap(version: int, payload: bytes) -> bytes:
    return b"RSNAP" + bytes([version]) + zlib.crc32(payload).to_bytes(4, "big") + payload


def test_a_version_1_snapshot_of_the_previous_release_restores_exactly() -> None:
    data = V1_SNAPSHOT.read_bytes()
    assert data[5] == 1
    restored = TopKEngine.restore(data)
    rebuilt = v1_recipe()
    assert restored.partition == 0
    assert restored.stats == rebuilt.stats
    assert restored.stats.duplicates == 1
    assert restored.stats.late_dropped == 1
    assert restored.snapshot() == rebuilt.snapshot()  # now written as version 2
    for window in WINDOWS:
        for category, region in ((None, None), ("music", None), (None, "jp"), ("music", "us")):
            expected = rebuilt.top_k(window, 10, category=category, region=region)
            assert restored.top_k(window, 10, category=category, region=region) == expected
    for engine in (restored, rebuilt):  # both continue alike, de-dup memory included
        engine.ingest(
            EventBatch.from_events([ViewEvent("c", T0 + 4 * MINUTE, "x", "jp", "e2")]),
            T0 + 4 * MINUTE,
        )
        engine.tick(T0 + 2 * HOUR)
    assert restored.snapshot() == rebuilt.snapshot()


def test_the_current_format_is_version_2_and_round_trips_the_typed_state() -> None:
    engine = v1_recipe()
    data = engine.snapshot()
    assert (data[:5], data[5], VERSION) == (b"RSNAP", 2, 2)
    state = decode(data)
    assert state == engine.capture()
    assert encode(state) == data
    assert TopKEngine.from_state(state).snapshot() == data


def test_version_1_snapshots_with_the_older_shorter_statistics_still_restore() -> None:
    engine = TopKEngine()
    engine.ingest(EventBatch.from_events([ViewEvent("a", T0), ViewEvent("a", T0 + HOUR)]), T0)
    raw = msgspec.to_builtins(engine.capture(), builtin_types=(bytes,))
    del raw["partition"]
    raw["stats"] = list(raw["stats"].values())[:4]  # before rejected_over_capacity existed
    assert raw["stats"] == [1, 0, 1, 0]
    restored = TopKEngine.restore(wrap(1, msgspec.msgpack.encode(raw)))
    assert restored.stats == engine.stats
    assert restored.snapshot() == engine.snapshot()


def test_the_partition_tag_is_kept_by_capture_snapshot_and_restore() -> None:
    engine = TopKEngine(partition=5)
    engine.ingest(EventBatch.from_events([ViewEvent("a", T0)]), T0)
    assert engine.partition == 5
    assert engine.capture().partition == 5
    assert TopKEngine.restore(engine.snapshot()).partition == 5
    # A version-1 snapshot predates partitions: it held the whole log, partition 0.
    assert TopKEngine.restore(as_v1(engine.capture())).partition == 0
    with pytest.raises(ValueError, match="partition must be a non-negative integer"):
        TopKEngine(partition=-1)


def test_split_tags_each_part_with_its_partition() -> None:
    engine = TopKEngine()
    engine.ingest(EventBatch.from_events([ViewEvent(f"v{i}", T0) for i in range(20)]), T0)
    parts = engine.split(3)
    assert [p.partition for p in parts] == [0, 1, 2]
    assert [TopKEngine.restore(p.snapshot()).partition for p in parts] == [0, 1, 2]


def test_states_that_are_not_engine_states_are_refused() -> None:
    engine = v1_recipe()
    raw = msgspec.to_builtins(engine.capture(), builtin_types=(bytes,))
    raw["now"] = "yesterday"
    with pytest.raises(SnapshotError, match="not an engine state"):
        TopKEngine.restore(wrap(2, msgspec.msgpack.encode(raw)))
    with pytest.raises(SnapshotError, match="not an engine state"):
        TopKEngine.restore(wrap(2, msgspec.msgpack.encode([1, 2, 3])))
    with pytest.raises(SnapshotError, match="not a map"):
        TopKEngine.restore(wrap(1, msgspec.msgpack.encode([1, 2, 3])))
    raw["now"] = T0
    raw["stats"] = list(raw["stats"].values())  # version 1 held a list...
    del raw["videos"]  # ...but never lacked a table
    with pytest.raises(SnapshotError, match="inconsistent"):
        TopKEngine.restore(wrap(1, msgspec.msgpack.encode(raw)))
    with pytest.raises(SnapshotError, match="version 3 is not supported"):
        TopKEngine.restore(wrap(3, b""))


def test_a_state_of_other_windows_is_refused() -> None:
    other = EngineConfig(windows=(EngineConfig().windows[-1],))
    with pytest.raises(SnapshotError, match="windows differ"):
        TopKEngine.restore(v1_recipe().snapshot(), other)
    with pytest.raises(SnapshotError, match="windows differ"):
        TopKEngine.restore(V1_SNAPSHOT.read_bytes(), other)
