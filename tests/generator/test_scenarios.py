"""The traffic scenarios: ``views`` is byte for byte what it was; ``game`` and ``shop`` are
reproducible per seed, carry the documented fields with their types, keep the funnel's
order, prices with two decimals, and streaky players who really do streak (counted by brute
force over the generated events, never by timing)."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rankstream.engine.measure import Measure
from rankstream.engine.wire import EventDecoder
from rankstream.errors import ConfigError
from rankstream.generator.game import GameModel, GameSpec
from rankstream.generator.live import LiveModel
from rankstream.generator.producer import produce
from rankstream.generator.scenarios import SCENARIOS, RunSettings, scenario_named
from rankstream.generator.sender import send
from rankstream.generator.shop import FUNNEL, ShopModel, ShopSpec
from rankstream.generator.traffic import MINUTE, SECOND, TrafficModel, TrafficSpec
from tests.budget import examples

START = 1_742_409_000_000  # 2025-03-19T18:30:00Z

VIEWS_GOLDEN = "2b57fc97f1ee601a116b9b49321111c4c40e3fdf804e200c332a797c2367cafc"
"""sha256 of 30 batches (JSON and NDJSON) of the views model below, computed with the code
before scenarios existed: the default scenario must never change for a seed."""

BASE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "event_id": str,
    "timestamp": int,
    "user_id": str,
    "session_id": str,
    "device_type": str,
    "os": str,
    "browser": str,
    "location": str,
    "region": str,
    "event_type": str,
}
PRODUCT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "product_id": str,
    "product_name": str,
    "product_category": str,
    "price": (int, float),  # 20.0 goes on the wire as 20.0, a float; Decimal reads both
}
SHOP_FIELDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "page_view": {**BASE_FIELDS, "page_url": str, "referrer_url": str, "time_spent": float},
    "product_view": {**BASE_FIELDS, **PRODUCT_FIELDS},
    "add_to_cart": {**BASE_FIELDS, **PRODUCT_FIELDS, "quantity": int},
    "purchase": {
        **BASE_FIELDS,
        **PRODUCT_FIELDS,
        "quantity": int,
        "total_amount": (int, float),
        "order_id": str,
    },
}
GAME_FIELDS: dict[str, type | tuple[type, ...]] = {
    "event_id": str,
    "timestamp": int,
    "user_id": str,
    "team_id": str,
    "team_name": str,
    "score": int,
    "region": str,
}

SMALL_GAME = GameSpec(players=300, teams=12, streaky_players=4, run="g-")
SMALL_SHOP = ShopSpec(users=400, products=120, run="s-")


def views_golden(model: TrafficModel) -> str:
    digest = hashlib.sha256()
    for i in range(30):
        batch = model.batch(i, 500, START + i * 997 + 60_000 * i)
        digest.update(batch.encode())
        digest.update(batch.encode_ndjson())
    return digest.hexdigest()


def decoded(model: LiveModel, batches: int, size: int, now_ms: int) -> list[dict[str, Any]]:
    """The events of ``batches`` batches as a client would read them (floats as Decimal)."""
    out: list[dict[str, Any]] = []
    for index in range(batches):
        out += json.loads(model.batch(index, size, now_ms).encode(), parse_float=Decimal)
    return out


# ------------------------------------------------------------------ the registry


def test_the_registry_declares_the_three_scenarios_views_first() -> None:
    assert list(SCENARIOS) == ["views", "game", "shop"]
    assert all(s.name == name and s.summary for name, s in SCENARIOS.items())
    with pytest.raises(ConfigError, match="views, game, shop"):
        scenario_named("chess")


def test_malformed_events_are_asked_of_views_only() -> None:
    run = RunSettings(seed=1, run="x-", start_ms=START, malformed_share=0.1)
    assert isinstance(SCENARIOS["views"].build(run), TrafficModel)
    for name in ("game", "shop"):
        with pytest.raises(ConfigError, match="views scenario only"):
            SCENARIOS[name].build(run)


def test_views_is_byte_for_byte_the_traffic_model_it_was() -> None:
    spec = TrafficSpec(videos=2000, seed=11, run="g-", malformed_share=0.05)
    assert views_golden(TrafficModel(spec, START)) == VIEWS_GOLDEN
    run = RunSettings(
        seed=11, run="g-", start_ms=START, videos=2000, malformed_share=0.05, spike_offset_s=60
    )
    built = SCENARIOS["views"].build(run)
    assert isinstance(built, TrafficModel)
    assert views_golden(built) == VIEWS_GOLDEN


# ------------------------------------------------------------------ determinism


@settings(max_examples=examples(15))
@given(
    name=st.sampled_from(["game", "shop"]),
    seed=st.integers(0, 2**32),
    index=st.integers(0, 10**6),
    size=st.integers(0, 300),
    now=st.integers(START, START + 30 * 24 * 3600 * SECOND),
)
def test_a_batch_is_a_pure_function_of_seed_and_arguments(
    name: str, seed: int, index: int, size: int, now: int
) -> None:
    def model(s: int) -> GameModel | ShopModel:
        if name == "game":
            return GameModel(GameSpec(players=200, teams=9, seed=s, run="r-"), START)
        return ShopModel(ShopSpec(users=300, products=50, seed=s, run="r-"), START)

    first, again = model(seed), model(seed)
    body = first.batch(index, size, now).encode()
    assert again.batch(index, size, now).encode() == body  # a fresh model of the same seed
    assert first.batch(index + 1, size, now).encode() != body or size == 0
    assert first.starting_at(now).batch(index, size, now).encode() == body
    assert len(first.batch(index, size, now)) == size
    if size >= 5:
        assert model(seed + 1).batch(index, size, now).encode() != body


# ------------------------------------------------------------------ fields and types


def decimals(value: Decimal | int) -> int:
    """How many decimals a JSON number was written with (``12.0``: 1, ``19.99``: 2)."""
    exponent = Decimal(value).as_tuple().exponent
    assert isinstance(exponent, int), value
    return max(0, -exponent)


def check_fields(event: dict[str, Any], fields: dict[str, type | tuple[type, ...]]) -> None:
    assert set(event) == set(fields), event
    for name, kind in fields.items():
        value = event[name]
        if kind is float or kind == (int, float):  # read as Decimal by decoded()
            assert isinstance(value, Decimal | int), (name, value)
        else:
            assert isinstance(value, kind), (name, value)
            assert not isinstance(value, bool), (name, value)
        if isinstance(value, str):
            assert value, f"{name} is never empty"


@settings(max_examples=examples(10))
@given(seed=st.integers(0, 2**32), now=st.integers(START, START + 10**10))
def test_game_events_carry_the_documented_fields(seed: int, now: int) -> None:
    model = GameModel(GameSpec(players=500, teams=20, seed=seed, run="r-"), START)
    events = decoded(model, 3, 200, now)
    team_of: dict[str, str] = {}
    for event in events:
        check_fields(event, GAME_FIELDS)
        assert event["score"] >= 1
        assert now - model.spec.jitter_ms <= event["timestamp"] < now
        # stable membership: a player is always in the same team
        assert team_of.setdefault(event["user_id"], event["team_id"]) == event["team_id"]
    assert len({e["event_id"] for e in events}) == len(events) == 600 * 1


@settings(max_examples=examples(10))
@given(seed=st.integers(0, 2**32), now=st.integers(START, START + 10**10))
def test_shop_events_carry_the_documented_fields_with_two_decimal_prices(
    seed: int, now: int
) -> None:
    events = decoded(ShopModel(ShopSpec(users=300, products=60, seed=seed), START), 3, 200, now)
    assert len({e["event_id"] for e in events}) == len(events)
    for event in events:
        assert event["event_type"] in FUNNEL
        check_fields(event, SHOP_FIELDS[event["event_type"]])
        assert event["timestamp"] < now
        if "price" in event:
            assert Decimal(event["price"]) > 0
            assert decimals(event["price"]) <= 2, event["price"]
        if event["event_type"] == "purchase":
            assert decimals(event["total_amount"]) <= 2, event["total_amount"]
            assert event["total_amount"] == Decimal(event["price"]) * event["quantity"]
        if event["event_type"] in ("add_to_cart", "purchase"):
            assert 1 <= event["quantity"] <= 3


def test_events_decode_under_measures_a_leaderboard_could_declare() -> None:
    """The engine's own validation (today's rules for ids, labels, quantities) accepts every
    event with the entity and quantity fields the scenario docs suggest."""
    game = GameModel(SMALL_GAME, START).batch(0, 2000, START)
    shop = ShopModel(SMALL_SHOP, START).batch(0, 2000, START)
    measures = [
        (game, Measure("user_id", (), "score", "points")),
        (game, Measure("team_id", (), "score", "points")),
        (shop, Measure("user_id", (), None, "events")),
        (shop, Measure("session_id", (), None, "events")),
    ]
    for batch, measure in measures:
        raws = [msgspec.json.encode(e) for e in batch.events]
        result = EventDecoder(measure).decode(raws)
        assert result.errors == [], (measure, result.errors[:1])
        assert len(result.batch) == len(batch)
    products = [msgspec.json.encode(e) for e in shop.events if hasattr(e, "product_id")]
    result = EventDecoder(Measure("product_id", (), None, "views")).decode(products)
    assert result.errors == []
    assert len(result.batch) == len(products) > 0


# ------------------------------------------------------------------ the funnel


@settings(max_examples=examples(10))
@given(seed=st.integers(0, 2**32), size=st.integers(1, 400))
def test_the_funnel_narrows_in_every_session_and_batch(seed: int, size: int) -> None:
    model = ShopModel(ShopSpec(users=300, products=40, seed=seed), START)
    events = decoded(model, 4, size, START)
    kinds = Counter(e["event_type"] for e in events)
    assert kinds["purchase"] <= kinds["add_to_cart"] <= kinds["product_view"]
    sessions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        sessions[event["session_id"]].append(event)
    for session in sessions.values():
        assert session[0]["event_type"] == "page_view", "a session lands on a page"
        assert [e["timestamp"] for e in session] == sorted(e["timestamp"] for e in session)
        assert len({e["user_id"] for e in session}) == 1
        viewed: set[str] = set()
        carted: set[str] = set()
        bought: set[str] = set()
        for event in session:
            kind, product = event["event_type"], event.get("product_id", "")
            if kind == "product_view":
                viewed.add(product)
            elif kind == "add_to_cart":
                assert product in viewed
                assert product not in carted
                carted.add(product)
            elif kind == "purchase":
                assert product in carted
                assert product not in bought
                bought.add(product)
        orders = {e["order_id"] for e in session if e["event_type"] == "purchase"}
        assert len(orders) <= 1, "one order per session"


def test_the_funnel_drops_off_realistically() -> None:
    """Over many sessions each stage keeps a plausible share of the one before."""
    events = decoded(ShopModel(SMALL_SHOP, START), 20, 1000, START)
    sessions = {e["session_id"] for e in events}
    stage = Counter(
        (e["event_type"], e["session_id"]) for e in events if e["event_type"] != "page_view"
    )
    reached = Counter(kind for kind, _ in stage)
    assert 0.6 < reached["product_view"] / len(sessions) < 0.9
    assert 0.2 < reached["add_to_cart"] / reached["product_view"] < 0.7
    assert 0.3 < reached["purchase"] / reached["add_to_cart"] < 0.7


# ------------------------------------------------------------------ streaks


def rate_per_minute(times: list[int], start: int, end: int) -> float:
    return sum(start <= t < end for t in times) / ((end - start) / MINUTE)


def test_streaky_players_run_hot_in_the_short_window_then_calm_down() -> None:
    """Three hours of game traffic, a batch every 5 s: for every streak that ends inside
    it, the player's events per minute over the 10 minutes ending with the streak are at
    least 3x those over the hour ending with it; the most active steady player's are not."""
    model = GameModel(SMALL_GAME, START)
    times: dict[str, list[int]] = defaultdict(list)
    step, per_batch = 5 * SECOND, 200
    end = START + 3 * 60 * MINUTE
    for index, now in enumerate(range(START, end, step)):
        for event in model.batch(index, per_batch, now).events:
            assert isinstance(event, msgspec.Struct)
            times[event.user_id].append(event.timestamp)  # type: ignore[attr-defined]
    checked = 0
    for player in model.streaky.tolist():
        player_id = model.player_ids[player]
        for _, streak_end in model.streaks(player, START + 60 * MINUTE, end):
            if streak_end > end:
                continue
            short = rate_per_minute(times[player_id], streak_end - 10 * MINUTE, streak_end)
            long = rate_per_minute(times[player_id], streak_end - 60 * MINUTE, streak_end)
            assert short >= 3 * long > 0, (player_id, short, long)
            checked += 1
    assert checked >= len(model.streaky), "every streaky player streaked at least once"
    steady = model.player_ids[0]  # the most active player, never streaky
    assert 0 not in model.streaky.tolist()
    short = rate_per_minute(times[steady], end - 10 * MINUTE, end)
    long = rate_per_minute(times[steady], end - 60 * MINUTE, end)
    assert short < 1.5 * long


def test_a_streak_lasts_its_duration_and_comes_back_a_cycle_later() -> None:
    model = GameModel(SMALL_GAME, START)
    player = int(model.streaky[0])
    (first, first_end), (second, _) = model.streaks(player, START, START + 2 * 3600 * SECOND)
    assert first_end - first == 300 * SECOND
    assert second - first == 3600 * SECOND
    assert player in model.on_streak(first).tolist()
    assert player in model.on_streak(first_end - 1).tolist()
    assert player not in model.on_streak(first_end).tolist()
    assert player not in model.on_streak(first - 1).tolist()
    assert model.streaks(0, START, START + 3600 * SECOND) == []


# ------------------------------------------------------------------ to a target


class _Collector(http.server.BaseHTTPRequestHandler):
    """Answers ``202`` to every ``POST /views``, keeping the bodies."""

    protocol_version = "HTTP/1.1"
    bodies: list[bytes]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._reply(200, b'{"status":"ok"}')

    def do_PUT(self) -> None:  # metadata: views only
        self._reply(404, b"{}")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.bodies.append(body)
        count = len(msgspec.json.decode(body))
        self._reply(202, msgspec.json.encode({"accepted": count}))


@pytest.fixture
def collector() -> Iterator[tuple[str, list[bytes]]]:
    bodies: list[bytes] = []
    handler = type("Handler", (_Collector,), {"bodies": bodies})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("name", ["game", "shop"])
def test_the_sender_posts_the_scenario_it_is_given(
    name: str, collector: tuple[str, list[bytes]]
) -> None:
    target, bodies = collector
    report = send(target, 400, 0.5, 10, 3, scenario=name, progress=False)
    assert report.sent == report.accepted == 200
    assert report.failed_requests == 0
    assert report.metadata_registered == 0
    events = [e for body in bodies for e in msgspec.json.decode(body)]
    assert len(events) == 200
    if name == "game":
        assert all(set(e) == set(GAME_FIELDS) for e in events)
    else:
        assert all(set(e) == set(SHOP_FIELDS[e["event_type"]]) for e in events)
    assert all(e["event_id"].startswith("3.") for e in events), "the run's own id prefix"


def test_the_producer_keys_scenario_events_by_user(
    kafka_broker: Any, kafka_topic: Callable[..., str]
) -> None:
    from tests.generator.test_producer import read_all

    topic = kafka_topic(2)
    report = produce(f"kafka://{kafka_broker.bootstrap}/{topic}", 2000, 0.5, 10, 4, scenario="game")
    assert (report.produced, report.failed, report.malformed) == (1000, 0, 0)
    messages = read_all(kafka_broker, topic, 2, report.produced)
    assert len(messages) == 1000
    for message in messages:
        event = msgspec.json.decode(message.value())
        assert set(event) == set(GAME_FIELDS)
        assert message.key().decode() == event["user_id"]
