"""The HTTP app of ``rankstream analytics-loader``: ``/analytics/*`` from its store, and how
its loading goes.

The scale-out analytics store lives in this process (chDB holds a store in one process),
so the process serves the ``/analytics/*`` operations of :mod:`rankstream.api.analytics`
itself (API replicas forward to it), plus ``/health``, ``/status`` (per partition: loaded
position, topic end, lag; the store's size), ``/metrics`` and the API description. The
operations, input rules, errors and request ids are the service's own; the loader keeps
no video metadata, so its top-k items carry none (a replica joins its own).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.responses import Response

from rankstream import __version__
from rankstream.analytics.kafka_loader import KafkaAnalyticsLoader
from rankstream.api import analytics, docs
from rankstream.api.answers import HealthAnswer
from rankstream.api.app import _router_error
from rankstream.api.auth import TokenGuard
from rankstream.api.errors import JSON, ApiError
from rankstream.api.metrics import build_registry, store_metrics
from rankstream.api.middleware import ErrorBoundary
from rankstream.api.openapi import build_openapi, docs_page
from rankstream.api.operations import Answer, Call, Operation, routes
from rankstream.api.state import AppState
from rankstream.backends import Backends
from rankstream.boards import BoardRouter
from rankstream.config import ServiceConfig
from rankstream.engine import TopKResult
from rankstream.errors import RankingUnavailable, StorageFailure
from rankstream.service.deadletters import DeadLetters
from rankstream.service.pipeline import wall_clock_ms
from rankstream.service.writer import Submission
from rankstream.store.metadata import VideoMetadata

# ---------------------------------------------------------------------- answers


class LoaderPartition(msgspec.Struct):
    """One assigned partition: the offset loaded up to (``null`` until opened), the
    topic's end, ``lag = end - loaded``, the offset of the newest engine checkpoint,
    events screened out since the partition was opened (duplicates, too new, over
    capacity) and why its last attempt failed (``null`` when it works)."""

    partition: int
    loaded: int | None
    end: int | None
    lag: int | None
    checkpointed: int | None
    events_refused: int | None
    problem: str | None


class LoaderStatus(msgspec.Struct):
    """The analytics loader: topic, group, every assigned partition, the total lag, the
    newest event time loaded (epoch ms), events loaded since start, raw rows held, bytes
    on disk, failures since start and the current problems (``null``: none)."""

    mode: str
    topic: str
    group: str
    partitions: list[LoaderPartition]
    lag: int
    loaded_through: int | None
    events_loaded: int
    rows: int
    bytes: int
    failures: int
    problem: str | None


# ---------------------------------------------------------------------- endpoints


def _loader(call: Call) -> KafkaAnalyticsLoader:
    loader = call.state.backends.analytics
    assert isinstance(loader, KafkaAnalyticsLoader)  # this app is built with one
    return loader


async def get_health(call: Call) -> Response:
    """200 while the loading thread runs; 503 once it has stopped."""
    if _loader(call).finished:
        raise ApiError(503, "unhealthy", "the loading thread has stopped", {"Retry-After": "5"})
    return Response(msgspec.json.encode(HealthAnswer("ok")), media_type=JSON)


async def get_status(call: Call) -> Response:
    """Per-partition progress and the store's size."""
    status = await asyncio.to_thread(_loader(call).status)
    answer = msgspec.convert({"mode": "analytics-loader", **status}, LoaderStatus)
    return Response(msgspec.json.encode(answer), media_type=JSON)


async def get_metrics(call: Call) -> Response:
    """Prometheus text."""
    registry = call.state.registry
    text = await asyncio.to_thread(generate_latest, registry)
    return Response(text, media_type=CONTENT_TYPE_LATEST)


def operations(config: ServiceConfig) -> list[Operation]:
    """Every operation of the loader's app."""
    return [
        *analytics.operations(config),
        Operation(
            "GET",
            "/health",
            get_health,
            summary="Liveness: 200 while the loader runs",
            access="public",
            answers={
                200: Answer("Healthy", HealthAnswer),
                503: Answer("The loading thread has stopped", headers=("Retry-After",)),
            },
        ),
        Operation(
            "GET",
            "/status",
            get_status,
            summary="Loaded position, topic end and lag per partition; the store's size",
            access="read",
            answers={200: Answer("Status", LoaderStatus)},
        ),
        Operation(
            "GET",
            "/metrics",
            get_metrics,
            summary="Prometheus metrics",
            access="read",
            answers={200: Answer("Prometheus text format 0.0.4", {"type": "string"}, "text/plain")},
        ),
        *docs.operations(),
    ]


class LoaderCollector(Collector):
    """The loader's figures, read from its status at scrape time."""

    def __init__(self, status: Callable[[], dict[str, Any]]) -> None:
        self.status = status

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        status = self.status()
        loaded = GaugeMetricFamily(
            "rankstream_analytics_loaded_offset",
            "Offset each partition is loaded up to (the next one to load).",
            labels=["partition"],
        )
        lag = GaugeMetricFamily(
            "rankstream_analytics_lag_messages",
            "Messages of each partition not yet loaded (topic end - loaded).",
            labels=["partition"],
        )
        for p in status["partitions"]:
            if p["loaded"] is not None:
                loaded.add_metric([str(p["partition"])], p["loaded"])
            if p["lag"] is not None:
                lag.add_metric([str(p["partition"])], p["lag"])
        yield loaded
        yield lag
        yield from store_metrics(status)


# ---------------------------------------------------------------------- the app


class _NoViews:
    """What the loader's app does not serve (no route reaches it): views and rankings."""

    dead_letters = DeadLetters(0)

    def admit(self) -> None:
        raise StorageFailure("the analytics loader takes no views: send them to an API replica")

    def submit(self, submission: Submission) -> Future[tuple[bytes, bool]]:
        raise StorageFailure("the analytics loader takes no views: send them to an API replica")

    def ingest_problem(self) -> str | None:
        return None

    def status(self) -> dict[str, Any]:
        return {}

    def top_k(
        self, window: str, k: int, category: str | None = None, region: str | None = None
    ) -> TopKResult:
        raise RankingUnavailable("the analytics loader serves no rankings: ask an API replica")


class _NoMetadata:
    """The loader keeps no video metadata (replicas join theirs into forwarded answers)."""

    version = 0

    def put(self, video_id: str, metadata: VideoMetadata) -> None:
        raise StorageFailure("the analytics loader keeps no metadata")

    def get(self, video_id: str) -> VideoMetadata | None:
        return None

    def __len__(self) -> int:
        return 0

    def close(self) -> None:
        pass


def create_loader_app(
    config: ServiceConfig,
    open_loader: Callable[[ServiceConfig], KafkaAnalyticsLoader],
    clock: Callable[[], int] = wall_clock_ms,
) -> Starlette:
    """The ASGI app. Its lifespan opens the loader (``open_loader(config)``, blocking) and
    runs it on a thread of its own; on shutdown it stops it (after the batch at hand),
    checkpoints and closes the store."""
    declared = operations(config)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        loader = await asyncio.to_thread(open_loader, config)
        thread = threading.Thread(target=loader.run, name="rankstream-analytics", daemon=True)
        none = _NoViews()
        backends = Backends(
            ingest=none,
            rankings=none,
            metadata=_NoMetadata(),
            collectors=[LoaderCollector(loader.status)],
            analytics=loader,
        )
        registry, metrics = build_registry(backends.collectors)
        guard = TokenGuard(
            [t.get_secret_value() for t in config.write_token],
            [t.get_secret_value() for t in config.read_token],
        )
        router = BoardRouter.of(config.board_specs())
        state = AppState(config, clock, backends, router, guard, registry, metrics)
        document = build_openapi(declared, guard, version=__version__)
        state.openapi = msgspec.json.encode(document)
        state.docs_html = docs_page(document)
        thread.start()
        try:
            yield {"app": state}
        finally:
            loader.stop()
            await asyncio.to_thread(thread.join)
            await asyncio.to_thread(loader.close)

    return Starlette(
        routes=routes(declared),
        lifespan=lifespan,
        middleware=[Middleware(ErrorBoundary)],
        exception_handlers={HTTPException: _router_error},
    )
