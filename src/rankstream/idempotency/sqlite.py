"""Idempotency keys in the embedded log's SQLite database.

The table lives in the same file and connection as the log (:mod:`rankstream.log.sqlite`),
so :meth:`SqliteIdempotencyStore.remember` called inside the log's ``transaction()``
commits with the group's events: after a crash a key is stored exactly when its events are.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from rankstream._sqlite import storage_error

SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    created INTEGER NOT NULL,
    response BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS idempotency_created ON idempotency(created);
"""


class SqliteIdempotencyStore:
    """Keys in table ``idempotency`` of ``database`` (an open connection in autocommit
    mode, e.g. ``SqliteEventLog.database``)."""

    expires_by_itself = False  # keys go only by expire()

    def __init__(self, database: sqlite3.Connection) -> None:
        self._db = database
        self._db.executescript(SCHEMA)

    def answers_for(self, keys: Sequence[str]) -> dict[str, bytes]:
        """See :meth:`IdempotencyStore.answers_for`."""
        found: dict[str, bytes] = {}
        for start in range(0, len(keys), 500):  # stay under SQLite's variable limit
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT key, response FROM idempotency WHERE key IN ({marks})", chunk
            )
            found.update((key, bytes(response)) for key, response in rows)
        return found

    def remember(self, answers: Sequence[tuple[str, bytes]], at: int) -> None:
        """See :meth:`IdempotencyStore.remember`."""
        try:
            self._db.executemany(
                "INSERT OR IGNORE INTO idempotency (key, created, response) VALUES (?, ?, ?)",
                [(key, at, answer) for key, answer in answers],
            )
        except sqlite3.Error as exc:
            raise storage_error(exc, "idempotency keys") from exc

    def expire(self, before: int) -> int:
        """See :meth:`IdempotencyStore.expire`."""
        try:
            return self._db.execute("DELETE FROM idempotency WHERE created < ?", (before,)).rowcount
        except sqlite3.Error as exc:
            raise storage_error(exc, "idempotency keys") from exc
