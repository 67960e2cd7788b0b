"""What the app's endpoints share, built by the lifespan and handed to each call.

The lifespan opens the pipeline (recovering the engine from checkpoint and log) and the
metadata store before the first request, and closes them (draining, checkpointing) after the
last. Endpoints reach this state as ``call.state``; nothing here is a module global, so tests
can run several apps side by side.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from rankstream.api.answers import encode_ingest_answer
from rankstream.api.auth import TokenGuard
from rankstream.api.metrics import HttpMetrics, build_registry
from rankstream.checkpoint import DirectoryCheckpointStore
from rankstream.config import ServiceConfig
from rankstream.engine import TopKResult
from rankstream.engine.wire import EventDecoder
from rankstream.idempotency import SqliteIdempotencyStore
from rankstream.log import SqliteEventLog
from rankstream.service.deadletters import DeadLetters
from rankstream.service.pipeline import IngestPipeline, PipelineSettings
from rankstream.store import MetadataStore


@dataclass
class AppState:
    """The services and caches of one running app."""

    config: ServiceConfig
    clock: Callable[[], int]
    pipeline: IngestPipeline
    metadata: MetadataStore
    decoder: EventDecoder
    guard: TokenGuard
    registry: CollectorRegistry
    metrics: HttpMetrics
    # Encoded top-k answers, reused while the pipeline hands back the same result object
    # (nothing applied since) and no metadata changed: key -> (result, metadata version, bytes).
    encoded: dict[tuple[object, ...], tuple[TopKResult, int, bytes]] = field(default_factory=dict)
    openapi: bytes = b""  # the OpenAPI document, generated when the app starts
    docs_html: str = ""


@asynccontextmanager
async def open_state(config: ServiceConfig, clock: Callable[[], int]) -> AsyncIterator[AppState]:
    """Recover and open every service of the app; close them all on exit."""
    engine_config = config.engine_config()
    data = config.data_dir
    log = SqliteEventLog(data / "log.sqlite3", config.sync, config.dead_letter_capacity)
    pipeline = IngestPipeline(
        engine_config,
        log,
        SqliteIdempotencyStore(log.database),
        DirectoryCheckpointStore(data / "checkpoints"),
        encode_ingest_answer,
        PipelineSettings(
            tick_interval=config.tick_interval,
            checkpoint_interval=config.checkpoint_interval,
            checkpoint_every_events=config.checkpoint_every_events,
            idempotency_ttl=config.idempotency_ttl,
            max_queued_requests=config.max_queued_requests,
            max_queued_bytes=config.max_queued_bytes,
        ),
        clock=clock,
        dead_letters=DeadLetters(config.dead_letter_capacity),
    )
    await asyncio.to_thread(pipeline.start)
    metadata = MetadataStore(data / "metadata.sqlite3")
    registry, metrics = build_registry(pipeline)
    guard = TokenGuard(
        [t.get_secret_value() for t in config.write_token],
        [t.get_secret_value() for t in config.read_token],
    )
    state = AppState(
        config=config,
        clock=clock,
        pipeline=pipeline,
        metadata=metadata,
        decoder=EventDecoder(engine_config.measure),
        guard=guard,
        registry=registry,
        metrics=metrics,
    )
    try:
        yield state
    finally:
        await asyncio.to_thread(pipeline.close)
        metadata.close()
