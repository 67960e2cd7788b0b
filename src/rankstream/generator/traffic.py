"""Realistic live traffic for a running server: request bodies of view events, made to order.

Where :mod:`rankstream.generator.synthetic` makes a whole history at once for the engine,
this module makes *live* traffic one batch at a time, for a sender that posts it over HTTP.
It is pure: it never reads the clock (the caller passes ``now_ms``) and does no I/O.

Reproducibility: batch ``index`` draws from its own generator seeded with
``(spec.seed, index)``, so ``TrafficModel(spec, start_ms).batch(index, size, now_ms)`` is a
pure function of its arguments: the same call returns the same events and bytes, in any
order and from any task. The model of one batch (shares are of the batch's rows):

- *Video*: a popularity rank drawn from Zipf(``zipf``) bounded to ``videos``, exactly, by
  inverting the CDF over ranks (``searchsorted``). Rank ``r`` is video ``video_ids[r]``;
  ids are unrelated to popularity. Category is fixed per video (weights ``1/i**0.8``).
- *Region*: a video's views come from its home region with probability
  ``home_region_share``, else from a Zipf(``region_skew``) mix over ``regions`` codes
  (US, IN, BR, ... first).
- *Spike*: from ``start_ms + spike_offset_s`` for ``spike_duration_s``, the viral video (an
  id outside the catalogue, :attr:`TrafficModel.spike_video_id`) takes ``spike_share`` of
  the views. The spike is decided by ``now_ms``, so it starts and stops with the batches.
- *Time*: in-order events are spread over ``[now_ms - jitter_ms, now_ms]`` ascending;
  ``out_of_order_share`` are moved 1 s to ``out_of_order_max_ms`` back and ``late_share``
  ``late_min_ms`` to ``late_max_ms`` back (hours, so they miss the short windows).
  ``iso_share`` of the timestamps are written as ISO-8601 strings instead of epoch ms.
- *Duplicates*: ``duplicate_share`` of the rows repeat an earlier valid row of the batch
  whole, ``event_id`` included (a client retrying a send it thought was lost).
- *Malformed*: ``malformed_share`` of the rows are broken on purpose, each in one of the
  ways of :data:`MALFORMED_KINDS`; all but ``"future"`` fail
  :func:`rankstream.engine.parse_event`, and ``"future"`` lies 1 h to 2 days ahead of
  ``now_ms``, beyond any server's clock skew allowance.

The rate of traffic itself is the caller's business; :meth:`TrafficModel.rate_multiplier`
gives the diurnal curve (mean 1 over a day, peak at 20:00 UTC) for a caller that wants it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt

from rankstream.errors import require
from rankstream.generator.sampling import cdf, draw, zipf_weights
from rankstream.generator.synthetic import video_id_strings

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

SECOND: Final = 1000
MINUTE: Final = 60 * SECOND
HOUR: Final = 60 * MINUTE
DAY: Final = 24 * HOUR

# Row kinds of a TrafficBatch, in the order their shares are laid out on [0, 1).
NORMAL: Final = 0
OUT_OF_ORDER: Final = 1
LATE: Final = 2
DUPLICATE: Final = 3
MALFORMED: Final = 4

MALFORMED_KINDS: Final = (
    "missing_video_id",
    "video_id_not_string",
    "empty_video_id",
    "control_character",
    "timestamp_not_a_date",
    "timestamp_float",
    "timestamp_without_timezone",
    "timestamp_negative",
    "category_not_string",
    "not_an_object",
    "future",
)
"""The ways a malformed row is broken, drawn uniformly. Only ``future`` passes
:func:`~rankstream.engine.parse_event`: the server rejects it against its own clock."""

CATEGORY_NAMES: Final = (
    "music", "gaming", "entertainment", "people-blogs", "comedy", "education", "howto-style",
    "news-politics", "sports", "film-animation", "science-tech", "autos", "pets-animals",
    "travel-events", "nonprofits", "shows", "trailers", "kids", "food", "fitness",
)  # fmt: skip
REGION_CODES: Final = (
    "US", "IN", "BR", "ID", "MX", "JP", "DE", "GB", "FR", "PH", "VN", "TR", "RU", "KR", "IT",
    "ES", "TH", "EG", "PK", "NG", "CA", "AR", "CO", "PL", "SA", "AU", "NL", "UA", "MY", "BD",
)  # fmt: skip

_DIURNAL: Final = tuple(1.0 + 0.6 * float(np.cos(2 * np.pi * (h - 20) / 24)) for h in range(24))
"""Rate multiplier at the start of each UTC hour: mean 1, peak 1.6 at 20:00, 0.4 at 08:00."""


class View(msgspec.Struct, omit_defaults=True, gc=False):
    """One well-formed view as it goes on the wire (``None`` fields are left out)."""

    video_id: str
    timestamp: int | str
    category: str | None = None
    region: str | None = None
    event_id: str | None = None
    user_id: int | None = None


class VideoMetadata(msgspec.Struct, gc=False):
    """The body of ``PUT /videos/{video_id}`` (``video_id`` itself goes in the path)."""

    video_id: str
    title: str
    channel: str
    thumbnail_url: str
    duration_s: int
    category: str

    def body(self) -> dict[str, Any]:
        """The JSON object to send: every field but ``video_id``."""
        return {f: getattr(self, f) for f in self.__struct_fields__ if f != "video_id"}


@dataclass(frozen=True, slots=True)
class TrafficSpec:
    """What traffic to make. Durations are milliseconds unless named ``_s``; shares are of
    the rows of a batch and must add up to at most 1. See the module docstring."""

    videos: int = 100_000
    zipf: float = 1.1
    categories: int = 20
    regions: int = 30
    region_skew: float = 1.2
    home_region_share: float = 0.5
    users: int = 1_000_000
    jitter_ms: int = 1 * SECOND
    out_of_order_share: float = 0.03
    out_of_order_max_ms: int = 3 * MINUTE
    late_share: float = 0.005
    late_min_ms: int = 1 * HOUR
    late_max_ms: int = 4 * HOUR
    duplicate_share: float = 0.01
    malformed_share: float = 0.0
    iso_share: float = 0.01
    spike_offset_s: float = 60.0
    spike_duration_s: float = 180.0
    spike_share: float = 0.3
    seed: int = 7
    run: str = ""
    """Prefix of every ``event_id``: give each live run its own (the sender uses the seed and
    start time), so a second run is not taken for retries of the first."""

    def validate(self) -> None:
        """Raise :class:`~rankstream.errors.ConfigError` naming the first bad setting."""
        shares = (
            self.out_of_order_share,
            self.late_share,
            self.duplicate_share,
            self.malformed_share,
        )
        checks = [
            (self.videos >= 1, "videos must be >= 1"),
            (self.seed >= 0, "seed must be >= 0"),
            (self.zipf > 0 and self.region_skew >= 0, "zipf must be > 0, region_skew >= 0"),
            (1 <= self.categories <= len(CATEGORY_NAMES), "categories must be 1 to 20"),
            (1 <= self.regions <= len(REGION_CODES), "regions must be 1 to 30"),
            (self.users >= 1, "users must be >= 1"),
            (self.jitter_ms >= 1, "jitter_ms must be >= 1"),
            (all(0 <= s <= 1 for s in shares) and sum(shares) <= 1, "shares must sum to <= 1"),
            (0 <= self.home_region_share <= 1, "home_region_share must be 0 to 1"),
            (0 <= self.iso_share <= 1 and 0 <= self.spike_share <= 1, "shares must be 0 to 1"),
            (self.out_of_order_max_ms >= SECOND, "out_of_order_max_ms must be >= 1000"),
            (1 <= self.late_min_ms <= self.late_max_ms, "need 1 <= late_min_ms <= late_max_ms"),
            (self.spike_duration_s >= 0, "spike_duration_s must be >= 0"),
        ]
        require(checks, "traffic spec")


@dataclass(frozen=True, slots=True)
class TrafficBatch:
    """One batch of traffic: the events to encode and, per row, what they are.

    ``events`` holds :class:`View` structs, except malformed rows, which are whatever the
    row's kind calls for (a dict, a list, a string). Duplicate rows are the very same
    object as the row they repeat. The columns describe every row as drawn (``video_ids`` and
    ``timestamps`` of a malformed row are those it was made from).
    """

    index: int
    now_ms: int
    events: list[object]
    video_ids: list[str]
    timestamps: IntArray
    kinds: npt.NDArray[np.int8]
    """Row kind: :data:`NORMAL`, :data:`OUT_OF_ORDER`, :data:`LATE`, :data:`DUPLICATE` or
    :data:`MALFORMED`."""
    malformed: dict[int, str]
    """Row -> its entry of :data:`MALFORMED_KINDS`, for the malformed rows."""

    def __len__(self) -> int:
        return len(self.events)

    @property
    def keys(self) -> list[str]:
        """The Kafka key of each row: its ``video_id`` (as drawn, for a malformed row)."""
        return self.video_ids

    def encode(self) -> bytes:
        """The batch as a JSON array, the body of one ``POST /views``."""
        return msgspec.json.encode(self.events)

    def encode_ndjson(self) -> bytes:
        """The batch as NDJSON (one event per line, ``application/x-ndjson``)."""
        encode = msgspec.json.encode
        return b"".join([encode(e) + b"\n" for e in self.events])


class TrafficModel:
    """Makes the batches of one live run of ``spec`` that started at ``start_ms`` (epoch ms).

    Building the model computes the catalogue (ids, categories, home regions, CDFs): about
    a second per million videos. After that every method is pure and cheap.
    """

    def __init__(self, spec: TrafficSpec, start_ms: int) -> None:
        spec.validate()
        self.spec = spec
        self.start_ms = start_ms
        rng = np.random.default_rng((spec.seed, 0xCA7A106))
        ids = video_id_strings(spec.videos + 1, spec.seed)
        self.spike_video_id: str = ids[-1]
        """The viral video: not in the catalogue, so it is new when its spike starts."""
        self._ids = np.empty(spec.videos + 1, dtype=object)
        self._ids[:] = ids
        self._rank_cdf = cdf(zipf_weights(spec.videos, spec.zipf))
        self._region_cdf = cdf(zipf_weights(spec.regions, spec.region_skew))
        category = draw(cdf(zipf_weights(spec.categories, 0.8)), spec.videos, rng)
        self._video_category = np.append(category, 0)  # the spike video is music
        self._home_region = np.append(draw(self._region_cdf, spec.videos, rng), 0)
        self._category_names = np.empty(spec.categories, dtype=object)
        self._category_names[:] = CATEGORY_NAMES[: spec.categories]
        self._region_names = np.empty(spec.regions, dtype=object)
        self._region_names[:] = REGION_CODES[: spec.regions]
        cuts = np.cumsum(
            [spec.out_of_order_share, spec.late_share, spec.duplicate_share, spec.malformed_share]
        )
        self._kind_cuts = np.append(cuts, np.inf)  # NORMAL past the end of the shares
        self._kind_order = np.array([OUT_OF_ORDER, LATE, DUPLICATE, MALFORMED, NORMAL], np.int8)

    def starting_at(self, start_ms: int) -> TrafficModel:
        """The same model (sharing its catalogue, no rebuild) for a run starting at
        ``start_ms``; only the spike's timing depends on it."""
        moved = copy.copy(self)
        moved.start_ms = start_ms
        return moved

    # ------------------------------------------------------------------ the catalogue

    @property
    def spike_start_ms(self) -> int:
        """When the viral video's spike starts (epoch ms)."""
        return self.start_ms + round(self.spec.spike_offset_s * 1000)

    @property
    def spike_end_ms(self) -> int:
        """When it ends (exclusive)."""
        return self.spike_start_ms + round(self.spec.spike_duration_s * 1000)

    def spike_active(self, now_ms: int) -> bool:
        """Whether a batch made at ``now_ms`` carries the spike."""
        return self.spike_start_ms <= now_ms < self.spike_end_ms

    def video_id(self, rank: int) -> str:
        """The id of the video of popularity ``rank`` (0 is the most popular)."""
        if not 0 <= rank < self.spec.videos:
            raise IndexError(f"rank {rank} is outside the catalogue of {self.spec.videos}")
        return str(self._ids[rank])

    def category_of(self, video_id: str) -> str:
        """The category of a catalogue video or of the spike video (a linear scan: tests)."""
        rank = self._ids.tolist().index(video_id)
        return str(self._category_names[self._video_category[rank]])

    def rate_multiplier(self, now_ms: int) -> float:
        """The diurnal rate factor at ``now_ms`` (:func:`diurnal_multiplier`)."""
        return diurnal_multiplier(now_ms)

    def metadata(self, ranks: Iterable[int]) -> list[VideoMetadata]:
        """Metadata of the catalogue videos of the given popularity ranks, the same for the
        same seed whatever the range (each video seeds Faker from ``(seed, rank)``).

        Rank ``spec.videos`` (just past the catalogue) is the spike video. Imports Faker
        on first use; about 0.2 ms per video.
        """
        from faker import Faker

        fake = Faker("en_US")
        channels = max(1, self.spec.videos // 20)
        out = []
        for rank in ranks:
            if not 0 <= rank <= self.spec.videos:
                raise IndexError(f"rank {rank} is outside the catalogue of {self.spec.videos}")
            video_id = str(self._ids[rank])
            mix = _mix64(self.spec.seed, rank)
            channel_mix = _mix64(self.spec.seed, mix % channels, 1)  # ~20 videos per channel
            fake.seed_instance(channel_mix)
            person = channel_mix & 1
            channel = f"{fake.first_name()} {fake.last_name()}" if person else fake.company()
            fake.seed_instance(mix)
            words = fake.words(nb=2 + mix % 6)
            title = " ".join(words).capitalize()
            if rank == self.spec.videos:
                title = f"{title} (goes viral)"
            minutes = float(np.exp(1.9 + 1.1 * _unit_normal(mix)))  # log-normal, median 6.7 min
            out.append(
                VideoMetadata(
                    video_id=video_id,
                    title=title,
                    channel=channel,
                    thumbnail_url=f"https://img.rankstream.test/vi/{video_id}/hq.jpg",
                    duration_s=int(min(max(minutes * 60, 5), 3 * 3600)),
                    category=str(self._category_names[self._video_category[rank]]),
                )
            )
        return out

    # ------------------------------------------------------------------ traffic

    def batch(self, index: int, size: int, now_ms: int) -> TrafficBatch:
        """Batch ``index`` (``>= 0``) of ``size`` events, made at wall time ``now_ms``.

        Pure: the same arguments give the same batch. Event ids are
        ``{spec.run}{index:x}-{row:x}``, unique per (run, index, row) except duplicates.
        """
        if index < 0 or size < 0:
            raise ValueError("index and size must be >= 0")
        spec = self.spec
        rng = np.random.default_rng((spec.seed, index))
        kinds = self._kind_order[np.searchsorted(self._kind_cuts, rng.random(size), "right")]
        ranks = draw(self._rank_cdf, size, rng)
        if self.spike_active(now_ms) and spec.spike_share > 0:
            ranks[rng.random(size) < spec.spike_share] = spec.videos
        from_home = rng.random(size) < spec.home_region_share
        regions = np.where(from_home, self._home_region[ranks], draw(self._region_cdf, size, rng))
        offsets = np.sort(rng.integers(0, spec.jitter_ms, size))
        timestamps = now_ms - spec.jitter_ms + offsets
        moved = kinds == OUT_OF_ORDER
        timestamps[moved] -= rng.integers(SECOND, spec.out_of_order_max_ms + 1, moved.sum())
        moved = kinds == LATE
        timestamps[moved] -= rng.integers(spec.late_min_ms, spec.late_max_ms + 1, moved.sum())
        users = rng.integers(0, spec.users, size)
        iso = rng.random(size) < spec.iso_share
        source = self._duplicate_sources(kinds, rng)
        # A duplicate row takes every column of its source, its row number (the event id) too.
        ranks, regions, users = ranks[source], regions[source], users[source]
        timestamps, iso = timestamps[source], iso[source]

        video_ids: list[str] = self._ids[ranks].tolist()
        stamps: list[int | str] = timestamps.tolist()
        for row in np.flatnonzero(iso).tolist():
            stamps[row] = _iso(int(timestamps[row]))
        prefix = f"{spec.run}{index:x}-"
        views = [
            View(v, t, c, r, f"{prefix}{i:x}", u)
            for v, t, c, r, i, u in zip(
                video_ids,
                stamps,
                self._category_names[self._video_category[ranks]].tolist(),
                self._region_names[regions].tolist(),
                source.tolist(),
                users.tolist(),
                strict=True,
            )
        ]
        events: list[object] = [*views]
        malformed = {}
        for row in np.flatnonzero(kinds == MALFORMED).tolist():
            kind = MALFORMED_KINDS[int(rng.integers(len(MALFORMED_KINDS)))]
            malformed[row] = kind
            events[row] = _malformed(kind, views[row], now_ms, rng)
        return TrafficBatch(index, now_ms, events, video_ids, timestamps, kinds, malformed)

    def _duplicate_sources(
        self, kinds: npt.NDArray[np.int8], rng: np.random.Generator
    ) -> npt.NDArray[np.intp]:
        """Row -> the row it repeats: itself, or an earlier valid row for a duplicate (a
        duplicate with no valid row before it becomes a normal row)."""
        source = np.arange(len(kinds))
        dups = np.flatnonzero(kinds == DUPLICATE)
        if len(dups) == 0:
            return source
        valid = np.flatnonzero(kinds < DUPLICATE)
        before = np.searchsorted(valid, dups)  # valid rows earlier than each duplicate
        picks = (rng.random(len(dups)) * before).astype(np.intp)
        has = before > 0
        source[dups[has]] = valid[picks[has]]
        kinds[dups[~has]] = NORMAL
        return source


def diurnal_multiplier(now_ms: int) -> float:
    """The diurnal rate factor at ``now_ms``: the UTC hour's entry of the curve,
    interpolated linearly to the next hour (mean 1 over a day; every scenario shares it)."""
    hours = (now_ms % DAY) / HOUR
    hour = int(hours)
    frac = hours - hour
    return _DIURNAL[hour] * (1 - frac) + _DIURNAL[(hour + 1) % 24] * frac


def _malformed(kind: str, view: View, now_ms: int, rng: np.random.Generator) -> object:
    """A copy of ``view`` broken the way ``kind`` says (see :data:`MALFORMED_KINDS`)."""
    good = {f: getattr(view, f) for f in view.__struct_fields__ if getattr(view, f) is not None}
    match kind:
        case "missing_video_id":
            del good["video_id"]
        case "video_id_not_string":
            good["video_id"] = int(rng.integers(1, 1 << 40))
        case "empty_video_id":
            good["video_id"] = ""
        case "control_character":
            good["video_id"] = f"{view.video_id}\x1b[0m\x00"
        case "timestamp_not_a_date":
            good["timestamp"] = "yesterday at noon"
        case "timestamp_float":
            good["timestamp"] = now_ms / 1000
        case "timestamp_without_timezone":
            good["timestamp"] = _iso(now_ms)[:-1]  # drop the "Z"
        case "timestamp_negative":
            good["timestamp"] = -int(rng.integers(1, 1 << 31))
        case "category_not_string":
            good["category"] = [good.get("category", "music")]
        case "not_an_object":
            return [view.video_id, now_ms]
        case "future":
            good["timestamp"] = now_ms + int(rng.integers(HOUR, 2 * DAY))
        case _:
            raise ValueError(f"unknown malformed kind {kind!r}")
    return good


def _iso(ms: int) -> str:
    """Epoch ms as ISO-8601 UTC with milliseconds and a ``Z``."""
    text = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def _mix64(*parts: int) -> int:
    """A 63-bit hash of integers (splitmix64 steps): stable across runs and platforms."""
    x = 0
    for part in parts:
        x = (x + part + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 31
    return x >> 1


def _unit_normal(mix: int) -> float:
    """A standard normal variate from a hash (Box-Muller on its two 31-bit halves)."""
    u1 = ((mix >> 31) + 1) / (1 << 32)
    u2 = (mix & 0x7FFFFFFF) / (1 << 31)
    return float(np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2))
