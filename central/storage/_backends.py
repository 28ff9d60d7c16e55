"""The two database connections behind `SqlStore`: sqlite3 and psycopg 3.

Everything that differs between SQLite and PostgreSQL lives here, and nothing
else: connecting, the parameter style, column types in DDL, how a timestamp or
boolean is passed and read back, the transaction statements, and translating
driver exceptions into `central.storage.errors` (the one boundary where that
happens: every statement runs inside `transaction()`).

Timestamps are `TIMESTAMPTZ` in PostgreSQL; in SQLite they are TEXT in one
fixed-width UTC form (`2026-11-23T16:42:39.123456Z`), so text order is time
order and range predicates work the same on both.
"""

from __future__ import annotations

import abc
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from central.storage.errors import BackendError, BackendMissing, StoreClosed

if TYPE_CHECKING:
    import psycopg

__all__ = ["Connection", "PostgresConnection", "SqliteConnection"]

Row = tuple[Any, ...]


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        # Our bug, not the peer's: every time in this system is aware (STYLE §4).
        raise ValueError(f"naive datetime {value!r} passed to the store")
    return value.astimezone(UTC)


def ts_text(value: datetime) -> str:
    """A datetime as RFC 3339 text in UTC: SQLite's stored form, and JSON for either.

    The same text as strftime("%Y-%m-%dT%H:%M:%S.%fZ"), at a fifth of the cost.
    """
    return _utc(value).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


class Connection(abc.ABC):
    """One open database connection, used from a single thread."""

    # DDL type names substituted into the migrations' {id}, {ts}, {bool}.
    ddl_types: ClassVar[dict[str, str]]
    # A SELECT of (text, ts) rows out of one parameter: a JSON object {text: ts_text}.
    # A batch as one statement: with executemany, sqlite3 hands the GIL back and forth
    # once per row, which under load costs the event loop more than the rows do.
    json_pairs: ClassVar[str]

    @abc.abstractmethod
    def transaction(
        self, operation: str, *, write: bool, flush: bool = True
    ) -> AbstractContextManager[None]:
        """Context manager: commit on success, roll back on error, translate errors.

        `flush=False` commits without waiting for the disk: the commit survives a
        crash of our process, not of the machine (SQLite WAL with synchronous=NORMAL;
        PostgreSQL synchronous_commit=off). Only for what is worthless after a power
        failure anyway (a heartbeat's last_seen); the next flushed commit takes it along.
        """

    @abc.abstractmethod
    def query(self, sql: str, params: Sequence[object] = ()) -> list[Row]: ...

    @abc.abstractmethod
    def run(self, sql: str, params: Sequence[object] = ()) -> int:
        """Execute one statement; the number of rows it changed."""

    @abc.abstractmethod
    def run_many(self, sql: str, params: Sequence[Sequence[object]]) -> int:
        """Execute one statement per parameter row; the total of rows changed."""

    @abc.abstractmethod
    def lock_schema(self) -> None:
        """Serialise concurrent migrators (called first in the migration transaction)."""

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def ts(self, value: datetime) -> object:
        """A datetime as this backend stores it."""

    @abc.abstractmethod
    def from_ts(self, value: Any) -> datetime: ...

    def opt_ts(self, value: datetime | None) -> object:
        return None if value is None else self.ts(value)

    def from_opt_ts(self, value: Any) -> datetime | None:
        return None if value is None else self.from_ts(value)


def _create_private(path: str) -> None:
    """Create a new database file readable by its owner only: it holds password
    hashes. SQLite gives the -wal and -shm files the database file's mode."""
    if path == ":memory:" or path.startswith("file:"):
        return
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class SqliteConnection(Connection):
    """sqlite3 in WAL mode with `synchronous=FULL`: a commit survives power loss.

    The connection is in autocommit mode (`isolation_level=None`) and every
    transaction is an explicit BEGIN IMMEDIATE (writes: takes the write lock at
    once, so it cannot fail half-way on SQLITE_BUSY) or BEGIN (reads: one
    consistent snapshot for a multi-statement query).
    """

    ddl_types: ClassVar[dict[str, str]] = {
        "id": "INTEGER PRIMARY KEY",
        "ts": "TEXT",
        "bool": "INTEGER",
    }
    json_pairs: ClassVar[str] = "SELECT key, value FROM json_each(?)"

    def __init__(self, path: str) -> None:
        try:
            _create_private(path)
            self._db: sqlite3.Connection | None = sqlite3.connect(path, isolation_level=None)
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.execute("PRAGMA busy_timeout=10000")
            except sqlite3.Error:
                self._db.close()
                raise
        except (sqlite3.Error, OSError) as exc:
            raise BackendError(f"open {path}", str(exc)) from exc

    def _conn(self, operation: str) -> sqlite3.Connection:
        if self._db is None:
            raise StoreClosed(operation)
        return self._db

    @contextmanager
    def transaction(self, operation: str, *, write: bool, flush: bool = True) -> Iterator[None]:
        db = self._conn(operation)
        if not flush:
            with self._unflushed(operation, db):
                yield
            return
        try:
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise BackendError(operation, str(exc)) from exc

    @contextmanager
    def _unflushed(self, operation: str, db: sqlite3.Connection) -> Iterator[None]:
        # synchronous is per connection and may change between transactions.
        db.execute("PRAGMA synchronous=NORMAL")
        try:
            with self.transaction(operation, write=True):
                yield
        finally:
            db.execute("PRAGMA synchronous=FULL")

    def query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        return self._conn("query").execute(sql, params).fetchall()

    def run(self, sql: str, params: Sequence[object] = ()) -> int:
        return self._conn("run").execute(sql, params).rowcount

    def run_many(self, sql: str, params: Sequence[Sequence[object]]) -> int:
        return self._conn("run_many").executemany(sql, params).rowcount

    def lock_schema(self) -> None:
        """BEGIN IMMEDIATE already holds the database's write lock."""

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def ts(self, value: datetime) -> object:
        return ts_text(value)

    def from_ts(self, value: Any) -> datetime:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")


class PostgresConnection(Connection):
    """One psycopg 3 connection in autocommit mode; every unit of work is an
    explicit `conn.transaction()` (BEGIN ... COMMIT).

    A connection found broken (server restarted, network cut) at the start of a
    transaction is replaced; a failure in the middle raises `BackendError` and
    nothing of that transaction is committed.
    """

    ddl_types: ClassVar[dict[str, str]] = {
        "id": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "ts": "TIMESTAMPTZ",
        "bool": "BOOLEAN",
    }
    json_pairs: ClassVar[str] = "SELECT key, value::timestamptz FROM jsonb_each_text(?::jsonb)"
    # Any constant shared by every release: serialises migrations of one database.
    _MIGRATION_LOCK = 0x05C3_0001

    def __init__(self, url: str) -> None:
        try:
            import psycopg  # noqa: F401 (checked here, used in the methods)
        except ImportError as exc:
            raise BackendMissing("postgresql", "postgres") from exc
        self._url = url
        self._db: psycopg.Connection[Row] | None = None
        self._db = self._connect("open")

    def _connect(self, operation: str) -> psycopg.Connection[Row]:
        import psycopg

        try:
            db = psycopg.connect(self._url, autocommit=True)
        except psycopg.Error as exc:
            raise BackendError(operation, str(exc)) from exc
        try:
            # Only for readability in psql; values are converted to UTC on read anyway.
            db.execute("SET TIME ZONE 'UTC'")
        except psycopg.Error as exc:
            db.close()
            raise BackendError(operation, str(exc)) from exc
        return db

    def _conn(self, operation: str) -> psycopg.Connection[Row]:
        if self._db is None:
            raise StoreClosed(operation)
        if self._db.broken or self._db.closed:
            self._db.close()
            self._db = self._connect(operation)
        return self._db

    @contextmanager
    def transaction(self, operation: str, *, write: bool, flush: bool = True) -> Iterator[None]:
        import psycopg

        db = self._conn(operation)
        try:
            with db.transaction():
                if not flush:
                    db.execute("SET LOCAL synchronous_commit = off")
                yield
        except psycopg.Error as exc:
            raise BackendError(operation, str(exc)) from exc

    def _live(self) -> psycopg.Connection[Row]:
        assert self._db is not None, "statements run only inside transaction()"
        return self._db

    def query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        with self._live().cursor() as cur:
            cur.execute(sql.replace("?", "%s"), params)
            return cur.fetchall()

    def run(self, sql: str, params: Sequence[object] = ()) -> int:
        with self._live().cursor() as cur:
            cur.execute(sql.replace("?", "%s"), params)
            return cur.rowcount

    def run_many(self, sql: str, params: Sequence[Sequence[object]]) -> int:
        with self._live().cursor() as cur:
            cur.executemany(sql.replace("?", "%s"), params)
            return cur.rowcount

    def lock_schema(self) -> None:
        self.query("SELECT pg_advisory_xact_lock(?)", (self._MIGRATION_LOCK,))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def ts(self, value: datetime) -> object:
        return _utc(value)

    def from_ts(self, value: Any) -> datetime:
        assert isinstance(value, datetime)
        return value.astimezone(UTC)
