"""`firmware.db`: the update's state and the notifications it still owes.

One row holds the state machine's `FirmwareState` as JSON (the pre-start
rollback check reads and writes the same row with nothing but the stdlib).
`owed` is a tiny outbox in front of the real one: a transition and the
statuses it emits are committed together, and a status leaves `owed` only after
`EventSink.emit` committed it to the daemon's outbox. A crash in between sends
it twice (the outbox is at-least-once anyway), never zero times.
`history` keeps every transition for the technician and for forensics.

Synchronous like every store: run it on a `DatabaseThread`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from rtu.firmware.state import FirmwareState, Outcome, Status
from rtu.storage import Database, Migrations, guarded, open_database, transaction

__all__ = ["MIGRATIONS", "FirmwareStore", "load_state", "save_outcome"]

MIGRATIONS = Migrations(
    "firmware",
    [
        """
        CREATE TABLE agent (
            id     INTEGER PRIMARY KEY CHECK (id = 1),
            state  TEXT NOT NULL            -- FirmwareState.to_json()
        );
        CREATE TABLE owed (
            seq        INTEGER PRIMARY KEY AUTOINCREMENT,
            status     TEXT NOT NULL,       -- §6.3 status
            request_id TEXT                 -- echoed requestId, if the request had one
        );
        CREATE TABLE history (
            seq    INTEGER PRIMARY KEY AUTOINCREMENT,
            at     TEXT NOT NULL,           -- UTC ISO 8601
            event  TEXT NOT NULL,
            phase  TEXT NOT NULL,           -- phase after the event
            detail TEXT
        );
        """,
    ],
)


def load_state(connection: sqlite3.Connection) -> FirmwareState:
    row = connection.execute("SELECT state FROM agent WHERE id = 1").fetchone()
    return FirmwareState() if row is None else FirmwareState.from_json(row[0])


def save_outcome(
    connection: sqlite3.Connection, event: str, outcome: Outcome, now: datetime
) -> None:
    """Write the new state, its owed statuses and a history line (caller's transaction)."""
    state = outcome.state
    connection.execute("INSERT OR REPLACE INTO agent (id, state) VALUES (1, ?)", (state.to_json(),))
    connection.executemany(
        "INSERT INTO owed (status, request_id) VALUES (?, ?)",
        [(status.value, request_id) for status, request_id in outcome.emit],
    )
    connection.execute(
        "INSERT INTO history (at, event, phase, detail) VALUES (?, ?, ?, ?)",
        (now.astimezone(UTC).isoformat(), event, state.phase.value, state.reason),
    )


class FirmwareStore:
    def __init__(self, database: Database) -> None:
        self._db = database
        self._conn = database.connection
        self._path = database.path

    @classmethod
    def open(cls, path: Path, *, now: Callable[[], datetime]) -> FirmwareStore:
        return cls(open_database(path, MIGRATIONS, now=now))

    @property
    def moved_aside(self) -> Path | None:
        return self._db.moved_aside

    def close(self) -> None:
        self._db.close()

    def state(self) -> FirmwareState:
        with guarded(self._path):
            return load_state(self._conn)

    def apply(self, event: str, outcome: Outcome, now: datetime) -> None:
        with guarded(self._path), transaction(self._conn):
            save_outcome(self._conn, event, outcome, now)

    def owed(self) -> list[tuple[int, Status, str | None]]:
        with guarded(self._path):
            rows = self._conn.execute(
                "SELECT seq, status, request_id FROM owed ORDER BY seq"
            ).fetchall()
        return [(seq, Status(status), request_id) for seq, status, request_id in rows]

    def settle(self, seq: int) -> None:
        """The owed status `seq` is in the daemon's outbox now."""
        with guarded(self._path), transaction(self._conn):
            self._conn.execute("DELETE FROM owed WHERE seq = ?", (seq,))

    def history(self, limit: int = 50) -> Sequence[tuple[str, str, str, str | None]]:
        with guarded(self._path):
            rows = self._conn.execute(
                "SELECT at, event, phase, detail FROM history ORDER BY seq DESC LIMIT ?", (limit,)
            ).fetchall()
        return [tuple(row) for row in reversed(rows)]
