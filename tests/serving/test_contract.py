"""The RankingSource contract, run over every implementation: the in-process engine (the
embedded pipeline's) and rankings published to a real Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from rankstream.boards import VIDEOS, BoardSet
from rankstream.engine import EventBatch, TopKEngine, ViewEvent
from rankstream.engine.partition import split_batch
from rankstream.errors import InvalidQuery
from rankstream.log import LogPosition
from rankstream.service.live import LiveEngine
from rankstream.serving import RankingSource
from rankstream.serving.redis import RedisRankingSource
from rankstream.worker.publisher import PartitionPublisher, PublishStats, send

T0 = 1_795_341_600_000
KINDS = frozenset({"all", "category", "region", "category_region"})
Factory = Callable[[EventBatch], RankingSource]  # the events -> a source ranking them


def engine(_: Any) -> Iterator[Factory]:
    def build(events: EventBatch) -> RankingSource:
        live = LiveEngine(BoardSet((VIDEOS,)), LogPosition())
        live.boards.engines[VIDEOS.name].ingest(events, T0)
        return live

    yield build


def redis_published(redis_server: Any) -> Iterator[Factory]:
    redis_server.flush()
    client = redis.Redis.from_url(redis_server.url)

    def build(events: EventBatch) -> RankingSource:
        parts = [TopKEngine() for _ in range(3)]
        windows = tuple(w.name for w in parts[0].config.windows)
        for number, (part, piece) in enumerate(zip(parts, split_batch(events, 3), strict=True)):
            part.ingest(piece, T0)
            publisher = PartitionPublisher("views", number, windows, 50, KINDS)
            send(client, publisher.writes(part, None), PublishStats())
            offsets = {"applied": 0, "checkpointed": 0, "end": 0}
            manifest = publisher.manifest(part, offsets, T0, "test")
            send(client, {publisher.manifest_key: manifest}, PublishStats())
        return RedisRankingSource(client, "views", lambda: 3, windows, 50)

    yield build
    client.close()


IMPLEMENTATIONS = {"engine": engine, "redis": redis_published}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def build(request: pytest.FixtureRequest) -> Iterator[Factory]:
    service = request.getfixturevalue("redis_server") if request.param == "redis" else None
    yield from IMPLEMENTATIONS[request.param](service)


def events(*rows: tuple[str, int, str | None, str | None]) -> EventBatch:
    return EventBatch.from_events([ViewEvent(*row) for row in rows])


def test_rankings_are_exact_with_their_bounds(build: Factory) -> None:
    source = build(
        events(
            ("a", T0 - 10, "music", "US"), ("b", T0 - 5, "music", None), ("a", T0 - 1, None, "US")
        )
    )
    top = source.top_k("1h", 10)
    assert [(i.video_id, i.views) for i in top.items] == [("a", 2), ("b", 1)]
    assert top.start is not None
    assert top.end is not None
    assert top.start <= T0 - 10 < top.end
    music = source.top_k("1h", 10, "music")
    assert [(i.video_id, i.views) for i in music.items] == [("a", 1), ("b", 1)]
    assert [i.rank for i in music.items] == [1, 2]
    assert source.top_k("all", 1, None, "US").items[0].video_id == "a"
    assert source.top_k("all", 10, "unknown").items == ()  # an unknown filter: empty


def test_bad_queries_are_refused(build: Factory) -> None:
    source = build(events(("a", T0, None, None)))
    with pytest.raises(InvalidQuery, match="unknown window"):
        source.top_k("fortnight", 10)
    with pytest.raises(InvalidQuery, match="k must be"):
        source.top_k("1h", 0)
    with pytest.raises(InvalidQuery):
        source.top_k("1h", 10, "x" * 65)
