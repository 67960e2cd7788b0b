"""What the SQLite files (log, metadata) share: turning a failed write into a domain error."""

from __future__ import annotations

import sqlite3

from rankstream.errors import StorageFailure, StorageFull


def storage_error(exc: sqlite3.Error, what: str) -> StorageFailure:
    """The domain error of a failed SQLite write: :class:`StorageFull` when the disk is full
    (SQLite's ``SQLITE_FULL``), :class:`StorageFailure` otherwise."""
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return StorageFull(f"cannot write {what}: the data directory's disk is full")
    return StorageFailure(f"cannot write {what}: {exc}")
