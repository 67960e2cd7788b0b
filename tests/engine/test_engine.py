"""Unit tests of the engine's clock, horizon, de-duplication, queries and snapshots."""

from __future__ import annotations

import pytest

from rankstream.engine import (
    DUPLICATE,
    TOO_NEW,
    EngineConfig,
    EventBatch,
    RankedItem,
    TopKEngine,
    ViewEvent,
    WindowSpec,
    queries,
)
from rankstream.engine.windows import DAY, HOUR, MINUTE
from rankstream.errors import ConfigError, InvalidQuery, SnapshotError

T0 = 1_795_341_600_000  # 2026-11-22T10:00:00Z


def batch(*events: ViewEvent) -> EventBatch:
    return EventBatch.from_events(list(events))


def views(engine: TopKEngine, window: str, **filters: str) -> dict[str, int]:
    return {i.video_id: i.views for i in engine.top_k(window, 1000, **filters).items}


def test_empty_engine_answers_empty_rankings() -> None:
    engine = TopKEngine()
    result = engine.top_k("24h")
    assert result.items == ()
    assert result.as_of is None
    assert result.start is None


def test_clock_is_newest_event_and_ticks_empty_the_last_hour() -> None:
    engine = TopKEngine()
    engine.ingest(batch(ViewEvent("a", T0), ViewEvent("a", T0 - 5 * MINUTE)), T0)
    assert engine.now == T0
    assert views(engine, "1h") == {"a": 2}
    engine.tick(T0 + 30 * MINUTE)
    assert views(engine, "1h") == {"a": 2}
    engine.tick(T0 + HOUR - MINUTE)  # window [T0, T0 + 1h): T0 - 5 min has left it
    assert views(engine, "1h") == {"a": 1}
    engine.tick(T0 + 2 * HOUR)
    assert views(engine, "1h") == {}
    assert views(engine, "24h") == {"a": 2}
    engine.tick(T0 - HOUR)  # a tick never moves the clock back
    assert engine.now == T0 + 2 * HOUR


def test_window_bounds_are_whole_buckets_ending_after_now() -> None:
    engine = TopKEngine()
    engine.ingest(batch(ViewEvent("a", T0 + 59_999)), T0 + 60_000)
    one_hour = engine.top_k("1h")
    assert one_hour.end == T0 + MINUTE
    assert one_hour.start == T0 + MINUTE - HOUR
    week = engine.top_k("7d")
    assert week.end == T0 + HOUR
    assert week.start == T0 + HOUR - 7 * DAY
    day = engine.top_k("day")
    assert (day.start, day.end) == (T0 - 10 * HOUR, T0 + 14 * HOUR)
    month = engine.top_k("month")
    assert (month.start, month.end) == (1_793_491_200_000, 1_796_083_200_000)  # Nov 2026


def test_events_too_far_ahead_of_wall_clock_are_rejected() -> None:
    engine = TopKEngine()
    result = engine.ingest(
        batch(ViewEvent("a", T0 + 5 * MINUTE), ViewEvent("b", T0 + 5 * MINUTE + 1)), T0
    )
    assert result.status.tolist() == [0, TOO_NEW]
    assert engine.stats.rejected_too_new == 1
    assert views(engine, "all") == {"a": 1}


def test_late_events_inside_the_horizon_are_exact_older_ones_count_in_all_only() -> None:
    engine = TopKEngine()
    engine.ingest(batch(ViewEvent("a", T0)), T0)
    inside = T0 - 29 * DAY
    outside = T0 - 40 * DAY
    result = engine.ingest(batch(ViewEvent("b", inside), ViewEvent("c", outside)), T0)
    assert result.late_dropped == 1
    assert engine.stats.late_dropped == 1
    assert views(engine, "30d") == {"a": 1, "b": 1}
    assert views(engine, "all") == {"a": 1, "b": 1, "c": 1}


def test_horizon_expiry_subtracts_old_hour_buckets() -> None:
    engine = TopKEngine()
    engine.ingest(batch(ViewEvent("a", T0), ViewEvent("b", T0 + 2 * DAY)), T0 + 2 * DAY)
    engine.tick(T0 + 7 * DAY - 1)
    assert views(engine, "7d") == {"a": 1, "b": 1}
    engine.tick(T0 + 7 * DAY + HOUR)
    assert views(engine, "7d") == {"b": 1}
    engine.tick(T0 + 40 * DAY)
    assert views(engine, "30d") == {}
    assert views(engine, "all") == {"a": 1, "b": 1}


def test_duplicates_by_event_id_within_the_horizon() -> None:
    engine = TopKEngine(EngineConfig(dedup_horizon=10 * MINUTE))
    first = engine.ingest(batch(ViewEvent("a", T0, event_id="e1")), T0)
    again = engine.ingest(
        batch(ViewEvent("a", T0, event_id="e1"), ViewEvent("a", T0, event_id="e1")), T0 + 1
    )
    assert first.accepted == 1
    assert again.status.tolist() == [DUPLICATE, DUPLICATE]
    later = engine.ingest(batch(ViewEvent("a", T0, event_id="e1")), T0 + 10 * MINUTE + 1)
    assert later.accepted == 1  # outside the de-dup horizon: counted again
    assert engine.stats.duplicates == 2
    assert views(engine, "all") == {"a": 2}


def test_dedup_memory_is_bounded_and_evictions_reported() -> None:
    engine = TopKEngine(EngineConfig(dedup_capacity=2))
    for i in range(3):  # three arrivals; the oldest is forgotten to stay within capacity
        engine.ingest(batch(ViewEvent("a", T0, event_id=f"e{i}")), T0 + i)
    assert engine.memory()["dedup_ids"] == 2
    assert engine.memory()["dedup_evicted"] == 1
    again = engine.ingest(batch(ViewEvent("a", T0, event_id="e0")), T0 + 3)
    assert again.accepted == 1  # forgotten early: counted again, as the figure warns


def test_ties_break_by_code_point_and_long_ids_compare_fully() -> None:
    engine = TopKEngine()
    long_a, long_b = "x" * 30 + "a", "x" * 30 + "b"
    ids = ["b", "a", "é", "Z", long_b, long_a, "😀"]
    engine.ingest(batch(*(ViewEvent(v, T0) for v in ids)), T0)
    ranked = [i.video_id for i in engine.top_k("1h", 10).items]
    assert ranked == sorted(ids)


def test_scopes_filter_by_category_region_and_both() -> None:
    engine = TopKEngine()
    engine.ingest(
        batch(
            ViewEvent("a", T0, "music", "us"),
            ViewEvent("a", T0, "music", None),
            ViewEvent("b", T0, None, "us"),
            ViewEvent("c", T0, "gaming", "fr"),
        ),
        T0,
    )
    assert views(engine, "1h") == {"a": 2, "b": 1, "c": 1}
    assert views(engine, "1h", category="music") == {"a": 2}
    assert views(engine, "1h", region="us") == {"a": 1, "b": 1}
    assert views(engine, "1h", category="music", region="us") == {"a": 1}
    assert views(engine, "1h", category="unknown") == {}


@pytest.mark.parametrize("batched_up_to", [0, 2, 4096])
def test_many_scopes_at_once_mix_batched_and_cached_rankings(
    batched_up_to: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scopes above the batching size go through their leaderboards, the rest are ranked
    together: with none, some or all batched, the rows are those of one query per scope."""
    monkeypatch.setattr(queries, "_BATCHED_SCOPE_SIZE", batched_up_to)
    engine = TopKEngine()
    events = [
        ViewEvent(f"v{i % 7}", T0 + i, ("music", "news", None)[i % 3], ("us", "fr")[i % 2])
        for i in range(60)
    ]
    engine.ingest(batch(*events), T0 + 60)
    filters = [*engine.scopes(), ("unknown", None)]
    for window in ("1h", "all"):
        columns = engine.top_k_columns(window, 2, filters)
        for (category, region), ranked in zip(filters, columns, strict=True):
            items = engine.top_k(window, 2, category, region).items
            assert ranked.video_ids == [i.video_id for i in items]
            assert ranked.views == [i.views for i in items]
    with pytest.raises(InvalidQuery, match="category must be 1 to 64"):
        engine.top_k_columns("1h", 2, [("", None)])


@pytest.mark.parametrize(
    ("window", "k", "filters", "message"),
    [
        ("2h", 10, {}, "unknown window '2h'"),
        ("1h", 0, {}, "k must be an integer from 1 to 1000"),
        ("1h", 1001, {}, "k must be an integer from 1 to 1000"),
        ("1h", 10, {"category": "c" * 65}, "category must be 1 to 64"),
        ("1h", 10, {"region": ""}, "region must be 1 to 64"),
    ],
)
def test_invalid_queries(window: str, k: int, filters: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidQuery, match=message):
        TopKEngine().top_k(window, k, **filters)


def test_invalid_configurations() -> None:
    with pytest.raises(ConfigError, match="horizon"):
        TopKEngine(EngineConfig(horizon=10 * DAY))
    with pytest.raises(ConfigError, match="resolution must divide one hour"):
        TopKEngine(EngineConfig(windows=(WindowSpec("x", "sliding", 7 * MINUTE, HOUR),)))
    with pytest.raises(ConfigError, match="unique"):
        TopKEngine(EngineConfig(windows=(WindowSpec("all", "all"), WindowSpec("all", "all"))))


def test_snapshot_round_trip_continues_exactly() -> None:
    engine = TopKEngine()
    engine.ingest(batch(ViewEvent("a", T0, "m", "us", "e1"), ViewEvent("b", T0 - 2 * DAY, "g")), T0)
    restored = TopKEngine.restore(engine.snapshot())
    assert restored.snapshot() == engine.snapshot()
    for e in (engine, restored):  # both continue the same way, de-dup memory included
        e.ingest(batch(ViewEvent("a", T0 + 1, event_id="e1"), ViewEvent("c", T0 + 2)), T0 + 2)
        e.tick(T0 + 2 * HOUR)
    assert restored.snapshot() == engine.snapshot()
    for window in ("1h", "24h", "7d", "30d", "hour", "day", "month", "all"):
        assert restored.top_k(window, 10) == engine.top_k(window, 10)
    assert restored.stats == engine.stats


def test_corrupt_or_foreign_snapshots_are_refused() -> None:
    engine = TopKEngine()
    engine.ingest(batch(ViewEvent("a", T0)), T0)
    data = engine.snapshot()
    with pytest.raises(SnapshotError, match="not a rankstream snapshot"):
        TopKEngine.restore(b"hello")
    with pytest.raises(SnapshotError, match="version 9"):
        TopKEngine.restore(data[:5] + b"\x09" + data[6:])
    with pytest.raises(SnapshotError, match="checksum"):
        TopKEngine.restore(data[:-1] + bytes([data[-1] ^ 1]))
    other = EngineConfig(windows=(WindowSpec("all", "all"),))
    with pytest.raises(SnapshotError, match="windows differ"):
        TopKEngine.restore(data, other)


def test_quantities_are_summed() -> None:
    engine = TopKEngine()
    engine.ingest(batch(ViewEvent("a", T0, quantity=30), ViewEvent("b", T0, quantity=50)), T0)
    assert engine.top_k("1h", 2).items == (RankedItem(1, "b", 50), RankedItem(2, "a", 30))
