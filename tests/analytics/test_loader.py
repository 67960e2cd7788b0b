"""The loader in the pipeline: the log keeps what the store has not loaded, and a batch cut
off by a crash is finished with the same cut at the next start."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec

from rankstream.analytics import Analytics, LoadIntent, open_embedded_analytics
from rankstream.analytics.loader import token
from rankstream.analytics.rows import load_rows
from rankstream.api.answers import encode_ingest_answer
from rankstream.boards import VIDEOS, BoardRouter
from rankstream.checkpoint import DirectoryCheckpointStore
from rankstream.engine import VIEWS, EngineConfig
from rankstream.engine.wire import EventDecoder
from rankstream.idempotency import SqliteIdempotencyStore
from rankstream.log import LogPosition, SqliteEventLog
from rankstream.service.intake import build_submission
from rankstream.service.pipeline import IngestPipeline

NOW = 1_795_341_600_000
DECODER = EventDecoder(VIEWS)
ROUTER = BoardRouter.of((VIDEOS,))


def records(log_path: Path) -> int:
    with sqlite3.connect(log_path) as db:
        return int(db.execute("SELECT COUNT(*) FROM batches").fetchone()[0])


def post(pipeline: IngestPipeline, count: int, first: int) -> None:
    raws: list[bytes | msgspec.Raw] = [
        msgspec.json.encode({"video_id": f"v{i % 3}", "timestamp": NOW - i, "event_id": str(i)})
        for i in range(first, first + count)
    ]
    pipeline.submit(build_submission(raws, ROUTER, NOW)).result()


def open_all(tmp_path: Path) -> tuple[Analytics, IngestPipeline]:
    log = SqliteEventLog(tmp_path / "log.sqlite3", "NORMAL")
    analytics = open_embedded_analytics(
        tmp_path / "analytics", tmp_path / "log.sqlite3", DECODER, ttl_days=0, batch_rows=1
    )
    pipeline = IngestPipeline(
        (VIDEOS,),
        EngineConfig(),
        log,
        SqliteIdempotencyStore(log.database),
        DirectoryCheckpointStore(tmp_path / "checkpoints"),
        encode_ingest_answer,
        clock=lambda: NOW,
        retention_floor=analytics.loader.retention_floor,
        listeners=[analytics.loader.wake],
    )
    return analytics, pipeline


def test_the_log_keeps_what_the_store_has_not_loaded(tmp_path: Path) -> None:
    analytics, pipeline = open_all(tmp_path)
    pipeline.start()
    try:
        for request in range(4):
            post(pipeline, 10, request * 10)
        written = records(tmp_path / "log.sqlite3")
        for _ in range(2):  # reclaim goes below the oldest of the two checkpoints kept
            pipeline.checkpoint()
        assert records(tmp_path / "log.sqlite3") == written  # nothing loaded: all kept
        analytics.loader.load_batch()  # one record
        for _ in range(2):
            pipeline.checkpoint()
        assert records(tmp_path / "log.sqlite3") == written - 1
        analytics.loader.catch_up()
        for _ in range(2):
            pipeline.checkpoint()
        assert records(tmp_path / "log.sqlite3") == 0
        assert analytics.store.size()[0] == 40
    finally:
        pipeline.close()
        analytics.close()


def test_a_batch_cut_off_by_a_crash_is_finished_once(tmp_path: Path) -> None:
    """The intent is recorded and half of the batch's parts are written (a batch across two
    months), as if the process died then: the next start writes the missing part only."""
    analytics, pipeline = open_all(tmp_path)
    pipeline.start()
    january = 1_769_904_000_000 - 1  # 2026-01-31T23:59:59.999Z
    raws: list[bytes | msgspec.Raw] = [
        msgspec.json.encode({"video_id": "a", "timestamp": january}),
        msgspec.json.encode({"video_id": "b", "timestamp": january + 1}),  # February
    ]
    pipeline.submit(build_submission(raws, ROUTER, NOW)).result()
    pipeline.close()
    reader = SqliteEventLog(tmp_path / "log.sqlite3", "NORMAL")
    [record] = list(reader.read(LogPosition(), DECODER))
    reader.close()
    intent = LoadIntent(0, record.offset, record.next_offset, 2, january + 1)
    store = analytics.store
    store.record(intent, done=False)
    store.insert_views(load_rows([record]), token(intent))
    store.execute("ALTER TABLE views DROP PARTITION 202602")  # the part not yet written
    store.execute("ALTER TABLE views_hourly DROP PARTITION 202602")
    analytics.close()

    again, unstarted = open_all(tmp_path)  # recovers: finishes the batch
    try:
        rows = again.store.query(
            "SELECT video_id, count() AS n FROM views GROUP BY video_id ORDER BY video_id"
        )
        assert [(r["video_id"], r["n"]) for r in rows] == [("a", 1), ("b", 1)]
        rolled = again.store.query("SELECT sum(views) AS n FROM views_hourly")
        assert rolled[0]["n"] == 2
        assert again.loader.position.of(0) == record.next_offset
        assert again.loader.stats.replayed_events == 2
        again.loader.catch_up()
        assert again.store.size()[0] == 2
    finally:
        unstarted.close()
        again.close()
