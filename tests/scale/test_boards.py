"""Declared boards in scale-out mode: the game scenario's players by score, scoped by team,
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
from confluent_kafka import Producer

from rankstream.backends import open_worker
from rankstream.boards import parse_boards
from rankstream.errors import ConfigError, RankingUnavailable
from rankstream.generator.game import GameModel, GameSpec
from rankstream.serving.layout import board_tag
from rankstream.serving.redis import RedisBoardSource
from tests.scale.cluster import scale_config, wait_applied
from tests.scale.test_faults import WorkerProcess, now_ms, worker_processes  # noqa: F401

FIELDS = {"user_id": "string", "team_id": "string", "score": "integer"}
PLAYERS = {
    "name": "players",
    "entity": "user_id",
    "measure": "sum(score)",
    "scopes": ["team_id"],
    "windows": ["10m", "1h", "24h", "all"],
}
TOML = """
fields = {user_id = "string", team_id = "string", score = "integer"}
[[boards]]
name = "players"
entity = "user_id"
measure = "sum(score)"
scopes = ["team_id"]
windows = ["10m", "1h", "24h", "all"]
"""
SPECS = parse_boards([PLAYERS], FIELDS)
TAG = board_tag("views", "players")
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
        self.events: dict[str, tuple[str, str, int, int]] = {}  # id -> user, team, score, ts
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
            )
        assert self.producer.flush(30) == 0

    def sums(self, start: int | None, end: int | None, team: str | None) -> dict[str, int]:
        """Every player's score in ``[start, end)`` (``None``: unbounded), in ``team``."""
        found: dict[str, int] = defaultdict(int)
        for user, their_team, score, ts in self.events.values():
            if (team is None or team == their_team) and (
                start is None or (end is not None and start <= ts < end)
            ):
                found[user] += score
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
    teams = sorted({team for _, team, _, _ in feed.events.values()})
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


def test_players_by_score_stay_exact_after_a_worker_is_killed(
    kafka_broker: Any,
    kafka_topic: Callable[..., str],
    redis_server: Any,
    tmp_path: Path,
    worker_processes: Callable[[list[str], str], WorkerProcess],  # noqa: F811
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
    time.sleep(1.5)  # a checkpoint, then more log after it

    feed.send(1500)
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL  # mid-stream, no goodbye
    for _ in range(3):
        feed.send(500)
    wait_applied(client, TAG, 4, feed.produced)  # the other took its partitions over
    assert_exact(source, feed)
    client.close()


def test_a_worker_refuses_a_board_not_keyed_by_the_topic_key(
    redis_server: Any, tmp_path: Path
) -> None:
    teams = {"name": "teams", "entity": "team_id", "measure": "sum(score)"}
    config = scale_config(
        "127.0.0.1:9", "t", redis_server.url, tmp_path, fields=FIELDS, boards=(PLAYERS, teams)
    )
    try:
        open_worker(config, now_ms, "w")
    except ConfigError as refusal:
        assert "teams (entity team_id)" in str(refusal)  # noqa: PT017
        assert "repartition" in str(refusal)  # noqa: PT017
    else:
        raise AssertionError("a board keyed by team_id was accepted")
