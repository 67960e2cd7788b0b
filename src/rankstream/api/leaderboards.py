"""``GET /leaderboards`` and each board's ``top-k``, ``rising`` and ``leaders``.

The boards are declared in the configuration (:mod:`rankstream.boards.spec`); these
operations are generated from the declarations: the ``window`` parameter takes any board's
window, and every scope field of any board is a query parameter (a board answers for its
own, and refuses the others with a 400). Values are exact: a count, or a sum in the board's
declared decimal places, written as a JSON number with exactly those places (``19.99``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta
from starlette.responses import Response

from rankstream.api.errors import JSON, ApiError
from rankstream.api.operations import Answer, Call, Operation
from rankstream.api.views import Label
from rankstream.boards import BoardSpec
from rankstream.config import ServiceConfig
from rankstream.engine.events import MAX_LABEL_CHARS
from rankstream.serving import BoardSource

_encode = msgspec.json.Encoder(decimal_format="number").encode
Value = int | Decimal


class BoardAnswer(msgspec.Struct):
    """One declared board."""

    name: str
    entity: str
    measure: str
    scale: int
    scopes: list[str]
    filter: dict[str, Any] | None
    windows: list[str]
    value_name: str


class BoardsAnswer(msgspec.Struct):
    """Every declared board."""

    boards: list[BoardAnswer]


class RankedEntity(msgspec.Struct):
    rank: int
    entity: str
    value: Value


class BoardTopKAnswer(msgspec.Struct):
    """An exact ranking of ``board``: each ``value`` is the count or sum of the accepted
    matching events in ``[window_start, window_end)`` (both null for ``all``)."""

    board: str
    window: str
    window_start: int | None
    window_end: int | None
    as_of: int | None
    k: int
    scopes: dict[str, str]
    items: list[RankedEntity]


class Bounds(msgspec.Struct):
    window: str
    start: int | None
    end: int | None


class RisingEntity(msgspec.Struct):
    rank: int
    entity: str
    short_value: Value
    long_value: Value
    short_rate: float
    long_rate: float
    ratio: float


class RisingAnswer(msgspec.Struct):
    """Entities whose rate over ``short`` most exceeds their rate over ``long`` (rates per
    minute; ``ratio`` = short rate / long rate; entities below ``min`` left out)."""

    board: str
    short: Bounds
    long: Bounds
    as_of: int | None
    k: int
    min: Value
    items: list[RisingEntity]


class GroupLeader(msgspec.Struct):
    rank: int
    group: str
    entity: str
    value: Value
    total: Value
    share: float


class LeadersAnswer(msgspec.Struct):
    """For each group of ``by``, its top entity and that entity's share of the group's
    total in the window; groups ranked by the leader's value."""

    board: str
    by: str
    window: Bounds
    as_of: int | None
    k: int
    items: list[GroupLeader]


class BoardPath(msgspec.Struct):
    """The path of one board."""

    name: Annotated[str, Meta(pattern="^[a-z][a-z0-9_-]{0,63}$", description="The board.")]


def _scope_fields(boards: tuple[BoardSpec, ...]) -> list[str]:
    return sorted({scope for b in boards for scope in b.scopes})


def _windows(boards: tuple[BoardSpec, ...]) -> Any:
    return Literal[tuple(dict.fromkeys(w.name for b in boards for w in b.windows))]


def _query(name: str, fields: list[tuple[str, Any, Any]], scopes: list[str]) -> type:
    return msgspec.defstruct(
        name, [*fields, *((scope, Label | None, None) for scope in scopes)], kw_only=True
    )


def _source(call: Call) -> BoardSource:
    source = call.state.backends.boards
    if source is None:
        raise ApiError(
            503,
            "leaderboards_unavailable",
            "this process does not serve the leaderboards (it keeps no rankings)",
            {"Retry-After": "60"},
        )
    return source


def _board(call: Call) -> BoardSpec:
    name = call.path.name
    for board in _source(call).board_specs():
        if board.name == name:
            return board
    raise ApiError(404, "not_found", f"no board {name!r} is declared")


def _scopes(call: Call, board: BoardSpec, scopes: list[str]) -> dict[str, str]:
    given = {s: getattr(call.query, s) for s in scopes if getattr(call.query, s) is not None}
    return given


def _value(board: BoardSpec, units: int) -> Value:
    return units if board.scale == 0 else Decimal(units).scaleb(-board.scale)


async def list_boards(call: Call) -> Response:
    """Every declared board."""
    boards = [BoardAnswer(**b.describe()) for b in _source(call).board_specs()]
    return Response(_encode(BoardsAnswer(boards)), media_type=JSON)


def operations(config: ServiceConfig) -> list[Operation]:
    """The declarations of this module's endpoints for the boards ``config`` declares."""
    boards = config.board_specs()
    scopes = _scope_fields(boards)
    window_type = _windows(boards)
    k_type = Annotated[int, Meta(ge=1, le=config.served_k, description="How many to return.")]
    first = boards[0].windows[0].name
    top_k_query = _query(
        "BoardTopKQuery",
        [
            ("window", Annotated[window_type, Meta(description="A window of the board.")], first),
            ("k", k_type, 10),
        ],
        scopes,
    )
    sliding = [w.name for b in boards for w in b.windows if w.kind == "sliding"] or [first]
    rising_query = _query(
        "RisingQuery",
        [
            (
                "short",
                Annotated[window_type, Meta(description="A shorter sliding window.")],
                sliding[0],
            ),
            (
                "long",
                Annotated[window_type, Meta(description="A longer sliding window.")],
                sliding[-1],
            ),
            ("k", k_type, 10),
            (
                "min",
                Annotated[
                    str,
                    Meta(
                        pattern=r"^[0-9]{1,15}(\.[0-9]{1,6})?$",
                        description="Leave out entities whose short value is below this"
                        " (a number with at most the board's decimal places).",
                    ),
                ],
                "1",
            ),
        ],
        scopes,
    )
    by_type: Any = (
        Literal[tuple(scopes)] if scopes else Annotated[str, Meta(max_length=MAX_LABEL_CHARS)]
    )
    leaders_query = msgspec.defstruct(
        "LeadersQuery",
        [
            ("by", Annotated[by_type, Meta(description="A scope field of the board.")]),
            ("window", Annotated[window_type, Meta(description="A window of the board.")], first),
            ("k", k_type, 10),
        ],
        kw_only=True,
    )

    async def top_k(call: Call) -> Response:
        board = _board(call)
        q = call.query
        wanted = _scopes(call, board, scopes)
        result = _source(call).board_top_k(board.name, q.window, q.k, wanted)
        answer = BoardTopKAnswer(
            board=board.name,
            window=result.window,
            window_start=result.start,
            window_end=result.end,
            as_of=result.as_of,
            k=result.k,
            scopes=wanted,
            items=[RankedEntity(i.rank, i.video_id, _value(board, i.views)) for i in result.items],
        )
        return Response(_encode(answer), media_type=JSON)

    async def rising_(call: Call) -> Response:
        board = _board(call)
        q = call.query
        minimum = _units(board, q.min)
        found = _source(call).rising(
            board.name, q.short, q.long, q.k, minimum, _scopes(call, board, scopes)
        )
        answer = RisingAnswer(
            board=board.name,
            short=Bounds(found.short.window, found.short.start, found.short.end),
            long=Bounds(found.long.window, found.long.start, found.long.end),
            as_of=found.as_of,
            k=found.k,
            min=_value(board, found.minimum),
            items=[
                RisingEntity(
                    i.rank,
                    i.entity,
                    _value(board, i.short_value),
                    _value(board, i.long_value),
                    i.short_rate / 10**board.scale,
                    i.long_rate / 10**board.scale,
                    i.ratio,
                )
                for i in found.items
            ],
        )
        return Response(_encode(answer), media_type=JSON)

    async def leaders_(call: Call) -> Response:
        board = _board(call)
        q = call.query
        found = _source(call).leaders(board.name, q.by, q.window, q.k)
        answer = LeadersAnswer(
            board=board.name,
            by=found.by,
            window=Bounds(found.span.window, found.span.start, found.span.end),
            as_of=found.as_of,
            k=found.k,
            items=[
                GroupLeader(
                    i.rank,
                    i.group,
                    i.entity,
                    _value(board, i.value),
                    _value(board, i.total),
                    i.share,
                )
                for i in found.items
            ],
        )
        return Response(_encode(answer), media_type=JSON)

    unavailable = Answer("The leaderboards cannot be served here or now", headers=("Retry-After",))
    return [
        Operation(
            "GET",
            "/leaderboards",
            list_boards,
            summary="The declared leaderboards: entity, measure, scopes, filter, windows",
            access="read",
            answers={200: Answer("Every declared board", BoardsAnswer), 503: unavailable},
        ),
        Operation(
            "GET",
            "/leaderboards/{name}/top-k",
            top_k,
            summary="The exact top k of a board in a window, optionally narrowed by its scopes",
            access="read",
            path_params=BoardPath,
            query=top_k_query,
            answers={
                200: Answer("The ranking, with its window bounds", BoardTopKAnswer),
                400: Answer("A window, scope or k the board does not have"),
                404: Answer("No such board"),
                503: unavailable,
            },
        ),
        Operation(
            "GET",
            "/leaderboards/{name}/rising",
            rising_,
            summary="Hot streakers: entities whose short-window rate most exceeds their"
            " long-window rate",
            access="read",
            path_params=BoardPath,
            query=rising_query,
            answers={
                200: Answer("The risers, with both windows' bounds", RisingAnswer),
                400: Answer("Windows that are not the board's sliding ones, short not shorter"),
                404: Answer("No such board"),
                503: unavailable,
            },
        ),
        Operation(
            "GET",
            "/leaderboards/{name}/leaders",
            leaders_,
            summary="Group MVPs: each group's top entity and its share, groups ranked by it",
            access="read",
            path_params=BoardPath,
            query=leaders_query,
            answers={
                200: Answer("The group leaders, with the window's bounds", LeadersAnswer),
                400: Answer("A field that is not one of the board's scopes"),
                404: Answer("No such board"),
                503: unavailable,
            },
        ),
    ]


def _units(board: BoardSpec, value: str) -> int:
    """``value`` in the board's scaled units; a 400 if it has more places than declared."""
    shifted = Decimal(value).scaleb(board.scale)
    if shifted != shifted.to_integral_value() or shifted < 1:
        raise ApiError(
            400,
            "invalid_query",
            f"min must be positive with at most {board.scale} decimal places",
        )
    return int(shifted)
