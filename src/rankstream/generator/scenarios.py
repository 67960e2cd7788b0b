"""The traffic scenarios ``rankstream generate --scenario`` can make, declared once.

Each :class:`Scenario` names a live model and says how to build it for one run;
:data:`SCENARIOS` is the registry the CLI's choices, the sender and the producer read:

- ``views``: video views (:mod:`rankstream.generator.traffic`), what the engine ranks today;
- ``game``: players' score events in teams, with streaky players
  (:mod:`rankstream.generator.game`);
- ``shop``: shoppers' sessions through page_view, product_view, add_to_cart and purchase
  (:mod:`rankstream.generator.shop`).

The fields of each scenario's events are documented in docs/GENERATOR.md and
docs/SCENARIOS.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from rankstream.errors import ConfigError
from rankstream.generator.game import GameModel, GameSpec
from rankstream.generator.live import LiveModel
from rankstream.generator.shop import ShopModel, ShopSpec
from rankstream.generator.traffic import TrafficModel, TrafficSpec


@dataclass(frozen=True, slots=True)
class RunSettings:
    """What the sender or producer knows of a run when it builds the model.

    ``videos``, ``malformed_share`` and ``spike_offset_s`` shape the ``views`` scenario
    only; the other scenarios have their own (default) sizes and make no malformed rows.
    """

    seed: int
    run: str
    start_ms: int
    videos: int = 10_000
    malformed_share: float = 0.0
    spike_offset_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Scenario:
    """One kind of live traffic: its name, a line of help, how to build its model, whether
    the sender registers video metadata (``PUT /videos``) for it first, and the event
    fields and leaderboards it is made for (what ``rankstream demo --scenario`` serves;
    ``None``: the default declarations)."""

    name: str
    summary: str
    build: Callable[[RunSettings], LiveModel]
    registers_metadata: bool = False
    fields: dict[str, str] | None = None
    boards: tuple[dict[str, Any], ...] | None = None


_GAME_WINDOWS = ["10m", "1h", "24h", "all"]
GAME_FIELDS = {"user_id": "string", "team_id": "string", "score": "integer", "region": "string"}
GAME_BOARDS: tuple[dict[str, Any], ...] = (
    # Top players, their hot streakers (rising 10m over 1h) and the team MVPs (players'
    # leaders by team_id); the notes' top teams. Players first: the first board's entity is
    # the topic's key in scale-out mode (the game producer keys by user_id), so teams are
    # counted there through a repartition topic.
    {
        "name": "players",
        "entity": "user_id",
        "measure": "sum(score)",
        "scopes": ["team_id", "region"],
        "windows": _GAME_WINDOWS,
    },
    {"name": "teams", "entity": "team_id", "measure": "sum(score)", "windows": _GAME_WINDOWS},
)
SHOP_FIELDS = {
    "event_type": "string",
    "user_id": "string",
    "product_id": "string",
    "product_category": "string",
    "region": "string",
    "quantity": "integer",
    "total_amount": "decimal(2)",
}
SHOP_BOARDS: tuple[dict[str, Any], ...] = (
    {
        "name": "product-views",
        "entity": "product_id",
        "filter": 'event_type == "product_view"',
        "scopes": ["product_category", "region"],
    },
    {
        "name": "product-purchases",
        "entity": "product_id",
        "measure": "sum(quantity)",
        "filter": 'event_type == "purchase"',
        "scopes": ["product_category"],
    },
    {
        "name": "product-revenue",
        "entity": "product_id",
        "measure": "sum(total_amount)",
        "filter": 'event_type == "purchase"',
        "scopes": ["region"],
    },
    {
        "name": "category-revenue",
        "entity": "product_category",
        "measure": "sum(total_amount)",
        "filter": 'event_type == "purchase"',
    },
    # Every event has a user: the most active users, and every event is accepted (so the
    # analytics store sees the whole funnel, page views included).
    {"name": "active-users", "entity": "user_id", "windows": ["10m", "1h", "24h"]},
)


def _views(run: RunSettings) -> TrafficModel:
    spec = TrafficSpec(
        videos=run.videos,
        seed=run.seed,
        malformed_share=run.malformed_share,
        run=run.run,
        spike_offset_s=run.spike_offset_s,
    )
    return TrafficModel(spec, run.start_ms)


def _only_views(name: str, run: RunSettings) -> None:
    if run.malformed_share:
        raise ConfigError(f"malformed events are made by the views scenario only, not {name}")


def _game(run: RunSettings) -> GameModel:
    _only_views("game", run)
    return GameModel(GameSpec(seed=run.seed, run=run.run), run.start_ms)


def _shop(run: RunSettings) -> ShopModel:
    _only_views("shop", run)
    return ShopModel(ShopSpec(seed=run.seed, run=run.run), run.start_ms)


SCENARIOS: Final[dict[str, Scenario]] = {
    s.name: s
    for s in (
        Scenario("views", "video views", _views, registers_metadata=True),
        Scenario(
            "game",
            "players' scores in teams, with hot streaks",
            _game,
            fields=GAME_FIELDS,
            boards=GAME_BOARDS,
        ),
        Scenario(
            "shop",
            "shop sessions: views, carts, purchases",
            _shop,
            fields=SHOP_FIELDS,
            boards=SHOP_BOARDS,
        ),
    )
}
"""Every scenario by name; ``views`` is the default."""

DEFAULT_SCENARIO: Final = "views"


def scenario_named(name: str) -> Scenario:
    """The scenario called ``name``, or :class:`ConfigError` listing the known ones."""
    found = SCENARIOS.get(name)
    if found is None:
        raise ConfigError(f"unknown scenario {name!r}; choose one of {', '.join(SCENARIOS)}")
    return found
