"""Fixtures of the scale-out tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.scale.cluster import WorkerProcess


@pytest.fixture
def worker_processes(tmp_path: Path) -> Iterator[Callable[[list[str], str], WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(args: list[str], name: str) -> WorkerProcess:
        started.append(WorkerProcess(args, tmp_path / f"{name}.log", name))
        return started[-1]

    yield start
    for worker in started:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait()
