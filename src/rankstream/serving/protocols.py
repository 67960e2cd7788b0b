"""The seams between the HTTP API and whatever takes events and serves rankings."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Protocol

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
