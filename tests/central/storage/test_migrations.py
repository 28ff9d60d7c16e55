"""Schema migrations: applied from empty, idempotent, and refused when too new."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from central.storage import (
    InvalidURL,
    SchemaTooNew,
    Store,
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


def test_migration_4_fills_the_latest_tables_from_the_history(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store with events from before schema 4 gets its current lights and modes from them."""
    import central.storage.store as store_module

    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS[:3])
    old = open_store(store_url)
    try:
        db = old._db  # the history as schema 3 stored it: rows only, no latest tables
        with db.transaction("history at schema 3", write=True):
            for contactor, status, stamp, received in (
                (1, "On", 0, 0),
                (1, "Off", 9, 1),
                (1, "On", 5, 2),  # delivered late, older: not the latest
                (2, "On", 3, 3),
                (2, "Off", 3, 4),  # a tie: the one stored last wins
            ):
                db.run(
                    "INSERT INTO streetlight_status (station_id, contactor_id, status, timestamp,"
                    " unexpected, received_at) VALUES (?, ?, ?, ?, NULL, ?)",
                    ("st1", contactor, status, db.ts(at(stamp)), db.ts(at(received))),
                )
            for contactor, mode, stamp in ((0, "LocalOverride", 1), (4, "Schedule", 2)):
                db.run(
                    "INSERT INTO streetlight_mode (station_id, contactor_id, mode, timestamp,"
                    " received_at) VALUES (?, ?, ?, ?, ?)",
                    ("st2", contactor, mode, db.ts(at(stamp)), db.ts(at(stamp))),
                )
    finally:
        old.close()
    monkeypatch.undo()
    new = open_store(store_url)
    try:
        assert new.schema_version() == len(MIGRATIONS)
        lights = new.current_lights("st1")
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
