"""What the HTTP API asks of a process that keeps an analytics store.

Two processes keep one: the embedded service
(:class:`~rankstream.analytics.embedded.Analytics`) and the scale-out
``rankstream analytics-loader``
(:class:`~rankstream.analytics.kafka_loader.KafkaAnalyticsLoader`).
"""

from __future__ import annotations

from typing import Any, Protocol

from rankstream.analytics.queries import AnalyticsQueries


class AnalyticsService(Protocol):
    """The store's questions, how far it is loaded, and its loader's status."""

    @property
    def queries(self) -> AnalyticsQueries:
        """The questions (thread-safe: the store serialises its statements)."""
        ...

    def loaded_through(self) -> int | None:
        """The newest event time loaded (epoch ms), or ``None`` before any."""
        ...

    def status(self) -> dict[str, Any]:
        """The loader's position, lag and the store's size (blocks briefly)."""
        ...
