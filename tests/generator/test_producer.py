"""The generator's Kafka target against a real broker: every event lands, keyed by its video
id, in the partition Kafka's murmur2 gives, stamped with the time it was produced."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, Consumer, TopicPartition

from rankstream.devservices.kafka import KafkaBroker
from rankstream.engine.partition import partition_of
from rankstream.errors import ConfigError
from rankstream.generator.producer import KafkaTarget, ProduceReport, produce
from rankstream.generator.sender import send_or_produce


def read_all(broker: KafkaBroker, topic: str, partitions: int, count: int) -> list[Any]:
    """Every message of ``topic`` (expects ``count``), read by direct assignment."""
    consumer = Consumer(
        {"bootstrap.servers": broker.bootstrap, "group.id": "unused", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    messages: list[Any] = []
    deadline = time.monotonic() + 30
    try:
        while len(messages) < count and time.monotonic() < deadline:
            messages += [m for m in consumer.consume(10_000, 0.5) if m.error() is None]
        messages += [m for m in consumer.consume(10_000, 0.5) if m.error() is None]  # no more
    finally:
        consumer.close()
    return messages


def test_every_event_lands_keyed_in_its_murmur2_partition(
    kafka_broker: KafkaBroker, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic(4)
    before = int(time.time() * 1000)
    report = produce(
        f"kafka://{kafka_broker.bootstrap}/{topic}",
        rate=20_000,
        duration=0.5,
        videos=500,
        seed=3,
        malformed_share=0.05,
    )
    after = int(time.time() * 1000)
    assert isinstance(report, ProduceReport)
    assert (report.produced, report.failed, report.errors) == (10_000, 0, [])
    assert 0 < report.malformed < report.produced
    messages = read_all(kafka_broker, topic, 4, report.produced)
    assert len(messages) == report.produced
    valid = 0
    for message in messages:
        key = message.key()
        assert key, "every message is keyed, malformed ones too"
        assert message.partition() == partition_of(key.decode(), 4)
        kind, stamp = message.timestamp()
        assert kind == TIMESTAMP_CREATE_TIME
        assert before <= stamp <= after
        event = msgspec.json.decode(message.value())
        if isinstance(event, dict) and event.get("video_id") == key.decode():
            valid += 1
    assert valid >= report.produced - report.malformed


def test_send_produces_to_kafka_targets_and_refuses_missing_topics(
    kafka_broker: KafkaBroker, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic(2)
    report = send_or_produce(
        f"kafka://{kafka_broker.bootstrap}/{topic}", 2000, 0.5, 100, 1, batch_size=100
    )
    assert isinstance(report, ProduceReport)
    assert report.produced == 1000
    assert "produced 1,000 events" in report.summary()
    with pytest.raises(ConfigError, match="not found"):
        produce(f"kafka://{kafka_broker.bootstrap}/no-such-topic", 10, 1, 10, 1)


def test_targets_are_parsed() -> None:
    target = KafkaTarget.parse("kafka://h1:9092,h2:9092/video_views")
    assert (target.bootstrap, target.topic) == ("h1:9092,h2:9092", "video_views")
    assert str(target) == "kafka://h1:9092,h2:9092/video_views"
    for bad in ("kafka://h:1", "kafka:///t", "http://h:1/t", "kafka://h:1/a/b"):
        with pytest.raises(ConfigError, match="kafka://host:port/topic"):
            KafkaTarget.parse(bad)
