"""The boards' answers merged from partitions published to a real Redis equal one
:class:`BoardSet` holding every event: top-k, rising (or an exactness refusal) and leaders."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from rankstream.boards import BoardSet, BoardSpec, leaders, parse_boards, rising
from rankstream.engine.partition import partition_of
from rankstream.errors import InvalidQuery
from rankstream.serving.layout import board_tag, manifest_key, ranking_key, rising_order
from rankstream.serving.redis import RedisBoardSource
from rankstream.worker.publisher import PartitionPublisher, PublishStats, send
from rankstream.worker.questions import QuestionPublisher, exact_rising_sort, rising_pairs
from rankstream.worker.repartition import foreign_boards, with_event_id
from tests.budget import examples

T0 = 1_795_341_623_456
MINUTE = 60_000
KINDS = frozenset({"all", "category", "region", "category_region"})
FIELDS = {"user_id": "string", "team_id": "string", "score": "integer", "region": "string"}
BOARDS = [
    {
        "name": "players",
        "entity": "user_id",
        "measure": "sum(score)",
        "scopes": ["team_id"],
        "windows": ["10m", "1h", "24h", "all"],
    },
    {
        "name": "active",
        "entity": "user_id",
        "scopes": ["region", "team_id"],
        "windows": ["10m", "1h"],
    },
]
PARTITIONS = 3
DEPTH = 8


def game_events(seed: int, count: int) -> list[bytes]:
    """Score events of 150 players in 6 teams over the last two hours, a few players
    streaking in the last ten minutes, some events sent twice (same ``event_id``)."""
    rng = random.Random(seed)
    players = [(f"u{n}", f"t{n % 6}", rng.choice(["EU", "US"])) for n in range(150)]
    streaky = set(rng.sample(range(150), 10))
    events: list[bytes] = []
    for number in range(count):
        player = rng.randrange(150)
        recent = player in streaky and rng.random() < 0.7
        age = rng.randrange(10 * MINUTE if recent else 120 * MINUTE)
        user, team, region = players[player]
        event = {
            "event_id": f"e{seed}-{number}",
            "timestamp": T0 - age,
            "user_id": user,
            "team_id": team,
            "region": region,
            "score": rng.randint(1, 100),
        }
        events.append(msgspec.json.encode(event))
        if rng.random() < 0.05:
            events.append(events[-1])  # a re-sent event: counted once
    return events


@pytest.fixture
def client(redis_server: Any) -> Iterator[Any]:
    redis_server.flush()
    connection = redis.Redis.from_url(redis_server.url)
    yield connection
    connection.close()


def publish(client: Any, specs: tuple[BoardSpec, ...], events: list[bytes]) -> None:
    """Split ``events`` by user as Kafka's partitioner does, count them in one BoardSet per
    partition and publish every board of every partition, as workers do."""
    for partition in range(PARTITIONS):
        part = [
            raw
            for raw in events
            if partition_of(msgspec.json.decode(raw)["user_id"], PARTITIONS) == partition
        ]
        boards = BoardSet(specs, partition=partition)
        boards.ingest(part, T0)
        boards.tick(T0)
        for spec in specs:
            tag = board_tag("views", spec.name)
            engine = boards.engines[spec.name]
            windows = tuple(w.name for w in spec.windows)
            rankings = PartitionPublisher(tag, partition, windows, DEPTH, KINDS)
            questions = QuestionPublisher(tag, partition, spec, DEPTH, KINDS)
            send(
                client,
                rankings.writes(engine, None) | questions.writes(engine, None),
                PublishStats(),
            )
            offsets = {"applied": len(part), "checkpointed": 0, "end": len(part)}
            manifest = rankings.manifest(engine, offsets, T0, "test", questions=True)
            send(client, {rankings.manifest_key: manifest}, PublishStats())


@pytest.mark.parametrize("seed", [1, 2])
def test_merged_answers_equal_one_board_set_of_every_event(client: Any, seed: int) -> None:
    specs = parse_boards(BOARDS, FIELDS)
    events = game_events(seed, 3000)
    publish(client, specs, events)
    whole = BoardSet(specs)
    whole.ingest(events, T0)
    whole.tick(T0)
    source = RedisBoardSource(client, "views", lambda: PARTITIONS, specs, DEPTH)
    assert source.board_specs() == specs
    teams = [f"t{n}" for n in range(6)]

    players = specs[0]
    for window in players.windows:
        for scopes in [{}, *({"team_id": t} for t in teams)]:
            got = source.board_top_k("players", window.name, DEPTH, scopes)
            assert got == whole.top_k("players", window.name, DEPTH, scopes), (window, scopes)
        for by in ("team_id",):
            got_leaders = source.leaders("players", by, window.name, 100)
            expected = leaders(whole, "players", by, window.name, 100)
            assert (got_leaders.span, got_leaders.items) == (expected.span, expected.items)
    for by in ("region", "team_id"):
        got_leaders = source.leaders("active", by, "1h", 3)
        expected = leaders(whole, "active", by, "1h", 3)
        assert got_leaders.items == expected.items
        assert len(expected.items) >= 2
    assert source.board_top_k("active", "1h", 5, {"region": "EU", "team_id": "t1"}) == whole.top_k(
        "active", "1h", 5, {"region": "EU", "team_id": "t1"}
    )

    answered = 0
    refusals: list[tuple[int, str]] = []
    for short, long in rising_pairs(players):
        for scopes in [{}, {"team_id": "t0"}, {"team_id": "t3"}]:
            for k in (1, 4, DEPTH):
                for minimum in (1, 40, 150, 400):
                    expected_rising = rising(
                        whole, "players", short.name, long.name, k, minimum, scopes
                    )
                    try:
                        got_rising = source.rising(
                            "players", short.name, long.name, k, minimum, scopes
                        )
                    except InvalidQuery as refusal:
                        refusals.append((minimum, str(refusal)))
                        continue
                    answered += minimum > 1
                    assert got_rising.items == expected_rising.items, (short, long, scopes, k)
                    assert (got_rising.short, got_rising.long) == (
                        expected_rising.short,
                        expected_rising.long,
                    )
    # both sides of the exactness rule were exercised; min = 1 is always answered
    assert answered
    assert refusals
    assert all(minimum > 1 and "exactly" in message for minimum, message in refusals)
    with pytest.raises(InvalidQuery, match="pair"):
        source.rising("active", "10m", "1h", 1, 1, {"region": "EU", "team_id": "t1"})


def test_the_default_board_keeps_its_keys_and_other_boards_are_tagged() -> None:
    assert board_tag("views", "videos") == "views"
    assert ranking_key(board_tag("views", "videos"), "1h", "all", 0) == "rs:{views:1h:all}:p0"
    assert manifest_key(board_tag("ns", "players"), 2) == "rs:{ns.players}:manifest:p2"


def test_a_repartitioned_event_keeps_every_value_byte_for_byte() -> None:
    raw = b'{"user_id":"u1","price":19.990,"big":123456789012345678901234567890,"event_id":"x"}'
    assert with_event_id(raw, "rp:3:17") == (
        b'{"user_id":"u1","price":19.990,"big":123456789012345678901234567890,"event_id":"rp:3:17"}'
    )
    assert with_event_id(b'{"a":1}', "rp:0:0") == b'{"a":1,"event_id":"rp:0:0"}'
    specs = parse_boards(
        [*BOARDS, {"name": "teams", "entity": "team_id", "measure": "sum(score)"}], FIELDS
    )
    assert [b.name for b in foreign_boards(specs)] == ["teams"]


@settings(max_examples=examples(200), deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 2**40), st.integers(0, 2**40), st.sampled_from("abcdef")),
        max_size=40,
    )
)
def test_the_fast_rising_sort_is_the_exact_one(drawn: list[tuple[int, int, str]]) -> None:
    # long >= short; near-equal ratios (n/(n+1) for huge n) tie as floats
    rows = [(s, s + extra, f"{name}{n}") for n, (s, extra, name) in enumerate(drawn)]
    rows += [(2**50 + 1, 2**50 + 2, "near-a"), (2**50, 2**50 + 1, "near-b")]
    exact = sorted(rows, key=lambda row: rising_order(*row))
    assert exact_rising_sort(list(rows)) == exact
