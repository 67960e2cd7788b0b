"""The synthetic stream: reproducible, bounded, and shaped as its spec says."""

from __future__ import annotations

import re

import numpy as np
import pytest

from rankstream.errors import ConfigError
from rankstream.generator import StreamSpec, generate_batches, generate_columns, video_id_strings
from rankstream.generator.synthetic import MINUTE, StreamColumns

SMALL = StreamSpec(events=200_000, videos=10_000, seed=11)


@pytest.fixture(scope="module")
def small() -> StreamColumns:
    return generate_columns(SMALL)


def test_same_seed_gives_identical_columns(small: StreamColumns) -> None:
    again = generate_columns(SMALL)
    for name in ("videos", "timestamps", "categories", "regions", "video_category"):
        assert np.array_equal(getattr(small, name), getattr(again, name)), name
    assert small.video_ids.tolist() == again.video_ids.tolist()
    first, second = small.batch(0, 1000), again.batch(0, 1000)
    assert (first.video_ids, first.categories, first.regions) == (
        second.video_ids,
        second.categories,
        second.regions,
    )


def test_another_seed_gives_another_stream(small: StreamColumns) -> None:
    other = generate_columns(StreamSpec(events=200_000, videos=10_000, seed=12))
    assert not np.array_equal(small.videos, other.videos)
    assert not np.array_equal(small.timestamps, other.timestamps)


def test_videos_are_bounded_by_the_catalogue(small: StreamColumns) -> None:
    assert small.videos.min() >= 0
    assert small.videos.max() < SMALL.videos
    assert len(small.video_ids) == SMALL.videos


def test_cover_catalogue_sees_every_video() -> None:
    spec = StreamSpec(events=30_000, videos=20_000, seed=3, cover_catalogue=True)
    assert len(np.unique(generate_columns(spec).videos)) == spec.videos


def test_each_video_keeps_one_category(small: StreamColumns) -> None:
    assert np.array_equal(small.categories, small.video_category[small.videos])
    batch = small.batch(0, 50_000)
    assert batch.categories is not None
    seen: dict[str, str | None] = {}
    for video, category in zip(batch.video_ids, batch.categories, strict=True):
        assert seen.setdefault(video, category) == category


def test_timestamps_stay_within_the_spec(small: StreamColumns) -> None:
    assert small.timestamps.min() >= SMALL.start_ms
    assert small.timestamps.max() < SMALL.end_ms


def test_out_of_order_share_and_lateness_follow_the_spec(small: StreamColumns) -> None:
    ts = small.timestamps
    newest_before = np.maximum.accumulate(ts)[:-1]
    behind = ts[1:] < newest_before
    assert 0.007 < behind.mean() < 0.013  # spec: 1%
    assert (newest_before - ts[1:]).max() <= SMALL.max_lateness_ms


def test_no_late_share_means_time_order() -> None:
    ts = generate_columns(StreamSpec(events=50_000, videos=1000, late_share=0.0)).timestamps
    assert np.all(np.diff(ts) >= 0)


def test_live_tail_carries_its_share(small: StreamColumns) -> None:
    tail_start = SMALL.end_ms - SMALL.live_minutes * MINUTE
    assert abs((small.timestamps >= tail_start).mean() - SMALL.live_share) < 0.003


def test_popularity_is_zipf() -> None:
    spec = StreamSpec(events=200_000, videos=10_000, trending_top=0, seed=5)
    counts = np.bincount(generate_columns(spec).videos, minlength=spec.videos)
    assert counts[0] > 1000 * max(float(np.median(counts)), 1.0)
    # Without trending, video r has popularity rank r + 1: count ratios follow (r2/r1)**s.
    assert counts[0] / counts[1] == pytest.approx(2**spec.zipf, rel=0.05)
    assert counts[0] / counts[9] == pytest.approx(10**spec.zipf, rel=0.1)


def test_regions_are_skewed_and_named(small: StreamColumns) -> None:
    names = small.region_names.tolist()
    assert names[:3] == ["US", "IN", "BR"]
    assert len(set(names)) == SMALL.regions
    counts = np.bincount(small.regions, minlength=SMALL.regions)
    assert counts.argmax() == 0
    assert counts[0] > 10 * np.median(counts)


def test_video_ids_look_real_and_never_collide() -> None:
    ids = video_id_strings(100_000, seed=7)
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{10}[AEIMQUYcgkosw048]", i) for i in ids[:1000])
    assert video_id_strings(10, seed=7) == ids[:10]
    assert video_id_strings(10, seed=8) != ids[:10]


def test_batches_cover_the_stream_in_order() -> None:
    spec = StreamSpec(events=25_000, videos=500, seed=2)
    columns = generate_columns(spec)
    pairs = list(generate_batches(spec, 10_000))
    assert [len(b) for b, _ in pairs] == [10_000, 10_000, 5_000]
    assert all(wall == int(b.timestamps.max()) for b, wall in pairs)
    ids = [i for b, _ in pairs for i in b.video_ids]
    assert ids == columns.video_ids[columns.videos].tolist()
    assert np.array_equal(np.concatenate([b.timestamps for b, _ in pairs]), columns.timestamps)


@pytest.mark.parametrize(
    "bad",
    [
        StreamSpec(videos=0),
        StreamSpec(zipf=0),
        StreamSpec(categories=70_000),
        StreamSpec(live_share=1.5),
        StreamSpec(events=10, videos=20, cover_catalogue=True),
        StreamSpec(end_ms=0),
    ],
)
def test_inconsistent_specs_are_refused(bad: StreamSpec) -> None:
    with pytest.raises(ConfigError, match="stream spec"):
        generate_columns(bad)


def test_batch_size_must_be_positive(small: StreamColumns) -> None:
    with pytest.raises(ConfigError, match="batch size"):
        next(small.batches(0))
