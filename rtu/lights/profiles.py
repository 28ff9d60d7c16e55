"""The lights' persistent state in `lights.db`: profiles, remote overrides, what was reported.

Own file, own `Migrations` (rtu.storage: one database per subsystem). Three tables:

- `profiles`: one row per installed §7.10 profile, keyed by contactor and
  profileId, with stackLevel unique per contactor (Table 16). The profile is
  kept as its canonical wire JSON (`profile_to_wire`): the one format that is
  specified, versioned by the spec and readable by a technician with sqlite3.
- `overrides`: contactors under OverrideStreetlight (§7.6) and the state each
  holds (On, Off, or for Suspend the state the lights were in). They survive a
  restart: §7.6 keeps the lights "on (or off) until you resume the schedule".
- `reported`: per contactor, the mode, lights state and power-switch failure
  the central was last told (`rtu.lights.reconcile.Reported`), so a change
  that happened while the daemon was down is reported at start, once.

**profileId is unique per contactor**, like stackLevel (the engine's
`validate_profiles` checks both per contactor). The same profile set may then be
sent to several contactors unchanged; ClearSingleStreetlightProfile with only a
profileId clears it on every contactor (errata S16: an absent contactorId means
all contactors).

**Atomicity** (§7.10.1): `install` reads the contactor's profiles, validates the
new ones against them (or against nothing with clearAllSchedules), erases and
inserts inside one `BEGIN IMMEDIATE` transaction: both happen or neither, and no
concurrent install can slip between the check and the write.

Synchronous and single-threaded like every store; `LightsStore` runs it on its
own `DatabaseThread` for the event loop.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from os3p.messages import StreetlightMode
from rtu.lights.reconcile import Reported
from rtu.schedule import Profile, profile_from_wire, profile_to_wire, validate_profiles
from rtu.storage import Database, DatabaseThread, Migrations, guarded, open_database, transaction

__all__ = ["MIGRATIONS", "LightsStore", "ProfileStore"]

MIGRATIONS = Migrations(
    "lights",
    [
        """
        CREATE TABLE profiles (
            contactor   INTEGER NOT NULL CHECK (contactor BETWEEN 1 AND 4),
            profile_id  INTEGER NOT NULL CHECK (profile_id >= 0),
            stack_level INTEGER NOT NULL CHECK (stack_level >= 0),
            wire        TEXT NOT NULL,      -- canonical §7.10.2 streetlightProfiles item
            installed   TEXT NOT NULL,      -- UTC ISO 8601
            PRIMARY KEY (contactor, profile_id),
            UNIQUE (contactor, stack_level)
        );
        CREATE TABLE overrides (
            contactor INTEGER PRIMARY KEY CHECK (contactor BETWEEN 1 AND 4),
            action    TEXT NOT NULL CHECK (action IN ('On', 'Off', 'Suspend')),
            held      INTEGER NOT NULL CHECK (held IN (0, 1)),  -- the lights state kept
            since     TEXT NOT NULL
        );
        CREATE TABLE reported (
            contactor INTEGER PRIMARY KEY CHECK (contactor BETWEEN 1 AND 4),
            mode      TEXT,                 -- StreetlightMode last notified
            lights    INTEGER,              -- 1 On / 0 Off last notified
            failed    INTEGER NOT NULL DEFAULT 0  -- PowerSwitchFailure outstanding
        );
        """,
        """
        -- Events decided but not yet known to be in the outbox: staged in the same
        -- transaction as the `reported` state they lead to, emitted, then deleted. After
        -- a crash in between they are emitted again byte for byte, so the central can
        -- recognise them (instead of a re-derived event with a new timestamp).
        CREATE TABLE staged_events (
            seq     INTEGER PRIMARY KEY AUTOINCREMENT,
            action  TEXT NOT NULL,
            payload TEXT NOT NULL       -- the OS³P payload, canonical JSON
        );
        """,
    ],
)


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _canonical(profile: Profile) -> str:
    return json.dumps(profile_to_wire(profile), sort_keys=True, separators=(",", ":"))


def _bool(value: object) -> bool | None:
    return None if value is None else bool(value)


class ProfileStore:
    """Profiles, overrides and reported state in `lights.db` (synchronous)."""

    def __init__(self, database: Database, now: Callable[[], datetime]) -> None:
        self._db = database
        self._conn = database.connection
        self._path = database.path
        self._now = now

    @classmethod
    def open(cls, path: Path, *, now: Callable[[], datetime]) -> ProfileStore:
        return cls(open_database(path, MIGRATIONS, now=now), now)

    @property
    def moved_aside(self) -> Path | None:
        return self._db.moved_aside

    def close(self) -> None:
        self._db.close()

    # -- profiles -------------------------------------------------------------

    def profiles(self) -> dict[int, tuple[Profile, ...]]:
        """Every contactor's profiles, by stackLevel."""
        with guarded(self._path):
            rows = self._conn.execute(
                "SELECT contactor, wire FROM profiles ORDER BY contactor, stack_level"
            ).fetchall()
        stacks: dict[int, list[Profile]] = {}
        for contactor, wire in rows:
            stacks.setdefault(contactor, []).append(profile_from_wire(json.loads(wire)))
        return {c: tuple(p) for c, p in stacks.items()}

    def install(
        self,
        contactor: int,
        new: Sequence[Profile],
        *,
        clear_all: bool,
        max_stack_level: int,
    ) -> None:
        """Install `new` on `contactor`, atomically; raises `InvalidProfile` and changes
        nothing if any of them may not be installed (§7.10.1, errata S19)."""
        installed = _ts(self._now())
        with guarded(self._path), transaction(self._conn):
            existing = [
                profile_from_wire(json.loads(wire))
                for (wire,) in self._conn.execute(
                    "SELECT wire FROM profiles WHERE contactor = ?", (contactor,)
                )
            ]
            validate_profiles(new, existing, max_stack_level, clear_all)
            if clear_all:
                self._conn.execute("DELETE FROM profiles WHERE contactor = ?", (contactor,))
            self._conn.executemany(
                "INSERT INTO profiles (contactor, profile_id, stack_level, wire, installed)"
                " VALUES (?, ?, ?, ?, ?)",
                [(contactor, p.profile_id, p.stack_level, _canonical(p), installed) for p in new],
            )

    def clear(
        self,
        *,
        profile_id: int | None = None,
        contactor: int | None = None,
        stack_level: int | None = None,
    ) -> int:
        """Delete the profiles matching every criterion given (errata S16); how many."""
        where = [
            f"{column} = ?"
            for column, value in (
                ("profile_id", profile_id),
                ("contactor", contactor),
                ("stack_level", stack_level),
            )
            if value is not None
        ]
        values = [v for v in (profile_id, contactor, stack_level) if v is not None]
        sql = "DELETE FROM profiles" + (" WHERE " + " AND ".join(where) if where else "")
        with guarded(self._path), transaction(self._conn):
            return self._conn.execute(sql, values).rowcount

    # -- remote overrides -----------------------------------------------------

    def overrides(self) -> dict[int, bool]:
        """Contactors under remote override -> the lights state held."""
        with guarded(self._path):
            rows = self._conn.execute("SELECT contactor, held FROM overrides").fetchall()
        return {contactor: bool(held) for contactor, held in rows}

    def set_overrides(self, action: str, held: Mapping[int, bool]) -> None:
        since = _ts(self._now())
        with guarded(self._path), transaction(self._conn):
            self._conn.executemany(
                "INSERT INTO overrides (contactor, action, held, since) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (contactor) DO UPDATE SET"
                " action = excluded.action, held = excluded.held, since = excluded.since",
                [(c, action, int(on), since) for c, on in held.items()],
            )

    def remove_overrides(self, contactors: Iterable[int]) -> None:
        with guarded(self._path), transaction(self._conn):
            self._conn.executemany(
                "DELETE FROM overrides WHERE contactor = ?", [(c,) for c in contactors]
            )

    # -- reported state -------------------------------------------------------

    def reported(self) -> dict[int, Reported]:
        with guarded(self._path):
            rows = self._conn.execute(
                "SELECT contactor, mode, lights, failed FROM reported"
            ).fetchall()
        return {
            contactor: Reported(
                mode=None if mode is None else StreetlightMode(mode),
                lights=_bool(lights),
                failed=bool(failed),
            )
            for contactor, mode, lights, failed in rows
        }

    def stage(self, states: Mapping[int, Reported], events: Sequence[tuple[str, str]]) -> list[int]:
        """Record the new reported state and the events announcing it, atomically.

        Returns the staged events' sequence numbers (to `unstage` once emitted)."""
        with guarded(self._path), transaction(self._conn):
            self._save_reported(states)
            seqs = []
            for action, payload in events:
                cursor = self._conn.execute(
                    "INSERT INTO staged_events (action, payload) VALUES (?, ?)", (action, payload)
                )
                seqs.append(int(cursor.lastrowid or 0))
        return seqs

    def staged(self) -> list[tuple[int, str, str]]:
        with guarded(self._path):
            rows = self._conn.execute(
                "SELECT seq, action, payload FROM staged_events ORDER BY seq"
            ).fetchall()
        return [(int(seq), str(action), str(payload)) for seq, action, payload in rows]

    def unstage(self, seqs: Sequence[int]) -> None:
        with guarded(self._path), transaction(self._conn):
            self._conn.executemany("DELETE FROM staged_events WHERE seq = ?", [(q,) for q in seqs])

    def save_reported(self, states: Mapping[int, Reported]) -> None:
        with guarded(self._path), transaction(self._conn):
            self._save_reported(states)

    def _save_reported(self, states: Mapping[int, Reported]) -> None:
        if states:
            self._conn.executemany(
                "INSERT INTO reported (contactor, mode, lights, failed) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (contactor) DO UPDATE SET"
                " mode = excluded.mode, lights = excluded.lights, failed = excluded.failed",
                [
                    (
                        c,
                        None if r.mode is None else str(r.mode),
                        None if r.lights is None else int(r.lights),
                        int(r.failed),
                    )
                    for c, r in states.items()
                ],
            )


class LightsStore:
    """`ProfileStore` on its own database thread: the event loop's handle."""

    def __init__(self, store: ProfileStore, thread: DatabaseThread) -> None:
        self._store = store
        self._thread = thread

    @classmethod
    async def open(cls, path: Path, *, now: Callable[[], datetime]) -> LightsStore:
        thread = DatabaseThread("lights-db")
        try:
            store = await thread.run(ProfileStore.open, path, now=now)
        except BaseException:
            thread.shutdown()
            raise
        return cls(store, thread)

    @property
    def moved_aside(self) -> Path | None:
        return self._store.moved_aside

    async def close(self) -> None:
        await self._thread.run(self._store.close)
        self._thread.shutdown()

    async def profiles(self) -> dict[int, tuple[Profile, ...]]:
        return await self._thread.run(self._store.profiles)

    async def install(
        self, contactor: int, new: Sequence[Profile], *, clear_all: bool, max_stack_level: int
    ) -> None:
        await self._thread.run(
            self._store.install,
            contactor,
            new,
            clear_all=clear_all,
            max_stack_level=max_stack_level,
        )

    async def clear(
        self,
        *,
        profile_id: int | None = None,
        contactor: int | None = None,
        stack_level: int | None = None,
    ) -> int:
        return await self._thread.run(
            self._store.clear, profile_id=profile_id, contactor=contactor, stack_level=stack_level
        )

    async def overrides(self) -> dict[int, bool]:
        return await self._thread.run(self._store.overrides)

    async def set_overrides(self, action: str, held: Mapping[int, bool]) -> None:
        await self._thread.run(self._store.set_overrides, action, dict(held))

    async def remove_overrides(self, contactors: Iterable[int]) -> None:
        await self._thread.run(self._store.remove_overrides, tuple(contactors))

    async def reported(self) -> dict[int, Reported]:
        return await self._thread.run(self._store.reported)

    async def save_reported(self, states: Mapping[int, Reported]) -> None:
        await self._thread.run(self._store.save_reported, dict(states))

    async def stage(
        self, states: Mapping[int, Reported], events: Sequence[tuple[str, str]]
    ) -> list[int]:
        return await self._thread.run(self._store.stage, dict(states), list(events))

    async def staged(self) -> list[tuple[int, str, str]]:
        return await self._thread.run(self._store.staged)

    async def unstage(self, seqs: Sequence[int]) -> None:
        await self._thread.run(self._store.unstage, list(seqs))
