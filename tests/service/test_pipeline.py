"""The ingest pipeline in-process: retries, restarts and crashes against an oracle."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rankstream.api.answers import encode_ingest_answer
from rankstream.boards import VIDEOS, BoardRouter
from rankstream.checkpoint import DirectoryCheckpointStore
from rankstream.engine import EngineConfig, parse_event
from rankstream.errors import StorageFailure
from rankstream.idempotency import SqliteIdempotencyStore
from rankstream.log import LogPosition, SqliteEventLog
from rankstream.service.intake import build_submission
from rankstream.service.pipeline import IngestPipeline, PipelineSettings
from tests.budget import examples
from tests.engine.oracle import Oracle

T0 = 1_795_341_600_000
WINDOWS = ["1h", "24h", "7d", "30d", "hour", "day", "month", "all"]


class FakeClock:
    """Wall time that tests move by hand."""

    def __init__(self, now: int) -> None:
        self.now = now
        self.lock = threading.Lock()

    def __call__(self) -> int:
        with self.lock:
            return self.now


def open_pipeline(data: Path, clock: FakeClock) -> IngestPipeline:
    log = SqliteEventLog(data / "log.sqlite3", "NORMAL")
    pipeline = IngestPipeline(
        (VIDEOS,),
        EngineConfig(),
        log,
        SqliteIdempotencyStore(log.database),
        DirectoryCheckpointStore(data / "checkpoints"),
        encode_ingest_answer,
        PipelineSettings(tick_interval=3600, checkpoint_interval=3600),
        clock=clock,
    )
    pipeline.start()
    return pipeline


def crash(pipeline: IngestPipeline) -> None:
    """Stop the writer as a crash would: no final checkpoint, log left as it is."""
    assert pipeline.writer.running
    pipeline.writer.stop()


def submit(pipeline: IngestPipeline, body: list[dict[str, Any]], key: str | None) -> Any:
    raws: list[bytes | msgspec.Raw] = [msgspec.json.encode(e) for e in body]
    sub = build_submission(raws, BoardRouter.of((VIDEOS,)), pipeline.clock(), key)
    answer, _replayed = pipeline.submit(sub).result(timeout=30)
    return msgspec.json.decode(answer)


def check(pipeline: IngestPipeline, oracle: Oracle) -> None:
    for window in WINDOWS:
        for category in (None, "m"):
            result = pipeline.top_k(window, 1000, category=category)
            expected = oracle.top_k(result.start, result.end, 1000, category, None)
            assert list(result.items) == expected, (window, category)
    assert pipeline.status()["events_accepted"] == len(oracle.accepted)


request = st.lists(
    st.fixed_dictionaries(
        {
            "video_id": st.sampled_from(["a", "b", "c", "d"]),
            "ts": st.integers(T0 - 40 * 86_400_000, T0),
            "category": st.sampled_from(["m", "g"]),
        },
        optional={"event_id": st.sampled_from(["e1", "e2", "e3"])},
    ),
    min_size=1,
    max_size=8,
)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("send"), request),
        st.tuples(st.just("retry"), st.integers(0, 20)),
        st.tuples(st.sampled_from(["checkpoint", "restart", "crash"]), st.none()),
    ),
    min_size=1,
    max_size=10,
)


@settings(max_examples=examples(40), deadline=None)
@given(plan=ops)
def test_retries_restarts_and_crashes_count_each_event_once(
    tmp_path_factory: pytest.TempPathFactory, plan: list[tuple[str, Any]]
) -> None:
    data = tmp_path_factory.mktemp("pipeline")
    clock = FakeClock(T0)
    pipeline = open_pipeline(data, clock)
    oracle = Oracle()
    sent: list[tuple[str, list[dict[str, Any]]]] = []
    try:
        for op, arg in plan:
            clock.now += 1000
            if op == "send":
                key = f"k{len(sent)}"
                sent.append((key, arg))
                answer = submit(pipeline, arg, key)
                statuses = oracle.ingest([parse_event(e) for e in arg], clock.now)
                assert answer["accepted"] == statuses.count(0)
                assert answer["duplicates"] == statuses.count(1)
            elif op == "retry" and sent:
                key, body = sent[arg % len(sent)]
                first = submit(pipeline, body, key)
                assert submit(pipeline, body, key) == first  # the stored answer, again
            elif op == "checkpoint":
                pipeline.checkpoint()
            elif op == "restart":
                pipeline.close()
                pipeline = open_pipeline(data, clock)
            elif op == "crash":
                crash(pipeline)
                pipeline = open_pipeline(data, clock)
            check(pipeline, oracle)
    finally:
        pipeline.close()


def test_unreadable_newest_checkpoint_falls_back_to_the_previous(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    pipeline = open_pipeline(tmp_path, clock)
    oracle = Oracle()
    for i in range(3):
        body = [{"video_id": f"v{i}", "ts": T0 - i}]
        submit(pipeline, body, f"k{i}")
        oracle.ingest([parse_event(e) for e in body], clock.now)
        pipeline.checkpoint()
    crash(pipeline)
    newest = sorted((tmp_path / "checkpoints" / "p0").glob("ckpt-*.bin"))[-1]
    newest.write_bytes(newest.read_bytes()[:-10])  # torn
    reopened = open_pipeline(tmp_path, clock)
    try:
        assert reopened.recovery.restored_from == LogPosition({0: 3})  # after record 2
        check(reopened, oracle)
    finally:
        reopened.close()


def test_a_failed_log_write_fails_its_group_and_reports_unhealthy(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    pipeline = open_pipeline(tmp_path, clock)
    pipeline.log.close()  # the log file can no longer be written
    for _ in range(2):  # every attempt fails on its own; the writer keeps running
        with pytest.raises(StorageFailure, match="cannot write the event log"):
            submit(pipeline, [{"video_id": "a", "ts": T0}], None)
    status = pipeline.status()
    assert status["healthy"] is False
    assert status["storage"] is not None
    assert status["events_accepted"] == 0
    assert pipeline.failure is None
    assert pipeline.queue_depth() == 0  # the refused requests left the queue
