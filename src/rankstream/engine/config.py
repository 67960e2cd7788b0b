"""Engine configuration: windows, retained horizon, clock skew, de-duplication, k limit."""

from __future__ import annotations

from dataclasses import dataclass

from rankstream.engine.measure import VIEWS, Measure
from rankstream.engine.windows import DAY, DEFAULT_WINDOWS, MINUTE, WindowSpec
from rankstream.errors import ConfigError


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Settings of one engine. All durations are milliseconds.

    ``horizon``: how far back (from the start of the current coarsest bucket) late events are
    still applied exactly; older ones count toward ``all`` only and in ``late_dropped``.
    ``max_skew``: events further than this ahead of wall-clock time are rejected.
    ``dedup_horizon`` / ``dedup_capacity``: an ``event_id`` seen within this much arrival time
    is a duplicate; at most ``dedup_capacity`` ids are remembered (oldest evicted first).
    ``candidate_size``: how many leading items a cached ranking keeps (at least ``max_k``).
    """

    windows: tuple[WindowSpec, ...] = DEFAULT_WINDOWS
    horizon: int = 31 * DAY
    max_skew: int = 5 * MINUTE
    dedup_horizon: int = 10 * MINUTE
    dedup_capacity: int = 2_000_000
    max_k: int = 1000
    candidate_size: int = 2000
    measure: Measure = VIEWS

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the setting to change."""
        names = [w.name for w in self.windows]
        if len(set(names)) != len(names):
            raise ConfigError("window names must be unique")
        if not self.windows:
            raise ConfigError("at least one window is required")
        for window in self.windows:
            window.validate()
        needed = max((w.extent for w in self.windows), default=0)
        if self.horizon < needed:
            raise ConfigError(
                f"horizon ({self.horizon} ms) must cover the longest window ({needed} ms)"
            )
        if self.max_skew < 0 or self.dedup_horizon < 0 or self.dedup_capacity < 0:
            raise ConfigError("max_skew, dedup_horizon and dedup_capacity must be >= 0")
        if not 1 <= self.max_k <= self.candidate_size:
            raise ConfigError("max_k must be between 1 and candidate_size")

    def window(self, name: str) -> WindowSpec | None:
        """The window called ``name``, or ``None``."""
        return next((w for w in self.windows if w.name == name), None)
