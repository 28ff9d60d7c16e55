"""open_database against real files: durability settings, migrations, corruption, bad disks."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rtu.storage import (
    Migrations,
    SchemaTooNew,
    StorageUnavailable,
    guarded,
    open_database,
    open_readonly,
    transaction,
)

NOW = datetime(2026, 3, 29, 1, 30, 5, tzinfo=UTC)
MIGRATIONS = Migrations(
    "test",
    [
        "CREATE TABLE a (x INTEGER); CREATE TABLE b (y TEXT DEFAULT ';');",
        "ALTER TABLE a ADD COLUMN z TEXT",
    ],
)


def now() -> datetime:
    return NOW


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """Make `directory` unwritable, also for root (who ignores permission bits).

    Root gets the immutable attribute (ext4 and most Linux file systems): no
    file can be created, renamed or removed inside, exactly like a read-only mount.
    """
    if os.geteuid() == 0:
        made = subprocess.run(["chattr", "+i", str(directory)], capture_output=True, check=False)
        if made.returncode != 0:  # e.g. overlayfs/tmpfs in a container: no such attribute
            pytest.skip(f"root cannot make a read-only directory here: {made.stderr!r}")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(directory)], check=True)
    else:
        directory.chmod(0o555)
        try:
            yield
        finally:
            directory.chmod(0o755)


def test_fresh_database_is_wal_full_and_migrated(tmp_path: Path) -> None:
    db = open_database(tmp_path / "x.db", MIGRATIONS, now=now)
    conn = db.connection
    assert db.moved_aside is None
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    conn.execute("INSERT INTO a (x, z) VALUES (1, 'one')")  # both migrations ran
    db.close()


def test_migrations_resume_where_the_file_stopped(tmp_path: Path) -> None:
    first = Migrations("test", MIGRATIONS.scripts[:1])
    db = open_database(tmp_path / "x.db", first, now=now)
    db.connection.execute("INSERT INTO a (x) VALUES (7)")
    db.close()
    db = open_database(tmp_path / "x.db", MIGRATIONS, now=now)
    assert db.connection.execute("SELECT x, z FROM a").fetchall() == [(7, None)]
    assert db.connection.execute("PRAGMA user_version").fetchone()[0] == 2
    db.close()


def test_failing_migration_leaves_the_file_untouched(tmp_path: Path) -> None:
    db = open_database(tmp_path / "x.db", Migrations("test", MIGRATIONS.scripts[:1]), now=now)
    db.close()
    broken = Migrations("test", [*MIGRATIONS.scripts, "CREATE TABLE c (q); SELECT * FROM nope"])
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        open_database(tmp_path / "x.db", broken, now=now)
    conn = sqlite3.connect(tmp_path / "x.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert tables == {"a", "b"}  # migration 2 and the half of 3 were rolled back together
    conn.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    open_database(tmp_path / "x.db", MIGRATIONS, now=now).close()
    with pytest.raises(SchemaTooNew) as info:
        open_database(tmp_path / "x.db", Migrations("test", MIGRATIONS.scripts[:1]), now=now)
    assert (info.value.found, info.value.known) == (2, 1)


def _malformed(path: Path) -> None:
    db = open_database(path, MIGRATIONS, now=now)
    with transaction(db.connection):
        db.connection.executemany(
            "INSERT INTO a (x, z) VALUES (?, ?)", [(i, "x" * 200) for i in range(2000)]
        )
    db.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    data = bytearray(path.read_bytes())
    data[3 * 4096 : 3 * 4096 + 512] = b"\xa5" * 512  # scribble over a b-tree page
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: p.write_bytes(b"this is not a database " * 100), id="not-a-db"),
        pytest.param(_malformed, id="malformed-page"),
    ],
)
def test_corrupt_file_is_moved_aside_and_replaced(
    tmp_path: Path, damage: object, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "outbox.db"
    assert callable(damage)
    damage(path)
    original = path.read_bytes()
    with caplog.at_level(logging.ERROR, logger="rtu.storage.sqlite"):
        db = open_database(path, MIGRATIONS, now=now)
    aside = tmp_path / "outbox.db.corrupt-20260329T013005Z"
    assert db.moved_aside == aside
    assert aside.read_bytes() == original
    assert db.connection.execute("SELECT COUNT(*) FROM a").fetchone()[0] == 0
    assert str(aside) in caplog.text
    assert "moved it aside" in caplog.text
    db.close()


def test_two_corrupt_files_in_one_second_are_both_kept(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    for _ in range(2):
        path.write_bytes(b"garbage" * 600)
        for suffix in ("-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        open_database(path, MIGRATIONS, now=now).close()
    names = sorted(p.name for p in tmp_path.iterdir() if "corrupt" in p.name)
    assert names == ["x.db.corrupt-20260329T013005Z", "x.db.corrupt-20260329T013005Z-2"]


def test_new_database_in_read_only_directory(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    directory.mkdir()
    with read_only(directory), pytest.raises(StorageUnavailable) as info:
        open_database(directory / "x.db", MIGRATIONS, now=now)
    assert info.value.path == directory / "x.db"
    assert "cannot open or create" in info.value.reason


def test_existing_database_in_read_only_directory(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    open_database(directory / "x.db", MIGRATIONS, now=now).close()  # creates the directory
    with read_only(directory), pytest.raises(StorageUnavailable):
        open_database(directory / "x.db", MIGRATIONS, now=now)


def test_corrupt_file_in_read_only_directory_is_unavailable(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    directory.mkdir()
    (directory / "x.db").write_bytes(b"garbage" * 600)
    with read_only(directory), pytest.raises(StorageUnavailable):
        open_database(directory / "x.db", MIGRATIONS, now=now)
    assert (directory / "x.db").read_bytes() == b"garbage" * 600


def test_full_disk_is_unavailable(tmp_path: Path) -> None:
    # max_page_count makes SQLite report SQLITE_FULL exactly as a full disk does.
    db = open_database(tmp_path / "x.db", MIGRATIONS, now=now)
    db.connection.execute("PRAGMA max_page_count = 8")
    with (
        pytest.raises(StorageUnavailable, match="disk full"),
        guarded(db.path),
        transaction(db.connection),
    ):
        db.connection.executemany("INSERT INTO b VALUES (?)", [("y" * 1000,)] * 100)
    db.close()


def test_guarded_lets_our_own_bugs_through(tmp_path: Path) -> None:
    db = open_database(tmp_path / "x.db", MIGRATIONS, now=now)
    with pytest.raises(sqlite3.OperationalError), guarded(db.path):
        db.connection.execute("SELECT nope FROM a")
    db.close()


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    db = open_database(tmp_path / "x.db", MIGRATIONS, now=now)

    def insert_then_fail() -> None:
        with transaction(db.connection):
            db.connection.execute("INSERT INTO a (x) VALUES (1)")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        insert_then_fail()
    assert db.connection.execute("SELECT COUNT(*) FROM a").fetchone()[0] == 0
    assert not db.connection.in_transaction
    db.close()


def test_readonly_open_reads_while_a_writer_holds_the_file(tmp_path: Path) -> None:
    db = open_database(tmp_path / "x.db", MIGRATIONS, now=now)
    db.connection.execute("INSERT INTO a (x) VALUES (3)")
    reader = open_readonly(tmp_path / "x.db")
    assert reader.execute("SELECT x FROM a").fetchall() == [(3,)]
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.execute("INSERT INTO a (x) VALUES (4)")
    reader.close()
    db.close()


def test_readonly_open_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StorageUnavailable):
        open_readonly(tmp_path / "missing.db")
