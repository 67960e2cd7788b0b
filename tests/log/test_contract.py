"""The EventLog contract, run over every implementation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import pytest

from rankstream.engine.measure import Measure
from rankstream.engine.wire import EventDecoder
from rankstream.errors import StorageFailure
from rankstream.log import (
    DeadLetter,
    EventLog,
    GroupRecord,
    LogPosition,
    SqliteEventLog,
    encode_events,
)

Factory = Callable[[], EventLog]  # a log over the same storage every call
DECODER = EventDecoder(Measure())


def sqlite(tmp_path: Path) -> Iterator[Factory]:
    logs: list[EventLog] = []

    def open_log() -> EventLog:
        logs.append(SqliteEventLog(tmp_path / "log.sqlite3", "NORMAL"))
        return logs[-1]

    yield open_log
    for log in logs:
        log.close()


IMPLEMENTATIONS = {"sqlite": sqlite}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def open_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    yield from IMPLEMENTATIONS[request.param](tmp_path)


def record(wall: int, *videos: str, duplicates: int = 0) -> GroupRecord:
    raws = [msgspec.json.encode({"video_id": v, "ts": wall - 1}) for v in videos]
    return GroupRecord(wall, len(raws), duplicates, 0, encode_events(raws))


def append(log: EventLog, rec: GroupRecord) -> LogPosition | None:
    with log.transaction():
        return log.append(rec)


def test_appended_records_read_back_in_order_from_any_position(open_log: Factory) -> None:
    log = open_log()
    start = log.end()
    positions = [append(log, record(1_000 + i, f"v{i}", "w", duplicates=i)) for i in range(3)]
    assert all(p is not None for p in positions)
    read = list(log.read(start, DECODER))
    assert [r.batch.video_ids for r in read] == [["v0", "w"], ["v1", "w"], ["v2", "w"]]
    assert [r.wall_time for r in read] == [1_000, 1_001, 1_002]
    assert [r.duplicates for r in read] == [0, 1, 2]
    for r, after in zip(read, positions, strict=True):
        assert after == LogPosition({r.partition: r.next_offset})
    second = positions[0]
    assert second is not None
    assert [r.batch.video_ids[0] for r in open_log().read(second, DECODER)] == ["v1", "v2"]
    assert log.end() == positions[-1]


def test_a_failed_transaction_keeps_nothing(open_log: Factory) -> None:
    log = open_log()
    start = log.end()

    def fail_mid_group() -> None:
        with log.transaction():
            log.append(record(1_000, "lost"))
            raise RuntimeError("the writer failed mid-group")

    with pytest.raises(RuntimeError):
        fail_mid_group()
    append(log, record(2_000, "kept"))
    assert [r.batch.video_ids for r in log.read(start, DECODER)] == [["kept"]]


def test_a_record_without_payload_keeps_only_its_dead_letters(open_log: Factory) -> None:
    log = open_log()
    letter = DeadLetter(1_000, "timestamp", "timestamp: too new", '{"video_id":"x"}')
    start = log.end()
    assert append(log, GroupRecord(1_000, 0, 0, 1, None, [letter])) is None
    assert list(log.read(start, DECODER)) == []
    letters, totals = open_log().dead_letters()
    assert letters == [letter]
    assert totals == {"timestamp": 1}


def test_reclaim_never_drops_records_at_or_after_the_position(open_log: Factory) -> None:
    log = open_log()
    start = log.end()
    positions = [append(log, record(1_000 + i, f"v{i}")) for i in range(4)]
    middle = positions[1]
    assert middle is not None
    log.reclaim(middle)
    kept = [r.batch.video_ids[0] for r in log.read(start, DECODER)]
    assert kept[-2:] == ["v2", "v3"]  # a log may keep more (a broker's retention), never less
    assert log.end() == positions[-1]  # offsets are never reused


def test_probe_succeeds_on_a_writable_log_and_fails_on_a_closed_one(open_log: Factory) -> None:
    log = open_log()
    log.probe(1_000)
    assert log.size_bytes() >= 0
    log.close()
    with pytest.raises(StorageFailure):
        log.probe(2_000)
