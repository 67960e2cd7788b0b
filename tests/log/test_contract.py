"""The EventLog contract, run over every implementation.

Where logs legitimately differ (``EventLog.atomic``, ``EventLog.keeps_refusals``: see
``rankstream.log.protocol``), a test asserts what each capability promises; no test is
skipped for an implementation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import confluent_kafka
import msgspec
import pytest

from rankstream.devservices.kafka import KafkaBroker
from rankstream.engine.measure import Measure
from rankstream.engine.partition import partition_of
from rankstream.engine.wire import EventDecoder
from rankstream.errors import StorageFailure
from rankstream.log import (
    DeadLetter,
    EventLog,
    GroupRecord,
    LoggedBatch,
    LogPosition,
    SqliteEventLog,
    encode_events,
)
from rankstream.log.kafka import KafkaEventLog

Factory = Callable[[], EventLog]  # a log over the same storage every call
DECODER = EventDecoder(Measure())
KAFKA_PARTITIONS = 3


def sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    logs: list[EventLog] = []

    def open_log() -> EventLog:
        logs.append(SqliteEventLog(tmp_path / "log.sqlite3", "NORMAL"))
        return logs[-1]

    yield open_log
    for log in logs:
        log.close()


def kafka(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    """A fresh topic of ``KAFKA_PARTITIONS`` partitions on the session's broker."""
    broker: KafkaBroker = request.getfixturevalue("kafka_broker")
    topic: str = request.getfixturevalue("kafka_topic")(KAFKA_PARTITIONS)
    logs: list[EventLog] = []

    def open_log() -> EventLog:
        logs.append(
            KafkaEventLog(broker.bootstrap, topic, delivery_timeout_ms=10_000, request_timeout=5)
        )
        return logs[-1]

    yield open_log
    for log in logs:
        log.close()


IMPLEMENTATIONS = {"sqlite": sqlite, "kafka": kafka}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def open_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    yield from IMPLEMENTATIONS[request.param](request, tmp_path)


@dataclass(frozen=True)
class Logged:
    """One event as read back: where it sits and what it carries."""

    partition: int
    event_id: str
    video_id: str
    wall_time: int


def record(wall: int, *videos: str, duplicates: int = 0) -> GroupRecord:
    """A record of one event per video; each event's id is ``<wall>:<index>``."""
    raws = [
        msgspec.json.encode({"video_id": v, "ts": wall - 1, "event_id": f"{wall}:{i}"})
        for i, v in enumerate(videos)
    ]
    return GroupRecord(wall, len(raws), duplicates, 0, encode_events(raws))


def event_ids(rec: GroupRecord) -> list[str]:
    return [f"{rec.wall_time}:{i}" for i in range(rec.events)]


def append(log: EventLog, rec: GroupRecord) -> LogPosition | None:
    with log.transaction():
        return log.append(rec)


def events_of(batches: Iterator[LoggedBatch]) -> list[Logged]:
    """Every event of ``batches``, checking what holds for any batch of any log: one
    partition and wall time each, offsets increasing within a partition, a raw JSON per
    event."""
    events: list[Logged] = []
    after: dict[int, int] = {}
    for b in batches:
        assert b.offset < b.next_offset
        assert b.offset >= after.get(b.partition, 0)
        after[b.partition] = b.next_offset
        assert len(b.raw) == len(b.batch)
        ids = b.batch.event_ids or []
        for video, event_id in zip(b.batch.video_ids, ids, strict=True):
            assert event_id is not None
            events.append(Logged(b.partition, event_id, video, b.wall_time))
    return events


def check_logged(events: list[Logged], appended: list[GroupRecord]) -> None:
    """``events`` are exactly the events of ``appended``, once each, with their record's
    wall time, in append order within each partition, every video in one partition."""
    order = {eid: n for n, eid in enumerate(e for rec in appended for e in event_ids(rec))}
    walls = {eid: rec.wall_time for rec in appended for eid in event_ids(rec)}
    assert sorted(e.event_id for e in events) == sorted(order)
    assert all(e.wall_time == walls[e.event_id] for e in events)
    for partition in {e.partition for e in events}:
        ranks = [order[e.event_id] for e in events if e.partition == partition]
        assert ranks == sorted(ranks)
    partitions_of_video: dict[str, set[int]] = {}
    for e in events:
        partitions_of_video.setdefault(e.video_id, set()).add(e.partition)
    assert all(len(p) == 1 for p in partitions_of_video.values())


VIDEOS = [f"v{i}" for i in range(8)]  # spread over every partition of a Kafka topic


def test_appended_events_read_back_once_in_order_from_any_position(open_log: Factory) -> None:
    log = open_log()
    start = log.end()
    records = [record(1_000 + i, *VIDEOS[i:], "w") for i in range(4)]
    positions = [append(log, rec) for rec in records]
    check_logged(events_of(log.read(start, DECODER)), records)
    for i, position in enumerate(positions):  # the position after record i
        assert position is not None
        check_logged(events_of(open_log().read(position, DECODER)), records[i + 1 :])
    assert log.end() == positions[-1]
    assert list(log.read(log.end(), DECODER)) == []


def test_batch_positions_resume_a_read_where_it_stopped(open_log: Factory) -> None:
    """A reader that applied some batches resumes at ``advanced(partition, next_offset)``
    (recovery's rule) and sees every other event exactly once."""
    log = open_log()
    start = log.end()
    records = [record(2_000 + i, *VIDEOS) for i in range(3)]
    for rec in records:
        append(log, rec)
    first_read = list(log.read(start, DECODER))
    position = start
    for b in first_read[: len(first_read) // 2]:
        position = position.advanced(b.partition, b.next_offset)
    rest = events_of(log.read(position, DECODER))
    assert sorted(events_of(iter(first_read[: len(first_read) // 2])) + rest, key=str) == sorted(
        events_of(iter(first_read)), key=str
    )


def test_refusal_counts_and_record_boundaries_by_capability(open_log: Factory) -> None:
    log = open_log()
    start = log.end()
    records = [record(1_000 + i, f"v{i}", "w", duplicates=i) for i in range(3)]
    for rec in records:
        append(log, rec)
    read = list(log.read(start, DECODER))
    if log.keeps_refusals:  # one batch per record, with its counts
        assert [r.batch.video_ids for r in read] == [["v0", "w"], ["v1", "w"], ["v2", "w"]]
        assert [r.wall_time for r in read] == [1_000, 1_001, 1_002]
        assert [r.duplicates for r in read] == [0, 1, 2]
    else:  # events only: the consumers count duplicates themselves
        assert all((r.duplicates, r.rejected, r.over_capacity) == (0, 0, 0) for r in read)
    check_logged(events_of(iter(read)), records)


def test_a_failed_transaction_keeps_nothing_only_if_the_log_is_atomic(open_log: Factory) -> None:
    log = open_log()
    start = log.end()

    def fail_mid_group() -> None:
        with log.transaction():
            log.append(record(1_000, "lost"))
            raise RuntimeError("the writer failed mid-group")

    with pytest.raises(RuntimeError):
        fail_mid_group()
    append(log, record(2_000, "kept"))
    videos = sorted(v for r in log.read(start, DECODER) for v in r.batch.video_ids)
    if log.atomic:
        assert videos == ["kept"]
    else:  # the append was acknowledged before the block failed: it stays
        assert videos == ["kept", "lost"]


def test_a_record_without_payload_keeps_only_its_dead_letters(open_log: Factory) -> None:
    log = open_log()
    letter = DeadLetter(1_000, "timestamp", "timestamp: too new", '{"video_id":"x"}')
    start = log.end()
    assert append(log, GroupRecord(1_000, 0, 0, 1, None, [letter])) is None
    assert list(log.read(start, DECODER)) == []
    assert log.end() == start
    letters, totals = open_log().dead_letters()
    if log.keeps_refusals:
        assert letters == [letter]
        assert totals == {"timestamp": 1}
    else:  # kept in memory by whoever screened them
        assert (letters, totals) == ([], {})


def test_reclaim_never_drops_records_at_or_after_the_position(open_log: Factory) -> None:
    log = open_log()
    start = log.end()
    records = [record(1_000 + i, *VIDEOS) for i in range(4)]
    positions = [append(log, rec) for rec in records]
    middle = positions[1]
    assert middle is not None
    log.reclaim(middle)
    kept = events_of(log.read(start, DECODER))
    # a log may keep more (a broker's retention), never less
    assert {e.event_id for e in kept} >= {e for rec in records[2:] for e in event_ids(rec)}
    assert log.end() == positions[-1]  # offsets are never reused


def test_probe_succeeds_on_a_writable_log_and_fails_on_a_closed_one(open_log: Factory) -> None:
    log = open_log()
    log.probe(1_000)
    assert log.size_bytes() >= 0
    log.close()
    with pytest.raises(StorageFailure):
        log.probe(2_000)
    log.close()  # idempotent


# --- Kafka only: what travels on the wire, and the broker's failures ---------------------


@pytest.fixture
def kafka_log(
    kafka_broker: KafkaBroker, kafka_topic: Callable[..., str]
) -> Iterator[KafkaEventLog]:
    log = KafkaEventLog(
        kafka_broker.bootstrap, kafka_topic(KAFKA_PARTITIONS), delivery_timeout_ms=5_000
    )
    yield log
    log.close()


def test_kafka_messages_are_events_keyed_by_video_at_the_wall_time(
    kafka_broker: KafkaBroker, kafka_log: KafkaEventLog
) -> None:
    rec = record(1_700_000_000_000, *VIDEOS)
    append(kafka_log, rec)
    consumer = confluent_kafka.Consumer(
        {"bootstrap.servers": kafka_broker.bootstrap, "group.id": "inspect"}
    )
    try:
        consumer.assign([confluent_kafka.TopicPartition(kafka_log.topic, p, 0) for p in range(3)])
        messages = consumer.consume(len(VIDEOS), 10)
    finally:
        consumer.close()
    assert len(messages) == len(VIDEOS)
    raws = {msgspec.json.decode(m.value() or b"")["video_id"]: m for m in messages}
    for video, message in raws.items():
        assert message.key() == video.encode()
        assert message.timestamp()[1] == rec.wall_time
        assert message.partition() == partition_of(video, KAFKA_PARTITIONS)  # the workers'


def test_kafka_read_groups_equal_timestamps_and_skips_invalid_messages(
    kafka_broker: KafkaBroker, kafka_log: KafkaEventLog
) -> None:
    """Two appends at one wall time are one run (the workers' rule); a message that is no
    event (written by another producer) is skipped, its offset still covered."""
    start = kafka_log.end()
    partition = partition_of("v0", KAFKA_PARTITIONS)
    append(kafka_log, record(5_000, "v0"))
    producer = confluent_kafka.Producer({"bootstrap.servers": kafka_broker.bootstrap})
    producer.produce(kafka_log.topic, b"not json", b"v0", partition=partition, timestamp=5_000)
    assert producer.flush(10) == 0
    append(kafka_log, GroupRecord(5_000, 1, 0, 0, encode_events([b'{"video_id":"v0","ts":1}'])))
    append(kafka_log, record(6_000, "v0"))
    read = [b for b in kafka_log.read(start, DECODER) if b.partition == partition]
    assert [(b.offset, b.next_offset, b.wall_time, len(b.batch)) for b in read] == [
        (0, 3, 5_000, 2),
        (3, 4, 6_000, 1),
    ]


def test_kafka_delivery_failures_raise_with_the_brokers_reason(
    kafka_broker: KafkaBroker, kafka_topic: Callable[..., str]
) -> None:
    """The client lets a 1.1 MB event through; the broker (1 MB per message) refuses it."""
    log = KafkaEventLog(
        kafka_broker.bootstrap,
        kafka_topic(1),
        delivery_timeout_ms=5_000,
        producer_config={"message.max.bytes": 2_000_000, "compression.type": "none"},
    )
    huge = msgspec.json.encode({"video_id": "v", "ts": 1, "pad": "x" * 1_100_000})
    try:
        with pytest.raises(StorageFailure, match=r"did not acknowledge 1 of 1 .*too large"):
            append(log, GroupRecord(2, 1, 0, 0, encode_events([huge])))
        assert append(log, record(3, "v")) is not None  # works again
        assert [b.batch.video_ids for b in log.read(LogPosition(), DECODER)] == [["v"]]
    finally:
        log.close()


def test_kafka_probe_fails_without_the_topic_or_an_answering_broker(
    kafka_broker: KafkaBroker, kafka_log: KafkaEventLog
) -> None:
    missing = KafkaEventLog(kafka_broker.bootstrap, "no-such-topic", request_timeout=2)
    try:
        with pytest.raises(StorageFailure, match="not available"):
            missing.probe(1)
    finally:
        missing.close()
    kafka_log.request_timeout = 1
    kafka_log.probe(1)
    kafka_broker.pause()
    try:
        with pytest.raises(StorageFailure, match="does not answer"):
            kafka_log.probe(2)
    finally:
        kafka_broker.resume()
    kafka_log.probe(3)
