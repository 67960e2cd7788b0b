"""Live traffic: the model is reproducible and shaped as its spec says; the sender's counts
agree with a real server's, also when answers are lost and requests retried."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable

import httpx
import msgspec
import numpy as np
import pytest

from rankstream.engine import parse_event
from rankstream.errors import ConfigError, InvalidEvent
from rankstream.generator.sender import (
    SendReport,
    TokenBucket,
    check_target,
    idempotency_key,
    run,
    send,
    send_or_produce,
)
from rankstream.generator.traffic import (
    DUPLICATE,
    LATE,
    MALFORMED,
    MALFORMED_KINDS,
    MINUTE,
    NORMAL,
    OUT_OF_ORDER,
    SECOND,
    TrafficBatch,
    TrafficModel,
    TrafficSpec,
    View,
)
from tests.servers import ServiceProcess, free_port

START = 1_742_409_000_000  # 2025-03-19T18:30:00Z
BEFORE_SPIKE = START + 10 * SECOND
SPEC = TrafficSpec(videos=5_000, seed=5, run="t-")


@pytest.fixture(scope="module")
def model() -> TrafficModel:
    return TrafficModel(SPEC, START)


def batches(model: TrafficModel, count: int, size: int, now_ms: int) -> list[TrafficBatch]:
    return [model.batch(i, size, now_ms) for i in range(count)]


def test_same_seed_and_arguments_give_the_same_bytes(model: TrafficModel) -> None:
    again = TrafficModel(SPEC, START)
    later_first = [again.batch(i, 2000, BEFORE_SPIKE).encode() for i in (7, 3)]
    assert later_first == [model.batch(i, 2000, BEFORE_SPIKE).encode() for i in (7, 3)]
    other = TrafficModel(TrafficSpec(videos=5_000, seed=6, run="t-"), START)
    assert other.batch(3, 2000, BEFORE_SPIKE).encode() != later_first[1]
    assert model.batch(4, 2000, BEFORE_SPIKE).encode() != later_first[1]


def test_popularity_is_zipf_over_the_catalogue(model: TrafficModel) -> None:
    counts = Counter(v for b in batches(model, 50, 4000, BEFORE_SPIKE) for v in b.video_ids)
    top = [counts[model.video_id(rank)] for rank in range(4)]
    total = sum(counts.values())
    weights = np.arange(1, SPEC.videos + 1, dtype=np.float64) ** -SPEC.zipf
    expected = weights[:4] / weights.sum() * total
    assert np.allclose(top, expected, rtol=0.1)  # 200k draws: each within 10 %
    assert top == sorted(top, reverse=True)
    assert set(counts) <= {model.video_id(r) for r in range(SPEC.videos)}
    assert model.spike_video_id not in counts


def test_each_video_keeps_its_category(model: TrafficModel) -> None:
    seen: dict[str, str | None] = {}
    for batch in batches(model, 10, 2000, BEFORE_SPIKE):
        for event in batch.events:
            assert isinstance(event, View)
            assert seen.setdefault(event.video_id, event.category) == event.category
    some = next(iter(seen))
    assert model.category_of(some) == seen[some]
    assert len(set(seen.values())) > 10


def test_regions_are_skewed(model: TrafficModel) -> None:
    events = [e for b in batches(model, 10, 4000, BEFORE_SPIKE) for e in b.events]
    regions = Counter(e.region for e in events if isinstance(e, View))
    shares = sorted(regions.values(), reverse=True)
    assert len(regions) == SPEC.regions
    assert shares[0] > 5 * shares[-1]


def test_the_viral_video_takes_its_share_only_during_the_spike(model: TrafficModel) -> None:
    assert model.spike_start_ms == START + 60 * SECOND
    during = batches(model, 10, 4000, model.spike_start_ms + MINUTE)
    share = sum(b.video_ids.count(model.spike_video_id) for b in during) / 40_000
    assert share == pytest.approx(SPEC.spike_share, abs=0.02)
    after = batches(model, 10, 4000, model.spike_end_ms)
    assert all(model.spike_video_id not in b.video_ids for b in after)
    assert model.category_of(model.spike_video_id) == "music"


def test_out_of_order_and_late_shares_and_lags() -> None:
    spec = TrafficSpec(videos=1000, out_of_order_share=0.1, late_share=0.02, seed=3)
    model = TrafficModel(spec, START)
    now = START + 5 * MINUTE
    kinds = np.concatenate([b.kinds for b in batches(model, 20, 5000, now)])
    shares = np.bincount(kinds, minlength=5) / len(kinds)
    assert shares[OUT_OF_ORDER] == pytest.approx(0.1, abs=0.01)
    assert shares[LATE] == pytest.approx(0.02, abs=0.005)
    assert shares[DUPLICATE] == pytest.approx(spec.duplicate_share, abs=0.005)
    batch = model.batch(0, 5000, now)
    ts, kinds = batch.timestamps, batch.kinds
    normal = ts[kinds == NORMAL]
    assert normal.min() >= now - spec.jitter_ms
    assert normal.max() <= now
    assert np.all(np.diff(normal) >= 0)  # in-order events arrive in order
    lag = now - ts[kinds == OUT_OF_ORDER]
    assert lag.min() >= SECOND
    assert lag.max() <= spec.jitter_ms + spec.out_of_order_max_ms
    lag = now - ts[kinds == LATE]
    assert lag.min() >= spec.late_min_ms
    assert lag.max() <= spec.jitter_ms + spec.late_max_ms


def test_malformed_rows_fail_validation_and_the_others_pass() -> None:
    spec = TrafficSpec(videos=1000, malformed_share=0.1, iso_share=0.2, seed=9)
    now = START + 5 * MINUTE
    batch = TrafficModel(spec, START).batch(0, 5000, now)
    decoded = msgspec.json.decode(batch.encode())  # what a server receives
    assert len(decoded) == len(batch)
    assert set(batch.malformed) == set(np.flatnonzero(batch.kinds == MALFORMED).tolist())
    assert len(batch.malformed) == pytest.approx(500, rel=0.2)
    assert set(batch.malformed.values()) == set(MALFORMED_KINDS)
    for row, obj in enumerate(decoded):
        kind = batch.malformed.get(row)
        if kind is None:
            assert parse_event(obj).video_id == batch.video_ids[row]
        elif kind == "future":  # valid JSON, but beyond any server's skew allowance
            assert parse_event(obj).timestamp > now + 5 * MINUTE
        else:
            with pytest.raises(InvalidEvent):
                parse_event(obj)
    iso = [o for o in decoded if isinstance(o, dict) and isinstance(o.get("timestamp"), str)]
    assert len(iso) > 500


def test_ndjson_body_holds_the_same_events(model: TrafficModel) -> None:
    batch = model.batch(1, 300, BEFORE_SPIKE)
    lines = batch.encode_ndjson().splitlines()
    assert [msgspec.json.decode(line) for line in lines] == msgspec.json.decode(batch.encode())


def test_duplicates_repeat_an_earlier_event_whole(model: TrafficModel) -> None:
    batch = model.batch(2, 10_000, BEFORE_SPIKE)
    events = msgspec.json.decode(batch.encode())
    first_row: dict[str, int] = {}
    for row, event in enumerate(events):
        earlier = first_row.setdefault(event["event_id"], row)
        if batch.kinds[row] == DUPLICATE:
            assert earlier < row
            assert events[earlier] == event
        else:
            assert earlier == row  # every other event id is new
    assert (batch.kinds == DUPLICATE).sum() == pytest.approx(100, rel=0.3)


def test_metadata_is_reproducible_and_complete(model: TrafficModel) -> None:
    metadata = model.metadata(range(50))
    assert metadata[10:20] == model.metadata(range(10, 20))
    for rank, meta in enumerate(metadata):
        assert meta.video_id == model.video_id(rank)
        assert meta.category == model.category_of(meta.video_id)
        assert meta.title
        assert meta.channel
        assert meta.thumbnail_url.startswith("https://")
        assert meta.video_id in meta.thumbnail_url
        assert 5 <= meta.duration_s <= 3 * 3600
        assert set(meta.body()) == {"title", "channel", "thumbnail_url", "duration_s", "category"}
    assert len({m.channel for m in metadata}) > 10
    (viral,) = model.metadata([SPEC.videos])
    assert viral.video_id == model.spike_video_id


def test_diurnal_curve_peaks_in_the_evening_and_averages_one(model: TrafficModel) -> None:
    day = START - START % (24 * 60 * MINUTE)
    curve = [model.rate_multiplier(day + minute * MINUTE) for minute in range(0, 1440, 10)]
    assert np.mean(curve) == pytest.approx(1.0, abs=0.01)
    assert model.rate_multiplier(day + 20 * 60 * MINUTE) == pytest.approx(1.6)
    assert model.rate_multiplier(day + 8 * 60 * MINUTE) == pytest.approx(0.4)


def test_bad_spec_is_refused() -> None:
    with pytest.raises(ConfigError, match="shares"):
        TrafficModel(TrafficSpec(malformed_share=0.7, duplicate_share=0.5), START)


def test_token_bucket_paces_and_caps_unused_credit() -> None:
    bucket = TokenBucket(rate=1000, burst_s=0.05)
    assert bucket.delay(100, now=10.0) == 0.0
    assert bucket.delay(100, now=10.0) == pytest.approx(0.1)
    assert bucket.delay(100, now=10.3) == 0.0  # idle: credit is capped at 50 ms
    assert bucket.delay(100, now=10.3) == pytest.approx(0.05)


def test_targets_and_keys() -> None:
    with pytest.raises(ConfigError, match="produced to, not posted to"):
        check_target("kafka://127.0.0.1:9092/views")
    with pytest.raises(ConfigError, match="http://host:port"):
        check_target("127.0.0.1:8000")
    assert check_target("http://127.0.0.1:8000/") == "http://127.0.0.1:8000"
    assert idempotency_key(1, "r", 5) == idempotency_key(1, "r", 5)
    assert len({idempotency_key(1, "r", i) for i in range(100)}) == 100
    assert idempotency_key(2, "r", 5) != idempotency_key(1, "r", 5)


def test_a_kafka_target_without_a_topic_is_refused_before_sending() -> None:
    with pytest.raises(ConfigError, match="kafka://host:port/topic"):
        send_or_produce("kafka://127.0.0.1:9092", rate=10, duration=1, videos=10, seed=1)


def test_a_target_that_does_not_answer_is_refused_before_sending() -> None:
    with pytest.raises(ConfigError, match="cannot reach"):
        send(f"http://127.0.0.1:{free_port()}", rate=10, duration=1, videos=10, seed=1)


# ---------------------------------------------------------------- against a real server


def status(service: ServiceProcess) -> dict[str, object]:
    answer: dict[str, object] = httpx.get(f"{service.url}/status", timeout=10).json()
    return answer


def test_sender_counts_match_the_server(
    service_factory: Callable[..., ServiceProcess],
) -> None:
    service = service_factory("--sync", "NORMAL")
    report = send(
        service.url,
        rate=2000,
        duration=2.0,
        videos=2000,
        seed=4,
        malformed_share=0.02,
        progress=False,
        metadata_videos=20,
        spike_at=0.0,
    )
    assert report.failed_requests == 0, report.errors
    assert 0 < report.sent <= 4000
    assert report.sent == report.accepted + report.rejected + report.duplicates
    assert report.rejected > 0
    assert report.duplicates > 0
    assert report.errors
    assert report.metadata_registered == 21  # the 20 most popular and the viral video
    server = status(service)
    assert server["events_accepted"] == report.accepted
    assert server["events_rejected"] == report.rejected
    assert server["duplicates"] == report.duplicates
    top = httpx.get(f"{service.url}/views/top-k", params={"window": "1h", "k": 3}).json()
    viral = TrafficModel(TrafficSpec(videos=2000, seed=4), START).spike_video_id
    assert top["items"][0]["video_id"] == viral  # 30 % of the traffic from the start
    assert top["items"][0]["title"].endswith("(goes viral)")


async def _read_message(reader: asyncio.StreamReader) -> bytes:
    """One HTTP/1.1 message: the head and a ``Content-Length`` body (none if absent)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lower = head.lower()
    at = lower.find(b"content-length:")
    length = 0 if at < 0 else int(lower[at + 15 : lower.find(b"\r\n", at)])
    return head + await reader.readexactly(length)


async def _lossy_proxy(upstream_port: int, drops: int) -> tuple[asyncio.Server, list[int]]:
    """A loopback HTTP proxy, one request per connection, that lets the first ``drops``
    ``POST`` requests reach the server and then cuts the client off instead of answering."""
    dropped = [0]

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            request = await _read_message(client_r)
            up_r, up_w = await asyncio.open_connection("127.0.0.1", upstream_port)
            try:
                up_w.write(request)
                response = await _read_message(up_r)  # the batch is durable and counted
            finally:
                up_w.close()
            if request.startswith(b"POST") and dropped[0] < drops:
                dropped[0] += 1
                client_w.transport.abort()
                return
            client_w.write(response.replace(b"\r\n", b"\r\nConnection: close\r\n", 1))
            await client_w.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away
        finally:
            client_w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, dropped


def test_retried_requests_count_once(service_factory: Callable[..., ServiceProcess]) -> None:
    service = service_factory("--sync", "NORMAL")

    async def scenario() -> tuple[SendReport, int]:
        proxy, dropped = await _lossy_proxy(service.port, drops=3)
        port = proxy.sockets[0].getsockname()[1]
        async with proxy:
            report = await run(
                f"http://127.0.0.1:{port}",
                rate=2000,
                duration=1.0,
                videos=500,
                seed=8,
                concurrency=2,
                register_metadata=False,
                progress=False,
            )
        return report, dropped[0]

    report, dropped = asyncio.run(scenario())
    assert dropped == 3
    assert report.failed_requests == 0, report.errors
    assert report.retries >= 3
    assert report.sent == report.accepted + report.duplicates  # nothing malformed
    assert status(service)["events_accepted"] == report.accepted


def test_ctrl_c_stops_cleanly_with_a_report(
    service_factory: Callable[..., ServiceProcess],
) -> None:
    service = service_factory("--sync", "NORMAL")
    script = (
        "from rankstream.generator.sender import send\n"
        f"r = send({service.url!r}, rate=2000, duration=600, videos=500, seed=3,"
        " register_metadata=False, progress=False)\n"
        "print(r.interrupted, r.accepted, r.failed_requests)\n"
    )
    sender = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        while status(service)["events_accepted"] == 0:  # wait until it is sending
            assert sender.poll() is None
            time.sleep(0.05)
        sender.send_signal(signal.SIGINT)
        out, _ = sender.communicate(timeout=120)  # a guard against a hang, not a threshold
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait()
    assert sender.returncode == 0
    interrupted, accepted, failed = out.decode().split()
    assert interrupted == "True"
    assert failed == "0"
    assert status(service)["events_accepted"] == int(accepted)
