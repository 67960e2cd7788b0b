"""Screening as a transaction, capacity limits, commit and replay."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rankstream.engine import (
    ACCEPTED,
    DUPLICATE,
    OVER_CAPACITY,
    TOO_NEW,
    CapacityRefusal,
    EngineConfig,
    EventBatch,
    TopKEngine,
    ViewEvent,
    WindowSpec,
    tables,
)
from rankstream.engine.windows import HOUR, MINUTE
from rankstream.errors import CapacityError, ConfigError
from tests.budget import examples
from tests.engine.oracle import Oracle
from tests.engine.test_exactness import check_against_oracle

T0 = 1_795_341_600_000  # 2026-11-22T10:00:00Z
WINDOWS = (
    WindowSpec("1h", "sliding", resolution=MINUTE, size=HOUR),
    WindowSpec("day", "calendar", resolution=HOUR, unit="day"),
    WindowSpec("all", "all"),
)
VIDEOS = ["a", "b", "c", "d", "e", "f"]
CATEGORIES = [None, "m", "n", "o"]
REGIONS = [None, "us", "fr", "jp"]
EVENT_IDS = [None, None, None, "e1", "e2", "e3", "e4"]


def config(**limits: Any) -> EngineConfig:
    return replace(EngineConfig(windows=WINDOWS, max_k=3, candidate_size=3), **limits)


def batch(*events: ViewEvent) -> EventBatch:
    return EventBatch.from_events(list(events))


def accepted_of(events: list[ViewEvent], status: list[int]) -> list[ViewEvent]:
    return [e for e, s in zip(events, status, strict=True) if s == ACCEPTED]


def views(engine: TopKEngine, window: str = "all") -> dict[str, int]:
    return {i.video_id: i.views for i in engine.top_k(window, 3).items}


# ---------------------------------------------------------------------------- each limit

LIMITS: list[tuple[str, str, str, Callable[[str], ViewEvent]]] = [
    ("max_videos", "video_id", "videos", lambda x: ViewEvent(x, T0)),
    ("max_categories", "category", "categories", lambda x: ViewEvent("v", T0, category=x)),
    ("max_regions", "region", "regions", lambda x: ViewEvent("v", T0, region=x)),
    (
        "max_cells",
        "event",
        "(video, category, region) cells",
        lambda x: ViewEvent("v", T0, category=x),
    ),
]


@pytest.mark.parametrize(("setting", "field", "noun", "make"), LIMITS)
def test_each_limit_refuses_new_values_first_come_first_served(
    setting: str, field: str, noun: str, make: Callable[[str], ViewEvent]
) -> None:
    engine = TopKEngine(config(**{setting: 2}))
    oracle = Oracle(engine.config)
    message = f"the limit of 2 distinct {noun} is reached ({setting})"
    first = [make("x"), make("y"), make("z"), make("x"), make("w"), make("y")]
    result = engine.ingest(EventBatch.from_events(first), T0)
    assert result.status.tolist() == [0, 0, OVER_CAPACITY, 0, OVER_CAPACITY, 0]
    assert result.refusals == [CapacityRefusal(2, field, message), (4, field, message)]
    assert (result.accepted, result.over_capacity) == (4, 2)
    assert oracle.ingest(first, T0) == result.status.tolist()
    assert oracle.refusals == [(2, field), (4, field)]
    second = [make("z"), make("y")]  # still full: known values only
    again = engine.ingest(EventBatch.from_events(second), T0 + 1)
    assert again.status.tolist() == oracle.ingest(second, T0 + 1) == [OVER_CAPACITY, 0]
    assert engine.stats.rejected_over_capacity == 3
    assert engine.stats.accepted == 5
    check_against_oracle(engine, oracle, ["x", "y", "z", None], [None, "x", "z"])


def test_a_refused_event_reserves_nothing_for_the_other_limits() -> None:
    engine = TopKEngine(config(max_videos=3, max_categories=1))
    events = [
        ViewEvent("a", T0, "m"),
        ViewEvent("b", T0, "n", event_id="e1"),  # new category: refused, video b not kept
        ViewEvent("c", T0, "m", event_id="e1"),  # so e1 is not a duplicate, c is video 2
        ViewEvent("d", T0),  # and d is video 3
        ViewEvent("b", T0),
    ]
    result = engine.ingest(EventBatch.from_events(events), T0)
    assert result.status.tolist() == [0, OVER_CAPACITY, 0, 0, OVER_CAPACITY]
    assert [(r.row, r.field) for r in result.refusals] == [(1, "category"), (4, "video_id")]
    assert Oracle(engine.config).ingest(events, T0) == result.status.tolist()


def test_limits_are_checked_video_category_region_cell_in_that_order() -> None:
    engine = TopKEngine(config(max_videos=1, max_categories=1, max_regions=1, max_cells=2))
    engine.ingest(batch(ViewEvent("a", T0, "m", "us")), T0)
    result = engine.ingest(
        batch(
            ViewEvent("b", T0, "n", "fr"),
            ViewEvent("a", T0, "n", "fr"),
            ViewEvent("a", T0, "m", "fr"),
            ViewEvent("a", T0, None, "us"),  # known video and region: a new cell, fits
            ViewEvent("a", T0, "m", None),  # a third cell
            ViewEvent("a", T0, "m", "us"),  # known cell
        ),
        T0,
    )
    assert result.status.tolist() == [3, 3, 3, 0, 3, 0]
    assert [r.field for r in result.refusals] == ["video_id", "category", "region", "event"]
    assert engine.memory()["cells"] == 2


def test_duplicates_and_too_new_come_before_capacity() -> None:
    engine = TopKEngine(config(max_videos=1, dedup_horizon=10 * MINUTE))
    engine.ingest(batch(ViewEvent("a", T0, event_id="e1")), T0)
    result = engine.ingest(
        batch(ViewEvent("b", T0 + HOUR), ViewEvent("b", T0, event_id="e1"), ViewEvent("b", T0)),
        T0,
    )
    assert result.status.tolist() == [TOO_NEW, DUPLICATE, OVER_CAPACITY]
    assert len(result.refusals) == 1


def test_screen_calls_of_one_screening_share_ids_and_capacity() -> None:
    engine = TopKEngine(config(max_videos=4))
    screening = engine.screening(T0)
    one = [ViewEvent("a", T0, event_id="e1"), ViewEvent("b", T0), ViewEvent("a", T0)]
    two = [
        ViewEvent("c", T0, event_id="e1"),  # e1 accepted by the first call
        ViewEvent("c", T0, event_id="e2"),
        ViewEvent("d", T0),
        ViewEvent("a", T0),
        ViewEvent("e", T0, event_id="e3"),  # a fifth video
        ViewEvent("f", T0, event_id="e3"),  # e3 was refused, so this is not a duplicate
    ]
    three = [ViewEvent("d", T0, event_id="e2"), ViewEvent("b", T0, event_id="e3")]
    # The first call fits without looking anything up; the second looks up the first's.
    assert screening.screen(EventBatch.from_events(one)).tolist() == [0, 0, 0]
    assert screening.capacity_reasons() == []
    assert screening.screen(EventBatch.from_events(two)).tolist() == [1, 0, 0, 0, 3, 3]
    assert [r.row for r in screening.capacity_reasons()] == [4, 5]
    assert screening.screen(EventBatch.from_events(three)).tolist() == [DUPLICATE, 0]
    assert (screening.accepted, screening.duplicates, screening.over_capacity) == (7, 2, 2)
    oracle = Oracle(engine.config)
    statuses = oracle.decide(one + two + three, T0)
    assert statuses == [0, 0, 0, 1, 0, 0, 0, 3, 3, 1, 0]
    kept = accepted_of(one + two + three, statuses)
    assert engine.commit(screening, EventBatch.from_events(kept)) == 0
    assert engine.stats.duplicates == 2
    assert engine.stats.rejected_over_capacity == 2
    assert views(engine) == {"a": 3, "b": 2, "c": 1}
    assert engine.memory()["videos"] == 4


def test_known_values_pass_when_the_engine_is_past_a_lowered_limit() -> None:
    wide = TopKEngine(config())
    wide.ingest(batch(*(ViewEvent(v, T0, "m") for v in "abc")), T0)
    engine = TopKEngine.restore(wide.snapshot(), config(max_videos=1, max_categories=1))
    assert engine.replay(batch(ViewEvent("d", T0, "n")), T0 + 1) == 0  # never refused
    assert engine.memory()["videos"] == 4
    assert engine.memory()["categories"] == 2
    result = engine.ingest(batch(ViewEvent("e", T0), ViewEvent("d", T0, "n")), T0 + 2)
    assert result.status.tolist() == [OVER_CAPACITY, ACCEPTED]
    assert views(engine) == {"d": 2, "a": 1, "b": 1}


def test_a_zero_limit_refuses_every_new_value() -> None:
    engine = TopKEngine(config(max_categories=0, max_regions=0))
    result = engine.ingest(batch(ViewEvent("a", T0), ViewEvent("a", T0, "m")), T0)
    assert result.status.tolist() == [ACCEPTED, OVER_CAPACITY]


def test_sixty_five_thousand_regions_fit_the_next_is_refused() -> None:
    engine = TopKEngine()
    regions = [f"r{i}" for i in range(1 << 16)]
    result = engine.ingest(
        EventBatch(["a"] * len(regions), np.full(len(regions), T0), regions=regions), T0
    )
    assert result.refusals == [
        (65_535, "region", "the limit of 65535 distinct regions is reached (max_regions)")
    ]
    assert engine.memory()["regions"] == 65_535


def test_replay_past_the_encoding_raises_before_changing_anything() -> None:
    engine = TopKEngine()
    engine.ingest(batch(ViewEvent("a", T0, region="us")), T0)
    before = engine.snapshot()
    regions = [f"r{i}" for i in range(1 << 16)]  # with "us": 65,537 regions
    logged = EventBatch(["a"] * len(regions), np.full(len(regions), T0), regions=regions)
    with pytest.raises(CapacityError, match="distinct regions past the encoding's limit"):
        engine.replay(logged, T0)
    assert engine.snapshot() == before


def test_replay_past_the_video_encoding_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tables, "VIDEO_CODE_LIMIT", 3)  # as if codes were 2 bits wide
    engine = TopKEngine(config())
    engine.replay(batch(ViewEvent("a", T0), ViewEvent("b", T0)), T0)
    engine.replay(batch(*(ViewEvent(v, T0) for v in "abcc")), T0)  # c is the third: fits
    before = engine.snapshot()
    with pytest.raises(CapacityError, match="distinct videos past the encoding's limit of 3"):
        engine.replay(batch(ViewEvent("a", T0), ViewEvent("d", T0)), T0 + 1)
    assert engine.snapshot() == before


def test_replay_past_the_cell_encoding_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tables, "CELL_CODE_LIMIT", 3)
    engine = TopKEngine(config())
    engine.replay(batch(ViewEvent("a", T0, "m"), ViewEvent("a", T0)), T0)
    engine.replay(batch(ViewEvent("a", T0, "m"), ViewEvent("b", T0, "m")), T0)
    before = engine.snapshot()
    with pytest.raises(CapacityError, match="distinct cells past the encoding's limit of 3"):
        engine.replay(batch(ViewEvent("a", T0, "m"), ViewEvent("a", T0, None, "us")), T0)
    assert engine.snapshot() == before


# ---------------------------------------------------------------------------- transactions


def test_a_dropped_screening_leaves_no_trace() -> None:
    engine = TopKEngine(config(max_videos=3, dedup_horizon=10 * MINUTE))
    engine.ingest(batch(ViewEvent("a", T0, "m", event_id="old")), T0)
    before = engine.snapshot()
    request = batch(
        ViewEvent("b", T0, "n", "us", event_id="e1"),
        ViewEvent("a", T0, event_id="old"),
        ViewEvent("c", T0 + HOUR),
        ViewEvent("c", T0, "o", event_id="e2"),
        ViewEvent("d", T0),
    )
    for wall in (T0 + MINUTE, T0 + 11 * MINUTE):  # "old" remembered, then forgotten
        screening = engine.screening(wall)
        status = screening.screen(request).tolist()
        assert screening.screen(batch(ViewEvent("c", T0, event_id="e1"))).tolist() == [1]
        del screening  # the log write failed
        assert engine.snapshot() == before
        old = DUPLICATE if wall == T0 + MINUTE else ACCEPTED
        assert status == [ACCEPTED, old, TOO_NEW, ACCEPTED, OVER_CAPACITY]
    retry = engine.screening(T0 + MINUTE)  # the client's retry is judged afresh
    status = retry.screen(request)
    assert status.tolist() == [ACCEPTED, DUPLICATE, TOO_NEW, ACCEPTED, OVER_CAPACITY]
    engine.commit(retry, request.take(np.flatnonzero(status == ACCEPTED)))
    assert views(engine) == {"a": 1, "b": 1, "c": 1}
    assert engine.stats.duplicates == 1
    assert engine.stats.rejected_too_new == 1
    assert engine.stats.rejected_over_capacity == 1


def test_stale_or_mismatched_commits_are_refused_before_any_change() -> None:
    engine = TopKEngine(config())
    other = TopKEngine(config())
    first, second = engine.screening(T0), engine.screening(T0)
    one = batch(ViewEvent("a", T0))
    first.screen(one)
    second.screen(one)
    engine.tick(T0 + 1)  # a tick does not invalidate a screening
    assert first.current
    before = engine.snapshot()
    with pytest.raises(ValueError, match="commit got 0 events; the screening accepted 1"):
        engine.commit(first, batch())
    with pytest.raises(ValueError, match="another engine"):
        other.commit(first, one)
    assert engine.snapshot() == before
    engine.commit(first, one)
    assert not second.current
    with pytest.raises(RuntimeError, match="stale"):
        engine.commit(second, one)
    with pytest.raises(RuntimeError, match="stale"):
        second.screen(one)
    with pytest.raises(RuntimeError, match="stale"):
        engine.commit(first, one)  # a screening commits once
    assert views(engine) == {"a": 1}


def test_an_empty_commit_counts_the_rejections_and_forgets_expired_ids() -> None:
    engine = TopKEngine(config(dedup_horizon=MINUTE))
    engine.ingest(batch(ViewEvent("a", T0, event_id="e1")), T0)
    screening = engine.screening(T0 + 2 * MINUTE)
    assert screening.screen(batch(ViewEvent("a", T0 + HOUR))).tolist() == [TOO_NEW]
    assert engine.commit(screening, batch()) == 0
    assert engine.stats.rejected_too_new == 1
    assert engine.memory()["dedup_ids"] == 0


# ---------------------------------------------------------------------------- replay


def test_replay_never_refuses_logged_events_after_settings_change() -> None:
    live = TopKEngine(config(max_videos=2, dedup_horizon=MINUTE, max_skew=MINUTE))
    log = []
    for i, events in enumerate(
        [
            [ViewEvent("a", T0, event_id="e1"), ViewEvent("b", T0 + MINUTE)],
            [ViewEvent("a", T0, event_id="e1"), ViewEvent("c", T0)],  # e1 forgotten by now
        ]
    ):
        wall = T0 + i * 2 * MINUTE
        status = live.ingest(EventBatch.from_events(events), wall).status.tolist()
        log.append((EventBatch.from_events(accepted_of(events, status)), wall))
    assert live.stats.accepted == 3
    stricter = config(max_videos=1, dedup_horizon=HOUR, max_skew=0)
    replayed = TopKEngine(stricter)
    for logged, wall in log:
        replayed.replay(logged, wall)
    assert replayed.stats.accepted == 3
    for window in ("1h", "day", "all"):
        assert replayed.top_k(window, 3) == live.top_k(window, 3)


Request = list[tuple[str, int, str | None, str | None, str | None]]
Group = tuple[int, list[Request], bool]

event_rows = st.tuples(
    st.sampled_from(VIDEOS),
    st.integers(-2 * HOUR, 7 * MINUTE),  # beyond max_skew (5 min): too new
    st.sampled_from(CATEGORIES),
    st.sampled_from(REGIONS),
    st.sampled_from(EVENT_IDS),
)
groups = st.lists(
    st.tuples(
        st.sampled_from([0, 1, MINUTE, 7 * MINUTE, HOUR]),  # wall-clock advance
        st.lists(st.lists(event_rows, max_size=6), max_size=3),  # requests
        st.booleans(),  # committed (else the log write failed and it is dropped)
    ),
    min_size=1,
    max_size=6,
)
small = st.one_of(st.integers(0, 4), st.just(1000))


def to_events(request: Request, wall: int) -> list[ViewEvent]:
    return [ViewEvent(v, wall + off, c, r, e) for v, off, c, r, e in request]


@settings(max_examples=examples(120))
@given(
    limits=st.tuples(small, small, small, st.one_of(st.integers(0, 9), st.just(1000))),
    plan=groups,
)
def test_screenings_match_the_oracle_and_replay_rebuilds_the_state(
    limits: tuple[int, int, int, int], plan: list[Group]
) -> None:
    videos, categories, regions, cells = limits
    cfg = config(
        max_videos=videos,
        max_categories=categories,
        max_regions=regions,
        max_cells=cells,
        dedup_horizon=5 * MINUTE,
    )
    engine = TopKEngine(cfg)
    oracle = Oracle(cfg)
    replayed = TopKEngine(cfg)
    wall = T0
    for advance, requests, committed in plan:
        wall += advance
        screening = engine.screening(wall)
        everything: list[ViewEvent] = []
        statuses: list[int] = []
        reasons: list[tuple[int, str]] = []
        screened = []
        for request in requests:
            events = to_events(request, wall)
            screened.append(EventBatch.from_events(events))
            status = screening.screen(screened[-1]).tolist()
            why = screening.capacity_reasons()
            assert [r.row for r in why] == [i for i, s in enumerate(status) if s == OVER_CAPACITY]
            reasons += [(len(everything) + r.row, r.field) for r in why]
            everything += events
            statuses += status
        assert statuses == oracle.decide(everything, wall)
        assert reasons == oracle.refusals
        if not committed:
            continue
        kept = accepted_of(everything, statuses)
        logged = EventBatch.from_events(kept)
        if len(screened) == 1 and len(kept) == len(everything):
            logged = screened[0]  # the very batch screened: commit reuses its lookups
        late = engine.commit(screening, logged)
        oracle.count(kept, wall)
        oracle.duplicates += statuses.count(DUPLICATE)
        oracle.rejected_too_new += statuses.count(TOO_NEW)
        oracle.over_capacity += statuses.count(OVER_CAPACITY)
        # Recovery: the same accepted events, group by group, counters from the log record.
        assert replayed.replay(logged, wall) == late
        replayed.stats.duplicates += screening.duplicates
        replayed.stats.rejected_too_new += screening.too_new
        replayed.stats.rejected_over_capacity += screening.over_capacity
        assert replayed.snapshot() == engine.snapshot()
    check_against_oracle(engine, oracle, CATEGORIES, REGIONS)
    stats = engine.stats
    assert stats.accepted == len(oracle.accepted)
    assert (stats.duplicates, stats.rejected_too_new) == (
        oracle.duplicates,
        oracle.rejected_too_new,
    )
    assert stats.rejected_over_capacity == oracle.over_capacity
    memory = engine.memory()
    assert memory["videos"] <= videos
    assert memory["categories"] <= categories
    assert memory["regions"] <= regions
    assert memory["cells"] <= cells


# ---------------------------------------------------------------------------- plumbing


def test_memory_reports_each_limit_beside_its_use() -> None:
    engine = TopKEngine(config(max_videos=5, max_categories=4, max_regions=3, max_cells=9))
    engine.ingest(batch(ViewEvent("a", T0, "m", "us"), ViewEvent("b", T0, "m")), T0)
    memory = engine.memory()
    assert (memory["videos"], memory["max_videos"]) == (2, 5)
    assert (memory["categories"], memory["max_categories"]) == (1, 4)
    assert (memory["regions"], memory["max_regions"]) == (1, 3)
    assert (memory["cells"], memory["max_cells"]) == (2, 9)


@pytest.mark.parametrize(
    ("setting", "value", "most"),
    [
        ("max_videos", -1, "2,147,483,647"),
        ("max_videos", 2**31, "2,147,483,647"),
        ("max_categories", 65_536, "65,535"),
        ("max_regions", 70_000, "65,535"),
        ("max_cells", 2**31, "2,147,483,647"),
    ],
)
def test_limits_beyond_the_encoding_are_configuration_errors(
    setting: str, value: int, most: str
) -> None:
    changes: dict[str, Any] = {setting: value}
    with pytest.raises(ConfigError, match=f"{setting} must be an integer from 0 to {most}"):
        replace(EngineConfig(), **changes).validate()


def test_the_encoding_limits_themselves_are_valid() -> None:
    EngineConfig(
        max_videos=2**31 - 1, max_categories=65_535, max_regions=65_535, max_cells=2**31 - 1
    ).validate()
