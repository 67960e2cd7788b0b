"""Engine configuration: windows, retained horizon, clock skew, de-duplication, k limit and
capacity limits."""

from __future__ import annotations

from dataclasses import dataclass

from rankstream.engine.measure import VIEWS, Measure
from rankstream.engine.windows import DAY, DEFAULT_WINDOWS, MINUTE, WindowSpec
from rankstream.errors import ConfigError

VIDEO_CODE_LIMIT = (1 << 31) - 1
"""The most distinct videos the encoding holds (31-bit codes in cell and series keys)."""
LABEL_CODE_LIMIT = (1 << 16) - 1
"""The most distinct categories, and regions, the encoding holds (16-bit codes, 0 = absent)."""
CELL_CODE_LIMIT = (1 << 31) - 1
"""The most distinct cells the encoding holds."""


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Settings of one engine. All durations are milliseconds.

    ``horizon``: how far back (from the start of the current coarsest bucket) late events are
    still applied exactly; older ones count toward ``all`` only and in ``late_dropped``.
    ``max_skew``: events further than this ahead of wall-clock time are rejected.
    ``dedup_horizon`` / ``dedup_capacity``: an ``event_id`` seen within this much arrival time
    is a duplicate; at most ``dedup_capacity`` ids are remembered (oldest evicted first).
    ``candidate_size``: how many leading items a cached ranking keeps (at least ``max_k``).

    Capacity limits bound the engine's tables, hence its memory. They apply to NEW values:
    an event that would add a video, category, region or cell beyond its limit is screened
    out as ``OVER_CAPACITY`` (see :class:`~rankstream.engine.screening.Screening`); events
    of known ones are always counted, and replayed events are never refused, so lowering a
    limit below what the engine already holds only stops growth.

    ``max_videos``: distinct video ids (below 2^31).
    ``max_categories`` / ``max_regions``: distinct labels of each (at most 65,535).
    ``max_cells``: distinct (video, category, region) cells (below 2^31). Every cell creates
    at most 4 series (one per scope kind), so this bounds series and memory: a cell costs
    56 bytes of tables plus, per new series, 40 (index, columns) and 8 per window (104
    with the 8 default windows), plus 16 per minute or hour bucket it appears in.
    Measured on the benchmark's generated stream (10 M events, 1 M videos; 3.05 series and
    3.0 bucket entries per cell), ``memory()`` gives 431 numpy bytes per cell and
    tracemalloc 699 bytes per cell for everything the engine allocated (video ids, growth
    slack and touch log included); with every cell a new video (4 series each), 516 and
    873. Budget about 0.7 to 0.9 KB per cell: the default 10 million cells is about 7 to
    9 GB, leaving room on a 24 GiB machine. See docs/ENGINE.md, "Capacity limits".
    """

    windows: tuple[WindowSpec, ...] = DEFAULT_WINDOWS
    horizon: int = 31 * DAY
    max_skew: int = 5 * MINUTE
    dedup_horizon: int = 10 * MINUTE
    dedup_capacity: int = 2_000_000
    max_k: int = 1000
    candidate_size: int = 2000
    measure: Measure = VIEWS
    max_videos: int = 10_000_000
    max_categories: int = LABEL_CODE_LIMIT
    max_regions: int = LABEL_CODE_LIMIT
    max_cells: int = 10_000_000

    def latest_accepted(self, wall_time: int) -> int:
        """The newest event timestamp taken at ``wall_time``: later ones are too new."""
        return wall_time + self.max_skew

    @property
    def too_new_reason(self) -> str:
        """Why a too-new event is rejected, as clients and dead letters read it."""
        return f"timestamp: more than {self.max_skew // 1000} s ahead of server time"

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
        limits = (
            ("max_videos", self.max_videos, VIDEO_CODE_LIMIT),
            ("max_categories", self.max_categories, LABEL_CODE_LIMIT),
            ("max_regions", self.max_regions, LABEL_CODE_LIMIT),
            ("max_cells", self.max_cells, CELL_CODE_LIMIT),
        )
        for name, value, most in limits:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= most:
                raise ConfigError(f"{name} must be an integer from 0 to {most:,}, got {value!r}")

    def window(self, name: str) -> WindowSpec | None:
        """The window called ``name``, or ``None``."""
        return next((w for w in self.windows if w.name == name), None)
