"""Running the embedded service: uvicorn serving the API app in this process."""

from __future__ import annotations

import sys

import uvicorn

from rankstream.api import create_app
from rankstream.config import ServiceConfig


def serve(config: ServiceConfig) -> None:
    """Serve until SIGINT/SIGTERM; shutdown drains the ingest queue and checkpoints.

    uvicorn with uvloop and httptools: the fastest mainstream ASGI server stack, and the
    one Starlette and FastAPI document. One process, one worker: the engine lives here.
    """
    # The event loop and the ingest writer share the GIL; a 1 ms switch interval (default
    # 5 ms) keeps a query from waiting behind a long stretch of the writer's Python code.
    sys.setswitchinterval(0.001)
    app = create_app(config)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=30,
        )
    )
    server.run()
