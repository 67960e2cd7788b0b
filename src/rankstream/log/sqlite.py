"""The embedded durable log: SQLite in WAL mode.

Why SQLite: it ships with Python, is one file, survives ``kill -9`` and power loss when
commits are synced, and commits many records in one transaction (group commit), so the
cost of an fsync is shared by every request waiting in the group. WAL mode lets readers
(replay, analytics) run beside the single writer.

Tables:
- ``batches(seq, wall_time, events, duplicates, rejected, payload)``: the events accepted
  by one group of requests, screened at ``wall_time``; ``payload`` is their JSON array.
- ``idempotency(key, seq, created, response)``: a request's key and its stored answer,
  written in the same transaction as its events, so a key holds across crashes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rankstream.engine.wire import EventDecoder
from rankstream.log.records import LoggedBatch, decode_events

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, even after truncation
    wall_time INTEGER NOT NULL,
    events INTEGER NOT NULL,
    duplicates INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    created INTEGER NOT NULL,
    response BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS idempotency_created ON idempotency(created);
"""


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """What one group of requests adds to the log: the events they had accepted (maybe
    none), how many were duplicates or rejected, and each request's idempotency key with
    its answer."""

    wall_time: int
    events: int
    duplicates: int
    rejected: int
    payload: bytes | None
    answers: list[tuple[str, bytes]]


class SqliteEventLog:
    """The durable log in ``path``. One writer (the ingest thread) at a time.

    ``synchronous="FULL"`` (default) syncs every commit: an acknowledged event survives
    power loss. ``"NORMAL"`` survives a process crash (``kill -9``) but not power loss.
    """

    def __init__(self, path: Path, synchronous: str = "FULL") -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError("synchronous must be FULL or NORMAL")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database (checkpointing the WAL into the main file)."""
        self._db.close()

    def append(self, record: GroupRecord) -> int | None:
        """Write ``record`` in one transaction; its log sequence (``None`` without events).
        Blocks until the commit is durable."""
        db = self._db
        seq = None
        db.execute("BEGIN IMMEDIATE")
        try:
            if record.payload is not None:
                cursor = db.execute(
                    "INSERT INTO batches (wall_time, events, duplicates, rejected, payload)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        record.wall_time,
                        record.events,
                        record.duplicates,
                        record.rejected,
                        record.payload,
                    ),
                )
                seq = cursor.lastrowid
            db.executemany(
                "INSERT INTO idempotency (key, created, response) VALUES (?, ?, ?)",
                [(key, record.wall_time, answer) for key, answer in record.answers],
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return seq

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
            "SELECT seq, wall_time, duplicates, rejected, payload FROM batches"
            " WHERE seq > ? ORDER BY seq",
            (after,),
        )
        for seq, wall_time, duplicates, rejected, payload in cursor:
            batch, raw = decode_events(payload, decoder)
            yield LoggedBatch(seq, wall_time, batch, raw, duplicates, rejected)

    def last_seq(self) -> int:
        """The highest sequence ever written (0 for an empty log)."""
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name='batches'").fetchone()
        if row is None:
            row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM batches").fetchone()
        return int(row[0])

    def truncate_through(self, seq: int) -> int:
        """Delete records with ``seq <= seq`` (covered by a checkpoint); how many went."""
        cursor = self._db.execute("DELETE FROM batches WHERE seq <= ?", (seq,))
        return cursor.rowcount

    def expire_keys(self, before: int) -> int:
        """Forget idempotency keys created before ``before`` (epoch ms); how many went."""
        cursor = self._db.execute("DELETE FROM idempotency WHERE created < ?", (before,))
        return cursor.rowcount

    def size_bytes(self) -> int:
        """Bytes on disk (database plus write-ahead log)."""
        wal = self.path.with_name(self.path.name + "-wal")
        return self.path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
