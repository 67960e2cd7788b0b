"""The analytics store: one chDB (ClickHouse in-process) database in a directory.

ClickHouse runs inside this process; a directory can be open in one process at a time
(a second process is refused), so the service owns its store while it runs and
``rankstream analytics query`` opens it only while the service is stopped.

Every statement goes through :meth:`AnalyticsStore.query` (or the insert path); values from
outside are always passed as ClickHouse query parameters (``{name:Type}``), never put in
the SQL text. Calls may come from any thread; they are serialised by one lock.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chdb.state.sqlitelike import Connection, connect

from rankstream.analytics.rows import COLUMNS, LoadRows
from rankstream.analytics.schema import statements
from rankstream.errors import RankstreamError

Params = Mapping[str, int | str]


class AnalyticsError(RankstreamError):
    """The analytics store refused a statement or cannot be opened; the message says why."""


@dataclass(frozen=True, slots=True)
class LoadIntent:
    """A load batch as recorded before its rows: log records ``[start, end)`` of
    ``partition``, how many events they hold, and the newest event time loaded once they
    are (among them and every batch before)."""

    partition: int
    start: int
    end: int
    events: int
    newest_event: int | None


class AnalyticsStore:
    """The store in ``path``: created or migrated on open (``ttl_days``: see
    :func:`~rankstream.analytics.schema.statements`), or opened ``read_only`` (ClickHouse's
    read-only mode: every write, DDL statement and settings change is refused).

    Raises :class:`AnalyticsError` if the directory is in use by another process.
    """

    def __init__(self, path: Path, ttl_days: int = 730, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._lock = threading.Lock()
        if not read_only:
            path.mkdir(parents=True, exist_ok=True)
        elif not (path / "metadata").is_dir():
            raise AnalyticsError(f"no analytics store in {path}")
        target = f"{path}?mode=ro" if read_only else str(path)
        try:
            self._session: Connection | None = connect(target)
        except RuntimeError as exc:
            raise AnalyticsError(
                f"cannot open the analytics store in {path}: is a rankstream service using"
                f" it? (one process at a time) [{_first_line(exc)}]"
            ) from None
        if not read_only:
            self.migrate(ttl_days)

    def migrate(self, ttl_days: int) -> None:
        """Create what is missing and set the TTL (idempotent)."""
        rows = self.query(
            "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase()"
        )
        engines = {str(row["name"]): str(row["engine_full"]) for row in rows}
        for statement in statements(ttl_days, engines):
            self.execute(statement)

    def close(self) -> None:
        """Close the database. Idempotent."""
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None

    # ------------------------------------------------------------------ statements

    def query(self, sql: str, params: Params | None = None) -> list[dict[str, Any]]:
        """The rows of a SELECT as dicts (column name -> Python value)."""
        with self._lock:
            table = self._run(sql, "ArrowTable", params)
        rows: list[dict[str, Any]] = table.to_pylist()
        return rows

    def execute(self, sql: str, params: Params | None = None) -> None:
        """Run a statement that returns nothing of interest (DDL, INSERT ... SELECT)."""
        with self._lock:
            self._run(sql, "CSV", params)

    def text(self, sql: str, output_format: str) -> str:
        """The result of ``sql`` in a ClickHouse text output format (``PrettyCompact``,
        ``CSVWithNames``, ``JSON``...), as ``rankstream analytics query`` prints it."""
        with self._lock:
            result = self._run(sql, output_format, None)
        return bytes(result.bytes()).decode("utf-8", "replace")

    def _run(self, sql: str, output_format: str, params: Params | None) -> Any:
        if self._session is None:
            raise AnalyticsError("the analytics store is closed")
        try:
            values = {k: _escaped(v) for k, v in (params or {}).items()}
            return self._session.query(sql, output_format, params=values)
        except Exception as exc:  # chDB raises RuntimeError / ChdbError with ClickHouse's text
            raise AnalyticsError(_first_line(exc)) from None

    # ------------------------------------------------------------------ loading

    def insert_views(self, rows: LoadRows, token: str) -> None:
        """Insert ``rows`` into ``views`` (and, by the materialized view, the rollup) under
        the de-duplication ``token``: a repeat of the same rows with the same token writes
        nothing in either table, whatever part of the first one had been written.

        ``token`` must be built by the caller from numbers it owns (log positions), never
        from event content."""
        if not rows.count:
            return
        statement = (
            f"INSERT INTO views ({', '.join(COLUMNS)}) SETTINGS"
            f" insert_deduplication_token = '{_checked_token(token)}',"
            " insert_deduplicate = 1, deduplicate_blocks_in_dependent_materialized_views = 1"
        )
        with self._lock:
            if self._session is None:
                raise AnalyticsError("the analytics store is closed")
            try:
                with self._session.send_insert(statement, "ArrowStream") as insert:
                    insert.append(rows.arrow)
                    insert.finish()
            except Exception as exc:
                raise AnalyticsError(_first_line(exc)) from None

    def record(self, intent: LoadIntent, done: bool) -> None:
        """Record that the rows of ``intent`` are about to be inserted (``done`` false), or
        that they all are (``done`` true)."""
        self.execute(
            "INSERT INTO load_progress (log_partition, start, end, events, newest_event, done)"
            " SELECT {partition:UInt32}, {start:UInt64}, {end:UInt64}, {events:UInt64},"
            " if({has_newest:UInt8}, fromUnixTimestamp64Milli({newest:Int64}, 'UTC'), NULL),"
            " {done:UInt8}",
            {
                "partition": intent.partition,
                "start": intent.start,
                "end": intent.end,
                "events": intent.events,
                "has_newest": int(intent.newest_event is not None),
                "newest": intent.newest_event or 0,
                "done": int(done),
            },
        )

    def last_intents(self) -> dict[int, tuple[LoadIntent, bool]]:
        """Per log partition, the newest load batch recorded and whether it is done."""
        rows = self.query(
            "SELECT log_partition, start, end, events,"
            " toUnixTimestamp64Milli(newest_event) AS newest, done FROM load_progress"
            " ORDER BY log_partition, start DESC, done DESC LIMIT 1 BY log_partition"
        )
        return {
            int(row["log_partition"]): (
                LoadIntent(
                    int(row["log_partition"]),
                    int(row["start"]),
                    int(row["end"]),
                    int(row["events"]),
                    None if row["newest"] is None else int(row["newest"]),
                ),
                bool(row["done"]),
            )
            for row in rows
        }

    def newest_event(self) -> int | None:
        """The newest event time of every batch recorded (epoch ms), or ``None``. (Rows
        merged away had no newer one: each row holds the newest of all before it.)"""
        rows = self.query(
            "SELECT toUnixTimestamp64Milli(max(newest_event)) AS t FROM load_progress"
        )
        value = rows[0]["t"] if rows else None
        return None if value is None else int(value)

    # ------------------------------------------------------------------ size

    def size(self) -> tuple[int, int]:
        """Raw rows held and bytes on disk of every table."""
        rows = self.query(
            "SELECT sumIf(rows, table = 'views') AS rows, sum(bytes_on_disk) AS bytes"
            " FROM system.parts WHERE active AND database = currentDatabase()"
        )
        return int(rows[0]["rows"] or 0), int(rows[0]["bytes"] or 0)


def _checked_token(token: str) -> str:
    if not token or any(not (c.isascii() and (c.isalnum() or c in ":-_")) for c in token):
        raise ValueError(f"a de-duplication token is ASCII letters, digits and :-_ ({token!r})")
    return token


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})


def _escaped(value: int | str) -> int | str:
    """A query parameter as ClickHouse reads it: string values are parsed in its escaped
    (TabSeparated) format, so a backslash, tab, newline, CR or NUL must be escaped to
    arrive as itself (a trailing backslash was an error, and ``\\t`` a tab)."""
    return value.translate(_ESCAPES) if isinstance(value, str) else value
