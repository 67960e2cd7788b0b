"""Fixtures of the analytics tests: a real chDB store in a temporary directory."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path

import msgspec
import pytest

from rankstream.analytics import AnalyticsStore
from rankstream.analytics.rows import load_rows
from rankstream.engine.measure import VIEWS
from rankstream.engine.wire import EventDecoder
from rankstream.log import LoggedBatch, decode_events, encode_events
from tests.analytics.oracle import Event

_tokens = itertools.count(1)
_decoder = EventDecoder(VIEWS)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnalyticsStore]:
    """One store for the module (no TTL: the tests' events are from fixed dates)."""
    opened = AnalyticsStore(tmp_path_factory.mktemp("analytics") / "store", ttl_days=0)
    yield opened
    opened.close()


def empty(store: AnalyticsStore) -> None:
    """Remove every row (tables stay)."""
    for table in ("views", "views_hourly", "load_progress"):
        store.execute(f"TRUNCATE TABLE {table}")


def event_json(event: Event) -> bytes:
    """The JSON of ``event`` as a client would send it (absent fields left out)."""
    body: dict[str, object] = {"video_id": event.video_id, "timestamp": event.timestamp}
    for name in ("category", "region", "device"):
        value = getattr(event, name)
        if value is not None:
            body[name] = value
    if event.watch_time_sec:
        body["watch_time_sec"] = event.watch_time_sec
    return msgspec.json.encode(body)


def insert(store: AnalyticsStore, batches: Sequence[Sequence[Event]]) -> None:
    """Insert each batch as one log record, straight into the store."""
    for offset, events in enumerate(batches):
        if not events:
            continue
        batch, raw = decode_events(encode_events([event_json(e) for e in events]), _decoder)
        record = LoggedBatch(0, offset, offset + 1, 0, batch, raw)
        store.insert_views(load_rows([record]), f"test:{next(_tokens)}")


def store_path(tmp_path: Path) -> Path:
    """Where a test's own store goes."""
    return tmp_path / "analytics"
