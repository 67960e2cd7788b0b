"""The sender against a scripted loopback HTTP server: it waits as ``Retry-After`` advises
(seconds or an HTTP-date), falls back to its back-off when the header is unusable, retries
with the same ``Idempotency-Key`` and counts the batch once."""

from __future__ import annotations

import email.utils
import http.server
import itertools
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import msgspec
import pytest

from rankstream.generator.sender import MAX_RETRY_AFTER_S, SendReport, retry_after, send

SLACK_S = 0.001
"""Timer granularity allowed when checking that a wait lasted at least as advised."""


@dataclass
class Arrival:
    monotonic: float
    wall: float
    key: str | None
    events: int


@dataclass
class Script:
    """What the server answers: ``refusals`` times ``status`` with a ``Retry-After`` of
    ``retry_after`` (``None``: no header) or, with ``http_date_in``, an HTTP-date at least
    that many seconds ahead; then ``202``. ``arrivals`` and ``advised`` record the run."""

    refusals: int
    status: int = 429
    retry_after: str | None = "1"
    arrivals: list[Arrival] = field(default_factory=list)
    advised: list[str] = field(default_factory=list)
    http_date_in: float | None = None


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the sender uses it
    script: Script

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._reply(200, b'{"status":"ok"}')

    def do_POST(self) -> None:
        script = self.script
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        events = len(msgspec.json.decode(body))
        key = self.headers.get("Idempotency-Key")
        script.arrivals.append(Arrival(time.monotonic(), time.time(), key, events))
        if len(script.arrivals) <= script.refusals:
            headers = {}
            advice = script.retry_after
            if script.http_date_in is not None:
                # a whole second at least `http_date_in` ahead: HTTP-dates have no fraction
                advice = email.utils.formatdate(
                    math.ceil(time.time() + script.http_date_in), usegmt=True
                )
            if advice is not None:
                headers["Retry-After"] = advice
                script.advised.append(advice)
            self._reply(script.status, b'{"error":"busy","message":"try later"}', headers)
            return
        answer = {"accepted": events, "rejected": 0, "duplicates": 0, "errors": []}
        self._reply(202, msgspec.json.encode(answer))


@pytest.fixture
def scripted() -> Iterator[tuple[str, Script]]:
    """A loopback HTTP server whose answers to ``POST /views`` follow a :class:`Script`
    (set its fields in the test); yields its URL and the script."""
    script = Script(refusals=0)
    handler = type("Handler", (_Handler,), {"script": script})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", script
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def send_one_batch(url: str, events: int = 10, retries: int = 5) -> SendReport:
    """Send exactly one batch of ``events`` events (rate * duration = batch size)."""
    return send(
        url,
        rate=200,
        duration=events / 200,
        videos=50,
        seed=3,
        batch_size=events,
        concurrency=1,
        register_metadata=False,
        progress=False,
        retries=retries,
        timeout=10,
    )


def assert_counted_once(report: SendReport, script: Script, events: int = 10) -> None:
    """Every attempt carried the same key, and the batch was acknowledged and counted once."""
    keys = {arrival.key for arrival in script.arrivals}
    assert len(keys) == 1
    assert None not in keys
    assert all(arrival.events == events for arrival in script.arrivals)
    assert report.failed_requests == 0, report.errors
    assert (report.requests, report.sent, report.accepted) == (1, events, events)
    assert report.retries == len(script.arrivals) - 1


@pytest.mark.parametrize(("status", "refusals"), [(429, 2), (503, 1)])
def test_retry_after_seconds_are_waited_with_the_same_key(
    scripted: tuple[str, Script], status: int, refusals: int
) -> None:
    url, script = scripted
    script.refusals, script.status, script.retry_after = refusals, status, "1"
    report = send_one_batch(url)
    assert len(script.arrivals) == refusals + 1
    assert_counted_once(report, script)
    assert report.throttled == refusals
    assert report.throttled_seconds == pytest.approx(refusals)
    for before, after in itertools.pairwise(script.arrivals):
        assert after.monotonic - before.monotonic >= 1.0 - SLACK_S  # never an upper bound
    assert f"throttled {refusals} times by Retry-After" in report.summary()


def test_retry_after_http_date_is_waited_until(scripted: tuple[str, Script]) -> None:
    url, script = scripted
    script.refusals, script.http_date_in = 1, 1.0
    report = send_one_batch(url)
    assert len(script.arrivals) == 2
    assert_counted_once(report, script)
    assert report.throttled == 1
    (advice,) = script.advised
    not_before = email.utils.parsedate_to_datetime(advice).timestamp()
    assert script.arrivals[1].wall >= not_before - SLACK_S  # retried at the date, not before
    assert script.arrivals[1].monotonic - script.arrivals[0].monotonic >= 1.0 - SLACK_S


@pytest.mark.parametrize("advice", ["soon", "-3", "1.5", None])
def test_unusable_retry_after_falls_back_to_the_back_off(
    scripted: tuple[str, Script], advice: str | None
) -> None:
    url, script = scripted
    script.refusals, script.retry_after = 2, advice
    report = send_one_batch(url)
    assert len(script.arrivals) == 3
    assert_counted_once(report, script)
    assert report.throttled == 0
    assert report.throttled_seconds == 0.0
    gaps = [b.monotonic - a.monotonic for a, b in itertools.pairwise(script.arrivals)]
    for gap, back_off in zip(gaps, [0.1, 0.2], strict=True):  # doubling from 0.1 s
        assert gap >= back_off - SLACK_S


def test_retry_after_within_the_retry_budget(scripted: tuple[str, Script]) -> None:
    """Waits advised by the server still spend the request's retries: a server that keeps
    refusing makes the batch fail after ``retries`` attempts, not loop for ever."""
    url, script = scripted
    script.refusals, script.retry_after = 10, "0"
    report = send_one_batch(url, retries=2)
    assert len(script.arrivals) == 3
    assert report.failed_requests == 1
    assert report.failed_events == 10
    assert report.throttled == 2
    assert (report.requests, report.sent) == (0, 0)
    assert any("HTTP 429" in error for error in report.errors)


def test_retry_after_parsing() -> None:
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 7, usegmt=True)
    assert retry_after("1") == 1.0
    assert retry_after(" 12 ") == 12.0
    assert retry_after("0") == 0.0
    assert retry_after("86400") == MAX_RETRY_AFTER_S  # clamped
    assert retry_after(date, now=now) == 7.0
    assert retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0  # past
    assert retry_after(email.utils.formatdate(now + 3600, usegmt=True), now=now) == 60.0
    # the obsolete RFC 850 and asctime forms (asctime has no zone: GMT)
    assert retry_after("Tuesday, 14-Nov-23 22:13:27 GMT", now=now) == 7.0
    assert retry_after("Tue Nov 14 22:13:27 2023", now=now) == 7.0
    for garbage in [None, "", "soon", "-5", "1.5", "1e3", "\u0661", "Tue, 99 Nov 2023"]:
        assert retry_after(garbage) is None, garbage
