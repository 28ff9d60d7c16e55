"""Schema migrations: applied from empty, idempotent, and refused when too new."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from central.storage import InvalidURL, SchemaTooNew, Store, open_store
from central.storage._migrations import MIGRATIONS

from ._helpers import T0


def test_versions_are_numbered_from_one() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


def test_applied_from_empty(store: Store) -> None:
    assert store.schema_version() == len(MIGRATIONS)
    assert store.list_stations() == []


def test_reopen_is_idempotent(store_url: str) -> None:
    for _ in range(3):
        reopened = open_store(store_url)
        try:
            assert reopened.schema_version() == len(MIGRATIONS)
            if not reopened.list_stations():
                reopened.add_station("st1", created_at=T0)
        finally:
            reopened.close()
    again = open_store(store_url)
    try:
        assert [s.station_id for s in again.list_stations()] == ["st1"]
    finally:
        again.close()


def test_sqlite_records_each_version_once_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "central.db"
    for _ in range(2):
        open_store(f"sqlite://{path}").close()
    with sqlite3.connect(path) as raw:
        versions = raw.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        mode = raw.execute("PRAGMA journal_mode").fetchone()
    raw.close()
    assert versions == [(m.version,) for m in MIGRATIONS]
    assert mode == ("wal",)


def test_sqlite_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "central.db"
    store = open_store(f"sqlite://{path}")
    store.add_station("st1", created_at=T0, password="pw")
    store.close()
    assert path.stat().st_mode & 0o777 == 0o600


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "central.db"
    open_store(f"sqlite://{path}").close()
    with sqlite3.connect(path) as raw:
        raw.execute("INSERT INTO schema_version (version, description) VALUES (999, 'future')")
    raw.close()
    with pytest.raises(SchemaTooNew) as raised:
        open_store(f"sqlite://{path}")
    assert (raised.value.found, raised.value.known) == (999, len(MIGRATIONS))


@pytest.mark.parametrize("url", ["mysql://x/y", "sqlite://", "sqlite:central.db", "central.db"])
def test_invalid_urls(url: str) -> None:
    with pytest.raises(InvalidURL):
        open_store(url)
