"""The HTTP API of the embedded service.

Starlette (the ASGI toolkit under FastAPI) with msgspec for JSON: no per-request model
layer, so the ingest path costs one decode, one validation pass and one encode. Every
client mistake is a JSON ``{"error", "message"}`` with a 4xx status, produced in one place
(:func:`_error`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from rankstream.api.metrics import build_registry
from rankstream.api.openapi import DOCS_HTML, OPENAPI
from rankstream.checkpoint import FileCheckpointStore
from rankstream.config import ServiceConfig
from rankstream.engine import TopKResult
from rankstream.engine.events import MAX_ID_CHARS, check_text
from rankstream.engine.wire import EventDecoder
from rankstream.errors import InvalidEvent, InvalidQuery
from rankstream.log import SqliteEventLog
from rankstream.service.deadletters import DeadLetters
from rankstream.service.intake import BadBody, build_submission, split_body
from rankstream.service.pipeline import (
    IngestPipeline,
    PipelineSettings,
    StorageFailure,
    wall_clock_ms,
)
from rankstream.store import MetadataStore, VideoMetadata

JSON = "application/json"
_MAX_KEY_CHARS = 200
_MAX_DEAD_LETTERS = 1000


class ApiItem(msgspec.Struct, omit_defaults=True):
    """A ranked item with its metadata, when known."""

    rank: int
    video_id: str
    views: int
    title: str | None = None
    channel: str | None = None
    thumbnail_url: str | None = None


class TopKAnswer(msgspec.Struct):
    """The body of ``GET /views/top-k``."""

    window: str
    window_start: int | None
    window_end: int | None
    as_of: int | None
    k: int
    category: str | None
    region: str | None
    items: list[ApiItem]


class MetadataBody(msgspec.Struct, forbid_unknown_fields=True):
    """What ``PUT /videos/{video_id}`` accepts; bounded so a client cannot bloat memory."""

    title: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    channel: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    thumbnail_url: Annotated[str, msgspec.Meta(max_length=2048)] | None = None
    duration_s: Annotated[float, msgspec.Meta(ge=0)] | None = None
    category: Annotated[str, msgspec.Meta(max_length=64)] | None = None


@dataclass
class _Services:
    pipeline: IngestPipeline
    metadata: MetadataStore
    registry: CollectorRegistry
    latency: Histogram


def _error(status: int, code: str, message: str) -> Response:
    body = msgspec.json.encode({"error": code, "message": message})
    return Response(body, status_code=status, media_type=JSON)


def _json(value: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(value), status_code=status, media_type=JSON)


def create_app(config: ServiceConfig, clock: Callable[[], int] = wall_clock_ms) -> Starlette:
    """The ASGI app. Its lifespan recovers the engine (checkpoint + log) before serving and
    drains, checkpoints and closes on shutdown."""
    config.validate()
    engine_config = config.engine_config()
    decoder = EventDecoder(engine_config.measure)
    services: list[_Services] = []
    # Encoded top-k answers: reused while the pipeline hands back the same result object
    # (nothing applied since) and no metadata changed.
    encoded: dict[tuple[str | None, ...], tuple[TopKResult, int, bytes]] = {}

    def current() -> _Services:
        return services[0]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        data = config.data_dir
        pipeline = IngestPipeline(
            engine_config,
            SqliteEventLog(data / "log.sqlite3", config.sync),
            FileCheckpointStore(data / "checkpoints"),
            PipelineSettings(
                tick_interval=config.tick_interval,
                checkpoint_interval=config.checkpoint_interval,
                checkpoint_every_events=config.checkpoint_every_events,
                idempotency_ttl=config.idempotency_ttl,
            ),
            clock=clock,
            dead_letters=DeadLetters(config.dead_letter_capacity),
        )
        await asyncio.to_thread(pipeline.start)
        metadata = MetadataStore(data / "metadata.sqlite3")
        registry, latency = build_registry(pipeline)
        services.append(_Services(pipeline, metadata, registry, latency))
        try:
            yield
        finally:
            await asyncio.to_thread(pipeline.close)
            metadata.close()
            services.clear()

    async def post_views(request: Request) -> Response:
        svc = current()
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > config.max_body_bytes:
            return _error(413, "body_too_large", f"the body exceeds {config.max_body_bytes} bytes")
        key = request.headers.get("idempotency-key")
        if key is not None and not (1 <= len(key) <= _MAX_KEY_CHARS and key.isprintable()):
            return _error(400, "invalid_idempotency_key", "Idempotency-Key must be 1-200 chars")
        try:
            body = await _read_capped(request, config.max_body_bytes)
        except BadBody as exc:
            return _error(exc.status, exc.code, str(exc))
        except ClientDisconnect:
            return _error(400, "client_disconnected", "the body was not received in full")
        ndjson = request.headers.get("content-type", "").startswith("application/x-ndjson")
        try:
            raws = split_body(body, ndjson, config.max_events_per_request)
            submission = build_submission(
                raws, decoder, svc.pipeline.dead_letters, clock(), key, ndjson
            )
        except BadBody as exc:
            return _error(exc.status, exc.code, str(exc))
        try:
            answer, replayed = await asyncio.wrap_future(svc.pipeline.submit(submission))
        except StorageFailure as exc:
            return _error(503, "storage_failure", str(exc))
        headers = {"Idempotent-Replayed": "true"} if replayed else None
        return Response(answer, status_code=202, media_type=JSON, headers=headers)

    async def get_top_k(request: Request) -> Response:
        svc = current()
        params = request.query_params
        window = params.get("window", "24h")
        raw_k = params.get("k", "10")
        if not raw_k.isdigit() or len(raw_k) > 6:
            return _error(400, "invalid_query", f"k must be an integer from 1 to {config.max_k}")
        started = time.perf_counter()
        try:
            result = svc.pipeline.top_k(
                window, int(raw_k), params.get("category"), params.get("region")
            )
        except InvalidQuery as exc:
            return _error(400, "invalid_query", str(exc))
        key = (window, raw_k, params.get("category"), params.get("region"))
        cached = encoded.get(key)
        if cached is not None and cached[0] is result and cached[1] == svc.metadata.version:
            body = cached[2]  # the same ranking and metadata: the same bytes
        else:
            body = msgspec.json.encode(_answer(result, svc.metadata))
            if len(encoded) >= 4096:
                encoded.clear()
            encoded[key] = (result, svc.metadata.version, body)
        svc.latency.labels(window).observe(time.perf_counter() - started)
        return Response(body, media_type=JSON)

    async def put_video(request: Request) -> Response:
        svc = current()
        video_id = request.path_params["video_id"]
        try:
            check_text("video_id", video_id, MAX_ID_CHARS)
        except InvalidEvent as exc:
            return _error(400, "invalid_video_id", str(exc))
        try:
            body = await _read_capped(request, 64 * 1024)
            meta = msgspec.json.decode(body, type=MetadataBody)
        except BadBody as exc:
            return _error(exc.status, exc.code, str(exc))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return _error(400, "invalid_metadata", str(exc))
        stored = VideoMetadata(**msgspec.structs.asdict(meta))
        await asyncio.to_thread(svc.metadata.put, video_id, stored)
        return _json({"video_id": video_id, **msgspec.structs.asdict(stored)})

    async def get_video(request: Request) -> Response:
        video_id = request.path_params["video_id"]
        found = current().metadata.get(video_id)
        if found is None:
            return _error(404, "not_found", f"no metadata for video {video_id[:256]!r}")
        return _json({"video_id": video_id, **msgspec.structs.asdict(found)})

    async def get_status(request: Request) -> Response:
        svc = current()
        status = svc.pipeline.status()
        status["videos_with_metadata"] = len(svc.metadata)
        status["dead_letters"] = len(svc.pipeline.dead_letters)
        return _json(status)

    async def get_health(request: Request) -> Response:
        failure = current().pipeline.failure
        if failure is not None:
            return _error(503, "storage_failure", failure)
        return _json({"status": "ok"})

    async def get_metrics(request: Request) -> Response:
        return Response(generate_latest(current().registry), media_type=CONTENT_TYPE_LATEST)

    async def get_dead_letters(request: Request) -> Response:
        raw = request.query_params.get("limit", "100")
        if not raw.isdigit() or not 1 <= int(raw) <= _MAX_DEAD_LETTERS:
            return _error(400, "invalid_query", f"limit must be 1 to {_MAX_DEAD_LETTERS}")
        letters = current().pipeline.dead_letters
        return _json({"totals": dict(letters.totals), "items": letters.newest(int(raw))})

    async def get_openapi(request: Request) -> Response:
        return _json(OPENAPI)

    async def get_docs(request: Request) -> Response:
        return HTMLResponse(DOCS_HTML)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        codes = {404: "not_found", 405: "method_not_allowed"}
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        return _error(status, codes.get(status, "http_error"), str(detail))

    routes = [
        Route("/views", post_views, methods=["POST"]),
        Route("/views/top-k", get_top_k, methods=["GET"]),
        Route("/videos/{video_id:path}", put_video, methods=["PUT"]),
        Route("/videos/{video_id:path}", get_video, methods=["GET"]),
        Route("/status", get_status, methods=["GET"]),
        Route("/health", get_health, methods=["GET"]),
        Route("/metrics", get_metrics, methods=["GET"]),
        Route("/dead-letters", get_dead_letters, methods=["GET"]),
        Route("/openapi.json", get_openapi, methods=["GET"]),
        Route("/docs", get_docs, methods=["GET"]),
    ]
    return Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error}
    )


async def _read_capped(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) once it passes ``limit`` bytes."""
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadBody("body_too_large", f"the body exceeds {limit} bytes", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(result: TopKResult, metadata: MetadataStore) -> TopKAnswer:
    items = []
    for item in result.items:
        meta = metadata.get(item.video_id)
        if meta is None:
            items.append(ApiItem(item.rank, item.video_id, item.views))
        else:
            items.append(
                ApiItem(
                    item.rank,
                    item.video_id,
                    item.views,
                    meta.title,
                    meta.channel,
                    meta.thumbnail_url,
                )
            )
    return TopKAnswer(
        window=result.window,
        window_start=result.start,
        window_end=result.end,
        as_of=result.as_of,
        k=result.k,
        category=result.category,
        region=result.region,
        items=items,
    )
