"""Validation of view events: clear, specific errors; no guessing."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rankstream.engine import EventBatch, Measure, ViewEvent, parse_event
from rankstream.errors import InvalidEvent


def test_minimal_event_with_epoch_millis() -> None:
    event = parse_event({"video_id": "v1", "timestamp": 1_790_000_000_123})
    assert event == ViewEvent("v1", 1_790_000_000_123)


def test_aliases_and_iso_timestamp() -> None:
    event = parse_event({"videoId": "v1", "ts": "2026-11-22T10:00:00.123Z"})
    assert event.video_id == "v1"
    assert event.timestamp == 1_795_341_600_123


def test_iso_offset_is_converted_to_utc() -> None:
    a = parse_event({"video_id": "v", "ts": "2026-11-22T11:00:00+01:00"})
    b = parse_event({"video_id": "v", "ts": "2026-11-22T10:00:00Z"})
    assert a.timestamp == b.timestamp


def test_optional_fields_and_extras_kept() -> None:
    event = parse_event(
        {
            "video_id": "v",
            "timestamp": 5,
            "category": "music",
            "region": "日本",
            "event_id": "e-1",
            "user_id": 42,
            "device": "tv",
        }
    )
    assert (event.category, event.region, event.event_id) == ("music", "日本", "e-1")
    assert event.extra == {"user_id": 42, "device": "tv"}


def test_null_optional_fields_are_absent() -> None:
    event = parse_event({"video_id": "v", "timestamp": 5, "category": None, "region": None})
    assert event.category is None
    assert event.region is None


@pytest.mark.parametrize(
    ("obj", "field", "fragment"),
    [
        ([1, 2], "event", "must be a JSON object"),
        ({"timestamp": 1}, "video_id", "is required"),
        ({"video_id": 123, "timestamp": 1}, "video_id", "must be a string, got int"),
        ({"video_id": "", "timestamp": 1}, "video_id", "1 to 256 characters"),
        ({"video_id": "x" * 257, "timestamp": 1}, "video_id", "1 to 256 characters"),
        ({"video_id": "a\nb", "timestamp": 1}, "video_id", "control character U+000A"),
        ({"video_id": "a\x85b", "timestamp": 1}, "video_id", "control character U+0085"),
        ({"video_id": "a\ud800", "timestamp": 1}, "video_id", "control character U+D800"),
        ({"videoId": "a", "video_id": "a", "timestamp": 1}, "video_id", "given twice"),
        ({"video_id": "a"}, "timestamp", "is required"),
        ({"video_id": "a", "timestamp": 1.5}, "timestamp", "got float"),
        ({"video_id": "a", "timestamp": True}, "timestamp", "got bool"),
        ({"video_id": "a", "timestamp": None}, "timestamp", "got null"),
        ({"video_id": "a", "timestamp": -1}, "timestamp", "between 1970"),
        ({"video_id": "a", "ts": "2026-11-22T10:00:00"}, "ts", "must include a timezone"),
        ({"video_id": "a", "ts": "yesterday"}, "ts", "not an ISO-8601"),
        ({"video_id": "a", "ts": 1, "category": 7}, "category", "must be a string"),
        ({"video_id": "a", "ts": 1, "region": "r" * 65}, "region", "1 to 64"),
        ({"video_id": "a", "ts": 1, "event_id": "e" * 129}, "event_id", "1 to 128"),
    ],
)
def test_invalid_events_name_field_and_reason(obj: Any, field: str, fragment: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(obj)
    assert caught.value.field == field
    assert fragment in caught.value.reason


def test_unicode_ids_at_the_length_limit() -> None:
    assert parse_event({"video_id": "😀" * 256, "timestamp": 1}).video_id == "😀" * 256


def test_quantity_measure() -> None:
    watch = Measure(quantity_field="watch_s", value_name="watch_s")
    assert parse_event({"video_id": "a", "ts": 1, "watch_s": 30}, watch).quantity == 30
    with pytest.raises(InvalidEvent, match="non-negative integer"):
        parse_event({"video_id": "a", "ts": 1, "watch_s": "30"}, watch)


def test_batch_columns_must_have_equal_length() -> None:
    with pytest.raises(ValueError, match="column timestamps has 1 rows"):
        EventBatch(video_ids=["a", "b"], timestamps=np.array([1], dtype=np.int64))


def test_batch_from_events_and_take() -> None:
    events = [ViewEvent("a", 1, "c"), ViewEvent("b", 2, region="r", quantity=3)]
    batch = EventBatch.from_events(events)
    assert list(batch.video_ids) == ["a", "b"]
    assert batch.quantities is not None
    assert batch.quantities.tolist() == [1, 3]
    picked = batch.take(np.array([1]))
    assert list(picked.video_ids) == ["b"]
    assert picked.regions == ["r"]
