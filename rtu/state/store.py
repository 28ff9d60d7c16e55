"""The daemon's own state: what must survive a restart besides the outbox.

- `settings`: values set by OS³P ChangeConfiguration. They override the config
  file (DESIGN.md, "Config"), so they are persisted the moment they are accepted.
- `boot_record`: the last Accepted BootNotification (its fields and the endpoint
  URL). OS³P 0.4 §3.2/§3.3: a new BootNotification is required only when a boot
  field changed (a firmware update changes `firmwareVersion`) or, by §3.1 note 2,
  when the central's URL changed; `boot_due` answers that.
- `clock`: the last known offset of our clock from the central's, so schedules run
  on corrected time after a reboot without network.
- `run_state`: whether the previous run ended cleanly. OS³P 0.4 §3.2: "if the
  reboot was the result of unexpected behaviour, the Substation must report this
  ... via a StatusNotification"; a restart the central asked for (Reset) is not
  unexpected, hence the reset-requested flag.

Other subsystems do not add tables here: each opens its own file in the data
directory with its own `Migrations` through `rtu.storage.open_database` (see
that module's docstring for why). This store's schema is `MIGRATIONS` below.

Synchronous and single-threaded like every store: run it on a `DatabaseThread`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rtu.storage import Database, Migrations, guarded, open_database, transaction

__all__ = ["MIGRATIONS", "BootRecord", "ClockOffset", "PreviousRun", "StateStore"]

MIGRATIONS = Migrations(
    "state",
    [
        """
        CREATE TABLE settings (
            key     TEXT PRIMARY KEY,
            value   TEXT NOT NULL,      -- as received in ChangeConfiguration
            changed TEXT NOT NULL       -- UTC ISO 8601
        );
        -- Single-row tables: `id = 1` is enforced so an upsert can never add a second row.
        CREATE TABLE boot_record (
            id          INTEGER PRIMARY KEY CHECK (id = 1),
            fields      TEXT NOT NULL,  -- canonical JSON of the BootNotification payload
            endpoint    TEXT NOT NULL,  -- the OS³P endpoint URL it was accepted on
            accepted_at TEXT NOT NULL
        );
        CREATE TABLE clock (
            id             INTEGER PRIMARY KEY CHECK (id = 1),
            offset_seconds REAL NOT NULL,  -- central time minus our time
            measured_at    TEXT NOT NULL
        );
        CREATE TABLE run_state (
            id                 INTEGER PRIMARY KEY CHECK (id = 1),
            running            INTEGER NOT NULL,  -- 1 from start until a clean shutdown
            started_at         TEXT NOT NULL,
            stopped_at         TEXT,
            reset_requested    INTEGER NOT NULL DEFAULT 0,
            reset_requested_at TEXT
        );
        """,
    ],
)


@dataclasses.dataclass(frozen=True, slots=True)
class BootRecord:
    fields: Mapping[str, str]
    endpoint: str
    accepted_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class ClockOffset:
    """Central time minus our wall time, as last measured."""

    offset: timedelta
    measured_at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class PreviousRun:
    """How the run before this one ended, as `mark_running` found it."""

    first_run: bool  # no previous run recorded (new or replaced state file)
    clean: bool  # it reached mark_clean_shutdown
    reset_requested: bool  # the central asked for the restart (Reset)
    started_at: datetime | None

    @property
    def unexpected(self) -> bool:
        """True when §3.2 requires a StatusNotification about the restart."""
        return not self.first_run and not self.clean and not self.reset_requested


def _ts(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: the state store keeps UTC only")
    return moment.astimezone(UTC).isoformat()


def _from_ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _canonical(fields: Mapping[str, str]) -> str:
    # Sorted keys: the comparison in boot_due must not depend on dict order.
    return json.dumps(dict(fields), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class StateStore:
    """Settings, boot record, clock offset and run state in `state.db`."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._conn = database.connection
        self._path = database.path

    @classmethod
    def open(cls, path: Path, *, now: Callable[[], datetime]) -> StateStore:
        return cls(open_database(path, MIGRATIONS, now=now))

    @property
    def moved_aside(self) -> Path | None:
        """Set when state.db was corrupt at open and replaced (settings and boot record lost)."""
        return self._db.moved_aside

    def close(self) -> None:
        self._db.close()

    # settings -------------------------------------------------------------------

    def settings(self) -> dict[str, str]:
        """Every persisted ChangeConfiguration value: applied over the config file at start."""
        with guarded(self._path):
            return dict(self._conn.execute("SELECT key, value FROM settings ORDER BY key"))

    def setting(self, key: str) -> str | None:
        with guarded(self._path):
            row = self._conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_setting(self, key: str, value: str, now: datetime) -> None:
        """Persist an accepted ChangeConfiguration before answering Accepted."""
        with guarded(self._path), transaction(self._conn):
            self._conn.execute(
                "INSERT INTO settings (key, value, changed) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value,"
                " changed = excluded.changed",
                (key, value, _ts(now)),
            )

    def delete_setting(self, key: str) -> bool:
        """Forget an override: the config file's value applies again."""
        with guarded(self._path), transaction(self._conn):
            return self._conn.execute("DELETE FROM settings WHERE key = ?", (key,)).rowcount == 1

    # boot record ----------------------------------------------------------------

    def record_boot_accepted(
        self, fields: Mapping[str, str], endpoint: str, accepted_at: datetime
    ) -> None:
        """Remember the BootNotification the central just Accepted, on which endpoint."""
        with guarded(self._path), transaction(self._conn):
            self._conn.execute(
                "INSERT OR REPLACE INTO boot_record (id, fields, endpoint, accepted_at)"
                " VALUES (1, ?, ?, ?)",
                (_canonical(fields), endpoint, _ts(accepted_at)),
            )

    def boot_record(self) -> BootRecord | None:
        with guarded(self._path):
            row = self._conn.execute(
                "SELECT fields, endpoint, accepted_at FROM boot_record WHERE id = 1"
            ).fetchone()
        if row is None:
            return None
        return BootRecord(json.loads(row[0]), row[1], _from_ts(row[2]))

    def boot_due(self, current_fields: Mapping[str, str], endpoint: str) -> bool:
        """Must the link send a BootNotification before anything else?

        Yes when no boot was ever Accepted (§3.1 first boot), when any field
        differs (§3.2, e.g. a new firmwareVersion), or when the endpoint URL
        changed (§3.1 note 2). A Pending or Rejected answer is never recorded,
        so the next connection boots again.
        """
        record = self.boot_record()
        if record is None:
            return True
        return record.endpoint != endpoint or _canonical(record.fields) != _canonical(
            current_fields
        )

    # clock ----------------------------------------------------------------------

    def save_clock_offset(self, offset: timedelta, measured_at: datetime) -> None:
        with guarded(self._path), transaction(self._conn):
            self._conn.execute(
                "INSERT OR REPLACE INTO clock (id, offset_seconds, measured_at) VALUES (1, ?, ?)",
                (offset.total_seconds(), _ts(measured_at)),
            )

    def clock_offset(self) -> ClockOffset | None:
        with guarded(self._path):
            row = self._conn.execute(
                "SELECT offset_seconds, measured_at FROM clock WHERE id = 1"
            ).fetchone()
        if row is None:
            return None
        return ClockOffset(timedelta(seconds=row[0]), _from_ts(row[1]))

    # run state ------------------------------------------------------------------

    def mark_running(self, now: datetime) -> PreviousRun:
        """Record that this run started; report how the previous one ended.

        Call once at start, before anything else is emitted. If the previous
        run never reached `mark_clean_shutdown` (killed, crashed, power cut,
        watchdog) and no Reset was requested, `PreviousRun.unexpected` is True.
        """
        with guarded(self._path), transaction(self._conn):
            row = self._conn.execute(
                "SELECT running, reset_requested, started_at FROM run_state WHERE id = 1"
            ).fetchone()
            self._conn.execute(
                "INSERT OR REPLACE INTO run_state (id, running, started_at, stopped_at,"
                " reset_requested, reset_requested_at) VALUES (1, 1, ?, NULL, 0, NULL)",
                (_ts(now),),
            )
        if row is None:
            return PreviousRun(first_run=True, clean=True, reset_requested=False, started_at=None)
        return PreviousRun(
            first_run=False,
            clean=not row[0],
            reset_requested=bool(row[1]),
            started_at=_from_ts(row[2]),
        )

    def mark_reset_requested(self, now: datetime) -> None:
        """The central sent Reset: the coming restart is expected, however it ends."""
        with guarded(self._path), transaction(self._conn):
            self._conn.execute(
                "UPDATE run_state SET reset_requested = 1, reset_requested_at = ? WHERE id = 1",
                (_ts(now),),
            )

    def mark_clean_shutdown(self, now: datetime) -> None:
        """Last write of an orderly stop (SIGTERM from systemd, Reset)."""
        with guarded(self._path), transaction(self._conn):
            self._conn.execute(
                "UPDATE run_state SET running = 0, stopped_at = ? WHERE id = 1", (_ts(now),)
            )
