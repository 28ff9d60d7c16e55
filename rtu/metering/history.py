"""The meter-value history (`metering.db`): what GetFile `MeterValueHistory` serves.

A small synchronous store (STYLE.md practice 8) run on its own
`DatabaseThread` by the sampler. One row per sampled value, as it went into a
MeterValues (or, for a gap filled from a load profile, as it would have):

    samples(ts, source, measurand, value, unit, location, context)

`ts` is UTC ISO 8601 with microseconds and a fixed width, so text order is
time order and range queries use the index. Values are the decimal strings
that went on the wire, never floats. Retention: `purge(before)` deletes
whole days; the sampler calls it once an hour with now − retention.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from rtu.metering.model import Sample
from rtu.metering.sampling import render_value
from rtu.storage import (
    Database,
    DatabaseThread,
    Migrations,
    guarded,
    open_database,
    transaction,
)

__all__ = ["MIGRATIONS", "History", "HistoryRow", "HistoryStore"]

MIGRATIONS = Migrations(
    "metering",
    [
        """
        CREATE TABLE samples (
            id        INTEGER PRIMARY KEY,
            ts        TEXT NOT NULL,
            source    TEXT NOT NULL,
            measurand TEXT NOT NULL,
            value     TEXT NOT NULL,
            unit      TEXT,
            location  TEXT,
            context   TEXT NOT NULL
        );
        CREATE INDEX samples_ts ON samples (ts);
        CREATE INDEX samples_source_context_ts ON samples (source, context, ts);
        """,
    ],
)


def _ts(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("history timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _from_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclasses.dataclass(frozen=True, slots=True)
class HistoryRow:
    timestamp: datetime
    source: str
    measurand: str
    value: str
    unit: str | None
    location: str | None
    context: str


class HistoryStore:
    def __init__(self, database: Database) -> None:
        self._db = database
        self._conn = database.connection
        self.path = database.path

    @classmethod
    def open(cls, path: Path, *, now: Callable[[], datetime]) -> HistoryStore:
        return cls(open_database(path, MIGRATIONS, now=now))

    @property
    def moved_aside(self) -> Path | None:
        return self._db.moved_aside

    def close(self) -> None:
        self._db.close()

    def append(
        self, source: str, context: str, timestamp: datetime, samples: Iterable[Sample]
    ) -> int:
        """Store one reading's samples under `timestamp`; returns how many."""
        rows = [
            (
                _ts(timestamp),
                source,
                sample.measurand,
                render_value(sample.value),
                sample.unit,
                sample.location,
                context,
            )
            for sample in samples
        ]
        with guarded(self.path), transaction(self._conn):
            self._conn.executemany(
                "INSERT INTO samples (ts, source, measurand, value, unit, location, context)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    def between(self, start: datetime, stop: datetime) -> Iterator[HistoryRow]:
        """Rows with start <= ts <= stop, oldest first (a generator: files may be large)."""
        with guarded(self.path):
            cursor = self._conn.execute(
                "SELECT ts, source, measurand, value, unit, location, context FROM samples"
                " WHERE ts >= ? AND ts <= ? ORDER BY ts, id",
                (_ts(start), _ts(stop)),
            )
            for ts, source, measurand, value, unit, location, context in cursor:
                yield HistoryRow(_from_ts(ts), source, measurand, value, unit, location, context)

    def rows_between(self, start: datetime, stop: datetime) -> list[HistoryRow]:
        return list(self.between(start, stop))

    def last_time(self, source: str, context: str) -> datetime | None:
        """The newest timestamp stored for `source` in `context` (gap detection at start)."""
        with guarded(self.path):
            row = self._conn.execute(
                "SELECT MAX(ts) FROM samples WHERE source = ? AND context = ?", (source, context)
            ).fetchone()
        return _from_ts(row[0]) if row and row[0] else None

    def purge(self, before: datetime) -> int:
        """Delete rows older than `before`; returns how many went."""
        with guarded(self.path), transaction(self._conn):
            cursor = self._conn.execute("DELETE FROM samples WHERE ts < ?", (_ts(before),))
        return cursor.rowcount

    def stats(self) -> dict[str, object]:
        """Row count and time span, for `rtu status` and the diagnostics bundle."""
        with guarded(self.path):
            count, first, last = self._conn.execute(
                "SELECT COUNT(*), MIN(ts), MAX(ts) FROM samples"
            ).fetchone()
        return {"rows": int(count), "oldest": first, "newest": last}


class History:
    """The asyncio face of `HistoryStore`: every call on the store's own thread."""

    def __init__(self, store: HistoryStore, thread: DatabaseThread) -> None:
        self._store = store
        self._thread = thread

    @classmethod
    async def open(cls, path: Path, *, now: Callable[[], datetime]) -> History:
        thread = DatabaseThread("metering-db")
        try:
            store = await thread.run(HistoryStore.open, path, now=now)
        except BaseException:
            thread.shutdown()
            raise
        return cls(store, thread)

    @property
    def path(self) -> Path:
        return self._store.path

    @property
    def moved_aside(self) -> Path | None:
        return self._store.moved_aside

    async def append(
        self, source: str, context: str, timestamp: datetime, samples: Iterable[Sample]
    ) -> int:
        return await self._thread.run(self._store.append, source, context, timestamp, samples)

    async def rows_between(self, start: datetime, stop: datetime) -> list[HistoryRow]:
        return await self._thread.run(self._store.rows_between, start, stop)

    async def last_time(self, source: str, context: str) -> datetime | None:
        return await self._thread.run(self._store.last_time, source, context)

    async def purge(self, before: datetime) -> int:
        return await self._thread.run(self._store.purge, before)

    async def stats(self) -> dict[str, object]:
        return await self._thread.run(self._store.stats)

    async def close(self) -> None:
        await self._thread.run(self._store.close)
        self._thread.shutdown()
