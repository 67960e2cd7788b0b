"""Scale-out pieces for tests: workers in threads of the test process or in subprocesses,
waiting for them."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rankstream.backends import open_worker
from rankstream.config import ServiceConfig
from rankstream.serving.layout import decode_manifest, manifest_key
from rankstream.worker.runner import Worker


def scale_config(
    bootstrap: str, topic: str, redis_url: str, data: Path, **more: Any
) -> ServiceConfig:
    """Settings of a test cluster (short session timeout: group joins take seconds)."""
    settings: dict[str, Any] = {
        "kafka": f"{bootstrap}/{topic}",
        "redis": redis_url,
        "checkpoints": str(data / "checkpoints"),
        "data_dir": data,
        "session_timeout_ms": 6000,
        "publish_interval": 0.1,
        "checkpoint_interval": 1.0,
    }
    return ServiceConfig(**(settings | more))


class WorkerThread:
    """A :class:`Worker` running in a thread of this process."""

    def __init__(self, config: ServiceConfig, clock: Callable[[], int], name: str) -> None:
        self.worker: Worker = open_worker(config, clock, name)
        self.thread = threading.Thread(target=self.worker.run, name=name, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.worker.stop()
        self.thread.join(60)
        assert not self.thread.is_alive()

    @contextmanager
    def held_before_publishing(self) -> Iterator[None]:
        """Inside: the worker is stopped just before its next publish round (so nothing is
        published meanwhile, whatever the timing); on leaving, it goes on."""
        arrived, go = threading.Event(), threading.Event()
        publish = self.worker._publish

        def held() -> None:
            arrived.set()
            go.wait(60)
            publish()

        self.worker._publish = held  # type: ignore[method-assign]
        try:
            assert arrived.wait(60), "the worker never reached a publish round"
            yield
        finally:
            self.worker._publish = publish  # type: ignore[method-assign]
            go.set()


def wait_applied(
    client: Any,
    board: str,
    partitions: int,
    events: int,
    timeout: float = 90,
    at_least: bool = False,
) -> None:
    """Until the partitions' manifests say ``events`` messages (or more, ``at_least``) were
    applied in all."""
    deadline = time.monotonic() + timeout
    applied = -1
    while time.monotonic() < deadline:
        values = client.mget([manifest_key(board, p) for p in range(partitions)])
        if all(v is not None for v in values):
            applied = sum(decode_manifest(v).applied for v in values)
            if applied == events or (at_least and applied > events):
                return
        time.sleep(0.05)
    raise AssertionError(f"workers applied {applied} of {events} events in {timeout} s")


class WorkerProcess:
    """``rankstream worker`` in a subprocess."""

    def __init__(self, args: list[str], log: Path, name: str) -> None:
        self.log = log
        command = [sys.executable, "-m", "rankstream", "worker", *args, "--name", name]
        with open(log, "ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)

    def stop(self, sig: signal.Signals) -> int:
        self.process.send_signal(sig)
        return self.process.wait(60)
