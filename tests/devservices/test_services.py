"""Smoke tests of the local services the scale-out tests stand on: each one really starts,
answers, and fails in the way its failure switch promises."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis
from botocore.exceptions import ClientError, ReadTimeoutError
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from rankstream.devservices.kafka import KafkaBroker
from rankstream.devservices.redis import RedisCluster, RedisServer
from rankstream.devservices.s3 import S3Server

# Upper bounds so a broken service fails the test instead of hanging it; never asserted on.
PATIENCE = 30.0


def consume(consumer: Consumer, count: int) -> list[Message]:
    """Poll until ``count`` messages arrived (or PATIENCE seconds passed); errors fail."""
    messages: list[Message] = []
    deadline = time.monotonic() + PATIENCE
    while len(messages) < count and time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is None:
            continue
        assert message.error() is None, message.error()
        messages.append(message)
    return messages


def produce(bootstrap: str, topic: str, values: dict[bytes, int], **config: str | int) -> None:
    """Write each value to its partition and wait for every acknowledgement."""
    failures: list[KafkaError] = []

    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            failures.append(error)

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **config})
    for value, partition in values.items():
        producer.produce(topic, value, partition=partition, on_delivery=delivered)
    assert producer.flush(PATIENCE) == 0
    assert failures == []


def test_kafka_round_trip_across_four_partitions(
    kafka_broker: KafkaBroker, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic(4)
    sent = {f"view-{i}".encode(): i % 4 for i in range(400)}
    produce(kafka_broker.bootstrap, topic, sent)

    consumer = Consumer({"bootstrap.servers": kafka_broker.bootstrap, "group.id": "unused"})
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(4)])
        received = consume(consumer, len(sent))
    finally:
        consumer.close()
    got = {message.value(): message.partition() for message in received}
    assert got == sent
    assert len(received) == len(sent)


def test_kafka_consumer_group_gets_every_partition(
    kafka_broker: KafkaBroker, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic(4)
    produce(kafka_broker.bootstrap, topic, {b"a": 0, b"b": 1, b"c": 2, b"d": 3})
    assigned: list[TopicPartition] = []
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_broker.bootstrap,
            "group.id": f"group-{topic}",
            "session.timeout.ms": 6000,  # a join takes about half of it (MACHINE-FACTS)
            "heartbeat.interval.ms": 500,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.subscribe([topic], on_assign=lambda _c, parts: assigned.extend(parts))
        received = consume(consumer, 4)
        consumer.commit(asynchronous=False)
        committed = consumer.committed([TopicPartition(topic, p) for p in range(4)], PATIENCE)
    finally:
        consumer.close()
    assert sorted(p.partition for p in assigned) == [0, 1, 2, 3]
    assert sorted(m.value() or b"" for m in received) == [b"a", b"b", b"c", b"d"]
    assert [p.offset for p in committed] == [1, 1, 1, 1]


def test_a_paused_kafka_broker_times_producers_out_until_resumed(
    kafka_broker: KafkaBroker, kafka_topic: Callable[..., str]
) -> None:
    topic = kafka_topic(1)
    produce(kafka_broker.bootstrap, topic, {b"before": 0})  # connected before the pause
    outcomes: list[KafkaError | None] = []
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap, "message.timeout.ms": 1000})
    kafka_broker.pause()
    try:
        producer.produce(
            topic, b"during", partition=0, on_delivery=lambda e, _m: outcomes.append(e)
        )
        producer.flush(PATIENCE)
    finally:
        kafka_broker.resume()
    assert [e.code() if e else None for e in outcomes] == [KafkaError._MSG_TIMED_OUT]
    produce(kafka_broker.bootstrap, topic, {b"after": 0})

    consumer = Consumer({"bootstrap.servers": kafka_broker.bootstrap, "group.id": "unused"})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        values = [m.value() for m in consume(consumer, 2)]
    finally:
        consumer.close()
    assert values == [b"before", b"after"]


def test_redis_set_get_flush_and_restart(redis_server: RedisServer, redis_db: redis.Redis) -> None:
    redis_db.set("video:1", "42")
    redis_db.zincrby("top:1h", 3, "video:1")
    assert redis_db.get("video:1") == b"42"
    assert redis_db.zrevrange("top:1h", 0, 0, withscores=True) == [(b"video:1", 3.0)]

    redis_server.flush()
    assert redis_db.dbsize() == 0

    redis_db.set("video:2", "7")
    redis_server.restart_empty()
    with redis_server.client() as client:  # same URL, new process, nothing kept
        assert client.get("video:2") is None
        assert client.ping()


def test_redis_cluster_spreads_keys_over_every_master(redis_cluster: RedisCluster) -> None:
    keys = [f"top:{window}:{scope}" for window in ("1h", "24h", "7d") for scope in range(10)]
    with redis_cluster.client() as client:
        for number, key in enumerate(keys):
            client.set(key, number)
        assert [client.get(key) for key in keys] == [str(n).encode() for n in range(len(keys))]
        assert len({client.keyslot(key) for key in keys}) == len(keys)
    per_node = []
    for host, port in redis_cluster.startup_nodes:
        with redis.Redis(host=host, port=port) as node:
            per_node.append(node.dbsize())
    assert all(count > 0 for count in per_node)
    assert sum(per_node) == len(keys)


def test_s3_put_get_list(s3_server: S3Server, s3_bucket: str) -> None:
    s3 = s3_server.client()
    for number in range(3):
        s3.put_object(Bucket=s3_bucket, Key=f"checkpoints/{number:04d}", Body=b"x" * number)
    listing = s3.list_objects_v2(Bucket=s3_bucket, Prefix="checkpoints/")
    assert [item["Key"] for item in listing["Contents"]] == [
        "checkpoints/0000",
        "checkpoints/0001",
        "checkpoints/0002",
    ]
    assert s3.get_object(Bucket=s3_bucket, Key="checkpoints/0002")["Body"].read() == b"xx"


def test_s3_denied_requests_fail_writes_then_recover(s3_server: S3Server, s3_bucket: str) -> None:
    s3 = s3_server.client()
    s3.put_object(Bucket=s3_bucket, Key="checkpoint-1", Body=b"one")
    s3_server.deny_requests(after=1)
    try:
        s3.put_object(Bucket=s3_bucket, Key="checkpoint-2", Body=b"two")  # the one let through
        with pytest.raises(ClientError) as failure:
            s3.put_object(Bucket=s3_bucket, Key="checkpoint-3", Body=b"three")
    finally:
        s3_server.allow_requests()
    assert failure.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    assert failure.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    listing = s3.list_objects_v2(Bucket=s3_bucket)
    assert [item["Key"] for item in listing["Contents"]] == ["checkpoint-1", "checkpoint-2"]


def test_a_paused_s3_server_times_writes_out(s3_server: S3Server, s3_bucket: str) -> None:
    s3 = s3_server.client(read_timeout=1.0)
    s3_server.pause()
    try:
        with pytest.raises(ReadTimeoutError):
            s3.put_object(Bucket=s3_bucket, Key="checkpoint", Body=b"lost")
    finally:
        s3_server.resume()
    s3.put_object(Bucket=s3_bucket, Key="checkpoint", Body=b"kept")
    assert s3.get_object(Bucket=s3_bucket, Key="checkpoint")["Body"].read() == b"kept"
