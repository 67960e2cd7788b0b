"""Loading the durable log into the analytics store, exactly once, in batches.

A *batch* is the accepted events of consecutive log records ``[start, end)`` of one log
partition (whole records, up to ``batch_rows`` events, more if one record holds more).
For each batch the loader:

1. records the batch's *intent* (``start``, ``end``, event count, newest event time) in
   ``load_progress``;
2. inserts its rows into ``views`` with the de-duplication token ``log:P:START:END``; the
   materialized view writes the rollup rows in the same INSERT, under tokens ClickHouse
   derives from it;
3. records the batch as *done*, and moves its position and the retention floor to ``end``.

Why no view is lost or counted twice, whatever moment the process dies at:

- The log keeps every record from the start of a batch not known to be done (the
  retention floor), so that batch and everything after it can always be read again.
- At start the loader reads its newest batch back; if it is not done, it inserts that batch
  again, cut at the same records, so with the same rows and token: the parts ClickHouse
  had already written (in ``views`` and, separately, in ``views_hourly``) are recognised
  by their token and skipped, the missing ones are written. Both tables remember the
  tokens of their last ``DEDUP_WINDOW`` blocks on disk; a replay only ever covers the one
  newest batch. Earlier batches were done before a later intent was recorded.
- A batch whose insert failed (disk full, say) is retried with the same cut and token
  before anything else is read.

The loader only reads the log (its own read connection); the writer thread keeps
appending. Offsets of the embedded log are never reused, so a token never names two
different batches.

A batch's rows are computed once, when its records are read: a retried insert reuses
them, and only :meth:`AnalyticsLoader.recover` reads a recorded batch again. So a log
reader whose records depend on what it read before (the scale-out loader screens a Kafka
partition through an engine, :mod:`rankstream.analytics.screened`) is read exactly once
per record, in order, from :meth:`AnalyticsLoader.position` on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from rankstream.analytics.rows import LoadRows, load_rows
from rankstream.analytics.store import AnalyticsError, AnalyticsStore, LoadIntent
from rankstream.engine.wire import Decoder
from rankstream.log import LoggedBatch, LogPosition

logger = logging.getLogger("rankstream.analytics")


class LogReader(Protocol):
    """What the loader needs of a log: :class:`~rankstream.analytics.embedded.SqliteRecords`
    (the embedded log) or :class:`~rankstream.analytics.screened.ScreenedPartition` (a
    Kafka partition as the workers count it)."""

    def read(
        self, start: LogPosition, decoder: Decoder, until: int | None = None
    ) -> Iterator[LoggedBatch]:
        """Every record of the loader's partition at or after ``start``, in order; with
        ``until``, none at or after that offset (records may hold others' partitions:
        the loader skips them)."""
        ...

    def end(self) -> LogPosition:
        """The position after the newest record."""
        ...


class LogGone(AnalyticsError):
    """The log no longer holds records the store has not loaded (it was reset or reclaimed
    without the loader's retention floor)."""


@dataclass(slots=True)
class LoaderStats:
    """What the loader did since it started."""

    batches: int = 0
    events: int = 0
    replayed_events: int = 0
    failures: int = 0


def token(intent: LoadIntent) -> str:
    """The de-duplication token of a batch: its log partition and record range."""
    return f"log:{intent.partition}:{intent.start}:{intent.end}"


class AnalyticsLoader:
    """Loads partition ``partition`` of ``log`` into ``store``; see the module docstring.

    :meth:`recover` (blocking) must run before :meth:`retention_floor` is trusted and
    before :meth:`start`. :meth:`load_batch` loads one batch on the caller's thread;
    :meth:`start` runs batches on a thread of its own until :meth:`stop`. :meth:`wake` may
    be called from any thread (it is the pipeline's change listener).
    """

    def __init__(
        self,
        store: AnalyticsStore,
        log: LogReader,
        decoder: Decoder,
        batch_rows: int = 100_000,
        poll_interval: float = 1.0,
        partition: int = 0,
    ) -> None:
        if batch_rows < 1:
            raise ValueError("batch_rows must be >= 1")
        self.store = store
        self.log = log
        self.decoder = decoder
        self.batch_rows = batch_rows
        self.poll_interval = poll_interval
        self.partition = partition
        self.stats = LoaderStats()
        self.problem: str | None = None
        self.loaded_through: int | None = None
        self._next = 0  # the next log offset to load
        self._pending: LoadIntent | None = None  # read, not known to be fully inserted
        self._pending_rows: LoadRows | None = None  # its rows (None: read them again)
        self._recorded = False  # whether the pending intent is in load_progress
        self._floor = 0  # the log offset from which records may still be needed
        self._recovered = False
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ position

    def retention_floor(self) -> LogPosition:
        """The oldest log position the loader may still need (nothing before recovery)."""
        floor = self._floor if self._recovered else 0
        return LogPosition({self.partition: floor})

    @property
    def position(self) -> LogPosition:
        """The log position loaded up to (records before it are in the store)."""
        return LogPosition({self.partition: self._next})

    @property
    def pending(self) -> bool:
        """Whether a batch was read and is not known to be fully inserted."""
        return self._pending is not None

    def recover(self) -> None:
        """Find where loading stopped and finish the batch in flight then (blocks)."""
        newest = self.store.last_intents().get(self.partition)
        self.loaded_through = self.store.newest_event()
        if newest is not None and newest[1]:  # done: nothing to finish
            self._next = self._floor = newest[0].end
        elif newest is not None:  # the crash came during this batch: finish it
            intent = newest[0]
            self._next = self._floor = intent.start
            self._pending, self._pending_rows, self._recorded = intent, None, True
            self._recovered = True
            self._insert_pending(intent, replay=True)
        self._recovered = True
        end = self.log.end().of(self.partition)
        if end < self._next:
            raise LogGone(
                f"the log ends at record {end} but the analytics store has loaded up to"
                f" {self._next}: the log was reset; move {self.store.path} away to reload"
                " what the log holds"
            )

    # ------------------------------------------------------------------ loading

    def load_batch(self) -> int:
        """Load the next batch (or retry the one that failed, with the rows read then);
        the number of log offsets it covered (0: nothing new). Raises
        :class:`AnalyticsError` if the store refused."""
        if self._pending is None:
            records = self._read(self._next, None)
            if not records:
                return 0
            if records[0].offset > max(self._next, 1):  # offsets start at 1 (SQLite)
                logger.warning(
                    "analytics: log records %d..%d were reclaimed before they were loaded"
                    " (was the service run without analytics?); loading from %d",
                    self._next,
                    records[0].offset - 1,
                    records[0].offset,
                )
            rows = load_rows(records)
            newest = [t for t in (self.loaded_through, rows.newest_event) if t is not None]
            intent = LoadIntent(  # newest: of everything loaded (older rows are merged away)
                self.partition,
                records[0].offset,
                records[-1].next_offset,
                rows.count,
                max(newest) if newest else None,
            )
            self._pending, self._pending_rows, self._recorded = intent, rows, False
        if not self._recorded:  # (again, if recording it failed: a repeated row is harmless)
            self.store.record(self._pending, done=False)
            self._recorded = True
            self._floor = self._pending.start
        return self._insert_pending(self._pending, replay=False)

    def _insert_pending(self, intent: LoadIntent, replay: bool) -> int:
        rows = self._pending_rows
        if rows is None:  # recovery: the same records, so the same rows
            rows = load_rows(self._read(intent.start, intent.end))
            if rows.count != intent.events:
                raise LogGone(
                    f"log records {intent.start}-{intent.end} hold {rows.count} events, the"
                    f" analytics store recorded {intent.events}: the log was reset or"
                    " reclaimed"
                )
            self._pending_rows = rows
        self.store.insert_views(rows, token(intent))
        self.store.record(intent, done=True)
        self._pending = self._pending_rows = None
        self._next = self._floor = intent.end
        if intent.newest_event is not None:
            newest = self.loaded_through
            self.loaded_through = max(newest or intent.newest_event, intent.newest_event)
        self.stats.batches += 1
        if replay:
            self.stats.replayed_events += rows.count
        else:
            self.stats.events += rows.count
        return max(1, intent.end - intent.start)

    def _read(self, start: int, end: int | None) -> list[LoggedBatch]:
        """Records from ``start``: up to ``end`` if given, else up to ``batch_rows``
        events (at least one record)."""
        records: list[LoggedBatch] = []
        events = 0
        reader = self.log.read(LogPosition({self.partition: start}), self.decoder, end)
        try:
            for record in reader:
                if record.partition != self.partition:
                    continue
                if end is not None and record.offset >= end:
                    break
                records.append(record)
                events += len(record.batch)
                if end is None and events >= self.batch_rows:
                    break
        finally:
            close = getattr(reader, "close", None)  # a generator: end its read transaction now
            if close is not None:
                close()
        return records

    def catch_up(self) -> None:
        """Load until the log has nothing new (blocks; for tools and tests)."""
        while self.load_batch():
            pass

    # ------------------------------------------------------------------ thread

    def start(self) -> None:
        """Load on a thread of its own until :meth:`stop`."""
        self._thread = threading.Thread(target=self._run, name="rankstream-analytics", daemon=True)
        self._thread.start()

    def wake(self, _change: object = None) -> None:
        """New records were appended: load them now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        """Stop the thread after its current batch. Idempotent."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        backoff = self.poll_interval
        while not self._stopping.is_set():
            try:
                loaded = self.load_batch()
            except AnalyticsError as exc:
                self.problem = str(exc)
                self.stats.failures += 1
                logger.warning("analytics load failed (retried): %s", exc)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 60.0)
                continue
            except Exception as exc:  # a bug: say so, keep the service up, retry slowly
                self.problem = f"analytics loader error: {exc!r}"
                self.stats.failures += 1
                logger.exception("analytics loader error")
                self._stopping.wait(60.0)
                continue
            self.problem = None
            backoff = self.poll_interval
            if not loaded:
                self._wake.wait(self.poll_interval)
                self._wake.clear()

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        """Position, lag and store size for ``GET /status``."""
        end = self.log.end().of(self.partition)
        rows, size = self.store.size()
        return {
            "loaded": self.position.offsets,
            "lag_records": max(0, end - self._next),
            "loaded_through": self.loaded_through,
            "events_loaded": self.stats.events,
            "rows": rows,
            "bytes": size,
            "failures": self.stats.failures,
            "problem": self.problem,
        }
