"""Board declarations: what parses, and a clear start-up error for each kind of mistake."""

from __future__ import annotations

from typing import Any

import pytest

from rankstream.boards import VIDEOS, VIEW_FIELDS, parse_boards, parse_window
from rankstream.engine.windows import DAY, HOUR, MINUTE
from rankstream.errors import ConfigError

FIELDS = {"user_id": "string", "team_id": "string", "score": "integer", "price": "decimal(2)"}


def test_a_full_declaration() -> None:
    (board,) = parse_boards(
        [
            {
                "name": "players",
                "entity": "user_id",
                "measure": "sum( price )",
                "scopes": ["team_id"],
                "filter": 'team_id in ["red", "blue"]',
                "windows": ["10m", "1h", "90d", "all"],
            }
        ],
        FIELDS,
    )
    assert board.sum_field == "price"
    assert board.scale == 2
    assert board.measure == "sum(price)"
    assert board.filter is not None
    assert board.filter.values == ("red", "blue")
    assert [w.name for w in board.windows] == ["10m", "1h", "90d", "all"]
    assert board.engine_measure.scope_fields == ("team_id",)
    assert board.engine_measure.quantity_scale == 2


def test_the_default_board_is_todays_videos() -> None:
    (board,) = parse_boards(
        [
            {
                "name": "videos",
                "entity": "video_id",
                "aliases": ["videoId"],
                "scopes": ["category", "region"],
                "value_name": "views",
            }
        ],
        VIEW_FIELDS,
    )
    assert board.windows == VIDEOS.windows
    assert board.scopes == VIDEOS.scopes
    assert board.engine_measure == VIDEOS.engine_measure


def test_windows() -> None:
    assert parse_window("10m").size == 10 * MINUTE
    assert parse_window("10m").resolution == MINUTE
    assert parse_window("36h").resolution == HOUR
    assert parse_window("2d").size == 2 * DAY
    assert parse_window("day").kind == "calendar"
    for bad in ("10s", "0m", "1w", "", "401d"):
        with pytest.raises(ConfigError):
            parse_window(bad)


@pytest.mark.parametrize(
    ("declaration", "fields", "message"),
    [
        ({"name": "b", "entity": "player"}, FIELDS, "entity field 'player' is not declared"),
        ({"name": "b", "entity": "score"}, FIELDS, "entity field 'score' is integer"),
        ({"name": "b", "entity": "user_id", "measure": "sum(team_id)"}, FIELDS, "is string"),
        ({"name": "b", "entity": "user_id", "measure": "avg(score)"}, FIELDS, "count or sum"),
        ({"name": "b", "entity": "user_id", "filter": 'kind == "x"'}, FIELDS, "not declared"),
        ({"name": "b", "entity": "user_id", "filter": "team_id == 3"}, FIELDS, "not a string"),
        ({"name": "b", "entity": "user_id", "filter": "team_id = 'x'"}, FIELDS, "FIELD == VALUE"),
        ({"name": "b", "entity": "user_id", "filter": 'team_id in "x"'}, FIELDS, "non-empty"),
        ({"name": "b", "entity": "user_id", "scopes": ["user_id"]}, FIELDS, "differ"),
        ({"name": "b", "entity": "user_id", "scopes": ["a", "b", "c"]}, FIELDS, "at most 2"),
        ({"name": "b", "entity": "user_id", "windows": ["1h", "1h"]}, FIELDS, "twice"),
        ({"name": "b", "entity": "user_id", "windows": ["1w"]}, FIELDS, "unknown window"),
        ({"name": "B!", "entity": "user_id"}, FIELDS, "board name"),
        ({"name": "b", "entity": "user_id", "colour": "red"}, FIELDS, "unknown key 'colour'"),
        ({"name": "b", "entity": "user_id"}, {"timestamp": "integer"}, "built in"),
        ({"name": "b", "entity": "user_id"}, {"user_id": "text"}, "unknown type"),
    ],
)
def test_bad_declarations(
    declaration: dict[str, Any], fields: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_boards([declaration], fields)


def test_names_are_unique_and_some_board_is_declared() -> None:
    board = {"name": "b", "entity": "user_id"}
    with pytest.raises(ConfigError, match="declared twice"):
        parse_boards([board, board], FIELDS)
    with pytest.raises(ConfigError, match="at least one"):
        parse_boards([], FIELDS)
