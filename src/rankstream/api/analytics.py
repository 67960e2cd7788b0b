"""``GET /analytics/...``: trends, range top-k, growth and breakdowns from the analytics store.

Every answer states its bounds (epoch ms, ``[from, to)``) and ``loaded_through``, the
newest event time the store has loaded, so a client knows how complete it is: events
accepted but not yet loaded are missing from it (``/status`` shows the loader's lag).
Inputs are read under the API's one set of rules; rules that involve two parameters
(``from`` before ``to``, at most :data:`MAX_TREND_BUCKETS` buckets) are 400s too. The
statements run in a worker thread; a failure of the store is a 503, never wrong numbers.

The same operations serve in three processes: the embedded service and the scale-out
``analytics-loader`` answer from the store they keep; a scale-out API replica given
``--analytics-url`` forwards each valid request to the loader
(:mod:`rankstream.api.analytics_forward`), and without it answers 503
``analytics_unavailable``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta
from starlette.responses import Response

from rankstream.api.answers import RankedVideo
from rankstream.api.errors import JSON, ApiError, bad_request
from rankstream.api.inputs import NO_CONTROL_CHARACTERS
from rankstream.api.operations import Answer, Call, Operation
from rankstream.api.videos import VideoPath
from rankstream.api.views import Label
from rankstream.config import ServiceConfig
from rankstream.engine.events import MAX_ID_CHARS

MAX_QUERY_MS = 4_102_444_800_000
"""2100-01-01T00:00:00Z: the latest time a query may name (ClickHouse's DateTime ends in
2106)."""

MAX_TREND_BUCKETS = 10_000
"""Most buckets one trend answers (a week of minutes is 10,080: ask by hour instead)."""

Time = Annotated[int, Meta(ge=0, le=MAX_QUERY_MS, description="Epoch milliseconds (UTC).")]
Grain = Literal["minute", "hour", "day", "week"]
Period = Literal["1d", "7d", "30d"]
By = Literal["region", "category", "device"]
VideoId = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_ID_CHARS,
        pattern=NO_CONTROL_CHARACTERS,
        description="The video id, as in events.",
    ),
]


# ---------------------------------------------------------------------- inputs


class TrendQuery(msgspec.Struct, kw_only=True):
    """The query of ``GET /analytics/videos/{video_id}/trend``."""

    start: Time = msgspec.field(name="from")
    end: Time = msgspec.field(name="to")
    grain: Annotated[Grain, Meta(description="Bucket length (UTC; weeks from Monday).")] = "day"


def _k(max_k: int) -> Any:
    return Annotated[int, Meta(ge=1, le=max_k, description="How many videos to return.")]


def _top_k_query(max_k: int) -> type[msgspec.Struct]:
    return msgspec.defstruct(
        "AnalyticsTopKQuery",
        [
            ("start", Time, msgspec.field(name="from")),
            ("end", Time, msgspec.field(name="to")),
            ("k", _k(max_k), 10),
            ("category", Label | None, None),
            ("region", Label | None, None),
        ],
        kw_only=True,
    )


def _growth_query(max_k: int) -> type[msgspec.Struct]:
    period = Annotated[Period, Meta(description="The period compared with the one before.")]
    end = Annotated[
        int,
        Meta(ge=0, le=MAX_QUERY_MS, description="End of the current period, epoch ms (now)."),
    ]
    return msgspec.defstruct(
        "GrowthQuery",
        [
            ("period", period, "7d"),
            ("k", _k(max_k), 10),
            ("category", Label | None, None),
            ("region", Label | None, None),
            ("end", end | None, msgspec.field(default=None, name="to")),
        ],
        kw_only=True,
    )


class BreakdownQuery(msgspec.Struct, kw_only=True):
    """The query of ``GET /analytics/breakdown``."""

    video_id: VideoId
    by: Annotated[By, Meta(description="What to break the views down by.")] = "region"
    start: Time = msgspec.field(name="from")
    end: Time = msgspec.field(name="to")


# ---------------------------------------------------------------------- answers


class TrendPoint(msgspec.Struct):
    """One bucket: its start (epoch ms), views and summed ``watch_time_sec``."""

    start: int
    views: int
    watch_time_sec: float


class TrendAnswer(msgspec.Struct):
    """Views of one video per bucket, every bucket overlapping ``[from, to)`` present
    (zero-filled); edge buckets count only the events inside the bounds."""

    video_id: str
    start: int = msgspec.field(name="from")
    end: int = msgspec.field(name="to")
    grain: str
    loaded_through: int | None
    buckets: list[TrendPoint]


class RangeTopKAnswer(msgspec.Struct):
    """The exact top k of ``[from, to)``: ``views`` counts every loaded event in it."""

    start: int = msgspec.field(name="from")
    end: int = msgspec.field(name="to")
    k: int
    category: str | None
    region: str | None
    loaded_through: int | None
    items: list[RankedVideo]


class RiserItem(msgspec.Struct):
    """A riser: views in the current and previous period, the change and the change
    relative to the previous period (``null`` when it had none)."""

    rank: int
    video_id: str
    current: int
    previous: int
    change: int
    relative: float | None


class GrowthAnswer(msgspec.Struct):
    """The videos viewed in the current period whose views grew most over the previous
    one, by absolute change (then video id)."""

    period: str
    current_from: int
    current_to: int
    previous_from: int
    previous_to: int
    k: int
    category: str | None
    region: str | None
    loaded_through: int | None
    items: list[RiserItem]


class ShareItem(msgspec.Struct):
    """One value (``null``: events without the field), its views and share of the total."""

    label: str | None
    views: int
    share: float


class BreakdownAnswer(msgspec.Struct):
    """A video's views in ``[from, to)`` by one field."""

    video_id: str
    by: str
    start: int = msgspec.field(name="from")
    end: int = msgspec.field(name="to")
    total: int
    loaded_through: int | None
    items: list[ShareItem]


# ---------------------------------------------------------------------- endpoints

_T = TypeVar("_T")


async def _ask(call: Call, question: Callable[[Any], _T]) -> _T:
    """Run ``question(queries)`` in a worker thread: 503 without a store or on its failure."""
    from rankstream.analytics import AnalyticsError

    analytics = call.state.backends.analytics
    if analytics is None:
        raise ApiError(
            503,
            "analytics_unavailable",
            "this process keeps no analytics store: the embedded service keeps one unless"
            " started with --no-analytics; a scale-out API replica forwards to"
            " `rankstream analytics-loader` when started with --analytics-url",
            {"Retry-After": "5"},
        )
    try:
        return await asyncio.to_thread(question, analytics.queries)
    except AnalyticsError as exc:
        raise ApiError(503, "analytics_failure", str(exc), {"Retry-After": "5"}) from None


def _loaded_through(call: Call) -> int | None:
    analytics = call.state.backends.analytics
    return None if analytics is None else analytics.loaded_through()


async def _forwarded(call: Call) -> bytes | None:
    """A replica without a store, given the loader's address: the loader's answer to the
    same request (:mod:`rankstream.api.analytics_forward`); else ``None``."""
    backends = call.state.backends
    forward = backends.analytics_forward
    if backends.analytics is not None or forward is None:
        return None
    scope = call.request.scope
    target = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    if scope["query_string"]:
        target += "?" + scope["query_string"].decode("latin-1")
    authorization = call.request.headers.get("authorization")
    return await asyncio.to_thread(forward.get, target, authorization)


def _ranked(call: Call, ranked: list[tuple[str, int]]) -> list[RankedVideo]:
    """Ranked ``(video_id, views)`` with this process's metadata joined."""
    metadata = call.state.metadata
    items = []
    for rank, (video_id, views) in enumerate(ranked, 1):
        meta = metadata.get(video_id)
        if meta is None:
            items.append(RankedVideo(rank, video_id, views))
        else:
            items.append(
                RankedVideo(rank, video_id, views, meta.title, meta.channel, meta.thumbnail_url)
            )
    return items


def _check_range(start: int, end: int) -> None:
    if start >= end:
        raise bad_request("invalid_query", f"from ({start}) must be before to ({end})")


def _json(body: msgspec.Struct) -> Response:
    return Response(msgspec.json.encode(body), media_type=JSON)


def _raw_json(body: bytes) -> Response:
    return Response(body, media_type=JSON)


_S = TypeVar("_S", bound=msgspec.Struct)


def _decoded(body: bytes, answer: type[_S]) -> _S:
    """The loader's answer as ``answer``; one that is not is a 503, never a 500."""
    try:
        return msgspec.json.decode(body, type=answer)
    except msgspec.DecodeError:
        raise ApiError(
            503,
            "analytics_unavailable",
            "the analytics loader's answer does not match this replica's version",
            {"Retry-After": "5"},
        ) from None


async def get_trend(call: Call) -> Response:
    """Views of one video per bucket, zero-filled."""
    from rankstream.analytics.periods import bucket_count

    q = call.query
    video_id = call.path.video_id
    _check_range(q.start, q.end)
    count = bucket_count(q.start, q.end, q.grain)
    if count > MAX_TREND_BUCKETS:
        raise bad_request(
            "invalid_query",
            f"{count} {q.grain} buckets asked; at most {MAX_TREND_BUCKETS}: use a coarser"
            " grain or a shorter range",
        )
    if (forwarded := await _forwarded(call)) is not None:
        return _raw_json(forwarded)
    loaded = _loaded_through(call)
    found = await _ask(call, lambda a: a.trend(video_id, q.start, q.end, q.grain))
    points = [TrendPoint(b.start, b.views, b.watch_time_sec) for b in found]
    return _json(TrendAnswer(video_id, q.start, q.end, q.grain, loaded, points))


async def get_top_k(call: Call) -> Response:
    """The exact top k over any range."""
    q = call.query
    _check_range(q.start, q.end)
    if (forwarded := await _forwarded(call)) is not None:  # joined with our metadata
        answer = _decoded(forwarded, RangeTopKAnswer)
        answer.items = _ranked(call, [(item.video_id, item.views) for item in answer.items])
        return _json(answer)
    loaded = _loaded_through(call)
    ranked = await _ask(call, lambda a: a.top_k(q.start, q.end, q.k, q.category, q.region))
    items = _ranked(call, [(item.video_id, item.views) for item in ranked])
    return _json(RangeTopKAnswer(q.start, q.end, q.k, q.category, q.region, loaded, items))


async def get_growth(call: Call) -> Response:
    """The biggest risers of a period over the one before."""
    from rankstream.analytics.periods import PERIODS

    q = call.query
    length = PERIODS[q.period]
    end = call.state.clock() if q.end is None else q.end
    if end < 2 * length:
        raise bad_request("invalid_query", f"to ({end}) leaves no previous {q.period} period")
    if (forwarded := await _forwarded(call)) is not None:
        return _raw_json(forwarded)
    loaded = _loaded_through(call)
    risers = await _ask(call, lambda a: a.growth(end, length, q.k, q.category, q.region))
    items = [
        RiserItem(rank, r.video_id, r.current, r.previous, r.change, r.relative)
        for rank, r in enumerate(risers, 1)
    ]
    answer = GrowthAnswer(
        q.period, end - length, end, end - 2 * length, end - length, q.k, q.category, q.region,
        loaded, items,
    )  # fmt: skip
    return _json(answer)


async def get_breakdown(call: Call) -> Response:
    """A video's views by region, category or device, with shares."""
    q = call.query
    _check_range(q.start, q.end)
    if (forwarded := await _forwarded(call)) is not None:
        return _raw_json(forwarded)
    loaded = _loaded_through(call)
    shares = await _ask(call, lambda a: a.breakdown(q.video_id, q.by, q.start, q.end))
    total = sum(s.views for s in shares)
    items = [ShareItem(s.label, s.views, s.views / total) for s in shares]
    return _json(BreakdownAnswer(q.video_id, q.by, q.start, q.end, total, loaded, items))


def operations(config: ServiceConfig) -> list[Operation]:
    """The declarations of this module's endpoints for ``config``."""
    unavailable = Answer(
        "No analytics store in this process (nor an analytics loader to forward to, or it"
        " does not answer), or the store failed (retry)",
        headers=("Retry-After",),
    )
    bad = Answer("An input is invalid, or from is not before to")
    return [
        Operation(
            "GET",
            "/analytics/videos/{video_id:text}/trend",
            get_trend,
            summary="Views of one video per minute, hour, day or week over any range",
            access="read",
            path_params=VideoPath,
            query=TrendQuery,
            answers={
                200: Answer("Every bucket of the range, zero-filled", TrendAnswer),
                400: Answer(f"{bad.description}, or more than {MAX_TREND_BUCKETS} buckets"),
                503: unavailable,
            },
        ),
        Operation(
            "GET",
            "/analytics/top-k",
            get_top_k,
            summary="The exact top k over any range [from, to), optionally by category, region",
            access="read",
            query=_top_k_query(config.max_k),
            answers={
                200: Answer("The ranking, with its bounds", RangeTopKAnswer),
                400: bad,
                503: unavailable,
            },
        ),
        Operation(
            "GET",
            "/analytics/growth",
            get_growth,
            summary="Biggest risers: this period against the one before",
            access="read",
            query=_growth_query(config.max_k),
            answers={
                200: Answer("Risers by absolute change", GrowthAnswer),
                400: Answer("An input is invalid"),
                503: unavailable,
            },
        ),
        Operation(
            "GET",
            "/analytics/breakdown",
            get_breakdown,
            summary="A video's views by region, category or device over [from, to)",
            access="read",
            query=BreakdownQuery,
            answers={
                200: Answer("Counts and shares", BreakdownAnswer),
                400: bad,
                503: unavailable,
            },
        ),
    ]
