"""Partitioned engines merge into the exact global ranking."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rankstream.engine import (
    EventBatch,
    TopKEngine,
    ViewEvent,
    merge_top_k,
    partition_of,
    split_batch,
)
from rankstream.engine.partition import murmur2, partitions_of
from tests.budget import examples

T0 = 1_795_341_600_000


# Apache Kafka, clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java,
# testMurmur2: Utils.murmur2 of each key's bytes, as the Java int.
KAFKA_UTILS_TEST = {
    "21": -973932308,
    "foobar": -790332482,
    "a-little-bit-long-string": -985981536,
    "a-little-bit-longer-string": -1486304829,
    "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    "abc": 479470107,
}

# confluentinc/librdkafka, src/rdmurmur2.c, unittest_murmur2(): rd_murmur2 checked against
# java_murmur2_results (the Java client's values, as 32-bit patterns). Its keys at offsets
# +1..+3 test unaligned reads in C; here they are simply the shorter strings.
LIBRDKAFKA_UNITTEST = {
    "kafka": 0xD067CF64,
    "giberish123456789": 0x8F552B0C,
    "1234": 0x9FC97B14,
    "234": 0xE7C009CA,
    "34": 0x873930DA,
    "4": 0x5A4B5CA1,
    "PreAmbleWillBeRemoved,ThePrePartThatIs": 0x78424F1C,
    "reAmbleWillBeRemoved,ThePrePartThatIs": 0x4A62B377,
    "eAmbleWillBeRemoved,ThePrePartThatIs": 0xE0E4E09E,
    "AmbleWillBeRemoved,ThePrePartThatIs": 0x62B8B43F,
    "": 0x106E08D9,
}


@pytest.mark.parametrize(("key", "expected"), KAFKA_UTILS_TEST.items())
def test_murmur2_matches_kafkas_utils_test(key: str, expected: int) -> None:
    assert murmur2(key.encode()) == expected


@pytest.mark.parametrize(("key", "expected"), LIBRDKAFKA_UNITTEST.items())
def test_murmur2_matches_librdkafkas_unit_test(key: str, expected: int) -> None:
    assert murmur2(key.encode()) & 0xFFFFFFFF == expected


@pytest.mark.parametrize("partitions", [1, 3, 6, 7, 12, 64, 1000])
def test_partition_of_is_kafkas_default_partitioner(partitions: int) -> None:
    """toPositive (clear the sign bit, not abs) of murmur2, modulo the partition count."""
    vectors = {**KAFKA_UTILS_TEST, **LIBRDKAFKA_UNITTEST}
    for key, expected in vectors.items():
        assert partition_of(key, partitions) == (expected & 0x7FFFFFFF) % partitions
    # A negative hash: toPositive(-790332482) = 1357151166, where abs would give 790332482.
    assert partition_of("foobar", 1000) == 166


def test_partition_of_is_stable_and_in_range() -> None:
    assert partition_of("video-1", 8) == partition_of("video-1", 8)
    assert {partition_of(f"v{i}", 4) for i in range(100)} == {0, 1, 2, 3}
    for bad in (0, -1):
        with pytest.raises(ValueError, match="partitions must be a positive integer"):
            partition_of("video-1", bad)


@settings(max_examples=examples(100))
@given(st.lists(st.text(min_size=0, max_size=40), max_size=30), st.integers(1, 50))
def test_vectorised_partitions_equal_the_per_id_function(ids: list[str], partitions: int) -> None:
    expected = [partition_of(v, partitions) for v in ids]
    assert partitions_of(ids, partitions).tolist() == expected


@settings(max_examples=examples(60), deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(alphabet="abcé😀", min_size=1, max_size=3),
            st.integers(-3 * 3_600_000, 0),
            st.sampled_from([None, "m", "g"]),
        ),
        min_size=1,
        max_size=60,
    ),
    st.integers(1, 5),
    st.integers(1, 8),
)
def test_merged_partition_rankings_equal_the_single_engine(
    raw: list[tuple[str, int, str | None]], partitions: int, k: int
) -> None:
    events = EventBatch.from_events([ViewEvent(v, T0 + off, c) for v, off, c in raw])
    whole = TopKEngine()
    whole.ingest(events, T0)
    whole.tick(T0)
    parts = [TopKEngine() for _ in range(partitions)]
    for engine, part in zip(parts, split_batch(events, partitions), strict=True):
        if len(part):
            engine.ingest(part, T0)
            engine.tick(T0)  # the same clock everywhere, as a live deployment ticks
    for window in ("1h", "24h", "all"):
        for category in (None, "m"):
            answers = [p.top_k(window, k, category=category) for p in parts]
            assert merge_top_k(answers, k) == whole.top_k(window, k, category=category)


@settings(max_examples=examples(60), deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(alphabet="abcé😀", min_size=1, max_size=3),
            st.integers(-40 * 86_400_000, 0),
            st.sampled_from([None, "m", "g"]),
            st.sampled_from([None, "us", "jp"]),
        ),
        min_size=1,
        max_size=60,
    ),
    st.integers(1, 4),
    st.integers(1, 6),
)
def test_split_state_answers_exactly_and_keeps_counting(
    raw: list[tuple[str, int, str | None, str | None]], partitions: int, k: int
) -> None:
    events = [ViewEvent(v, T0 + off, c, r) for v, off, c, r in raw]
    half = len(events) // 2
    whole = TopKEngine()
    whole.ingest(EventBatch.from_events(events[: half + 1]), T0)
    parts = whole.split(partitions)

    def compare(step: str) -> None:
        for window in ("1h", "24h", "7d", "30d", "hour", "day", "month", "all"):
            for category, region in ((None, None), ("m", None), (None, "us"), ("g", "jp")):
                expected = whole.top_k(window, k, category=category, region=region)
                answers = [p.top_k(window, k, category=category, region=region) for p in parts]
                assert {(a.start, a.end, a.as_of) for a in answers} == {
                    (expected.start, expected.end, expected.as_of)
                }
                assert merge_top_k(answers, k) == expected, (step, window, category, region)

    compare("split")
    later = EventBatch.from_events(events[half + 1 :]) if events[half + 1 :] else None
    if later is not None:
        whole.ingest(later, T0)
        for engine, part in zip(parts, split_batch(later, partitions), strict=True):
            if len(part):
                engine.ingest(part, T0)
    for engine in (whole, *parts):
        engine.tick(T0)
    compare("after more events")
    for moved in (30 * 60_000, 3 * 86_400_000):  # windows slide: left buckets are subtracted
        for engine in (whole, *parts):
            engine.tick(T0 + moved)
        compare(f"after the clock moved {moved} ms")
