"""The live engine: what the writer thread feeds and queries read, with the lock between.

Queries get answers computed for the newest *published* state: the writer publishes after
each applied group and clock tick, and an answer already computed for the published state
is returned without taking the lock, so queries do not queue behind the writer's apply of
a group no client has been told about yet.
"""

from __future__ import annotations

import threading

from rankstream.engine import TopKEngine, TopKResult
from rankstream.log import LogPosition

_ANSWER_CACHE_SIZE = 4096


class LiveEngine:
    """``engine`` with the log ``position`` it has applied up to; ``lock`` guards both.

    Writers (one thread) change the engine under ``lock`` and call :meth:`publish`
    before releasing it; readers call :meth:`top_k` from any thread.
    """

    def __init__(self, engine: TopKEngine, position: LogPosition) -> None:
        self.engine = engine
        self.position = position
        self.lock = threading.Lock()
        self._version = object()  # replaced whenever the engine state changes
        self._answers: dict[tuple[object, ...], tuple[object, TopKResult]] = {}

    def publish(self) -> None:
        """Mark the engine state as changed (the caller holds :attr:`lock`)."""
        self._version = object()

    def top_k(
        self, window: str, k: int, category: str | None = None, region: str | None = None
    ) -> TopKResult:
        """The engine's exact top-k (:meth:`TopKEngine.top_k`) as of the published state."""
        key = (window, k, category, region)
        cached = self._answers.get(key)
        if cached is not None and cached[0] is self._version:
            return cached[1]
        with self.lock:
            result = self.engine.top_k(window, k, category, region)
            if len(self._answers) >= _ANSWER_CACHE_SIZE:
                self._answers.clear()
            self._answers[key] = (self._version, result)
        return result
