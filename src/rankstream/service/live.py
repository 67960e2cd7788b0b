"""The live boards: what the writer thread feeds and queries read, with the lock between.

Queries get answers computed for the newest *published* state: the writer publishes after
each applied group and clock tick, and an answer already computed for the published state
is returned without taking the lock, so queries do not queue behind the writer's apply of
a group no client has been told about yet.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TypeVar

from rankstream.boards import BoardSet, BoardSpec, Leaders, Rising, leaders, rising
from rankstream.engine import TopKResult
from rankstream.errors import InvalidQuery
from rankstream.log import LogPosition

_ANSWER_CACHE_SIZE = 4096
VIEWS_BOARD = "videos"
"""The board ``/views/top-k`` answers for (today's videos by views)."""

_Answer = TypeVar("_Answer")


class LiveEngine:
    """``boards`` with the log ``position`` they have applied up to; ``lock`` guards both.

    Writers (one thread) change the boards under ``lock`` and call :meth:`publish`
    before releasing it; readers call the query methods from any thread.
    """

    def __init__(self, boards: BoardSet, position: LogPosition) -> None:
        self.boards = boards
        self.position = position
        self.lock = threading.Lock()
        self._version = object()  # replaced whenever the state changes
        self._answers: dict[tuple[object, ...], tuple[object, object]] = {}

    def publish(self) -> None:
        """Mark the state as changed (the caller holds :attr:`lock`)."""
        self._version = object()

    def _answer(self, key: tuple[object, ...], compute: Callable[[], _Answer]) -> _Answer:
        """``compute()`` under the lock, reused while the published state is the same."""
        cached = self._answers.get(key)
        if cached is not None and cached[0] is self._version:
            return cached[1]  # type: ignore[return-value]
        with self.lock:
            result = compute()
            if len(self._answers) >= _ANSWER_CACHE_SIZE:
                self._answers.clear()
            self._answers[key] = (self._version, result)
        return result

    def top_k(
        self, window: str, k: int, category: str | None = None, region: str | None = None
    ) -> TopKResult:
        """``/views/top-k``: the ``videos`` board's exact top-k as of the published state."""
        if VIEWS_BOARD not in self.boards.boards:
            raise InvalidQuery(
                "no videos board is declared: /views/top-k answers for the board named"
                " 'videos'; use /leaderboards/{name}/top-k"
            )
        engine = self.boards.engines[VIEWS_BOARD]
        key = ("views", window, k, category, region)
        return self._answer(key, lambda: engine.top_k(window, k, category, region))

    # ------------------------------------------------------------------ BoardSource

    def board_specs(self) -> tuple[BoardSpec, ...]:
        """The declared boards."""
        return tuple(self.boards.boards.values())

    def board_top_k(self, board: str, window: str, k: int, scopes: Mapping[str, str]) -> TopKResult:
        """See :meth:`BoardSet.top_k <rankstream.boards.BoardSet.top_k>`."""
        key = ("top", board, window, k, tuple(sorted(scopes.items())))
        return self._answer(key, lambda: self.boards.top_k(board, window, k, scopes))

    def rising(
        self, board: str, short: str, long: str, k: int, minimum: int, scopes: Mapping[str, str]
    ) -> Rising:
        """See :func:`rankstream.boards.rising`."""
        key = ("rising", board, short, long, k, minimum, tuple(sorted(scopes.items())))
        return self._answer(
            key, lambda: rising(self.boards, board, short, long, k, minimum, scopes)
        )

    def leaders(self, board: str, by: str, window: str, k: int) -> Leaders:
        """See :func:`rankstream.boards.leaders`."""
        key = ("leaders", board, by, window, k)
        return self._answer(key, lambda: leaders(self.boards, board, by, window, k))
