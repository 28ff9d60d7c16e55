"""Schema migrations: applied from empty, idempotent, and refused when too new."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from central.storage import (
    InvalidURL,
    SchemaTooNew,
    Store,
    StreetlightMode,
    StreetlightStatus,
    open_store,
)
from central.storage._migrations import MIGRATIONS

from ._helpers import T0, at


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


def test_migration_4_fills_the_latest_tables_from_the_history(store_url: str) -> None:
    """A store with events from before schema 4 gets its current lights and modes from them."""
    old = open_store(store_url)
    try:
        old.record_streetlight_status("st1", StreetlightStatus(1, "On", at(0)), received_at=at(0))
        old.record_streetlight_status("st1", StreetlightStatus(1, "Off", at(9)), received_at=at(1))
        old.record_streetlight_status("st1", StreetlightStatus(1, "On", at(5)), received_at=at(2))
        old.record_streetlight_status("st1", StreetlightStatus(2, "On", at(3)), received_at=at(3))
        old.record_streetlight_status("st1", StreetlightStatus(2, "Off", at(3)), received_at=at(4))
        old.record_streetlight_mode(
            "st2", StreetlightMode(None, "LocalOverride", at(1)), received_at=at(1)
        )
        old.record_streetlight_mode("st2", StreetlightMode(4, "Schedule", at(2)), received_at=at(2))
        # Back to schema 3: the history stays, the tables migration 4 adds go.
        db = old._db
        with db.transaction("back to schema 3", write=True):
            db.run("DROP TABLE streetlight_status_latest")
            db.run("DROP TABLE streetlight_mode_latest")
            db.run("DELETE FROM schema_version WHERE version = 4")
    finally:
        old.close()
    new = open_store(store_url)
    try:
        assert new.schema_version() == len(MIGRATIONS)
        lights = new.current_lights("st1")
        # Latest by the station's timestamp; a tie goes to the one stored last.
        assert {c: (s.status, s.timestamp) for c, s in lights.items()} == {
            1: ("Off", at(9)),
            2: ("Off", at(3)),
        }
        modes = new.current_modes("st2")
        assert {c: (m.mode, m.station_wide) for c, m in modes.items()} == {
            1: ("LocalOverride", True),
            2: ("LocalOverride", True),
            3: ("LocalOverride", True),
            4: ("Schedule", False),
        }
    finally:
        new.close()
