"""The exceptions rankstream raises: one root, a few specific kinds.

Everything a client can cause is a :class:`RankstreamError` subclass, so an API edge can turn
all of them into a 4xx answer in one place.
"""

from __future__ import annotations

from collections.abc import Iterable


class RankstreamError(Exception):
    """Root of every error rankstream raises on purpose."""


class InvalidEvent(RankstreamError):
    """An event failed validation. ``field`` names the offending field, ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class InvalidQuery(RankstreamError):
    """A top-k query named an unknown window, a k out of range or an oversized filter."""


class ConfigError(RankstreamError):
    """The configuration is inconsistent; the message says which setting to change."""


def require(checks: Iterable[tuple[bool, str]], context: str = "") -> None:
    """Raise :class:`ConfigError` with the message of the first failed ``(ok, message)``,
    prefixed by ``context``."""
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"{context}: {message}" if context else message)


class SnapshotError(RankstreamError):
    """A snapshot could not be read: wrong format, unsupported version or corrupt payload."""


class MismatchedBounds(RankstreamError):
    """Rankings to merge were not computed for the same window, bounds and filters (their
    engines' clocks are in different buckets, or a caller mixed queries); merge rankings
    of one query taken once the partitions' clocks agree."""


class CapacityError(RankstreamError):
    """A fixed-width table is full (too many distinct categories or regions)."""


class StorageFailure(RankstreamError):
    """The durable log could not be written (an I/O error); nothing of the request was kept."""


class StorageFull(StorageFailure):
    """The data directory's filesystem is full; nothing of the request was kept. Ingest
    resumes by itself once space is freed."""


class RankingUnavailable(RankstreamError):
    """A ranking cannot be served right now (not yet published, or its store is down);
    retry shortly. Never answered with wrong numbers instead."""


class Overloaded(RankstreamError):
    """The ingest queue holds as many requests or bytes as allowed; retry shortly."""


class BadBody(RankstreamError):
    """A request body is unusable as a whole (empty, not JSON, not an object or array);
    ``code`` names the problem for programs."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class TooManyEvents(BadBody):
    """A request holds more events than one request may."""

    def __init__(self, count: int, limit: int) -> None:
        super().__init__("too_many_events", f"{count} events in one request; the limit is {limit}")
