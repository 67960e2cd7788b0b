"""Shared fixtures: real service processes on ephemeral loopback ports."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import tests.budget  # noqa: F401  (loads the Hypothesis profile before any test runs)
from tests.servers import ServiceProcess


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """Start ``rankstream serve`` processes; every one is killed at teardown."""
    started: list[ServiceProcess] = []

    def start(
        *args: str, data_dir: Path | None = None, env: dict[str, str] | None = None
    ) -> ServiceProcess:
        service = ServiceProcess(data_dir or tmp_path / "data", *args, env=env).start()
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop(signal.SIGKILL)
