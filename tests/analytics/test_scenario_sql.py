"""The shop scenario's SQL of docs/SCENARIOS.md, read from that file and run against a real
chDB store holding generated shop events (with game and video events beside them), equals a
brute-force count of the same events, exactly: active users per minute, product views per
minute with their average price, and the funnel of each session.

How the events get into the store: the service's log accepts only events with a
``video_id`` until named leaderboards land, so this test loads the store the way the
loader does (:func:`~rankstream.analytics.rows.load_rows` over log records), decoding the
game and shop events with the engine's own validation under a measure whose entity is
``user_id`` (so the store's ``video_id`` column holds the user; the queries never read it).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import msgspec
import pytest

from rankstream.analytics import AnalyticsStore
from rankstream.analytics.rows import load_rows
from rankstream.engine.measure import VIEWS, Measure
from rankstream.engine.wire import EventDecoder
from rankstream.generator.game import GameModel, GameSpec
from rankstream.generator.live import LiveModel
from rankstream.generator.shop import FUNNEL, ShopModel, ShopSpec
from rankstream.generator.traffic import SECOND, TrafficModel, TrafficSpec
from rankstream.log import LoggedBatch, decode_events, encode_events

START = 1_742_409_000_000  # 2025-03-19T18:30:00Z
DOC = Path(__file__).resolve().parents[2] / "docs" / "SCENARIOS.md"
BY_USER = EventDecoder(Measure("user_id", (), None, "events"))


def doc_queries() -> dict[str, str]:
    """The ```sql blocks of docs/SCENARIOS.md by their first line (``-- name``)."""
    blocks = re.findall(r"```sql\n(.*?)```", DOC.read_text(), re.DOTALL)
    named = {}
    for block in blocks:
        first, _, _ = block.partition("\n")
        named[first.removeprefix("--").strip()] = block
    return named


QUERIES = doc_queries()
ACTIVE_USERS = QUERIES["active users per minute"]
PRODUCT_VIEWS = QUERIES["product views per minute with average price"]
FUNNEL_PER_SESSION = QUERIES["funnel per session"]


@dataclass(frozen=True)
class Loaded:
    data_dir: Path
    shop_events: list[dict[str, Any]]
    """The shop events as loaded, read back from their JSON (numbers as ``Decimal``)."""


def raws(model: LiveModel, index: int, size: int, now_ms: int) -> list[bytes]:
    return [msgspec.json.encode(e) for e in model.batch(index, size, now_ms).events]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    """A store in ``data_dir/analytics`` holding 40 batches of shop sessions over about 13
    minutes, interleaved with game scores and video views; closed again, so a test opens it
    (or ``rankstream analytics query`` does)."""
    data_dir = tmp_path_factory.mktemp("scenario-sql")
    shop = ShopModel(ShopSpec(users=300, products=40, seed=5, run="s-"), START)
    game = GameModel(GameSpec(players=200, teams=8, seed=5, run="g-"), START)
    views = TrafficModel(TrafficSpec(videos=100, seed=5, run="v-"), START)
    shop_raws: list[bytes] = []
    store = AnalyticsStore(data_dir / "analytics", ttl_days=0)
    try:
        for index in range(40):
            now = START + index * 20 * SECOND
            shop_batch = raws(shop, index, 250, now)
            shop_raws += shop_batch
            records = [(shop_batch, BY_USER), (raws(game, index, 50, now), BY_USER)]
            records.append(
                (
                    [msgspec.json.encode(e) for e in views.batch(index, 50, now).events],
                    EventDecoder(VIEWS),
                )
            )
            for offset, (record_raws, decoder) in enumerate(records, start=3 * index):
                batch, raw = decode_events(encode_events(record_raws), decoder)
                assert len(batch) == len(record_raws), "every event passed validation"
                record = LoggedBatch(0, offset, offset + 1, 0, batch, raw)
                store.insert_views(load_rows([record]), f"scenario-sql:{offset}")
        assert store.query("SELECT count() AS n FROM views")[0]["n"] == 40 * 350
    finally:
        store.close()
    events = [json.loads(raw, parse_float=Decimal) for raw in shop_raws]
    return Loaded(data_dir, events)


@pytest.fixture(scope="module")
def store(loaded: Loaded) -> Iterator[AnalyticsStore]:
    opened = AnalyticsStore(loaded.data_dir / "analytics", read_only=True)
    yield opened
    opened.close()


def minute_of(ms: int) -> datetime:
    return datetime.fromtimestamp(ms // 60_000 * 60, UTC)


def utc(value: int | datetime) -> datetime:
    """A ``DateTime`` as the store's Arrow answer gives it (epoch seconds), as a datetime."""
    if isinstance(value, int):
        return datetime.fromtimestamp(value, UTC)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def cents(value: Decimal) -> int:
    exact = value * 100
    assert exact == exact.to_integral_value(), f"{value} has more than 2 decimals"
    return int(exact)


def half_up_cents(total_cents: int, count: int) -> Decimal:
    """``total_cents / count`` cents, rounded half away from zero to the cent, in dollars."""
    mean = Fraction(total_cents, count)
    rounded = int(mean + Fraction(1, 2)) if mean >= 0 else -int(-mean + Fraction(1, 2))
    return Decimal(rounded) / 100


def active_users_oracle(events: list[dict[str, Any]]) -> list[tuple[datetime, int]]:
    users: dict[datetime, set[str]] = defaultdict(set)
    for event in events:
        users[minute_of(event["timestamp"])].add(event["user_id"])
    return sorted((minute, len(who)) for minute, who in users.items())


def test_the_store_holds_other_events_the_queries_must_leave_out(store: AnalyticsStore) -> None:
    rows = store.query(
        "SELECT JSONExtractString(event, 'event_type') AS type, count() AS n FROM views"
        " GROUP BY type ORDER BY type"
    )
    types = {row["type"]: row["n"] for row in rows}
    assert types[""] == 40 * 100  # game scores and video views have no event_type
    assert set(types) == {"", *FUNNEL}


def test_active_users_per_minute(store: AnalyticsStore, loaded: Loaded) -> None:
    rows = store.query(ACTIVE_USERS)
    answer = [(utc(row["minute"]), row["active_users"]) for row in rows]
    expected = active_users_oracle(loaded.shop_events)
    assert len(expected) >= 10
    assert answer == expected


def test_product_views_per_minute_with_average_price(store: AnalyticsStore, loaded: Loaded) -> None:
    groups: dict[tuple[datetime, str], list[dict[str, Any]]] = defaultdict(list)
    for event in loaded.shop_events:
        if event["event_type"] == "product_view":
            groups[(minute_of(event["timestamp"]), event["product_id"])].append(event)
    expected = []
    for (minute, product), views in sorted(groups.items()):
        total = sum(cents(v["price"]) for v in views)
        expected.append(
            (
                minute,
                product,
                views[0]["product_name"],
                views[0]["product_category"],
                len(views),
                Decimal(total) / 100,
                half_up_cents(total, len(views)),
            )
        )
    rows = store.query(PRODUCT_VIEWS)
    answer = [
        (
            utc(r["minute"]),
            r["product_id"],
            r["product_name"],
            r["product_category"],
            r["view_count"],
            r["price_sum"],
            r["avg_price"],
        )
        for r in rows
    ]
    assert len(expected) >= 100
    assert answer == expected
    assert all(isinstance(r["avg_price"], Decimal) for r in rows), "exact, not a float"


def test_the_funnel_of_each_session(store: AnalyticsStore, loaded: Loaded) -> None:
    sessions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in loaded.shop_events:
        sessions[event["session_id"]].append(event)
    expected = []
    for session_id, events in sorted(sessions.items()):

        def of(kind: str, events: list[dict[str, Any]] = events) -> list[dict[str, Any]]:
            return [e for e in events if e["event_type"] == kind]

        expected.append(
            {
                "session_id": session_id,
                "user_id": events[0]["user_id"],
                "event_count": len(events),
                "page_views": len(of("page_view")),
                "product_views": len(of("product_view")),
                "add_to_carts": len(of("add_to_cart")),
                "purchases": len(of("purchase")),
                "products_viewed": len({e["product_id"] for e in of("product_view")}),
                "products_added_to_cart": len({e["product_id"] for e in of("add_to_cart")}),
                "orders": len({e["order_id"] for e in of("purchase")}),
            }
        )
    answer = store.query(FUNNEL_PER_SESSION)
    assert answer == expected
    assert sum(row["orders"] for row in answer) > 10, "some sessions bought something"
    for row in answer:
        assert row["purchases"] <= row["add_to_carts"] <= row["product_views"]


def test_the_queries_run_as_written_with_rankstream_analytics_query(
    loaded: Loaded, store: AnalyticsStore
) -> None:
    """The command opens the store itself (one process at a time): the module's read-only
    store is closed first. The query begins with a ``--`` comment, so ``--`` ends the
    options before it (as docs/SCENARIOS.md says)."""
    store.close()
    command = [sys.executable, "-m", "rankstream", "analytics", "query", "--data-dir"]
    done = subprocess.run(
        [*command, str(loaded.data_dir), "--format", "json", "--", ACTIVE_USERS],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    expected = [
        {"minute": minute.strftime("%Y-%m-%d %H:%M:%S"), "active_users": count}
        for minute, count in active_users_oracle(loaded.shop_events)
    ]
    assert rows == expected
