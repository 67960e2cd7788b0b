"""The schema: created at the first start, migrated at every start, idempotently."""

from __future__ import annotations

from pathlib import Path

from rankstream.analytics import AnalyticsStore


def test_the_schema_is_created_and_migrated_idempotently(tmp_path: Path) -> None:
    """Opening again changes nothing; a new TTL is set, and 0 removes it."""
    path = tmp_path / "store"

    def engine(store: AnalyticsStore) -> str:
        rows = store.query(
            "SELECT engine_full FROM system.tables WHERE name = 'views'"
            " AND database = currentDatabase()"
        )
        return str(rows[0]["engine_full"])

    for ttl, expected in [(730, "toIntervalDay(730)"), (730, "toIntervalDay(730)"), (30, "(30)")]:
        reopened = AnalyticsStore(path, ttl_days=ttl)
        try:
            assert expected in engine(reopened)
        finally:
            reopened.close()
    reopened = AnalyticsStore(path, ttl_days=0)
    try:
        assert " TTL " not in engine(reopened)
    finally:
        reopened.close()
