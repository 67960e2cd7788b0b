"""The analytics store of the embedded service: store, loader and queries opened together.

:func:`open_embedded_analytics` opens the store under the data directory, a read
connection of its own to the SQLite log, and the loader, and finishes any batch a crash
interrupted (blocking) before the pipeline starts, so the pipeline's retention floor is
right from its first reclaim.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rankstream.analytics.loader import AnalyticsLoader
from rankstream.analytics.queries import AnalyticsQueries
from rankstream.analytics.store import AnalyticsStore
from rankstream.engine.wire import EventDecoder
from rankstream.log import SqliteEventLog


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

    def close(self) -> None:
        """Stop loading (after the current batch), close the store and the log reader."""
        self.loader.stop()
        self.store.close()
        self.log.close()


def open_embedded_analytics(
    directory: Path, log_path: Path, decoder: EventDecoder, ttl_days: int, batch_rows: int
) -> Analytics:
    """Open (create, migrate) the store in ``directory`` and recover its loader from the
    log in ``log_path`` (blocks). Start loading with ``analytics.loader.start()``."""
    store = AnalyticsStore(directory, ttl_days)
    log = SqliteEventLog(log_path, "NORMAL")  # reads only: the writer owns the syncs
    loader = AnalyticsLoader(store, log, decoder, batch_rows)
    try:
        loader.recover()
    except BaseException:
        store.close()
        log.close()
        raise
    return Analytics(store, loader, AnalyticsQueries(store), log)
