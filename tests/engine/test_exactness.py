"""Property tests: every ranking equals a brute-force count over the bounds it states."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from rankstream.engine import EngineConfig, EventBatch, TopKEngine, ViewEvent, WindowSpec
from rankstream.engine.windows import DAY, DEFAULT_WINDOWS, HOUR, MINUTE
from tests.budget import examples
from tests.engine.oracle import Oracle

IDS = ["a", "b", "c", "ab", "é", "Z", "😀", "x" * 20 + "1", "x" * 20 + "2", "x" * 16]
CATEGORIES = [None, "music", "gaming"]
REGIONS = [None, "us", "日本"]
EVENT_IDS = [None, None, None, "e1", "e2", "e3"]


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


# Month ends, a leap day and a year end: calendar windows roll over here.
ANCHORS = [_ms(t) for t in ("2028-02-29T23:00:00", "2026-12-31T23:30:00", "2026-11-30T23:59:00")]

offsets = st.one_of(
    st.integers(-35 * DAY, 10 * MINUTE),  # anywhere, late ones included
    st.integers(-3 * HOUR, 6 * MINUTE),  # near the clock, some too new
    st.sampled_from([-1, 0, 1]).flatmap(  # exactly on or beside a bucket boundary
        lambda d: st.sampled_from([MINUTE, HOUR, DAY]).flatmap(
            lambda unit: st.integers(-40, 1).map(lambda n: n * unit + d)
        )
    ),
)

events = st.builds(
    lambda v, off, c, r, e: (v, off, c, r, e),
    st.sampled_from(IDS),
    offsets,
    st.sampled_from(CATEGORIES),
    st.sampled_from(REGIONS),
    st.sampled_from(EVENT_IDS),
)

steps = st.lists(
    st.tuples(
        st.sampled_from([0, 1, 59 * 1000, MINUTE, HOUR - 1, HOUR, DAY, 3 * DAY, 20 * DAY]),
        st.lists(events, max_size=12),
    ),
    min_size=1,
    max_size=6,
)

SMALL_WINDOWS = (
    WindowSpec("5m", "sliding", resolution=MINUTE, size=5 * MINUTE),
    WindowSpec("3h", "sliding", resolution=HOUR, size=3 * HOUR),
    WindowSpec("hour", "calendar", resolution=MINUTE, unit="hour"),
    WindowSpec("day", "calendar", resolution=HOUR, unit="day"),
    WindowSpec("month", "calendar", resolution=HOUR, unit="month"),
    WindowSpec("all", "all"),
)
CONFIGS = [
    EngineConfig(),
    # A tiny leaderboard forces rebuilds, trims and tie bounds on every query.
    EngineConfig(windows=DEFAULT_WINDOWS, max_k=2, candidate_size=2),
    EngineConfig(windows=SMALL_WINDOWS, max_k=3, candidate_size=3),
]


def check_against_oracle(
    engine: TopKEngine,
    oracle: Oracle,
    categories: Sequence[str | None] = CATEGORIES,
    regions: Sequence[str | None] = REGIONS,
) -> None:
    """Every window x scope x k of ``engine`` matches the oracle over its stated bounds."""
    config = engine.config
    assert engine.now == oracle.now
    for spec in config.windows:
        for category in categories:
            for region in regions:
                for k in sorted({1, 2, config.max_k}):
                    result = engine.top_k(spec.name, k, category=category, region=region)
                    assert result.as_of == oracle.now
                    if spec.kind == "all" or oracle.now is None:
                        assert result.start is None
                        assert result.end is None
                    else:
                        assert result.start is not None
                        assert result.end is not None
                        assert result.start <= oracle.now < result.end
                        if spec.kind == "sliding":
                            assert result.end - result.start == spec.size
                    expected = oracle.top_k(result.start, result.end, k, category, region)
                    assert list(result.items) == expected, (spec.name, category, region, k)
        # Every scope at once, as publishing asks: the same rows as one query per scope.
        filters = [(c, r) for c in categories for r in regions]
        for k in sorted({1, 2, config.max_k}):
            columns = engine.top_k_columns(spec.name, k, filters)
            for (category, region), ranked in zip(filters, columns, strict=True):
                items = engine.top_k(spec.name, k, category, region).items
                assert ranked.video_ids == [i.video_id for i in items], (spec.name, k)
                assert ranked.views == [i.views for i in items], (spec.name, k)


@settings(max_examples=examples(150), deadline=None)
@given(
    anchor=st.sampled_from(ANCHORS),
    config_index=st.integers(0, len(CONFIGS) - 1),
    plan=steps,
    quantities=st.booleans(),
)
def test_rankings_match_brute_force(
    anchor: int,
    config_index: int,
    plan: list[tuple[int, list[tuple[str, int, str | None, str | None, str | None]]]],
    quantities: bool,
) -> None:
    config = CONFIGS[config_index]
    engine = TopKEngine(config)
    oracle = Oracle(config)
    wall = anchor
    for advance, raw in plan:
        wall += advance
        if not raw:
            engine.tick(wall)
            oracle.tick(wall)
        else:
            batch = [
                ViewEvent(v, wall + off, c, r, e, quantity=(1 + len(v) % 3) if quantities else 1)
                for v, off, c, r, e in raw
            ]
            result = engine.ingest(EventBatch.from_events(batch), wall)
            assert result.status.tolist() == oracle.ingest(batch, wall)
        check_against_oracle(engine, oracle)
    assert engine.stats.accepted == len(oracle.accepted)
    assert engine.stats.duplicates == oracle.duplicates
    assert engine.stats.rejected_too_new == oracle.rejected_too_new
    assert engine.stats.late_dropped == oracle.late_dropped
    restored = TopKEngine.restore(engine.snapshot(), config)
    check_against_oracle(restored, oracle)
