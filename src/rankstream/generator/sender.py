"""Send live traffic from :mod:`rankstream.generator.traffic` to a running server.

:func:`run` is the whole sender; :func:`send` runs it to completion from sync code (the CLI).
This is the only part of the generator that reads the clock: it reads ``time.time()`` once
per batch and hands it to the pure traffic model, and ``time.monotonic()`` for pacing.

A run, in order:

1. Build the traffic model (seeded catalogue) and, with ``register_metadata``, ``PUT`` the
   metadata of the ``metadata_videos`` most popular videos and of the viral video.
2. A producer makes batches at wall time, paced by a token bucket to ``rate`` events/s
   (times the diurnal curve with ``diurnal``), and queues their encoded bodies.
3. ``concurrency`` workers ``POST /views`` over keep-alive connections. Each request carries
   an ``Idempotency-Key`` derived from the seed, the run and the batch index; a connection
   error, 429 or 5xx is retried with the same key (``retries`` times, doubling back-off),
   so the server counts a retried batch once. Any other 4xx is not retried. A 429 or 5xx
   with a ``Retry-After`` header (seconds or an HTTP-date) waits what it advises instead of
   the back-off, at most :data:`MAX_RETRY_AFTER_S` (see :func:`retry_after`).
4. It stops after ``duration`` seconds (or, when paced, once ``rate * duration`` events are
   made), waits for the requests in flight and returns a :class:`SendReport`.

Ctrl-C once stops making batches and lets the requests in flight finish; a second Ctrl-C
abandons them. Either way :func:`run` returns its report with ``interrupted`` set.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import email.utils
import math
import signal
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from rankstream.errors import ConfigError, require
from rankstream.generator.live import LiveModel
from rankstream.generator.scenarios import DEFAULT_SCENARIO, RunSettings, scenario_named
from rankstream.generator.traffic import TrafficModel, VideoMetadata

if TYPE_CHECKING:
    from rankstream.generator.producer import ProduceReport

MAX_BATCH = 10_000
"""The most events the API takes in one request."""
MAX_ERROR_SAMPLES = 20
_KEY_NAMESPACE = uuid.UUID("8f5c1c2e-52d4-4bb0-9a37-3f2c59d3b1a4")
_BACKOFF_S = 0.1
_BACKOFF_MAX_S = 2.0
MAX_RETRY_AFTER_S = 60.0
"""The longest wait a ``Retry-After`` header can impose before a retry."""


class IngestAnswer(msgspec.Struct):
    """The body of a ``202`` from ``POST /views`` (only the fields the sender reads)."""

    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    errors: list[dict[str, Any]] = msgspec.field(default_factory=list)


@dataclass(slots=True)
class SendReport:
    """What a run did, as the server answered it.

    ``sent`` counts events in requests the server acknowledged (2xx); ``accepted``,
    ``rejected`` and ``duplicates`` are the sums of its answers, so with no other client
    ``accepted`` equals the server's ``events_accepted``. ``failed_requests`` /
    ``failed_events`` were given up on (retries exhausted, a 4xx, or abandoned on a second
    Ctrl-C); the server may still have counted an abandoned one. ``retries`` counts every
    repeated attempt; ``throttled`` those that waited as a ``Retry-After`` header advised
    (``throttled_seconds`` in all) instead of the back-off. ``errors`` keeps the first
    :data:`MAX_ERROR_SAMPLES` messages (per-event errors and failed requests).
    """

    target: str
    sent: int = 0
    requests: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    failed_requests: int = 0
    failed_events: int = 0
    retries: int = 0
    throttled: int = 0
    throttled_seconds: float = 0.0
    metadata_registered: int = 0
    elapsed: float = 0.0
    interrupted: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def achieved_rate(self) -> float:
        """Acknowledged events per second of sending (metadata registration excluded)."""
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0

    def note(self, message: str) -> None:
        """Keep ``message`` if fewer than :data:`MAX_ERROR_SAMPLES` are kept."""
        if len(self.errors) < MAX_ERROR_SAMPLES:
            self.errors.append(message)

    def summary(self) -> str:
        """A few lines for a terminal."""
        lines = [
            f"sent {self.sent:,} events in {self.requests:,} requests to {self.target} "
            f"in {self.elapsed:.2f} s: {self.achieved_rate:,.0f} events/s",
            f"accepted {self.accepted:,} | rejected {self.rejected:,} | "
            f"duplicates {self.duplicates:,} | retries {self.retries:,} | "
            f"failed requests {self.failed_requests:,} ({self.failed_events:,} events)",
        ]
        if self.throttled:
            lines.append(
                f"throttled {self.throttled:,} times by Retry-After "
                f"({self.throttled_seconds:.1f} s waited)"
            )
        if self.metadata_registered:
            lines.append(f"metadata registered for {self.metadata_registered:,} videos")
        if self.interrupted:
            lines.append("interrupted: stopped early on Ctrl-C")
        lines.extend(f"  error: {e}" for e in self.errors)
        return "\n".join(lines)


class TokenBucket:
    """Pacing to ``rate`` events/s with at most ``burst_s`` seconds of unused credit.

    Pure: the caller passes the (monotonic) time and sleeps for the delay returned.
    """

    def __init__(self, rate: float, burst_s: float = 0.05) -> None:
        if rate <= 0:
            raise ConfigError("a token bucket needs rate > 0")
        self.rate = rate
        self.burst_s = burst_s
        self._next: float | None = None  # when the next event may go out

    def delay(self, events: int, now: float, rate: float | None = None) -> float:
        """Seconds to wait before sending ``events`` at time ``now`` (and reserve them).

        ``rate`` overrides the bucket's rate for this take (a rate curve).
        """
        start = now if self._next is None else max(self._next, now - self.burst_s)
        self._next = start + events / (rate or self.rate)
        return max(0.0, start - now)


@dataclass(frozen=True, slots=True)
class _Request:
    index: int
    events: int
    body: bytes


def idempotency_key(seed: int, run: str, index: int) -> str:
    """The ``Idempotency-Key`` of batch ``index`` of a run: a UUID derived from its inputs,
    so every retry of the batch carries the same key and other batches never do."""
    return str(uuid.uuid5(_KEY_NAMESPACE, f"{seed}:{run}:{index}"))


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait as a ``Retry-After`` header ``value`` advises (RFC 9110 10.2.3).

    ``value`` is delta-seconds (digits) or an HTTP-date (compared with ``now``, epoch
    seconds, default the wall clock). The wait is clamped to 0 .. :data:`MAX_RETRY_AFTER_S`
    (a date in the past: retry now). ``None`` when absent or unparsable: the caller falls
    back to its own back-off.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        seconds = float(int(text))
    else:
        try:
            date = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if date.tzinfo is None:  # the asctime form has no zone: HTTP-dates are GMT
            date = date.replace(tzinfo=datetime.UTC)
        seconds = date.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def check_target(target: str) -> str:
    """``target`` without a trailing slash, or :class:`ConfigError` if it cannot be used."""
    parts = urllib.parse.urlsplit(target)
    if parts.scheme == "kafka":
        raise ConfigError(
            f"cannot post to {target}: kafka targets are produced to, not posted to "
            "(rankstream.generator.producer; send_or_produce() picks it)"
        )
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"target must look like http://host:port, got {target!r}")
    return target.rstrip("/")


async def run(
    target: str,
    rate: float,
    duration: float,
    videos: int,
    seed: int,
    batch_size: int = 1000,
    concurrency: int = 4,
    malformed_share: float = 0.0,
    register_metadata: bool = True,
    progress: bool = True,
    idempotency: bool = True,
    *,
    metadata_videos: int = 1000,
    spike_at: float | None = None,
    diurnal: bool = False,
    retries: int = 5,
    timeout: float = 30.0,
    token: str | None = None,
    scenario: str = DEFAULT_SCENARIO,
) -> SendReport:
    """Send generated events of ``scenario`` (a name of
    :data:`~rankstream.generator.scenarios.SCENARIOS`; ``videos`` and ``malformed_share``
    shape ``views`` only) to ``target`` for ``duration`` seconds; see the module docstring.

    ``rate`` is events/s (0: as fast as the server answers). A request carries
    ``batch_size`` events, fewer when paced slowly (at least ~20 requests/s, so pacing stays
    smooth). ``spike_at`` is when the viral spike starts, in seconds from the first batch
    (default: a third of the run, at most 60 s). ``token`` goes in ``Authorization: Bearer``
    when the server requires one. Raises :class:`ConfigError` before sending anything for a
    bad argument, an unusable target or one that does not answer ``GET /health``; after that
    it never raises for the server's answers or failures: they are counted in the report.
    """
    base = check_target(target)
    checks = [
        (rate >= 0 and math.isfinite(rate), "rate must be >= 0 (0: as fast as possible)"),
        (duration > 0 and math.isfinite(duration), "duration must be > 0 seconds"),
        (1 <= batch_size <= MAX_BATCH, f"batch_size must be 1 to {MAX_BATCH}"),
        (concurrency >= 1, "concurrency must be >= 1"),
        (retries >= 0 and timeout > 0, "retries must be >= 0 and timeout > 0"),
    ]
    require(checks)
    created_ms = int(time.time() * 1000)
    run_tag = f"{seed:x}.{created_ms:x}."
    chosen = scenario_named(scenario)  # ConfigError for an unknown name
    settings = RunSettings(
        seed=seed,
        run=run_tag,
        start_ms=created_ms,
        videos=videos,
        malformed_share=malformed_share,
        spike_offset_s=min(60.0, duration / 3) if spike_at is None else spike_at,
    )
    model = chosen.build(settings)  # raises ConfigError for bad traffic settings
    report = SendReport(target=base)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with httpx.AsyncClient(
        base_url=base, limits=limits, timeout=timeout, headers=headers
    ) as client:
        try:
            await client.get("/health")  # any answer will do: the server is there
        except httpx.HTTPError as exc:
            raise ConfigError(
                f"cannot reach {base} ({type(exc).__name__}: {exc}); start the server "
                "(rankstream serve) or fix the target"
            ) from exc
        sender = _Sender(
            client=client,
            model=model,
            report=report,
            concurrency=concurrency,
            retries=retries,
            idempotency=idempotency,
            key=lambda index: idempotency_key(seed, run_tag, index),
        )
        with _interrupts(sender.on_interrupt), _progress_display(progress) as display:
            if register_metadata and isinstance(model, TrafficModel):
                ranks = range(min(videos, metadata_videos))
                await sender.register(model.metadata([*ranks, videos]))  # `videos`: viral
            per_request = batch_size if rate == 0 else min(batch_size, math.ceil(rate / 20))
            total = None if rate == 0 or diurnal else round(rate * duration)
            await sender.send(rate, duration, per_request, total, diurnal, display)
    return report


def send(
    target: str, rate: float, duration: float, videos: int, seed: int, **options: Any
) -> SendReport:
    """:func:`run` from synchronous code (blocks until the run ends)."""
    return asyncio.run(run(target, rate, duration, videos, seed, **options))


def send_or_produce(
    target: str, rate: float, duration: float, videos: int, seed: int, **options: Any
) -> SendReport | ProduceReport:
    """:func:`send` to an ``http(s)://`` target; a ``kafka://HOST:PORT/TOPIC`` target is
    produced to instead (:func:`~rankstream.generator.producer.produce`, which takes
    ``batch_size``, ``malformed_share``, ``spike_at``, ``diurnal`` and ``scenario``; the
    HTTP-only options are ignored: there is no server to register metadata with). Blocks
    until the run ends."""
    if urllib.parse.urlsplit(target).scheme == "kafka":
        from rankstream.generator.producer import produce

        kept = {"batch_size", "malformed_share", "spike_at", "diurnal", "scenario"}
        return produce(
            target, rate, duration, videos, seed, **{k: options[k] for k in kept & set(options)}
        )
    return send(target, rate, duration, videos, seed, **options)


class _Display:
    """The progress bar (or nothing): elapsed time of the run, rate and the answers."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._task: Any = None

    def start(self, duration: float) -> None:
        if self._progress is not None:
            self._task = self._progress.add_task("sending", total=duration, stats="")

    def update(self, elapsed: float, report: SendReport) -> None:
        if self._progress is None or self._task is None:
            return
        rate = report.sent / elapsed if elapsed > 0 else 0.0
        stats = (
            f"{report.sent:,} sent  {rate:,.0f}/s  accepted {report.accepted:,}  "
            f"rejected {report.rejected:,}  dup {report.duplicates:,}"
        )
        if report.failed_requests:
            stats += f"  failed {report.failed_requests:,}"
        self._progress.update(self._task, completed=elapsed, stats=stats)


@contextlib.contextmanager
def _progress_display(enabled: bool) -> Iterator[_Display]:
    if not enabled:
        yield _Display(None)
        return
    progress = Progress(
        TextColumn("[bold]sending"),
        BarColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[stats]}"),
        console=Console(stderr=True),
        transient=False,
    )
    with progress:
        yield _Display(progress)


@contextlib.contextmanager
def _interrupts(handler: Callable[[], None]) -> Iterator[None]:
    """Route SIGINT to ``handler`` while inside (where the loop supports signal handlers)."""
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGINT, handler)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, Windows
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


@dataclass(slots=True)
class _Sender:
    client: httpx.AsyncClient
    model: LiveModel
    report: SendReport
    concurrency: int
    retries: int
    idempotency: bool
    key: Callable[[int], str]
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    workers: list[asyncio.Task[None]] = field(default_factory=list)

    def on_interrupt(self) -> None:
        """First Ctrl-C: stop making batches. Second: abandon the requests in flight."""
        self.report.interrupted = True
        if self.stopping.is_set():
            for task in self.workers:
                task.cancel()
        self.stopping.set()

    async def register(self, metadata: list[VideoMetadata]) -> None:
        """``PUT /videos/{id}`` for each video, ``concurrency`` at a time; stops at the first
        404/405 (a server without the endpoint) and never raises for an answer."""
        pending = iter(metadata)  # shared by the workers
        missing = False

        async def worker() -> None:
            nonlocal missing
            for meta in pending:
                if missing or self.stopping.is_set():
                    return
                path = f"/videos/{urllib.parse.quote(meta.video_id, safe='')}"
                try:
                    answer = await self.client.put(path, content=msgspec.json.encode(meta.body()))
                except httpx.HTTPError as exc:
                    self.report.note(f"PUT {path}: {type(exc).__name__}: {exc}")
                    continue
                if answer.status_code in (404, 405):
                    missing = True
                    self.report.note(f"PUT {path}: HTTP {answer.status_code}; metadata skipped")
                elif answer.is_success:
                    self.report.metadata_registered += 1
                else:
                    self.report.note(f"PUT {path}: HTTP {answer.status_code}: {answer.text[:200]}")

        await asyncio.gather(*(worker() for _ in range(self.concurrency)))

    async def send(
        self,
        rate: float,
        duration: float,
        per_request: int,
        total: int | None,
        diurnal: bool,
        display: _Display,
    ) -> None:
        """Produce and post batches until the duration, the total or a Ctrl-C ends the run."""
        queue: asyncio.Queue[_Request | None] = asyncio.Queue(maxsize=2 * self.concurrency)
        started = time.monotonic()
        self.model = self.model.starting_at(int(time.time() * 1000))
        display.start(duration)
        self.workers = [
            asyncio.create_task(self._worker(queue, started, display))
            for _ in range(self.concurrency)
        ]
        try:
            await self._produce(queue, rate, started + duration, per_request, total, diurnal)
            for _ in self.workers:
                await self._put(queue, None)
            outcomes = await asyncio.gather(*self.workers, return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, Exception):  # a bug, not an answer: let it be seen
                    raise outcome
        finally:
            for task in self.workers:
                task.cancel()
            while not queue.empty():  # abandoned on a second Ctrl-C
                item = queue.get_nowait()
                if item is not None:
                    self._failed(item, "abandoned on Ctrl-C")
            self.report.elapsed = time.monotonic() - started
            display.update(self.report.elapsed, self.report)

    async def _produce(
        self,
        queue: asyncio.Queue[_Request | None],
        rate: float,
        deadline: float,
        per_request: int,
        total: int | None,
        diurnal: bool,
    ) -> None:
        bucket = TokenBucket(rate) if rate > 0 else None
        made = 0
        index = 0
        while not self.stopping.is_set():
            count = per_request if total is None else min(per_request, total - made)
            now = time.monotonic()
            if count <= 0 or now >= deadline:
                return
            if bucket is not None:
                curve = self.model.rate_multiplier(int(time.time() * 1000)) if diurnal else 1.0
                wait = bucket.delay(count, now, rate * curve)
                if wait > 0 and await self._wait_stop(min(wait, deadline - now)):
                    return
                if time.monotonic() >= deadline:
                    return
            batch = self.model.batch(index, count, int(time.time() * 1000))
            if not await self._put(queue, _Request(index, count, batch.encode())):
                return
            made += count
            index += 1

    async def _put(self, queue: asyncio.Queue[_Request | None], item: _Request | None) -> bool:
        """Queue ``item``; ``False`` if the workers were abandoned meanwhile."""
        while True:
            if all(task.done() for task in self.workers):
                return False
            try:
                await asyncio.wait_for(queue.put(item), timeout=0.2)
                return True
            except TimeoutError:
                continue

    async def _wait_stop(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; ``True`` if a Ctrl-C came meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)
        return self.stopping.is_set()

    async def _worker(
        self, queue: asyncio.Queue[_Request | None], started: float, display: _Display
    ) -> None:
        item: _Request | None = None
        try:
            while (item := await queue.get()) is not None:
                await self._post(item)
                item = None
                display.update(time.monotonic() - started, self.report)
        except asyncio.CancelledError:
            if item is not None:
                self._failed(item, "abandoned on Ctrl-C (the server may have counted it)")
            raise

    async def _post(self, item: _Request) -> None:
        """POST one batch, retrying connection errors, 429 and 5xx with the same key: after
        the back-off, or as long as the answer's ``Retry-After`` says when it has one."""
        headers = {"Content-Type": "application/json"}
        if self.idempotency:
            headers["Idempotency-Key"] = self.key(item.index)
        problem = ""
        advised: float | None = None  # what the last answer's Retry-After said, if anything
        for attempt in range(self.retries + 1):
            if attempt:
                self.report.retries += 1
                if advised is None:
                    await asyncio.sleep(min(_BACKOFF_S * 2 ** (attempt - 1), _BACKOFF_MAX_S))
                else:
                    self.report.throttled += 1
                    self.report.throttled_seconds += advised
                    await asyncio.sleep(advised)
            advised = None
            try:
                answer = await self.client.post("/views", content=item.body, headers=headers)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if answer.is_success:
                self._acknowledged(item, answer.content)
                return
            problem = f"HTTP {answer.status_code}: {answer.text[:200]}"
            if answer.status_code != 429 and answer.status_code < 500:
                break
            advised = retry_after(answer.headers.get("retry-after"))
        self._failed(item, problem)

    def _acknowledged(self, item: _Request, content: bytes) -> None:
        report = self.report
        try:
            answer = msgspec.json.decode(content, type=IngestAnswer)
        except msgspec.DecodeError as exc:
            report.note(f"batch {item.index}: unreadable answer: {exc}")
            answer = IngestAnswer()
        report.sent += item.events
        report.requests += 1
        report.accepted += answer.accepted
        report.rejected += answer.rejected
        report.duplicates += answer.duplicates
        # Event errors may fill half the samples; the rest stays for failed requests.
        for error in answer.errors[: MAX_ERROR_SAMPLES // 2 - len(report.errors)]:
            report.note(f"batch {item.index} event {error.get('index')}: {error.get('error')}")

    def _failed(self, item: _Request, problem: str) -> None:
        self.report.failed_requests += 1
        self.report.failed_events += item.events
        self.report.note(f"batch {item.index}: {problem}")
