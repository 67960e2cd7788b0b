"""The fast decoder agrees with the reference validator on every event, valid or not."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from rankstream.engine import Measure, parse_event
from rankstream.engine.wire import EventDecoder
from rankstream.errors import InvalidEvent
from tests.budget import examples

texts = st.one_of(
    st.text(max_size=3),
    st.text(alphabet="ab\x00\x1f\x85é😀", min_size=0, max_size=4),
    st.just("x" * 257),
    st.just("y" * 65),
    st.just("z" * 129),
)
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**65), 2**65),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
    st.just("2026-11-22T10:00:00Z"),
    st.just("2026-11-22T10:00:00"),
    st.just([1]),
)
keys = st.sampled_from(
    ["video_id", "videoId", "timestamp", "ts", "category", "region", "event_id", "user_id"]
)
events = st.one_of(
    st.dictionaries(keys, values, max_size=6),
    st.fixed_dictionaries(
        {"video_id": texts, "ts": st.integers(-5, 2**43)},
        optional={"category": values, "region": values, "event_id": values, "extra": values},
    ),
    values,
)


def reference(value: Any, measure: Measure) -> tuple[Any, ...]:
    try:
        e = parse_event(value, measure)
    except InvalidEvent as exc:
        return ("error", str(exc))
    return ("ok", e.video_id, e.timestamp, e.category, e.region, e.event_id, e.quantity)


@settings(max_examples=examples(400), deadline=None)
@given(st.lists(events, max_size=6))
def test_fast_decoder_matches_parse_event(batch: list[Any]) -> None:
    measure = Measure()
    raws = [msgspec.json.encode(v) for v in batch]
    decoded = EventDecoder(measure).decode(raws)
    got: dict[int, tuple[Any, ...]] = {}
    for row, index in enumerate(decoded.positions):
        b = decoded.batch
        got[index] = (
            "ok",
            b.video_ids[row],
            int(b.timestamps[row]),
            b.categories[row] if b.categories is not None else None,
            b.regions[row] if b.regions is not None else None,
            b.event_ids[row] if b.event_ids is not None else None,
            1 if b.quantities is None else int(b.quantities[row]),
        )
        assert decoded.raw[row] == raws[index]
    for index, _field, message, raw in decoded.errors:
        got[index] = ("error", message)
        assert raw == raws[index]
    expected = {i: reference(v, measure) for i, v in enumerate(batch)}
    assert got == expected
    # The one-call fast path answers only when every event is valid, and then identically.
    fast = EventDecoder(measure)._decode_all_valid(raws)
    if fast is not None:
        assert all(verdict[0] == "ok" for verdict in expected.values())
        assert list(fast.batch.video_ids) == [expected[i][1] for i in range(len(batch))]
        assert fast.batch.timestamps.tolist() == [expected[i][2] for i in range(len(batch))]
    elif batch and all(verdict[0] == "ok" for verdict in expected.values()):
        raise AssertionError("valid events must take the fast path")


def test_quantity_measure_is_decoded() -> None:
    measure = Measure(quantity_field="watch_s")
    raws = [b'{"video_id": "a", "ts": 1, "watch_s": 30}', b'{"video_id": "a", "ts": 1}']
    decoded = EventDecoder(measure).decode(raws)
    assert decoded.batch.quantities is not None
    assert decoded.batch.quantities.tolist() == [30]
    assert decoded.errors[0][1] == "watch_s"


def test_not_json_is_an_event_error() -> None:
    decoded = EventDecoder(Measure()).decode([b"{nope", b'{"video_id": "a", "ts": 5}'])
    assert decoded.errors == [(0, "event", "event: is not JSON", b"{nope")]
    assert decoded.positions == [1]
