"""The durable outbox: station-initiated CALLs waiting for their CALLRESULT.

OS³P 0.4 §6.7 and §6.8: the station guarantees delivery of
StreetlightModeStatusNotification and StreetlightStatusNotification; "only when
the backend did send a response, the station considers the event delivered".
We extend that to StatusNotification, FirmwareStatusNotification,
GetFileStatusNotification, and queue MeterValues here too (DESIGN.md, "Delivery
guarantees").

Theory of operation
-------------------
- `append` commits (WAL, synchronous=FULL) before it returns: an event exists
  once `append` has returned, and not before. The payload is stored as the JSON
  text that goes on the wire, so every re-send is byte-identical and the central
  can deduplicate on it.
- Entries leave the table in exactly three ways, none of them silent:
  `ack` (a CALLRESULT arrived), `failed` N times (CALLERRORs: moved to
  `dead_letter`, which `rtu status` shows), or eviction of MeterValues when the
  queue is over `max_entries` (counted in `counters`, logged). Other actions are
  never evicted, even past the bound: the bound protects the disk from a
  month-long outage of meter readings, not from a handful of events.
- `peek` returns the *due prefix* of the queue: entries in sequence order,
  stopping at the first one still waiting out a CALLERROR backoff. FIFO is the
  contract (the central stores events in arrival order; "lights On" must not
  arrive after "lights Off"), so an entry in backoff holds back those behind it
  until it is due again or dead-lettered.
- Timeouts and lost connections are not the entry's fault and are not recorded
  here at all: the entry simply stays at the head and is sent again.

This class is synchronous and not thread-safe: it runs on one `DatabaseThread`
(see `rtu.outbox.pump.Outbox`). Time is passed in by the caller.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rtu.storage import (
    Database,
    Migrations,
    guarded,
    open_database,
    open_readonly,
    transaction,
)

__all__ = [
    "METER_VALUES",
    "DeadLetter",
    "DeadRow",
    "Entry",
    "FailOutcome",
    "HeldRow",
    "OutboxStatus",
    "OutboxStore",
    "encode_payload",
    "read_status",
]

log = logging.getLogger(__name__)

METER_VALUES = "MeterValues"  # the one action that may be evicted when the queue is full

MIGRATIONS = Migrations(
    "outbox",
    [
        """
        -- AUTOINCREMENT: a sequence number is never reused, even after the queue
        -- drained, so a late ack can never hit a newer entry.
        CREATE TABLE outbox (
            seq        INTEGER PRIMARY KEY AUTOINCREMENT,
            action     TEXT NOT NULL,
            payload    TEXT NOT NULL,      -- JSON text exactly as sent
            created    TEXT NOT NULL,      -- UTC, fixed-width ISO 8601 (sorts as text)
            attempts   INTEGER NOT NULL DEFAULT 0,  -- CALLERRORs received so far
            not_before TEXT,               -- NULL: due now; else UTC like `created`
            last_error TEXT
        );
        CREATE INDEX outbox_action_seq ON outbox (action, seq);
        -- earliest_retry runs after every send: without it, a scan of the backlog.
        CREATE INDEX outbox_not_before ON outbox (not_before) WHERE not_before IS NOT NULL;
        CREATE TABLE dead_letter (
            seq         INTEGER PRIMARY KEY,
            action      TEXT NOT NULL,
            payload     TEXT NOT NULL,
            created     TEXT NOT NULL,
            attempts    INTEGER NOT NULL,
            code        TEXT NOT NULL,
            description TEXT NOT NULL,
            dead_since  TEXT NOT NULL
        );
        CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO counters (name, value) VALUES ('evicted_meter_values', 0);
        """,
    ],
)


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """One queued CALL. `payload` is the JSON text to put on the wire verbatim."""

    seq: int
    action: str
    payload: str
    created: datetime
    attempts: int
    not_before: datetime | None


@dataclasses.dataclass(frozen=True, slots=True)
class DeadLetter:
    """An entry the central refused `attempts` times; kept for the technician."""

    seq: int
    action: str
    payload: str
    created: datetime
    attempts: int
    code: str
    description: str
    dead_since: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class OutboxStatus:
    """What `rtu status` and the systemd STATUS= line show about the queue."""

    depth: int
    oldest: datetime | None
    dead_letters: int
    evicted_meter_values: int

    def summary(self, now: datetime) -> str:
        """One line for `rtu status` and STATUS=, e.g. "outbox 3 queued (oldest 2m05s)"."""
        text = f"outbox {self.depth} queued"
        if self.oldest is not None:
            age = max(0, int((now - self.oldest).total_seconds()))
            hours, rest = divmod(age, 3600)
            text += (
                f" (oldest {hours}h{rest // 60:02d}m)"
                if hours
                else f" (oldest {rest // 60}m{rest % 60:02d}s)"
            )
        if self.dead_letters:
            text += f", {self.dead_letters} dead letter" + ("s" if self.dead_letters > 1 else "")
        if self.evicted_meter_values:
            text += f", {self.evicted_meter_values} MeterValues evicted"
        return text


class FailOutcome(enum.Enum):
    """What `failed` did with the entry."""

    RETRY = "retry"  # stays at its place in the queue, due again at `not_before`
    DEAD_LETTERED = "dead_lettered"  # moved to `dead_letter`
    UNKNOWN = "unknown"  # no such entry (already acked, evicted or dead-lettered)


# A held entry as `take_over` stores it: action, payload text, created, attempts,
# not_before, last_error.
HeldRow = tuple[str, str, datetime, int, datetime | None, str | None]
# A held dead letter: (action, payload, created, attempts), code, description, dead since.
DeadRow = tuple[tuple[str, str, datetime, int], str, str, datetime]


def encode_payload(payload: Mapping[str, Any]) -> str:
    """The wire form of a payload: compact JSON, keys in the caller's order, no NaN."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _ts(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: the outbox stores UTC only")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _from_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


class OutboxStore:
    """The outbox table and its rules; see the module docstring."""

    def __init__(
        self,
        database: Database,
        *,
        max_entries: int = 100_000,
        dead_letter_after: int = 5,
        retry_base: timedelta = timedelta(seconds=5),
        retry_cap: timedelta = timedelta(minutes=5),
    ) -> None:
        if max_entries < 1 or dead_letter_after < 1:
            raise ValueError("max_entries and dead_letter_after must be at least 1")
        if retry_base <= timedelta(0) or retry_cap < retry_base:
            raise ValueError("need 0 < retry_base <= retry_cap")
        self._db = database
        self._conn = database.connection
        self._path = database.path
        self._max_entries = max_entries
        self._dead_letter_after = dead_letter_after
        self._retry_base = retry_base
        self._retry_cap = retry_cap
        # Kept in memory because COUNT(*) scans the table, and this store is the
        # only writer of its file (the CLI opens it read-only).
        with guarded(self._path):
            self._depth = int(self._conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        now: Callable[[], datetime],
        max_entries: int = 100_000,
        dead_letter_after: int = 5,
        retry_base: timedelta = timedelta(seconds=5),
        retry_cap: timedelta = timedelta(minutes=5),
    ) -> OutboxStore:
        """Open (or create) the outbox file; see `open_database` for what can go wrong."""
        return cls(
            open_database(path, MIGRATIONS, now=now),
            max_entries=max_entries,
            dead_letter_after=dead_letter_after,
            retry_base=retry_base,
            retry_cap=retry_cap,
        )

    @property
    def moved_aside(self) -> Path | None:
        """Where a corrupt outbox file went at open (its events are lost to the queue)."""
        return self._db.moved_aside

    def close(self) -> None:
        self._db.close()

    def append(self, action: str, payload: Mapping[str, Any], created: datetime) -> int:
        """Queue a CALL; returns its sequence number once the commit is durable.

        When the queue is over `max_entries`, the oldest MeterValues give way in
        the same transaction (possibly this very entry, if it is the only
        MeterValues left: its seq is still returned).
        """
        text = encode_payload(payload)
        with guarded(self._path), transaction(self._conn):
            cursor = self._conn.execute(
                "INSERT INTO outbox (action, payload, created) VALUES (?, ?, ?)",
                (action, text, _ts(created)),
            )
            seq = cursor.lastrowid
            assert seq is not None  # an INSERT into a rowid table always sets it
            excess = self._depth + 1 - self._max_entries
            evicted = self._evict_meter_values(excess) if excess > 0 else 0
        self._depth += 1 - evicted
        return seq

    def _evict_meter_values(self, count: int) -> int:
        victims = [
            row[0]
            for row in self._conn.execute(
                "SELECT seq FROM outbox WHERE action = ? ORDER BY seq LIMIT ?",
                (METER_VALUES, count),
            )
        ]
        if not victims:
            return 0
        self._conn.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in victims])
        self._conn.execute(
            "UPDATE counters SET value = value + ? WHERE name = 'evicted_meter_values'",
            (len(victims),),
        )
        log.warning(
            "outbox over its bound of %d entries: evicted %d oldest MeterValues (seq %d..%d)",
            self._max_entries,
            len(victims),
            victims[0],
            victims[-1],
        )
        return len(victims)

    def peek(self, limit: int, now: datetime, after_seq: int | None = None) -> list[Entry]:
        """The oldest entries (after `after_seq`) that are due, in sequence order.

        Stops at the first entry whose backoff has not expired: FIFO means it
        holds back everything behind it (module docstring).
        """
        with guarded(self._path):
            rows = self._conn.execute(
                "SELECT seq, action, payload, created, attempts, not_before FROM outbox"
                " WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq if after_seq is not None else 0, limit),
            ).fetchall()
        due_limit = _ts(now)
        entries = []
        for seq, action, payload, created, attempts, not_before in rows:
            if not_before is not None and not_before > due_limit:
                break
            entries.append(
                Entry(
                    seq,
                    action,
                    payload,
                    _from_ts(created),
                    attempts,
                    None if not_before is None else _from_ts(not_before),
                )
            )
        return entries

    def earliest_retry(self, now: datetime) -> datetime | None:
        """When the next entry in backoff becomes due (None: nothing is waiting)."""
        with guarded(self._path):
            row = self._conn.execute(
                "SELECT MIN(not_before) FROM outbox WHERE not_before > ?", (_ts(now),)
            ).fetchone()
        return None if row[0] is None else _from_ts(row[0])

    def ack(self, seq: int) -> bool:
        """The CALLRESULT arrived: the entry is delivered. False if it was already gone.

        Committed without its own fsync (synchronous=NORMAL for this one
        transaction): the next `append` or `failed` fsyncs the WAL, this commit
        included. A power cut before that loses the ack, never the entry, so the
        event is sent once more, which at-least-once delivery allows and the
        central deduplicates. It is what lets a backlog drain faster than the
        disk can fsync.
        """
        with guarded(self._path):
            self._conn.execute("PRAGMA synchronous=NORMAL")
            try:
                with transaction(self._conn):
                    deleted = self._conn.execute(
                        "DELETE FROM outbox WHERE seq = ?", (seq,)
                    ).rowcount
            finally:
                self._conn.execute("PRAGMA synchronous=FULL")
        self._depth -= deleted
        return deleted == 1

    def failed(self, seq: int, code: str, description: str, now: datetime) -> FailOutcome:
        """The central answered with a CALLERROR: back off, or dead-letter after N.

        The delay doubles per attempt from `retry_base` up to `retry_cap`. It is
        not jittered: only a station's own retries follow it, one entry at a time.
        """
        with guarded(self._path), transaction(self._conn):
            row = self._conn.execute(
                "SELECT attempts, action FROM outbox WHERE seq = ?", (seq,)
            ).fetchone()
            if row is None:
                return FailOutcome.UNKNOWN
            attempts, action = int(row[0]) + 1, str(row[1])
            if attempts >= self._dead_letter_after:
                self._conn.execute(
                    "INSERT INTO dead_letter (seq, action, payload, created, attempts, code,"
                    " description, dead_since) SELECT seq, action, payload, created, ?, ?, ?, ?"
                    " FROM outbox WHERE seq = ?",
                    (attempts, code, description, _ts(now), seq),
                )
                self._conn.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
                outcome = FailOutcome.DEAD_LETTERED
            else:
                delay = min(self._retry_cap, self._retry_base * 2 ** (attempts - 1))
                self._conn.execute(
                    "UPDATE outbox SET attempts = ?, not_before = ?, last_error = ? WHERE seq = ?",
                    (attempts, _ts(now + delay), f"{code}: {description}", seq),
                )
                outcome = FailOutcome.RETRY
        if outcome is FailOutcome.DEAD_LETTERED:
            self._depth -= 1
            log.error(
                "outbox entry %d (%s) refused %d times (%s: %s): moved to the dead letters",
                seq,
                action,
                attempts,
                code,
                description,
            )
        return outcome

    def take_over(
        self,
        held: Sequence[HeldRow],
        dead: Sequence[DeadRow],
        acked: Sequence[int],
        evicted: int,
    ) -> list[int]:
        """Move what waited in memory during a disk fault into the store, in one transaction.

        `held` are appended in order (with their CALLERROR attempts and backoff),
        `dead` go to `dead_letter`, `acked` seqs (delivered while their DELETE
        could not be written) are deleted, `evicted` MeterValues are counted.
        Returns the new seqs of `held`. It is also the probe of the disk: it always
        writes (the counter row), so a success means the disk takes writes again.
        """
        seqs: list[int] = []
        with guarded(self._path), transaction(self._conn):
            deleted = 0
            for seq in acked:
                deleted += self._conn.execute("DELETE FROM outbox WHERE seq = ?", (seq,)).rowcount
            for action, payload, created, attempts, not_before, last_error in held:
                cursor = self._conn.execute(
                    "INSERT INTO outbox (action, payload, created, attempts, not_before,"
                    " last_error) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        action,
                        payload,
                        _ts(created),
                        attempts,
                        None if not_before is None else _ts(not_before),
                        last_error,
                    ),
                )
                assert cursor.lastrowid is not None
                seqs.append(cursor.lastrowid)
            for (action, payload, created, attempts), code, description, since in dead:
                # Through `outbox`, so the dead letter gets a seq from AUTOINCREMENT that
                # no later entry can reuse (dead_letter.seq is its primary key).
                cursor = self._conn.execute(
                    "INSERT INTO outbox (action, payload, created) VALUES (?, ?, ?)",
                    (action, payload, _ts(created)),
                )
                self._conn.execute(
                    "INSERT INTO dead_letter (seq, action, payload, created, attempts, code,"
                    " description, dead_since) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        cursor.lastrowid,
                        action,
                        payload,
                        _ts(created),
                        attempts,
                        code,
                        description,
                        _ts(since),
                    ),
                )
                self._conn.execute("DELETE FROM outbox WHERE seq = ?", (cursor.lastrowid,))
            self._conn.execute(
                "UPDATE counters SET value = value + ? WHERE name = 'evicted_meter_values'",
                (evicted,),
            )
        self._depth += len(seqs) - deleted
        return seqs

    def depth(self) -> int:
        return self._depth

    def oldest(self) -> datetime | None:
        """Creation time of the oldest queued entry: how far behind the central is."""
        with guarded(self._path):
            return _oldest(self._conn)

    def dead_letters(self) -> list[DeadLetter]:
        with guarded(self._path):
            return _dead_letters(self._conn)

    def status(self) -> OutboxStatus:
        with guarded(self._path):
            return _status(self._conn, self._depth)


def read_status(path: Path) -> tuple[OutboxStatus, list[DeadLetter]]:
    """For `rtu status`: read the daemon's outbox file without touching it."""
    connection = open_readonly(path)
    try:
        with guarded(path):
            depth = int(connection.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
            return _status(connection, depth), _dead_letters(connection)
    finally:
        connection.close()


def _oldest(connection: sqlite3.Connection) -> datetime | None:
    row = connection.execute("SELECT created FROM outbox ORDER BY seq LIMIT 1").fetchone()
    return None if row is None else _from_ts(row[0])


def _dead_letters(connection: sqlite3.Connection) -> list[DeadLetter]:
    return [
        DeadLetter(seq, action, payload, _from_ts(created), attempts, code, desc, _from_ts(since))
        for seq, action, payload, created, attempts, code, desc, since in connection.execute(
            "SELECT seq, action, payload, created, attempts, code, description, dead_since"
            " FROM dead_letter ORDER BY seq"
        )
    ]


def _status(connection: Any, depth: int) -> OutboxStatus:
    dead = int(connection.execute("SELECT COUNT(*) FROM dead_letter").fetchone()[0])
    evicted = int(
        connection.execute(
            "SELECT value FROM counters WHERE name = 'evicted_meter_values'"
        ).fetchone()[0]
    )
    return OutboxStatus(depth, _oldest(connection), dead, evicted)
