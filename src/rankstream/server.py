"""Running the embedded service: uvicorn serving the API app in this process."""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import uvicorn

from rankstream.api import create_app
from rankstream.api.http11 import bounded_protocol
from rankstream.config import ServiceConfig
from rankstream.errors import RankstreamError

EX_CANTCREAT = 73  # sysexits.h: the exit status when the data directory cannot be used


class DataDirError(RankstreamError):
    """The data directory cannot be created or written; the message says why."""


def prepare_data_dir(path: Path) -> None:
    """Create ``path`` (parents too) if it is missing and prove it writable.

    Writability is tested by creating and removing a probe file: permission bits mislead
    (root ignores them; a read-only mount overrides them). Raises :class:`DataDirError`
    with a one-line reason, e.g. ``cannot use data directory /x: read-only file system``.
    """
    where = path.absolute()
    try:
        if where.exists() and not where.is_dir():
            raise DataDirError(f"cannot use data directory {where}: not a directory")
        where.mkdir(parents=True, exist_ok=True)
        probe = where / f".write-probe-{os.getpid()}"
        descriptor = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(descriptor, b"probe")
        finally:
            os.close(descriptor)
        probe.unlink()
    except OSError as exc:
        raise DataDirError(f"cannot use data directory {where}: {_reason(exc, where)}") from None


def _reason(exc: OSError, where: Path) -> str:
    if exc.errno == errno.ENOTDIR:
        blocking = next((p for p in where.parents if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            return f"{blocking} is not a directory"
    if exc.errno is not None:
        return os.strerror(exc.errno).lower()
    return str(exc)


def serve(config: ServiceConfig) -> None:
    """Serve until SIGINT/SIGTERM; shutdown drains the ingest queue and checkpoints.

    uvicorn with uvloop and httptools: the fastest mainstream ASGI server stack, and the
    one Starlette and FastAPI document; its protocol bounds each request's head
    (:mod:`rankstream.api.http11`). One process, one worker: the engine lives here.
    Raises :class:`DataDirError` before serving if the data directory cannot be used.
    """
    prepare_data_dir(config.data_dir)
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
            http=bounded_protocol(config.max_header_bytes, config.body_timeout),
            lifespan="on",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=30,
            # Annotated int, but only ever handed to loop.call_later: fractions work.
            timeout_keep_alive=config.keep_alive_timeout,  # type: ignore[arg-type]
            limit_concurrency=config.max_connections,
        )
    )
    server.run()
