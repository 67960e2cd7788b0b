"""Publishing partitions' rankings to a real Redis and reading them merged back."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from rankstream.engine import EventBatch, TopKEngine, ViewEvent
from rankstream.engine.partition import split_batch
from rankstream.errors import InvalidQuery, RankingUnavailable
from rankstream.serving.layout import ranking_key
from rankstream.serving.redis import RedisRankingSource
from rankstream.worker.publisher import PartitionPublisher, PublishStats, scopes_of, send
from tests.budget import examples

T0 = 1_795_341_600_000  # 2026-11-23T10:00:00Z
MINUTE = 60_000
KINDS = frozenset({"all", "category", "region", "category_region"})


def batch(rows: list[tuple[str, int, str | None, str | None]]) -> EventBatch:
    return EventBatch.from_events([ViewEvent(*row) for row in rows])


def publish(client: Any, engines: list[TopKEngine], publishers: list[PartitionPublisher]) -> None:
    stats = PublishStats()
    for engine, publisher in zip(engines, publishers, strict=True):
        send(client, publisher.writes(engine, None), stats)
        offsets = {"applied": 0, "checkpointed": 0, "end": 0}
        send(client, {publisher.manifest_key: publisher.manifest(engine, offsets, T0, "t")}, stats)


def every_query(engine: TopKEngine) -> list[tuple[str, str | None, str | None]]:
    return [(w.name, c, r) for w in engine.config.windows for c, r in engine.scopes()]


rows = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d", "e", "f", "g"]),
        st.integers(T0 - 40 * 86_400_000, T0),
        st.sampled_from([None, "music", "games"]),
        st.sampled_from([None, "US", "DE"]),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=examples(25), deadline=None)
@given(events=rows, partitions=st.integers(1, 4), k=st.integers(1, 8))
def test_merged_published_rankings_equal_one_engine(
    redis_server: Any, events: list[Any], partitions: int, k: int
) -> None:
    redis_server.flush()
    client = redis.Redis.from_url(redis_server.url)
    whole = TopKEngine()
    whole.ingest(batch(events), T0)
    parts = [TopKEngine() for _ in range(partitions)]
    for part, piece in zip(parts, split_batch(batch(events), partitions), strict=True):
        part.ingest(piece, T0)
    for engine in [whole, *parts]:
        engine.tick(T0 + 1)
    windows = tuple(w.name for w in whole.config.windows)
    publishers = [PartitionPublisher("views", p, windows, 8, KINDS) for p in range(partitions)]
    publish(client, parts, publishers)
    source = RedisRankingSource(client, "views", lambda: partitions, windows, 8)
    for window, category, region in every_query(whole):
        expected = whole.top_k(window, k, category, region)
        got = source.top_k(window, k, category, region)
        assert got.items == expected.items, (window, category, region)
        assert (got.start, got.end) == (expected.start, expected.end)
    client.close()


def test_partitions_crossing_a_minute_boundary_answer_the_bounds_all_hold(
    redis_db: redis.Redis,
) -> None:
    engines = [TopKEngine(), TopKEngine()]
    windows = tuple(w.name for w in engines[0].config.windows)
    publishers = [PartitionPublisher("views", p, windows, 10, KINDS) for p in range(2)]
    engines[0].ingest(batch([("a", T0 - 5_000, None, None)] * 3), T0)
    engines[1].ingest(batch([("b", T0 - 5_000, None, None)] * 2), T0)
    publish(redis_db, engines, publishers)
    source = RedisRankingSource(redis_db, "views", lambda: 2, windows, 10)
    before = source.top_k("1h", 10)

    engines[0].tick(T0 + MINUTE)  # partition 0 moves on a minute, partition 1 not yet
    engines[0].ingest(batch([("a", T0 + MINUTE - 1, None, None)]), T0 + MINUTE)
    publish(redis_db, engines, publishers)
    lagging = source.top_k("1h", 10)
    assert (lagging.start, lagging.end) == (before.start, before.end)  # the bounds both hold
    assert lagging.items == before.items  # partition 0's older generation, not a mix

    engines[1].tick(T0 + MINUTE)
    publish(redis_db, engines, publishers)
    caught_up = source.top_k("1h", 10)
    assert caught_up.end == (before.end or 0) + 2 * MINUTE  # now was a minute before T0
    assert [(i.video_id, i.views) for i in caught_up.items] == [("a", 4), ("b", 2)]


def test_a_partition_that_never_published_makes_the_answer_unavailable(
    redis_db: redis.Redis,
) -> None:
    engine = TopKEngine()
    engine.ingest(batch([("a", T0, None, None)]), T0)
    windows = tuple(w.name for w in engine.config.windows)
    publish(redis_db, [engine], [PartitionPublisher("views", 0, windows, 10, KINDS)])
    assert RedisRankingSource(redis_db, "views", lambda: 1, windows, 10).top_k("all", 3).items
    with pytest.raises(RankingUnavailable, match=r"partitions \[1\]"):
        RedisRankingSource(redis_db, "views", lambda: 2, windows, 10).top_k("all", 3)


def test_unchanged_rankings_are_not_written_again(redis_db: redis.Redis) -> None:
    engine = TopKEngine()
    engine.ingest(batch([("a", T0, "music", "US"), ("b", T0, "games", None)]), T0)
    windows = tuple(w.name for w in engine.config.windows)
    publisher = PartitionPublisher("views", 0, windows, 10, KINDS)
    first = publisher.writes(engine, None)
    assert first  # every scope of every window with views
    assert publisher.writes(engine, None) == {}  # nothing changed
    engine.ingest(batch([("c", T0, "games", None)]), T0)
    touched = scopes_of(["games"], [None])
    second = publisher.writes(engine, touched)
    scopes = {key.split(":")[3].rstrip("}") for key in second}
    assert scopes == {"all", "c=games"}  # only the rankings the event changed


def test_only_the_configured_scope_kinds_are_published(redis_db: redis.Redis) -> None:
    engine = TopKEngine()
    engine.ingest(batch([("a", T0, "music", "US")]), T0)
    windows = tuple(w.name for w in engine.config.windows)
    publisher = PartitionPublisher("views", 0, windows, 10, frozenset({"all", "category"}))
    scopes = {key.split(":")[3].rstrip("}") for key in publisher.writes(engine, None)}
    assert scopes == {"all", "c=music"}
    publisher.forget()  # what writes() computed was not sent
    publish(redis_db, [engine], [publisher])
    source = RedisRankingSource(redis_db, "views", lambda: 1, windows, 100)
    assert source.top_k("1h", 10, "music").items  # published
    with pytest.raises(InvalidQuery, match="region rankings are not published"):
        source.top_k("1h", 10, None, "US")  # not an empty answer: refused
    with pytest.raises(InvalidQuery, match="category x region rankings are not published"):
        source.top_k("1h", 10, "music", "US")
    with pytest.raises(InvalidQuery, match=r"1 to 10 \(the published depth"):
        source.top_k("1h", 11)


def test_hot_copies_of_global_rankings_hold_the_same_ranking(redis_db: redis.Redis) -> None:
    engine = TopKEngine()
    engine.ingest(
        batch([("a", T0, "music", "US"), ("b", T0, None, None), ("a", T0, None, None)]), T0
    )
    windows = tuple(w.name for w in engine.config.windows)
    publish(redis_db, [engine], [PartitionPublisher("views", 0, windows, 10, KINDS, hot_copies=2)])
    for window in windows:
        keys = [ranking_key("views", window, "all", 0, copy) for copy in range(3)]
        values = redis_db.mget(keys)
        assert values[0] is not None
        assert values == [values[0]] * 3
        assert len({key.split("}")[0] for key in keys}) == 3  # three hash tags: three slots
    hot = RedisRankingSource(redis_db, "views", lambda: 1, windows, 10, hot_copies=2)
    plain = RedisRankingSource(redis_db, "views", lambda: 1, windows, 10)
    for _ in range(20):
        assert hot.top_k("all", 5) == plain.top_k("all", 5)
    assert hot.top_k("all", 5, "music") == plain.top_k("all", 5, "music")  # not copied
