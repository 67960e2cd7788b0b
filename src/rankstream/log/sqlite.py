"""The embedded durable log: SQLite in WAL mode.

Why SQLite: it ships with Python, is one file, survives ``kill -9`` and power loss when
commits are synced, and commits many records in one transaction (group commit), so the
cost of an fsync is shared by every request waiting in the group. WAL mode lets readers
(replay, analytics) run beside the single writer.

Tables:
- ``batches(seq, wall_time, events, duplicates, rejected, payload, over_capacity)``: the
  events accepted by one group of requests, screened at ``wall_time``; ``payload`` is their
  JSON array; the counts say how many the engine refused (duplicate, too new, over a
  capacity limit), so replay restores its statistics.
- ``idempotency(key, created, response)``: a request's key and its stored answer,
  written in the same transaction as its events, so a key holds across crashes.
- ``dead_letters(id, received, field, reason, event)``: the newest rejected events (bounded),
  and ``rejections(field, count)``: every rejection ever, by field at fault. Written in the
  same transaction as the group's answers, so what a client was told and what the service
  counts never disagree, across restarts too.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rankstream._sqlite import storage_error
from rankstream.engine.wire import EventDecoder
from rankstream.log.records import DeadLetter, LoggedBatch, decode_events

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, even after truncation
    wall_time INTEGER NOT NULL,
    events INTEGER NOT NULL,
    duplicates INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    payload BLOB NOT NULL,
    over_capacity INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    created INTEGER NOT NULL,
    response BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS idempotency_created ON idempotency(created);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received INTEGER NOT NULL,
    field TEXT NOT NULL,
    reason TEXT NOT NULL,
    event TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rejections (
    field TEXT PRIMARY KEY,
    count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS probes (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """What one group of requests adds to the log: the events they had accepted (maybe
    none), how many were duplicates or rejected by the engine, each request's idempotency
    key with its answer, and the group's rejected events (dead letters)."""

    wall_time: int
    events: int
    duplicates: int
    rejected: int  # too new
    payload: bytes | None
    answers: list[tuple[str, bytes]]
    letters: list[DeadLetter] = field(default_factory=list)
    over_capacity: int = 0


class SqliteEventLog:
    """The durable log in ``path``. One writer (the ingest thread) at a time.

    ``synchronous="FULL"`` (default) syncs every commit: an acknowledged event survives
    power loss. ``"NORMAL"`` survives a process crash (``kill -9``) but not power loss.
    """

    def __init__(
        self, path: Path, synchronous: str = "FULL", dead_letter_capacity: int = 10_000
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError("synchronous must be FULL or NORMAL")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.dead_letter_capacity = dead_letter_capacity
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(batches)")}
        if "over_capacity" not in columns:  # a log written before capacity limits
            self._db.execute(
                "ALTER TABLE batches ADD COLUMN over_capacity INTEGER NOT NULL DEFAULT 0"
            )

    def close(self) -> None:
        """Close the database (checkpointing the WAL into the main file)."""
        self._db.close()

    def append(self, record: GroupRecord) -> int | None:
        """Write ``record`` in one transaction; its log sequence (``None`` without events).
        Blocks until the commit is durable. Raises :class:`~rankstream.errors.StorageFull`
        or :class:`~rankstream.errors.StorageFailure` if it cannot be written: then nothing
        of the record is kept, and a later append may succeed (space freed)."""
        try:
            return self._append(record)
        except sqlite3.Error as exc:
            raise storage_error(exc, "the event log") from exc

    def _append(self, record: GroupRecord) -> int | None:
        db = self._db
        seq = None
        db.execute("BEGIN IMMEDIATE")
        try:
            if record.payload is not None:
                cursor = db.execute(
                    "INSERT INTO batches"
                    " (wall_time, events, duplicates, rejected, over_capacity, payload)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        record.wall_time,
                        record.events,
                        record.duplicates,
                        record.rejected,
                        record.over_capacity,
                        record.payload,
                    ),
                )
                seq = cursor.lastrowid
            db.executemany(
                "INSERT INTO idempotency (key, created, response) VALUES (?, ?, ?)",
                [(key, record.wall_time, answer) for key, answer in record.answers],
            )
            if record.letters:
                self._add_letters(record.letters)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # SQLite may already have rolled back (disk full)
                db.execute("ROLLBACK")
            raise
        return seq

    def _add_letters(self, letters: list[DeadLetter]) -> None:
        db = self._db
        db.executemany(
            "INSERT INTO dead_letters (received, field, reason, event) VALUES (?, ?, ?, ?)",
            [(d.received, d.field, d.reason, d.event) for d in letters],
        )
        db.executemany(
            "INSERT INTO rejections (field, count) VALUES (?, ?)"
            " ON CONFLICT(field) DO UPDATE SET count = count + excluded.count",
            sorted(Counter(d.field for d in letters).items()),
        )
        db.execute(
            "DELETE FROM dead_letters WHERE id <= (SELECT MAX(id) FROM dead_letters) - ?",
            (self.dead_letter_capacity,),
        )

    def probe(self, at: int) -> None:
        """Write and sync one small row, to learn whether the log can be written again
        (after a full disk). Raises :class:`~rankstream.errors.StorageFull` or
        :class:`~rankstream.errors.StorageFailure` if not."""
        try:
            self._db.execute("INSERT OR REPLACE INTO probes (id, at) VALUES (1, ?)", (at,))
        except sqlite3.Error as exc:
            raise storage_error(exc, "the event log") from exc

    def dead_letters(self) -> tuple[list[DeadLetter], dict[str, int]]:
        """The kept dead letters (oldest first) and the rejection totals by field."""
        letters = [
            DeadLetter(received, field, reason, event)
            for received, field, reason, event in self._db.execute(
                "SELECT received, field, reason, event FROM dead_letters ORDER BY id"
            )
        ]
        totals = dict(self._db.execute("SELECT field, count FROM rejections").fetchall())
        return letters, totals

    def responses_for(self, keys: Sequence[str]) -> dict[str, bytes]:
        """The stored answers of requests that used any of ``keys``."""
        found: dict[str, bytes] = {}
        for start in range(0, len(keys), 500):  # stay under SQLite's variable limit
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT key, response FROM idempotency WHERE key IN ({marks})", chunk
            )
            found.update((key, bytes(response)) for key, response in rows)
        return found

    def replay(self, after: int, decoder: EventDecoder) -> Iterator[LoggedBatch]:
        """Records with ``seq > after``, in order, their events decoded by ``decoder``."""
        cursor = self._db.execute(
            "SELECT seq, wall_time, duplicates, rejected, over_capacity, payload FROM batches"
            " WHERE seq > ? ORDER BY seq",
            (after,),
        )
        for seq, wall_time, duplicates, rejected, over_capacity, payload in cursor:
            batch, raw = decode_events(payload, decoder)
            yield LoggedBatch(seq, wall_time, batch, raw, duplicates, rejected, over_capacity)

    def last_seq(self) -> int:
        """The highest sequence ever written (0 for an empty log)."""
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name='batches'").fetchone()
        if row is None:
            row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM batches").fetchone()
        return int(row[0])

    def truncate_through(self, seq: int) -> int:
        """Delete records with ``seq <= seq`` (covered by a checkpoint); how many went.
        Raises :class:`~rankstream.errors.StorageFailure` (deleting needs a little space
        too); the caller retries later."""
        try:
            return self._db.execute("DELETE FROM batches WHERE seq <= ?", (seq,)).rowcount
        except sqlite3.Error as exc:
            raise storage_error(exc, "the event log") from exc

    def expire_keys(self, before: int) -> int:
        """Forget idempotency keys created before ``before`` (epoch ms); how many went.
        Raises :class:`~rankstream.errors.StorageFailure` as :meth:`truncate_through`."""
        try:
            return self._db.execute("DELETE FROM idempotency WHERE created < ?", (before,)).rowcount
        except sqlite3.Error as exc:
            raise storage_error(exc, "the event log") from exc

    def size_bytes(self) -> int:
        """Bytes on disk (database plus write-ahead log)."""
        wal = self.path.with_name(self.path.name + "-wal")
        return self.path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
