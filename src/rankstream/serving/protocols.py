"""The seams between the HTTP API and whatever takes events and serves rankings."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any, Protocol

from rankstream.boards import BoardSpec, Leaders, Rising
from rankstream.engine import TopKResult
from rankstream.service.deadletters import DeadLetters
from rankstream.service.writer import Submission


class RankingSource(Protocol):
    """Exact rankings by window and scope.

    Raises :class:`~rankstream.errors.InvalidQuery` for a query no configuration answers,
    and :class:`~rankstream.errors.RankingUnavailable` when the ranking cannot be had right
    now (never a wrong one instead).
    """

    def top_k(
        self, window: str, k: int, category: str | None = None, region: str | None = None
    ) -> TopKResult:
        """The top ``k`` of ``window`` (filtered by category and region), with the bounds
        ``[start, end)`` every count in it was computed for."""
        ...


class BoardSource(Protocol):
    """Exact answers of the declared leaderboards (:mod:`rankstream.boards`).

    Same errors as :class:`RankingSource`: :class:`~rankstream.errors.InvalidQuery` for an
    unknown board, window, scope or bad parameter; :class:`~rankstream.errors.RankingUnavailable`
    when an answer cannot be had right now.
    """

    def board_specs(self) -> tuple[BoardSpec, ...]:
        """The declared boards, in declaration order."""
        ...

    def board_top_k(self, board: str, window: str, k: int, scopes: Mapping[str, str]) -> TopKResult:
        """The top ``k`` entities of ``board`` in ``window``, narrowed by ``{scope field:
        value}``; ``category``/``region`` of the result are the board's scope slots."""
        ...

    def rising(
        self,
        board: str,
        short: str,
        long: str,
        k: int,
        minimum: int,
        scopes: Mapping[str, str],
    ) -> Rising:
        """See :func:`rankstream.boards.rising`."""
        ...

    def leaders(self, board: str, by: str, window: str, k: int) -> Leaders:
        """See :func:`rankstream.boards.leaders`."""
        ...


class Ingest(Protocol):
    """Where a request's valid events go; answers only once they are durable."""

    dead_letters: DeadLetters

    def admit(self) -> None:
        """Raise :class:`~rankstream.errors.Overloaded` or
        :class:`~rankstream.errors.StorageFailure` if a request would be refused now (so
        its body need not be read)."""
        ...

    def submit(self, submission: Submission) -> Future[tuple[bytes, bool]]:
        """Take a request; the future yields ``(answer, replayed)`` once its events are
        durable, or raises :class:`~rankstream.errors.StorageFailure`."""
        ...

    def ingest_problem(self) -> str | None:
        """Why ingest fails now, or ``None`` when it works."""
        ...

    def status(self) -> dict[str, Any]:
        """Counters and positions for ``GET /status`` (see ``StatusAnswer``)."""
        ...
