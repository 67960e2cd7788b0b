"""Schemathesis over the analytics operations, against a service process.

The other operations are checked in-process (tests/api/test_schemathesis.py), by apps that
live for the whole session; a process holds one chDB store at a time, so the analytics
operations are checked here against a ``rankstream serve`` of their own, holding some
views. Every check runs, with the same settings, in both generation modes. One allowance:
rules across two parameters (``from`` before ``to``, a bounded number of trend buckets)
cannot be written in the schema, so a schema-valid query may get a 400 that says which.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import given, settings
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from tests.api.test_schemathesis import REJECTIONS
from tests.budget import PROFILE, examples
from tests.servers import ServiceProcess

ACCEPTED = ["2xx", "400", "401", "403", "404", "409", "429"]


def _config() -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "checks": {
                "negative_data_rejection": {"expected-statuses": REJECTIONS},
                "positive_data_acceptance": {"expected-statuses": ACCEPTED},
            },
            "generation": {"deterministic": PROFILE != "fuzz"},
        }
    )


@pytest.mark.parametrize("mode", list(GenerationMode))
def test_every_analytics_operation(
    service_factory: Callable[..., ServiceProcess], mode: GenerationMode
) -> None:
    service = service_factory()
    now = int(time.time() * 1000)
    events = [{"video_id": "0", "timestamp": now - i * 60_000, "region": "JP"} for i in range(50)]
    assert httpx.post(f"{service.url}/views", json=events).status_code == 202
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json", config=_config())
    operations = []
    for result in schema.include(path_regex="^/analytics/").get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    assert len(operations) == 4
    for operation in operations:

        @settings(max_examples=examples(25))
        @given(case=operation.as_strategy(mode))
        def check(case: Any) -> None:
            case.call_and_validate()

        check()
    metrics = httpx.get(f"{service.url}/metrics").text
    assert "rankstream_http_server_errors_total 0.0" in metrics
