"""The embedded durable log: SQLite in WAL mode.

Why SQLite: it ships with Python, is one file, survives ``kill -9`` and power loss when
commits are synced, and commits many records in one transaction (group commit), so the
cost of an fsync is shared by every request waiting in the group. WAL mode lets readers
(replay, analytics) run beside the single writer.

One partition (0); a record's offset is its ``seq``, which is never reused. Tables:
- ``batches(seq, wall_time, events, duplicates, rejected, payload, over_capacity)``: the
  events accepted by one group of requests, screened at ``wall_time``; ``payload`` is their
  JSON array; the counts say how many the engine refused (duplicate, too new, over a
  capacity limit), so replay restores its statistics.
- ``dead_letters(id, received, field, reason, event)``: the newest rejected events (bounded),
  and ``rejections(field, count)``: every rejection ever, by field at fault.
- the idempotency keys (:mod:`rankstream.idempotency.sqlite`) share the database, so a
  group's events, dead letters and answers commit in one transaction: what a client was
  told and what the service counts never disagree, across restarts too.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rankstream._sqlite import storage_error
from rankstream.engine.wire import Decoder
from rankstream.log.position import LogPosition
from rankstream.log.protocol import GroupRecord
from rankstream.log.records import DeadLetter, LoggedBatch, decode_events

PARTITION = 0  # the embedded log has one partition

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


class SqliteEventLog:
    """The durable log in ``path``. One writer (the ingest thread) at a time.

    ``synchronous="FULL"`` (default) syncs every commit: an acknowledged event survives
    power loss. ``"NORMAL"`` survives a process crash (``kill -9``) but not power loss.
    """

    atomic = True  # see EventLog: one SQLite transaction per block
    keeps_refusals = True  # records keep their counts; dead letters are kept

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

    @property
    def database(self) -> sqlite3.Connection:
        """The open connection, for stores that share the log's transactions."""
        return self._db

    def close(self) -> None:
        """Close the database (checkpointing the WAL into the main file). Idempotent."""
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One SQLite transaction: appends and writes of stores on :attr:`database` made
        in the block commit together, durably (``synchronous`` allowing), when it ends."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # SQLite may already have rolled back (disk full)
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise storage_error(exc, "the event log") from exc

    def append(self, record: GroupRecord) -> LogPosition | None:
        """Add ``record`` inside :meth:`transaction`; the position after it (``None``
        without a payload: only its dead letters are kept)."""
        offset = None
        db = self._db
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
                offset = cursor.lastrowid
            if record.letters:
                self._add_letters(record.letters)
        except sqlite3.Error as exc:
            raise storage_error(exc, "the event log") from exc
        return None if offset is None else LogPosition({PARTITION: offset + 1})

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

    def read(self, start: LogPosition, decoder: Decoder) -> Iterator[LoggedBatch]:
        """Records from ``start`` on, in order, their events decoded by ``decoder``."""
        cursor = self._db.execute(
            "SELECT seq, wall_time, duplicates, rejected, over_capacity, payload FROM batches"
            " WHERE seq >= ? ORDER BY seq",
            (start.of(PARTITION),),
        )
        for seq, wall_time, duplicates, rejected, over_capacity, payload in cursor:
            batch, raw = decode_events(payload, decoder)
            yield LoggedBatch(
                PARTITION, seq, seq + 1, wall_time, batch, raw, duplicates, rejected, over_capacity
            )

    def end(self) -> LogPosition:
        """The position after the newest record ever written (offsets are never reused)."""
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name='batches'").fetchone()
        if row is None:
            row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM batches").fetchone()
        return LogPosition({PARTITION: int(row[0]) + 1})

    def reclaim(self, before: LogPosition) -> None:
        """Delete records before ``before`` (a checkpoint covers them). Raises
        :class:`~rankstream.errors.StorageFailure` (deleting needs a little space too);
        the caller retries later."""
        try:
            self._db.execute("DELETE FROM batches WHERE seq < ?", (before.of(PARTITION),))
        except sqlite3.Error as exc:
            raise storage_error(exc, "the event log") from exc

    def size_bytes(self) -> int:
        """Bytes on disk (database plus write-ahead log)."""
        wal = self.path.with_name(self.path.name + "-wal")
        return self.path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
