"""The leaderboards API in-process: declared boards, exact answers against the brute-force
oracle of tests/boards, the same answers after a restart, and a 4xx for every bad query."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from starlette.testclient import TestClient

from rankstream.api import create_app
from rankstream.boards import INVALID
from rankstream.config import ServiceConfig
from rankstream.engine import ACCEPTED, DUPLICATE, TOO_NEW
from tests.boards.oracle import BoardsOracle

EXACT = msgspec.json.Decoder(float_hook=Decimal)
FIELDS = {
    "user_id": "string",
    "team_id": "string",
    "score": "integer",
    "event_type": "string",
    "product_id": "string",
    "category": "string",
    "price": "decimal(2)",
}
BOARDS = (
    {
        "name": "players",
        "entity": "user_id",
        "measure": "sum(score)",
        "scopes": ["team_id"],
        "windows": ["10m", "1h", "all"],
    },
    {"name": "teams", "entity": "team_id", "measure": "sum(score)", "windows": ["1h", "all"]},
    {
        "name": "sales",
        "entity": "product_id",
        "measure": "sum(price)",
        "scopes": ["category"],
        "filter": 'event_type == "purchase"',
        "windows": ["1h", "all"],
    },
)


def config(data: Path) -> ServiceConfig:
    return ServiceConfig(
        data_dir=data, fields=FIELDS, boards=BOARDS, sync="NORMAL", analytics=False
    )


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def client(data: Path) -> Iterator[TestClient]:
    with TestClient(create_app(config(data))) as test_client:
        yield test_client


def events(now: int) -> list[dict[str, Any]]:
    """Scores of players in teams (late ones too, one duplicate, one too new), purchases,
    and events that fit no board."""
    made: list[dict[str, Any]] = []
    for n in range(120):
        player = f"p{n % 7}"
        made.append(
            {
                "user_id": player,
                "team_id": f"t{n % 7 % 3}",
                "score": (n * 13) % 17,
                "timestamp": now - (n % 5) * 4 * 60_000 - (n % 3) * 25 * 60_000,
                "event_id": f"g{n}",
            }
        )
    made.append(dict(made[0]))  # a retry: a duplicate
    made.append({**made[1], "event_id": "future", "timestamp": now + 3_600_000})
    made += [
        {
            "event_type": "purchase" if n % 3 else "add_to_cart",
            "product_id": f"sku{n % 4}",
            "category": "books" if n % 2 else "games",
            "price": str(Decimal(n * 137 % 5000).scaleb(-2)),
            "timestamp": now - n * 60_000,
            "event_id": f"s{n}",
        }
        for n in range(30)
    ]
    made.append({"event_type": "page_view", "timestamp": now})  # fits no board
    made.append({"user_id": "p1", "score": -3, "team_id": "t1", "timestamp": now})  # bad score
    return made


def oracle_of(sent: list[dict[str, Any]], now: int) -> BoardsOracle:
    specs = config(Path("unused")).board_specs()
    oracle = BoardsOracle(specs, config(Path("unused")).engine_config())
    decoded = [EXACT.decode(msgspec.json.encode(e)) for e in sent]
    for event in decoded:
        if isinstance(event.get("price"), str):
            event["price"] = Decimal(event["price"])
    oracle.ingest(decoded, now)
    return oracle


def check(client: TestClient, oracle: BoardsOracle) -> None:
    for spec in oracle.boards:
        scale = Decimal(1).scaleb(-spec.scale)
        for window in spec.windows:
            top = client.get(
                f"/leaderboards/{spec.name}/top-k", params={"window": window.name, "k": 50}
            ).json()
            none = (None,) * len(spec.scopes)
            want = oracle.top_k(spec, top["window_start"], top["window_end"], 50, none)
            got = [(i["entity"], Decimal(str(i["value"])) / scale) for i in top["items"]]
            assert got == [(e, Decimal(v)) for e, v in want], (spec.name, window.name)
    top = client.get("/leaderboards/players/top-k", params={"window": "1h", "team_id": "t1"})
    answer = top.json()
    want = oracle.top_k(oracle.boards[0], answer["window_start"], answer["window_end"], 10, ("t1",))
    assert [(i["entity"], i["value"]) for i in answer["items"]] == want
    assert answer["scopes"] == {"team_id": "t1"}
    up = client.get(
        "/leaderboards/players/rising", params={"short": "10m", "long": "1h", "k": 5}
    ).json()
    short = ("10m", up["short"]["start"], up["short"]["end"])
    long = ("1h", up["long"]["start"], up["long"]["end"])
    expected = oracle.rising(oracle.boards[0], short, long, 5, 1)
    assert [(i["entity"], i["short_value"], i["long_value"]) for i in up["items"]] == expected
    assert all(i["short_rate"] == i["short_value"] / 10 for i in up["items"])
    mvps = client.get("/leaderboards/players/leaders", params={"by": "team_id", "window": "1h"})
    found = mvps.json()
    expected_leaders = oracle.leaders(
        oracle.boards[0], 0, found["window"]["start"], found["window"]["end"], 10
    )
    assert [(i["group"], i["entity"], i["value"], i["total"]) for i in found["items"]] == (
        expected_leaders
    )
    assert expected_leaders  # the stream has leaders to compare


def test_boards_answer_exactly_and_survive_a_restart(client: TestClient, data: Path) -> None:
    now = time.time_ns() // 1_000_000
    sent = events(now)
    answer = client.post("/views", json=sent).json()
    oracle = oracle_of(sent, now)
    refused = {e["index"] for e in answer["errors"]}
    assert answer["accepted"] == len(sent) - len(refused) - answer["duplicates"]
    assert answer["duplicates"] == 1
    assert {len(sent) - 2, len(sent) - 1} <= refused  # fit no board
    check(client, oracle)
    boards = client.get("/leaderboards").json()["boards"]
    assert [b["name"] for b in boards] == ["players", "teams", "sales"]
    assert boards[2]["filter"] == {"field": "event_type", "values": ["purchase"]}
    client.__exit__(None, None, None)  # a restart: recovery from the checkpoint and log
    with TestClient(create_app(config(data))) as again:
        check(again, oracle)


def test_bad_queries_get_a_4xx(client: TestClient) -> None:
    bad: list[tuple[str, dict[str, str | int], int]] = [
        ("/leaderboards/nope/top-k", {}, 404),
        ("/leaderboards/teams/top-k", {"team_id": "t1"}, 400),  # not a scope of teams
        ("/leaderboards/teams/top-k", {"window": "10m"}, 400),  # not a window of teams
        ("/leaderboards/players/top-k", {"window": "1w"}, 400),
        ("/leaderboards/players/top-k", {"k": 0}, 400),
        ("/leaderboards/players/rising", {"short": "1h", "long": "10m"}, 400),
        ("/leaderboards/players/rising", {"short": "10m", "long": "all"}, 400),
        ("/leaderboards/players/rising", {"short": "10m", "long": "1h", "min": "0.5"}, 400),
        ("/leaderboards/teams/leaders", {"by": "team_id"}, 400),  # teams has no scopes
        ("/leaderboards/players/leaders", {"by": "region"}, 400),
        ("/views/top-k", {}, 400),  # no videos board is declared
    ]
    for path, params, status in bad:
        answer = client.get(path, params=params)
        assert answer.status_code == status, (path, params, answer.text)
        assert answer.json()["error"]


def test_statuses_match_the_oracle(client: TestClient) -> None:
    now = time.time_ns() // 1_000_000
    sent = events(now)
    answer = client.post("/views", json=sent).json()
    oracle = oracle_of([], now)
    decoded = [EXACT.decode(msgspec.json.encode(e)) for e in sent]
    for event in decoded:
        if isinstance(event.get("price"), str):
            event["price"] = Decimal(event["price"])
    statuses = oracle.ingest(decoded, now)
    refused = sorted(e["index"] for e in answer["errors"])
    assert refused == [i for i, s in enumerate(statuses) if s in (INVALID, TOO_NEW)]
    assert answer["duplicates"] == statuses.count(DUPLICATE)
    assert answer["accepted"] == statuses.count(ACCEPTED)


def test_the_analytics_store_keeps_every_accepted_event_whatever_its_boards(
    data: Path,
) -> None:
    now = time.time_ns() // 1_000_000
    sent = events(now)
    settings = config(data).model_copy(update={"analytics": True})
    with TestClient(create_app(settings)) as client:
        answer = client.post("/views", json=sent).json()
        for _ in range(600):
            analytics = client.get("/status").json()["analytics"]
            if analytics["lag_records"] == 0 and analytics["rows"] == answer["accepted"]:
                break
            time.sleep(0.1)
        assert analytics["rows"] == answer["accepted"]  # the purchases too, not only scores
        top = client.get(
            "/analytics/top-k", params={"from": now - 2 * 3_600_000, "to": now + 1, "k": 3}
        )
        assert top.status_code == 200
        assert {i["video_id"] for i in top.json()["items"]} <= {f"p{n}" for n in range(7)} | {
            f"sku{n}" for n in range(4)
        }
