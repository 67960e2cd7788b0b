"""What the app's endpoints share, built by the lifespan and handed to each call.

The lifespan opens the backends (:mod:`rankstream.backends`: recovering the engine from
checkpoint and log in the embedded mode) before the first request, and closes them
(draining, checkpointing) after the last. Endpoints reach this state as ``call.state``;
nothing here is a module global, so tests can run several apps side by side. Handlers see
only the seams (:class:`Ingest`, :class:`RankingSource`, :class:`MetadataStore`), never
which mode they run in.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from rankstream.api.auth import TokenGuard
from rankstream.api.metrics import HttpMetrics, build_registry
from rankstream.backends import Backends, open_backends
from rankstream.boards import BoardRouter
from rankstream.config import ServiceConfig
from rankstream.engine import TopKResult
from rankstream.serving import Ingest, RankingSource
from rankstream.store import MetadataStore


@dataclass
class AppState:
    """The services and caches of one running app."""

    config: ServiceConfig
    clock: Callable[[], int]
    backends: Backends
    router: BoardRouter
    guard: TokenGuard
    registry: CollectorRegistry
    metrics: HttpMetrics
    # Encoded top-k answers, reused while the ranking source hands back the same result
    # object (nothing applied since) and no metadata changed: key -> (result, metadata
    # version, bytes).
    encoded: dict[tuple[object, ...], tuple[TopKResult, int, bytes]] = field(default_factory=dict)
    openapi: bytes = b""  # the OpenAPI document, generated when the app starts
    docs_html: str = ""

    @property
    def ingest(self) -> Ingest:
        """Where events go."""
        return self.backends.ingest

    @property
    def rankings(self) -> RankingSource:
        """Where rankings come from."""
        return self.backends.rankings

    @property
    def metadata(self) -> MetadataStore:
        """Where video metadata is kept."""
        return self.backends.metadata


@asynccontextmanager
async def open_state(config: ServiceConfig, clock: Callable[[], int]) -> AsyncIterator[AppState]:
    """Open (and recover) every backend of the app; close them all on exit."""
    backends = await asyncio.to_thread(open_backends, config, clock)
    registry, metrics = build_registry(backends.collectors)
    guard = TokenGuard(
        [t.get_secret_value() for t in config.write_token],
        [t.get_secret_value() for t in config.read_token],
    )
    state = AppState(
        config=config,
        clock=clock,
        backends=backends,
        router=BoardRouter.of(config.board_specs()),
        guard=guard,
        registry=registry,
        metrics=metrics,
    )
    try:
        yield state
    finally:
        await asyncio.to_thread(backends.close)
