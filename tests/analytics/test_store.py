"""Statements of the analytics store: parameters arrive as the values they are."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rankstream.analytics import AnalyticsStore
from tests.budget import examples

TRICKY = ["a\\", "\\", "x\\ty", "tab\there", "nl\nx", "cr\rx", "nul\0x", "q'\"", "\\N", "é😀"]


@settings(max_examples=examples(100), deadline=None)
@given(value=st.one_of(st.sampled_from(TRICKY), st.text(max_size=20)))
def test_a_string_parameter_arrives_as_itself(store: AnalyticsStore, value: str) -> None:
    """ClickHouse parses parameters in its escaped format: a trailing backslash once answered
    an error (found by Schemathesis with ``category=...\\``), ``\\t`` became a tab."""
    rows = store.query("SELECT {value:String} AS value", {"value": value})
    assert rows == [{"value": value}]
