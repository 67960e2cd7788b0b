"""Window definitions and their bounds at a given engine time.

Every window is a half-open range ``[start, end)`` of epoch milliseconds aligned to its
bucket resolution, so a window is always a whole number of buckets:

- ``sliding`` ("last X"): ``end`` is the end of the bucket holding *now*, ``start = end - size``.
- ``calendar`` (the UTC hour, day or month holding *now*).
- ``all``: every event ever accepted; no bounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from rankstream.errors import ConfigError

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
LONGEST_MONTH = 31 * DAY

WindowKind = Literal["sliding", "calendar", "all"]
CalendarUnit = Literal["hour", "day", "month"]


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """One window the engine maintains.

    ``size`` is the span of a sliding window; ``unit`` the period of a calendar window;
    ``resolution`` the bucket width, which must divide an hour (so calendar periods and
    sliding sizes are whole buckets).
    """

    name: str
    kind: WindowKind
    resolution: int = HOUR
    size: int = 0
    unit: CalendarUnit | None = None

    def validate(self) -> None:
        """Raise :class:`ConfigError` if the spec cannot be maintained exactly."""
        if self.kind == "all":
            return
        if self.resolution <= 0 or HOUR % self.resolution != 0:
            raise ConfigError(f"window {self.name}: resolution must divide one hour")
        if self.kind == "sliding" and (self.size <= 0 or self.size % self.resolution != 0):
            raise ConfigError(f"window {self.name}: size must be a positive multiple of resolution")
        if self.kind == "calendar" and self.unit not in ("hour", "day", "month"):
            raise ConfigError(f"window {self.name}: calendar unit must be hour, day or month")

    @property
    def extent(self) -> int:
        """The longest time a window can reach back from *now* (for retention)."""
        if self.kind == "sliding":
            return self.size
        if self.kind == "calendar":
            return {"hour": HOUR, "day": DAY, "month": LONGEST_MONTH}[self.unit or "hour"]
        return 0

    def bounds(self, now: int) -> tuple[int, int]:
        """``(start, end)`` of the window holding ``now`` (epoch ms). Not for ``all``."""
        if self.kind == "sliding":
            end = (now // self.resolution + 1) * self.resolution
            return end - self.size, end
        if self.unit == "hour":
            start = now - now % HOUR
            return start, start + HOUR
        if self.unit == "day":
            start = now - now % DAY
            return start, start + DAY
        if self.unit == "month":
            return month_bounds(now)
        raise ConfigError(f"window {self.name} has no bounds")


def month_bounds(now: int) -> tuple[int, int]:
    """Start and end (epoch ms) of the UTC calendar month holding ``now``."""
    moment = datetime.fromtimestamp(now / 1000, UTC)
    start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    end = datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1, tzinfo=UTC)
    return int(start.timestamp()) * 1000, int(end.timestamp()) * 1000


DEFAULT_WINDOWS: tuple[WindowSpec, ...] = (
    WindowSpec("1h", "sliding", resolution=MINUTE, size=HOUR),
    WindowSpec("24h", "sliding", resolution=MINUTE, size=DAY),
    WindowSpec("7d", "sliding", resolution=HOUR, size=7 * DAY),
    WindowSpec("30d", "sliding", resolution=HOUR, size=30 * DAY),
    WindowSpec("hour", "calendar", resolution=MINUTE, unit="hour"),
    WindowSpec("day", "calendar", resolution=HOUR, unit="day"),
    WindowSpec("month", "calendar", resolution=HOUR, unit="month"),
    WindowSpec("all", "all"),
)
"""The windows of the product: last 1h/24h at minute resolution, 7d/30d at hour resolution,
the calendar hour/day/month in UTC, and all time."""
