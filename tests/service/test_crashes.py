"""Repeated ``kill -9`` of the real service during ingest: acknowledged events survive every
crash, and every event counts exactly once in every window and scope once the requests in
flight at the crashes are retried with their keys.

Three sender threads post requests with unique ``Idempotency-Key``s as fast as the server
answers. Twenty times, at a moment drawn from a seeded generator, the server is killed
with SIGKILL and restarted on the same data directory (with short tick and checkpoint
intervals, so some restarts restore a checkpoint and some replay the log after it). A
request that got no answer is retried against the next server with the same key and the
same bytes: the server may answer it from its stored answer (it was committed before the
crash) or process it now; either way it must count once.

What is exact (the scheme of ``event_id``s): each event is one of

- *fresh*: a new ``event_id`` (unique to the event) or none at all: always accepted;
- *repeat*: a whole copy of a fresh event with an id that was accepted before, either
  earlier in the same request or in an earlier request of the same sender. A sender sends
  its requests one after another and a request is retried until it is acknowledged, so the
  original is always acknowledged (durably accepted) before the repeat is sent: a repeat
  is always a duplicate, and costs nothing in the oracle;
- *contested*: id ``c<request index>.<slot>`` with content drawn from that id alone, so
  every sender that reaches that slot sends the same event, at about the same moment. The
  server keeps the first it screens; which one is a matter of timing, but the event counts
  exactly once (all arrivals are within minutes, inside the 10-minute de-dup horizon);
- *invalid*: malformed, or an hour in the future (too new): rejected, at its index.

So the oracle holds every fresh event plus one copy of each contested id; the server's
duplicate count is the repeats plus the contested copies beyond the first; and each
answer's rejected indexes are exactly the invalid ones. The final comparison (events
accepted, then the top-k of every window x scope against brute force) shows that nothing
acknowledged was lost and that nothing was counted twice, acknowledged or not: a request
committed before a crash and counted again when retried would show as a surplus.

After each restart, before the senders see the new server, its ``/status`` must hold at
least every event acknowledged so far and at most those plus the requests still unanswered.

The ``duplicates`` counter must survive the crashes exactly too: this test found that a group
of requests that accepted no event (all duplicates or too new) once left no log record, so a
``kill -9`` lost those counts; the last test here keeps that case.

The choices (request sizes and contents, kill moments) come from seeded generators; the
timing varies from run to run, but the properties checked hold for any timing.
"""

from __future__ import annotations

import itertools
import random
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec

from tests.engine.oracle import Oracle
from tests.servers import ServiceProcess
from tests.service.test_durability import CATEGORIES, REGIONS, as_views, assert_matches_oracle

SEED = 20250319
ROUNDS = 20
SENDERS = 3
SERVE_ARGS = ("--sync", "NORMAL", "--checkpoint-interval", "0.3", "--tick-interval", "0.2")
RUN_S = (0.05, 0.8)
"""How long a server takes traffic before it is killed (uniform, seeded)."""
TIME_LIMIT_S = 240.0
"""A guard against a runaway test, not a target: it takes 60-90 s on two shared cores, most
of it starting the 21 servers."""
HTTP_TIMEOUT = httpx.Timeout(10.0)
RETRY_PAUSE_S = 0.01
HOUR = 3_600_000
DAY = 24 * HOUR

FRESH, REPEAT, CONTESTED, INVALID = "fresh", "repeat", "contested", "invalid"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def video(rng: random.Random) -> str:
    """Zipf-ish over 40 videos: a few popular ones, many ties among the rest."""
    return f"v{min(int(rng.paretovariate(1.1)), 40)}"


def timestamp(rng: random.Random, now: int) -> int:
    """Mostly the last 3 hours; some the last 2 days, a few up to 40 days back (past the
    30-day windows, counted in ``all``)."""
    draw = rng.random()
    back = 3 * HOUR if draw < 0.85 else 2 * DAY if draw < 0.95 else 40 * DAY
    return now - rng.randrange(0, back)


def view(rng: random.Random, now: int, event_id: str | None) -> dict[str, Any]:
    event: dict[str, Any] = {"video_id": video(rng), "ts": timestamp(rng, now)}
    category, region = rng.choice(CATEGORIES), rng.choice(REGIONS)
    if category is not None:
        event["category"] = category
    elif rng.random() < 0.2:
        event["category"] = None  # explicitly absent
    if region is not None:
        event["region"] = region
    if event_id is not None:
        event["event_id"] = event_id
    return event


def invalid(rng: random.Random, now: int, event_id: str) -> Any:
    """An event the server must reject: malformed, or an hour ahead of its clock."""
    kinds: list[Any] = [
        {"ts": now},
        {"video_id": 7, "ts": now},
        {"video_id": "v1", "ts": "yesterday"},
        {"video_id": "v1", "ts": -5},
        {"video_id": "v1", "ts": now, "category": 3},
        {"video_id": "v1", "ts": now, "event_id": ""},
        ["not", "an", "object"],
        {"video_id": "v1", "ts": now + HOUR, "event_id": event_id},  # too new
    ]
    return rng.choice(kinds)


@dataclass
class Request:
    """One request of a sender: its key, body (sent as the same bytes on every attempt),
    what each event is, and the server's answer once acknowledged."""

    key: str
    events: list[Any]
    kinds: list[str]
    body: bytes = b""
    answer: dict[str, Any] | None = None
    replayed: bool = False
    attempts: int = 0
    lost: int = 0  # attempts that got no answer (connection refused, reset, timeout)

    def __post_init__(self) -> None:
        self.body = msgspec.json.encode(self.events)

    def count(self, kind: str) -> int:
        return self.kinds.count(kind)

    @property
    def valid(self) -> int:
        return len(self.kinds) - self.count(INVALID)


@dataclass
class Shared:
    """What the test and its senders share: the server to post to (``None`` while it is
    down), when to stop making requests, and the overall deadline."""

    deadline: float
    contested_base_ms: int
    url: str | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    abort: threading.Event = field(default_factory=threading.Event)


class Sender(threading.Thread):
    """Makes requests from its own seeded generator and posts each until acknowledged."""

    def __init__(self, number: int, shared: Shared) -> None:
        super().__init__(name=f"crash-sender-{number}", daemon=True)
        self.number = number
        self.shared = shared
        self.rng = random.Random(f"{SEED}:sender:{number}")
        self.requests: list[Request] = []
        self.pool: list[dict[str, Any]] = []  # acknowledged fresh events with ids
        self.failure: str | None = None
        self.unexpected: list[str] = []  # non-202 answers that were retried

    def run(self) -> None:
        try:
            with httpx.Client(timeout=HTTP_TIMEOUT) as client:
                for index in itertools.count():
                    if self.shared.stop.is_set():
                        return
                    request = self.make(index)
                    self.requests.append(request)
                    if not self.deliver(client, request):
                        return
                    assert request.answer is not None
                    self.pool.extend(
                        e
                        for e, kind in zip(request.events, request.kinds, strict=True)
                        if kind == FRESH and "event_id" in e
                    )
        except Exception:
            self.failure = traceback.format_exc()

    def make(self, index: int) -> Request:
        rng = self.rng
        now = now_ms()
        prefix = f"s{self.number}.r{index}"
        events: list[Any] = []
        kinds: list[str] = []
        special = rng.random()
        if special < 0.04 and self.pool:  # only duplicates: nothing to log but the answer
            for _ in range(rng.randint(1, 4)):
                events.append(rng.choice(self.pool))
                kinds.append(REPEAT)
        elif special < 0.06:  # only invalid events
            for slot in range(rng.randint(1, 3)):
                events.append(invalid(rng, now, f"{prefix}.x{slot}"))
                kinds.append(INVALID)
        else:
            size = rng.randint(1, 8) if rng.random() < 0.6 else rng.randint(9, 200)
            own: list[dict[str, Any]] = []  # this request's fresh events with ids
            contested = 0
            for slot in range(size):
                draw = rng.random()
                if draw < 0.07 and self.pool:
                    events.append(rng.choice(self.pool))
                    kinds.append(REPEAT)
                elif draw < 0.11 and own:
                    events.append(rng.choice(own))
                    kinds.append(REPEAT)
                elif draw < 0.15:
                    event_id = f"c{index}.{contested}"
                    contested += 1
                    same = random.Random(f"{SEED}:{event_id}")  # the same event from anyone
                    events.append(view(same, self.shared.contested_base_ms, event_id))
                    kinds.append(CONTESTED)
                elif draw < 0.20:
                    events.append(invalid(rng, now, f"{prefix}.x{slot}"))
                    kinds.append(INVALID)
                else:
                    with_id = draw < 0.90
                    event = view(rng, now, f"{prefix}.e{slot}" if with_id else None)
                    if with_id:
                        own.append(event)
                    events.append(event)
                    kinds.append(FRESH)
        return Request(f"crash-{SEED}-{prefix}", events, kinds)

    def deliver(self, client: httpx.Client, request: Request) -> bool:
        """Post until a ``202`` (``True``), retrying with the same key and bytes whatever
        happens to the server; ``False`` if the test is aborting."""
        headers = {"Idempotency-Key": request.key, "Content-Type": "application/json"}
        while not self.shared.abort.is_set():
            if time.monotonic() > self.shared.deadline:
                raise TimeoutError(f"request {request.key} unanswered at the deadline")
            url = self.shared.url
            if url is None:  # between servers
                time.sleep(RETRY_PAUSE_S)
                continue
            request.attempts += 1
            try:
                response = client.post(f"{url}/views", content=request.body, headers=headers)
            except httpx.HTTPError:
                request.lost += 1
                time.sleep(RETRY_PAUSE_S)
                continue
            if response.status_code == 202:
                request.answer = response.json()
                request.replayed = response.headers.get("idempotent-replayed") == "true"
                return True
            if response.status_code != 429 and response.status_code < 500:
                raise AssertionError(f"{request.key}: HTTP {response.status_code}: {response.text}")
            self.unexpected.append(f"{request.key}: HTTP {response.status_code}")
            time.sleep(RETRY_PAUSE_S)
        return False


def get_status(url: str) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{url}/status", timeout=HTTP_TIMEOUT).json()
    return answer


def check_recovered(url: str, senders: list[Sender], label: str) -> dict[str, Any]:
    """Before the senders are told of the restarted server: it holds every acknowledged
    event, and no more than those plus the requests still unanswered (which may or may not
    have been committed before the crash). The bounds hold whatever the senders do."""
    status = get_status(url)
    requests = [r for s in senders for r in s.requests]
    acknowledged = [r.answer for r in requests if r.answer is not None]
    unanswered = [r for r in requests if r.answer is None]
    low = sum(a["accepted"] for a in acknowledged)
    high = low + sum(r.valid for r in unanswered)
    accepted = status["events_accepted"]
    assert low <= accepted <= high, f"{label}: accepted {accepted} not in [{low}, {high}]"
    assert status["events_applied"] == accepted, label
    duplicates_low = sum(a["duplicates"] for a in acknowledged)
    duplicates_high = duplicates_low + sum(r.count(REPEAT) + r.count(CONTESTED) for r in unanswered)
    assert duplicates_low <= status["duplicates"] <= duplicates_high, (
        f"{label}: duplicates {status['duplicates']} not in [{duplicates_low}, {duplicates_high}]"
    )
    return status


def check_answer(request: Request) -> None:
    """The answer agrees with what the request's events are (see the module docstring)."""
    answer = request.answer
    assert answer is not None, f"{request.key} never acknowledged"
    rejected = [i for i, kind in enumerate(request.kinds) if kind == INVALID]
    assert sorted(e["index"] for e in answer["errors"]) == rejected, request.key
    assert answer["rejected"] == len(rejected), request.key
    repeats, contested = request.count(REPEAT), request.count(CONTESTED)
    assert repeats <= answer["duplicates"] <= repeats + contested, (request.key, answer)
    assert answer["accepted"] + answer["duplicates"] == request.valid, (request.key, answer)


def expected_oracle(requests: list[Request]) -> tuple[Oracle, int]:
    """The events that must count (fresh ones, one copy per contested id) and the number of
    duplicates the server must have seen."""
    oracle = Oracle()
    contested: dict[str, dict[str, Any]] = {}
    duplicates = 0
    for request in requests:
        for event, kind in zip(request.events, request.kinds, strict=True):
            if kind == FRESH:
                oracle.accepted.extend(as_views([event]))
            elif kind == REPEAT:
                duplicates += 1
            elif kind == CONTESTED:
                if event["event_id"] in contested:
                    assert contested[event["event_id"]] == event  # the same from anyone
                    duplicates += 1
                contested.setdefault(event["event_id"], event)
    oracle.accepted.extend(as_views(list(contested.values())))
    return oracle, duplicates


def test_repeated_kill_9_during_ingest_counts_every_acknowledged_event_once(
    service_factory: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    started = time.monotonic()
    rng = random.Random(SEED)
    data = tmp_path / "data"
    shared = Shared(deadline=started + TIME_LIMIT_S, contested_base_ms=now_ms())
    senders = [Sender(number, shared) for number in range(SENDERS)]
    recoveries: list[dict[str, Any]] = []
    start_s = 0.0  # spent starting servers

    def check_senders(label: str) -> None:
        failures = [s.failure for s in senders if s.failure is not None]
        assert not failures, f"{label}: a sender failed:\n" + "\n".join(failures)
        assert time.monotonic() < shared.deadline, f"{label}: over {TIME_LIMIT_S} s; runaway"

    for sender in senders:
        sender.start()
    try:
        for round_ in range(ROUNDS):
            starting = time.monotonic()
            service = service_factory(*SERVE_ARGS, data_dir=data)
            start_s += time.monotonic() - starting
            recoveries.append(check_recovered(service.url, senders, f"restart {round_}"))
            shared.url = service.url
            time.sleep(rng.uniform(*RUN_S))
            service.stop(signal.SIGKILL, timeout=30)
            shared.url = None
            check_senders(f"round {round_}")

        final = service_factory(*SERVE_ARGS, data_dir=data)
        recoveries.append(check_recovered(final.url, senders, "final restart"))
        shared.stop.set()  # make no more requests; finish (retry) the unanswered ones
        shared.url = final.url
        for sender in senders:
            sender.join(max(0.0, shared.deadline - time.monotonic()))
        check_senders("final")
        assert not any(s.is_alive() for s in senders), "a sender is stuck"
    finally:
        shared.abort.set()
        shared.stop.set()

    requests = [r for s in senders for r in s.requests]
    for request in requests:
        check_answer(request)
    oracle, duplicates = expected_oracle(requests)
    answers = [r.answer for r in requests if r.answer is not None]
    assert sum(a["accepted"] for a in answers) == len(oracle.accepted)
    assert sum(a["duplicates"] for a in answers) == duplicates
    # events_accepted and every window x category x region against brute force: equal
    # counts mean no acknowledged event was lost and no event (acknowledged or retried after
    # a crash) was counted twice.
    comparing = time.monotonic()
    assert_matches_oracle(final.url, oracle)
    compare_s = time.monotonic() - comparing
    counted = get_status(final.url)["duplicates"]
    assert counted == duplicates

    # Both recovery paths ran: a checkpoint restored, and log records replayed after one.
    restored = [r["recovery"]["restored_from"].get("0", 0) for r in recoveries]
    replayed = [r["recovery"]["replayed_batches"] for r in recoveries]
    assert any(seq > 0 for seq in restored), restored
    assert any(n > 0 for n in replayed), replayed
    assert any(seq > 0 and n > 0 for seq, n in zip(restored, replayed, strict=True))

    # Acknowledged keys stay answered from the store, and change nothing.
    for request in random.Random(SEED).sample(requests, min(20, len(requests))):
        again = httpx.post(
            f"{final.url}/views",
            content=request.body,
            headers={"Idempotency-Key": request.key, "Content-Type": "application/json"},
            timeout=HTTP_TIMEOUT,
        )
        assert again.status_code == 202
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == request.answer
    assert get_status(final.url)["events_accepted"] == len(oracle.accepted)

    retried = [r for r in requests if r.lost]
    assert retried, "no request was cut off by a crash: the kills missed the traffic"
    print(
        f"{len(requests)} requests, {len(oracle.accepted)} events counted, {duplicates} "
        f"duplicates; {len(retried)} requests cut off by a crash "
        f"({sum(r.replayed for r in retried)} answered from the stored answer on retry); "
        f"restored checkpoints {restored}; replayed batches {replayed}; "
        f"unexpected answers {sum(len(s.unexpected) for s in senders)}; "
        f"{time.monotonic() - started:.1f} s in all, {start_s:.1f} s starting servers, "
        f"{compare_s:.1f} s comparing with the oracle"
    )


def test_duplicate_and_too_new_counts_of_an_all_refused_request_survive_kill_9(
    service_factory: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    args = ("--sync", "NORMAL", "--checkpoint-interval", "3600")
    first = service_factory(*args, data_dir=data)
    now = now_ms()
    event = {"video_id": "v1", "ts": now, "event_id": "a"}
    bodies = {"k1": [event], "k2": [event], "k3": [{"video_id": "v1", "ts": now + HOUR}]}
    answers = {}
    for key, body in bodies.items():
        response = httpx.post(
            f"{first.url}/views", json=body, headers={"Idempotency-Key": key}, timeout=10
        )
        assert response.status_code == 202
        answers[key] = response.json()
    assert [(a["accepted"], a["duplicates"], a["rejected"]) for a in answers.values()] == [
        (1, 0, 0),
        (0, 1, 0),  # only a duplicate: nothing to log but the answer
        (0, 0, 1),  # only too new
    ]
    before = get_status(first.url)
    assert (before["duplicates"], before["events_rejected"]) == (1, 1)
    first.stop(signal.SIGKILL)

    second = service_factory(*args, data_dir=data)
    after = get_status(second.url)
    assert after["events_accepted"] == 1
    assert after["duplicates"] == 1  # the k2 group logged its count, with no events
    assert after["events_rejected"] == 1  # too new, kept with the group's dead letter
