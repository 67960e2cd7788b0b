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


class CapacityError(RankstreamError):
    """A fixed-width table is full (too many distinct categories or regions)."""
