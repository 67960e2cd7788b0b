"""The analytics store of the embedded service: store, loader and queries opened together.

:func:`open_embedded_analytics` opens the store under the data directory, a read
connection of its own to the SQLite log, and the loader, and finishes any batch a crash
interrupted (blocking) before the pipeline starts, so the pipeline's retention floor is
right from its first reclaim.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rankstream.analytics.loader import AnalyticsLoader
from rankstream.analytics.queries import AnalyticsQueries
from rankstream.analytics.store import AnalyticsStore
from rankstream.engine.wire import Decoder
from rankstream.errors import RankstreamError
from rankstream.log import LoggedBatch, LogPosition, SqliteEventLog

logger = logging.getLogger("rankstream.analytics")

FINISH_SECONDS = 30.0
"""How long a graceful stop keeps loading what is left before it closes the store."""


class SqliteRecords:
    """The embedded log as the loader reads it: its records are whole, so the loader
    stops at ``until`` itself (a record never straddles a batch's end)."""

    def __init__(self, log: SqliteEventLog) -> None:
        self.log = log

    def read(
        self, start: LogPosition, decoder: Decoder, until: int | None = None
    ) -> Iterator[LoggedBatch]:
        """The log's records from ``start`` (a generator: close it to end the read)."""
        return self.log.read(start, decoder)

    def end(self) -> LogPosition:
        """The position after the newest record."""
        return self.log.end()


@dataclass
class Analytics:
    """What the service runs analytics with: the store, its loader and its questions."""

    store: AnalyticsStore
    loader: AnalyticsLoader
    queries: AnalyticsQueries
    log: SqliteEventLog  # the loader's own read connection

    def status(self) -> dict[str, Any]:
        """The loader's position, lag and the store's size."""
        return self.loader.status()

    def loaded_through(self) -> int | None:
        """The newest event time loaded (epoch ms), or ``None``."""
        return self.loader.loaded_through

    def close(self, covered: LogPosition | None = None) -> None:
        """Stop loading (after the current batch), close the store and the log reader.

        ``covered``: the pipeline has stopped and its checkpoints cover the log before this
        position. Then the loader first loads what is left (for up to ``FINISH_SECONDS``)
        and lets the log drop what both the checkpoints and the store have, so a graceful
        stop leaves the log as reclaimed as it would be without analytics."""
        self.loader.stop()
        try:
            if covered is not None:
                self._finish(covered)
        finally:
            self.store.close()
            self.log.close()

    def _finish(self, covered: LogPosition) -> None:
        deadline = time.monotonic() + FINISH_SECONDS
        try:
            while time.monotonic() < deadline and self.loader.load_batch():
                pass
            partition = self.loader.partition
            floor = self.loader.retention_floor().of(partition)
            self.log.reclaim(LogPosition({partition: min(floor, covered.of(partition))}))
        except RankstreamError as exc:  # the next start loads and reclaims it
            logger.warning("analytics: loading the rest at shutdown failed: %s", exc)


def open_embedded_analytics(
    directory: Path, log_path: Path, decoder: Decoder, ttl_days: int, batch_rows: int
) -> Analytics:
    """Open (create, migrate) the store in ``directory`` and recover its loader from the
    log in ``log_path`` (blocks). Start loading with ``analytics.loader.start()``."""
    store = AnalyticsStore(directory, ttl_days)
    log = SqliteEventLog(log_path, "NORMAL")  # reads only: the writer owns the syncs
    loader = AnalyticsLoader(store, SqliteRecords(log), decoder, batch_rows)
    try:
        loader.recover()
    except BaseException:
        store.close()
        log.close()
        raise
    return Analytics(store, loader, AnalyticsQueries(store), log)
