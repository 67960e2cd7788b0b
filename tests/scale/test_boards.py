"""Declared boards in scale-out mode: the game scenario's players by score, scoped by team,
and teams by score (keyed by another entity than the topic: through a repartition topic),
stay exact through a replica's BoardSource after a worker is SIGKILLed mid-stream (top-k,
rising and leaders against a brute-force count of the events in the topic)."""

from __future__ import annotations

import random
import signal
import time
from collections import defaultdict
from collections.abc import Callable
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import redis
from confluent_kafka import Consumer, Producer, TopicPartition
from starlette.testclient import TestClient

from rankstream.api import create_app
from rankstream.boards import parse_boards
from rankstream.errors import RankingUnavailable
from rankstream.generator.game import GameModel, GameSpec
from rankstream.serving.layout import board_tag, decode_manifest, manifest_key
from rankstream.serving.redis import RedisBoardSource
from rankstream.worker.repartition import repartition_topic
from tests.scale.cluster import WorkerProcess, scale_config, wait_applied
from tests.scale.test_faults import now_ms

FIELDS = {"user_id": "string", "team_id": "string", "score": "integer", "region": "string"}
PLAYERS = {
    "name": "players",
    "entity": "user_id",
    "measure": "sum(score)",
    "scopes": ["team_id"],
    "windows": ["10m", "1h", "24h", "all"],
}
TEAMS = {
    "name": "teams",
    "entity": "team_id",
    "measure": "sum(score)",
    "scopes": ["region"],
    "windows": ["1h", "all"],
}
TOML = """
fields = {user_id = "string", team_id = "string", score = "integer", region = "string"}
[[boards]]
name = "players"
entity = "user_id"
measure = "sum(score)"
scopes = ["team_id"]
windows = ["10m", "1h", "24h", "all"]
[[boards]]
name = "teams"
entity = "team_id"
measure = "sum(score)"
scopes = ["region"]
windows = ["1h", "all"]
"""
SPECS = parse_boards([PLAYERS, TEAMS], FIELDS)
TAG = board_tag("views", "players")
TEAMS_TAG = board_tag("views", "teams")
_T = TypeVar("_T")


class GameFeed:
    """Game score events produced as ``rankstream generate --scenario game`` does (keyed
    by ``user_id``, murmur2), a few re-sent with their ``event_id``; and every distinct
    event, for the brute-force oracle."""

    def __init__(self, bootstrap: str, topic: str, seed: int) -> None:
        self.topic = topic
        self.rng = random.Random(seed)
        self.model = GameModel(GameSpec(players=400, teams=8, jitter_ms=40 * 60_000, seed=seed))
        self.batches = 0
        self.produced = 0
        # event id -> user, team, score, ts, region
        self.events: dict[str, tuple[str, str, int, int, str]] = {}
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "partitioner": "murmur2_random",
                "linger.ms": 2,
            }
        )

    def send(self, count: int) -> None:
        wall = now_ms()
        batch = self.model.batch(self.batches, count, wall)
        self.batches += 1
        for key, event in zip(batch.keys, batch.events, strict=True):
            body = msgspec.json.encode(event)
            copies = 2 if self.rng.random() < 0.03 else 1
            for _ in range(copies):
                self.producer.produce(self.topic, body, key.encode(), timestamp=wall)
                self.produced += 1
            data = msgspec.json.decode(body)
            self.events[data["event_id"]] = (
                data["user_id"],
                data["team_id"],
                data["score"],
                data["timestamp"],
                data["region"],
            )
        assert self.producer.flush(30) == 0

    def sums(self, start: int | None, end: int | None, team: str | None) -> dict[str, int]:
        """Every player's score in ``[start, end)`` (``None``: unbounded), in ``team``."""
        found: dict[str, int] = defaultdict(int)
        for user, their_team, score, ts, _ in self.events.values():
            if (team is None or team == their_team) and (
                start is None or (end is not None and start <= ts < end)
            ):
                found[user] += score
        return found

    def team_sums(self, start: int | None, end: int | None, region: str | None) -> dict[str, int]:
        """Every team's score in ``[start, end)`` (``None``: unbounded), in ``region``."""
        found: dict[str, int] = defaultdict(int)
        for _, team, score, ts, their_region in self.events.values():
            if (region is None or region == their_region) and (
                start is None or (end is not None and start <= ts < end)
            ):
                found[team] += score
        return found


def answered(query: Callable[[], _T]) -> _T:
    """The answer, once the partitions share bounds (a round may be crossing a minute)."""
    for _ in range(50):
        try:
            return query()
        except RankingUnavailable:
            time.sleep(0.1)
    return query()


def assert_exact(source: RedisBoardSource, feed: GameFeed) -> None:
    teams = sorted({team for _, team, _, _, _ in feed.events.values()})
    for window in SPECS[0].windows:
        for team in [None, *teams[:3]]:
            scopes = {} if team is None else {"team_id": team}
            got = answered(partial(source.board_top_k, "players", window.name, 50, scopes))
            sums = feed.sums(got.start, got.end, team)
            expected = sorted(sums.items(), key=lambda row: (-row[1], row[0]))[:50]
            assert [(i.video_id, i.views) for i in got.items] == expected, (window, team)
        leaders = answered(partial(source.leaders, "players", "team_id", window.name, 100))
        per_team = {team: feed.sums(leaders.span.start, leaders.span.end, team) for team in teams}
        expected_leaders = sorted(
            (
                (-max(s.values()), team, min(s, key=lambda u: (-s[u], u)), sum(s.values()))
                for team, s in per_team.items()
                if s
            ),
        )
        got_leaders = [(-i.value, i.group, i.entity, i.total) for i in leaders.items]
        assert got_leaders == expected_leaders, window
    for short, long in (("10m", "1h"), ("10m", "24h"), ("1h", "24h")):
        for team in (None, teams[0]):
            scopes = {} if team is None else {"team_id": team}
            got_rising = answered(partial(source.rising, "players", short, long, 20, 1, scopes))
            shorts = feed.sums(got_rising.short.start, got_rising.short.end, team)
            longs = feed.sums(got_rising.long.start, got_rising.long.end, team)
            rows = sorted(
                (-Fraction(s, longs[u]), -s, u, s, longs[u]) for u, s in shorts.items() if s >= 1
            )
            expected_rising = [(u, s, lv) for _, _, u, s, lv in rows[:20]]
            listed = [(i.entity, i.short_value, i.long_value) for i in got_rising.items]
            assert listed == expected_rising, (short, long, team)


def assert_teams_exact(source: RedisBoardSource, feed: GameFeed) -> None:
    regions = sorted({region for *_, region in feed.events.values()})
    for window in ("1h", "all"):
        for region in [None, *regions[:4]]:
            scopes = {} if region is None else {"region": region}
            got = answered(partial(source.board_top_k, "teams", window, 20, scopes))
            sums = feed.team_sums(got.start, got.end, region)
            expected = sorted(sums.items(), key=lambda row: (-row[1], row[0]))[:20]
            assert [(i.video_id, i.views) for i in got.items] == expected, (window, region)
        leaders = answered(partial(source.leaders, "teams", "region", window, 100))
        per_region = {r: feed.team_sums(leaders.span.start, leaders.span.end, r) for r in regions}
        expected_leaders = sorted(
            (-max(s.values()), r, min(s, key=lambda t: (-s[t], t)), sum(s.values()))
            for r, s in per_region.items()
            if s
        )
        got_leaders = [(-i.value, i.group, i.entity, i.total) for i in leaders.items]
        assert got_leaders == expected_leaders, window


def wait_repartitioned(client: Any, bootstrap: str, topic: str) -> int:
    """Once the source partitions are applied (their forwarded events are then in the
    repartition topic): until the teams' partitions have applied all of it. Returns how
    many messages it holds."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "probe"})
    try:
        name = repartition_topic(topic, "teams")
        ends = [consumer.get_watermark_offsets(TopicPartition(name, p))[1] for p in range(4)]
    finally:
        consumer.close()
    wait_applied(client, TEAMS_TAG, 4, sum(ends))
    return sum(ends)


def test_players_by_score_stay_exact_after_a_worker_is_killed(
    kafka_broker: Any,
    kafka_topic: Callable[..., str],
    redis_server: Any,
    tmp_path: Path,
    worker_processes: Callable[[list[str], str], WorkerProcess],
) -> None:
    redis_server.flush()
    topic = kafka_topic(4)
    config = tmp_path / "game.toml"
    config.write_text(TOML)
    args = [
        "--config", str(config),
        "--kafka", f"{kafka_broker.bootstrap}/{topic}", "--redis", redis_server.url,
        "--checkpoints", str(tmp_path / "checkpoints"), "--session-timeout-ms", "6000",
        "--publish-interval", "0.2", "--checkpoint-interval", "1",
    ]  # fmt: skip
    feed = GameFeed(kafka_broker.bootstrap, topic, seed=11)
    client = redis.Redis.from_url(redis_server.url)
    source = RedisBoardSource(client, "views", lambda: 4, SPECS, 100)
    first = worker_processes(args, "g1")
    worker_processes(args, "g2")
    for _ in range(6):
        feed.send(500)
        time.sleep(0.2)
    wait_applied(client, TAG, 4, feed.produced)
    assert_exact(source, feed)
    wait_repartitioned(client, kafka_broker.bootstrap, topic)
    assert_teams_exact(source, feed)
    time.sleep(1.5)  # a checkpoint, then more log after it

    feed.send(1500)
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL  # mid-stream, no goodbye
    for _ in range(3):
        feed.send(500)
    wait_applied(client, TAG, 4, feed.produced)  # the other took its partitions over
    assert_exact(source, feed)
    wait_repartitioned(client, kafka_broker.bootstrap, topic)  # replayed copies included
    assert_teams_exact(source, feed)

    # An API replica serves the same answers over HTTP (its BoardSource reads Redis).
    replica_config = scale_config(
        kafka_broker.bootstrap,
        topic,
        redis_server.url,
        tmp_path,
        fields=FIELDS,
        boards=(PLAYERS, TEAMS),
    )
    with TestClient(create_app(replica_config)) as replica:
        listed = replica.get("/leaderboards").json()["boards"]
        assert [b["name"] for b in listed] == ["players", "teams"]
        top = replica.get("/leaderboards/teams/top-k", params={"window": "all", "k": 5})
        assert top.status_code == 200, top.text
        sums = feed.team_sums(None, None, None)
        expected = sorted(sums.items(), key=lambda row: (-row[1], row[0]))[:5]
        got_top = [(i["entity"], i["value"]) for i in top.json()["items"]]
        assert got_top == expected
        query = {"short": "10m", "long": "1h", "k": "5", "team_id": "t0"}
        rising = replica.get("/leaderboards/players/rising", params=query)
        assert rising.status_code == 200, rising.text
        leaders = replica.get(
            "/leaderboards/players/leaders", params={"by": "team_id", "window": "all"}
        )
        assert leaders.status_code == 200, leaders.text
        assert len(leaders.json()["items"]) == len({t for _, t, *_ in feed.events.values()})
    client.close()


def test_a_replayed_source_partition_counts_its_repartitioned_events_once(
    kafka_broker: Any,
    kafka_topic: Callable[..., str],
    redis_server: Any,
    tmp_path: Path,
    worker_processes: Callable[[list[str], str], WorkerProcess],
) -> None:
    redis_server.flush()
    topic = kafka_topic(4)
    config = tmp_path / "game.toml"
    config.write_text(TOML)
    args = [
        "--config", str(config),
        "--kafka", f"{kafka_broker.bootstrap}/{topic}", "--redis", redis_server.url,
        "--checkpoints", str(tmp_path / "checkpoints"), "--session-timeout-ms", "6000",
        "--publish-interval", "0.2", "--checkpoint-interval", "3600",  # never, here
    ]  # fmt: skip
    feed = GameFeed(kafka_broker.bootstrap, topic, seed=12)
    client = redis.Redis.from_url(redis_server.url)
    source = RedisBoardSource(client, "views", lambda: 4, SPECS, 100)
    first = worker_processes(args, "only")
    for _ in range(4):
        feed.send(500)
    wait_applied(client, TAG, 4, feed.produced)
    assert wait_repartitioned(client, kafka_broker.bootstrap, topic) == len(feed.events)
    assert_teams_exact(source, feed)

    assert first.stop(signal.SIGKILL) == -signal.SIGKILL  # no checkpoint was ever saved
    worker_processes(args, "again")  # re-decides everything from offset 0, re-forwards it
    deadline = time.monotonic() + 60
    while True:
        values = client.mget([manifest_key(TAG, p) for p in range(4)])
        manifests = [decode_manifest(v) for v in values if isinstance(v, bytes)]
        if all(m.worker == "again" and m.applied == m.end for m in manifests):
            break
        assert time.monotonic() < deadline, "the new worker did not re-apply the topic"
        time.sleep(0.05)
    # every event is twice in the repartition topic now, and counts once
    assert wait_repartitioned(client, kafka_broker.bootstrap, topic) == 2 * len(feed.events)
    assert_teams_exact(source, feed)
    assert_exact(source, feed)
    client.close()
