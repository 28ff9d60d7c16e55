"""Opening the daemon's SQLite databases: durable settings, checks, migrations.

Every database the daemon writes is opened here, so they all get the same
guarantees:

- WAL with `synchronous=FULL`: a transaction that returned from COMMIT survives
  a power cut (WAL's default `NORMAL` may lose the last commits, and the outbox
  promises that an event counts as emitted once committed).
- explicit transactions (`transaction(conn)`, `BEGIN IMMEDIATE`): the connection
  runs in autocommit mode, so nothing is ever left half-open by the sqlite3
  module's implicit BEGIN.
- `PRAGMA quick_check` at open. A file that is not a database or is malformed is
  renamed to `<name>.corrupt-<UTC timestamp>` (with its -wal/-shm files) and a
  fresh database is created; `Database.moved_aside` tells the caller, so the
  daemon can report it. Losing a queue is bad; a station that never starts
  again over it is worse, and the renamed file stays for forensics.
- a read-only or full disk (or any I/O failure) raises `StorageUnavailable` with
  the path and reason, at open and at any later statement run under `guarded()`.
- versioned migrations: `PRAGMA user_version` counts the scripts already applied;
  the missing ones run in order inside one transaction.

Schema ownership: one database file per subsystem, each with its own
`Migrations`. The outbox lives in `outbox.db`, the daemon's state in `state.db`;
a subsystem that needs tables (schedule profiles, meter history) opens its own
file in the data directory with its own list, through this module. Separate
files keep `user_version` meaningful, let each store run on its own thread, and
confine a corrupt file's loss to one subsystem; nothing needs a transaction
spanning two subsystems.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from rtu.storage.errors import SchemaTooNew, StorageUnavailable

__all__ = ["Database", "Migrations", "guarded", "open_database", "open_readonly", "transaction"]

log = logging.getLogger(__name__)

# SQLite primary result codes (sqlite3.h). Extended codes carry the primary one in
# their low byte, so `code & 0xFF` classifies e.g. SQLITE_IOERR_FSYNC as SQLITE_IOERR.
_SQLITE_PERM = 3
_SQLITE_NOMEM = 7
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26

_UNAVAILABLE = {
    _SQLITE_PERM: "permission denied",
    _SQLITE_NOMEM: "out of memory",
    _SQLITE_READONLY: "read-only (file system or permissions)",
    _SQLITE_IOERR: "I/O error",
    _SQLITE_FULL: "disk full",
    _SQLITE_CANTOPEN: "cannot open or create the file (missing or read-only directory?)",
}
_CORRUPT = {_SQLITE_CORRUPT, _SQLITE_NOTADB}


@dataclasses.dataclass(frozen=True, slots=True)
class Migrations:
    """The schema history of one database file: SQL scripts, oldest first.

    Append only: a released script is never edited, because files in the field
    already ran it. `name` appears in log lines.
    """

    name: str
    scripts: Sequence[str]


@dataclasses.dataclass(slots=True)
class Database:
    """An open, checked, migrated database."""

    connection: sqlite3.Connection
    path: Path
    # Where a corrupt file was moved before this fresh one was created; None if it was fine.
    moved_aside: Path | None

    def close(self) -> None:
        self.connection.close()


class _Corrupt(Exception):
    """The file is not a usable database (internal: triggers moving it aside)."""


def _primary_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


@contextlib.contextmanager
def guarded(path: Path) -> Iterator[None]:
    """Turn sqlite3 errors that mean "this disk cannot be used" into StorageUnavailable.

    Everything else (a constraint violation, an SQL syntax error) is a bug in
    our code and propagates unchanged. Corruption found after open is reported
    as unavailable too: the next start's quick_check will move the file aside.
    """
    try:
        yield
    except sqlite3.DatabaseError as exc:
        code = _primary_code(exc)
        if code in _UNAVAILABLE:
            raise StorageUnavailable(path, f"{_UNAVAILABLE[code]}: {exc}") from exc
        if code in _CORRUPT:
            raise StorageUnavailable(path, f"database corrupt: {exc}") from exc
        raise


@contextlib.contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One explicit write transaction: committed on success, rolled back on any error.

    `BEGIN IMMEDIATE` takes the write lock up front, so a concurrent writer
    (the `rtu` CLI) makes us wait for the busy timeout rather than fail midway.
    """
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        # Some errors (SQLITE_FULL, SQLITE_IOERR) already rolled the transaction back.
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def open_database(
    path: Path,
    migrations: Migrations,
    *,
    now: Callable[[], datetime],
    busy_timeout: float = 5.0,
) -> Database:
    """Open (creating if needed) the database at `path` and bring its schema up to date.

    Must be called on the thread that will use the connection (`DatabaseThread`).
    `now` stamps the name of a corrupt file moved aside.
    Raises StorageUnavailable (disk unusable) or SchemaTooNew (downgrade).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageUnavailable(path, f"cannot create directory: {exc}") from exc
    moved_aside = None
    try:
        connection = _connect_checked(path, busy_timeout)
    except _Corrupt as exc:
        moved_aside = _move_aside(path, now())
        log.error(  # noqa: TRY400 - the reason is in the message; a traceback adds nothing
            "%s database %s is unreadable (%s): moved it aside to %s and created a fresh one",
            migrations.name,
            path,
            exc,
            moved_aside,
        )
        try:
            connection = _connect_checked(path, busy_timeout)
        except _Corrupt as again:
            raise StorageUnavailable(path, f"fresh database is unreadable: {again}") from again
    try:
        _migrate(connection, path, migrations)
    except BaseException:
        connection.close()
        raise
    return Database(connection, path, moved_aside)


def open_readonly(path: Path, *, busy_timeout: float = 5.0) -> sqlite3.Connection:
    """Open an existing database for reading only, without checks or migrations.

    For the `rtu status` command, which reads the daemon's files while it runs
    and must never move or migrate them.
    """
    try:
        connection = sqlite3.connect(
            f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=busy_timeout
        )
    except sqlite3.Error as exc:
        raise StorageUnavailable(path, f"cannot open for reading: {exc}") from exc
    return connection


def _connect_checked(path: Path, busy_timeout: float) -> sqlite3.Connection:
    with guarded(path):
        connection = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
    try:
        _configure_and_check(connection, path)
    except BaseException:
        connection.close()
        raise
    return connection


def _configure_and_check(connection: sqlite3.Connection, path: Path) -> None:
    try:
        with guarded(path):
            mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            connection.execute("PRAGMA synchronous=FULL")
            rows = connection.execute("PRAGMA quick_check").fetchall()
    except StorageUnavailable as exc:
        cause = exc.__cause__
        if isinstance(cause, sqlite3.DatabaseError) and _primary_code(cause) in _CORRUPT:
            raise _Corrupt(str(cause)) from exc
        raise
    if mode != "wal":
        raise StorageUnavailable(path, f"cannot switch to WAL (journal_mode is {mode})")
    if rows != [("ok",)]:
        raise _Corrupt("quick_check: " + "; ".join(str(row[0]) for row in rows[:5]))


def _move_aside(path: Path, now: datetime) -> Path:
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    counter = 1
    while target.exists():  # two corrupt files in one second: keep both
        counter += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{counter}")
    try:
        # The WAL and shared-memory files belong to the damaged database: a fresh
        # file must not replay them, and whoever investigates wants them.
        for suffix in ("-wal", "-shm"):
            companion = path.with_name(path.name + suffix)
            if companion.exists():
                companion.rename(target.with_name(target.name + suffix))
        path.rename(target)
    except OSError as exc:
        raise StorageUnavailable(path, f"corrupt, and cannot move it aside: {exc}") from exc
    return target


def _migrate(connection: sqlite3.Connection, path: Path, migrations: Migrations) -> None:
    known = len(migrations.scripts)
    with guarded(path), transaction(connection):
        version = int(connection.execute("PRAGMA user_version").fetchone()[0])
        if version > known:
            raise SchemaTooNew(path, version, known)
        for number in range(version, known):
            for statement in _statements(migrations.scripts[number]):
                connection.execute(statement)
            log.info("%s database %s: applied migration %d", migrations.name, path, number + 1)
        # PRAGMA takes no parameters; `known` is an int we computed.
        connection.execute(f"PRAGMA user_version = {known:d}")


def _statements(script: str) -> Iterator[str]:
    """Split a script into statements (executescript would COMMIT our transaction).

    `sqlite3.complete_statement` knows about semicolons inside strings and
    trigger bodies, so accumulating up to each complete statement is safe.
    """
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \t\n;"):
                yield buffer
            buffer = ""
    if buffer.strip(" \t\n;"):
        raise ValueError(f"incomplete SQL statement in migration: {buffer!r}")
