"""A reproducible, realistic synthetic stream of video views, generated with numpy.

The model (every draw comes from one ``numpy.random.Generator`` seeded with ``spec.seed``, in
a fixed order, so a spec always yields the same stream, byte for byte):

- *Time*: a minute of ``[start_ms, end_ms)`` is drawn with a diurnal weight (peak at 20:00
  UTC, four times the 08:00 trough), where the last ``live_minutes`` together carry
  ``live_share`` of all events (the live tail); the millisecond is uniform within the minute.
  Events are put in time order, then a share ``late_share`` is moved back by 1 ms to
  ``max_lateness_ms`` while keeping its place, so it arrives out of order.
- *Video*: a popularity rank is drawn from Zipf(``zipf``) bounded to ``videos``, exactly, by
  inverting the CDF over ranks ``1..videos``. The ``trending_top`` most popular ranks are held
  by videos whose order drifts from day to day (a random walk of log-rank with step
  ``churn``), so short windows rank differently from long ones; any other rank ``r`` is
  video ``r``. With ``cover_catalogue``, ``videos`` events chosen at random are given one
  video each instead, so every video of the catalogue is seen (needs ``events >= videos``).
- *Category*: fixed per video, skewed (weights ``1/i**0.8``) over ``categories`` names.
- *Region*: each video has a home region; a view comes from it with probability
  ``home_region_share``, else from Zipf(1) over ``regions`` codes (real ISO codes first).

Nothing here reads the system clock: the stream ends at ``spec.end_ms``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rankstream.engine import EventBatch
from rankstream.errors import ConfigError, require
from rankstream.generator.sampling import cdf, draw, zipf_weights

IntArray = npt.NDArray[np.int64]
ObjectArray = npt.NDArray[np.object_]

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR

REFERENCE_END_MS = 1_742_409_000_000
"""2025-03-19T18:30:00Z: the default end of a stream, mid-month so calendar windows differ."""

_CATEGORY_NAMES = (
    "music", "gaming", "entertainment", "people-blogs", "comedy", "education", "howto-style",
    "news-politics", "sports", "film-animation", "science-tech", "autos", "pets-animals",
    "travel-events", "nonprofits", "shows", "trailers", "kids", "food", "fitness",
)  # fmt: skip
_REGION_CODES = (
    "US", "IN", "BR", "ID", "MX", "JP", "DE", "GB", "FR", "PH", "VN", "TR", "RU", "KR", "IT",
    "ES", "TH", "EG", "PK", "NG", "CA", "AR", "CO", "PL", "SA", "AU", "NL", "UA", "MY", "BD",
)  # fmt: skip
_ID_ALPHABET = np.frombuffer(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", dtype=np.uint8
)
_ID_SHIFTS = np.arange(58, 0, -6, dtype=np.uint64)  # ten 6-bit characters from bits 63..4
_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """What to generate. Durations are milliseconds; ``end_ms`` is epoch ms (exclusive).

    The stream covers ``[end_ms - days * DAY, end_ms)``. See the module docstring for the
    meaning of each knob.
    """

    events: int = 10_000_000
    videos: int = 1_000_000
    categories: int = 20
    regions: int = 200
    zipf: float = 1.1
    days: int = 30
    live_minutes: int = 60
    live_share: float = 0.02
    late_share: float = 0.01
    max_lateness_ms: int = 3 * MINUTE
    home_region_share: float = 0.7
    trending_top: int = 10_000
    churn: float = 0.2
    cover_catalogue: bool = False
    seed: int = 7
    end_ms: int = REFERENCE_END_MS

    @property
    def start_ms(self) -> int:
        """The first millisecond a timestamp may take."""
        return self.end_ms - self.days * DAY

    def validate(self) -> None:
        """Raise :class:`~rankstream.errors.ConfigError` naming the first bad setting."""
        checks = [
            (self.events >= 0, "events must be >= 0"),
            (self.videos >= 1, "videos must be >= 1"),
            (1 <= self.categories <= 65_535, "categories must be 1 to 65535"),
            (1 <= self.regions <= 65_535, "regions must be 1 to 65535"),
            (self.zipf > 0, "zipf must be > 0"),
            (self.days >= 1, "days must be >= 1"),
            (0 <= self.live_minutes <= self.days * 1440, "live_minutes must fit in the days"),
            (0 <= self.live_share <= 1, "live_share must be 0 to 1"),
            (0 <= self.late_share <= 1, "late_share must be 0 to 1"),
            (self.max_lateness_ms >= 0, "max_lateness_ms must be >= 0"),
            (0 <= self.home_region_share <= 1, "home_region_share must be 0 to 1"),
            (self.trending_top >= 0 and self.churn >= 0, "trending_top, churn must be >= 0"),
            (
                not self.cover_catalogue or self.events >= self.videos,
                "cover_catalogue needs events >= videos",
            ),
            (self.start_ms >= 0, "end_ms must be at least `days` after 1970-01-01"),
        ]
        require(checks, "stream spec")


@dataclass(frozen=True, slots=True)
class StreamColumns:
    """A generated stream as integer columns (one row per event, in arrival order) and the
    string tables that name the codes. :meth:`batch` turns rows into an :class:`EventBatch`
    of Python strings, the form a decoder would hand the engine.
    """

    spec: StreamSpec
    videos: IntArray
    """Video code per event, ``0 <= code < spec.videos`` (code 0 is popularity rank 1)."""
    timestamps: IntArray
    """Epoch ms per event, within ``[spec.start_ms, spec.end_ms)``."""
    categories: IntArray
    """Category code per event: always that of its video."""
    regions: IntArray
    """Region code per event."""
    video_category: IntArray
    """Category code of each video."""
    video_ids: ObjectArray
    """The id string of each video code."""
    category_names: ObjectArray
    region_names: ObjectArray

    def __len__(self) -> int:
        return len(self.timestamps)

    def batch(self, start: int, stop: int) -> EventBatch:
        """Rows ``[start, stop)`` as a batch of strings (no ``event_id``, each counts 1)."""
        return EventBatch(
            video_ids=self.video_ids[self.videos[start:stop]].tolist(),
            timestamps=self.timestamps[start:stop],
            categories=self.category_names[self.categories[start:stop]].tolist(),
            regions=self.region_names[self.regions[start:stop]].tolist(),
        )

    def batches(self, size: int, start: int = 0) -> Iterator[tuple[EventBatch, int]]:
        """``(batch, wall_time)`` for consecutive rows from ``start``, ``size`` at a time.

        ``wall_time`` is the batch's newest timestamp, so the engine rejects nothing as too new.
        """
        if size < 1:
            raise ConfigError("batch size must be >= 1")
        for lo in range(start, len(self), size):
            hi = min(lo + size, len(self))
            yield self.batch(lo, hi), int(self.timestamps[lo:hi].max())


def generate_columns(spec: StreamSpec) -> StreamColumns:
    """Generate the whole stream of ``spec``: deterministic, about 0.6 s per million events."""
    spec.validate()
    rng = np.random.default_rng(spec.seed)
    timestamps = _timestamps(spec, rng)
    ranks = draw(cdf(zipf_weights(spec.videos, spec.zipf)), spec.events, rng)
    videos = _trending(ranks, timestamps, spec, rng)
    if spec.cover_catalogue:
        videos[rng.choice(spec.events, spec.videos, replace=False)] = rng.permutation(spec.videos)
    video_category = draw(cdf(zipf_weights(spec.categories, 0.8)), spec.videos, rng)
    region_cdf = cdf(zipf_weights(spec.regions, 1.0))
    home_region = draw(region_cdf, spec.videos, rng)
    from_home = rng.random(spec.events) < spec.home_region_share
    regions = np.where(from_home, home_region[videos], draw(region_cdf, spec.events, rng))
    return StreamColumns(
        spec=spec,
        videos=videos,
        timestamps=timestamps,
        categories=video_category[videos],
        regions=regions,
        video_category=video_category,
        video_ids=_object_array(video_id_strings(spec.videos, spec.seed)),
        category_names=_object_array(_names(_CATEGORY_NAMES, spec.categories, "cat")),
        region_names=_object_array(_names(_REGION_CODES, spec.regions, "r")),
    )


def generate_batches(spec: StreamSpec, batch_size: int) -> Iterator[tuple[EventBatch, int]]:
    """The stream of ``spec`` as ``(batch, wall_time)`` pairs in arrival order."""
    return generate_columns(spec).batches(batch_size)


def video_id_strings(count: int, seed: int) -> list[str]:
    """``count`` distinct 11-character base64url ids, the same for the same ``(count, seed)``.

    Id ``i`` encodes the 64 bits ``splitmix64(seed + (i + 1) * golden)``; the mix is a
    bijection, so ids never collide, and their order is unrelated to popularity.
    """
    offset = np.uint64((seed + _GOLDEN) & _MASK64)
    x = np.arange(count, dtype=np.uint64) * np.uint64(_GOLDEN) + offset
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    codes = np.empty((count, 11), dtype=np.uint64)
    codes[:, :10] = (x[:, None] >> _ID_SHIFTS) & np.uint64(63)
    codes[:, 10] = (x & np.uint64(15)) << np.uint64(2)  # 4 bits left: 16 possible last chars
    raw = np.ascontiguousarray(_ID_ALPHABET[codes])
    ids: list[str] = raw.view("S11").ravel().astype("U11").tolist()
    return ids


def _timestamps(spec: StreamSpec, rng: np.random.Generator) -> IntArray:
    minutes = spec.days * 1440
    starts = spec.start_ms + np.arange(minutes, dtype=np.int64) * MINUTE
    phase = (starts % DAY) / DAY
    weights = 1.0 + 0.6 * np.cos(2 * np.pi * (phase - 20 / 24))
    split = minutes - spec.live_minutes
    for part, share in ((weights[:split], 1 - spec.live_share), (weights[split:], spec.live_share)):
        if len(part) and len(part) < minutes:
            part *= share / part.sum()
    minute = draw(cdf(weights), spec.events, rng)
    timestamps = starts[minute] + rng.integers(0, MINUTE, spec.events)
    timestamps.sort()
    late = np.flatnonzero(rng.random(spec.events) < spec.late_share)
    if spec.max_lateness_ms > 0 and len(late):
        timestamps[late] -= rng.integers(1, spec.max_lateness_ms + 1, len(late))
        np.maximum(timestamps, spec.start_ms, out=timestamps)
    return timestamps


def _trending(
    ranks: IntArray, timestamps: IntArray, spec: StreamSpec, rng: np.random.Generator
) -> IntArray:
    """Map popularity ranks to videos; the top ranks change hands from day to day."""
    top = min(spec.trending_top, spec.videos)
    if top < 2 or spec.churn == 0:
        return ranks
    walk = np.cumsum(rng.normal(0.0, spec.churn, (spec.days, top)), axis=0)
    holder = np.argsort(np.log(np.arange(1, top + 1)) + walk, axis=1)  # [day, rank] -> video
    day = np.clip((timestamps - spec.start_ms) // DAY, 0, spec.days - 1)
    hot = np.flatnonzero(ranks < top)
    videos = ranks.copy()
    videos[hot] = holder[day[hot], ranks[hot]]
    return videos


def _names(known: tuple[str, ...], count: int, prefix: str) -> list[str]:
    width = len(str(count - 1))
    return [*known[:count], *(f"{prefix}{i:0{width}d}" for i in range(len(known), count))]


def _object_array(strings: list[str]) -> ObjectArray:
    table = np.empty(len(strings), dtype=object)
    table[:] = strings
    return table
