"""The central's storage: one synchronous `Store` interface, one SQL implementation
over SQLite or PostgreSQL (`open_store(url)`).

Theory of operation
- Every public method is one explicit transaction; a write has committed when
  the method returns, so the server may answer the station (which then drops
  the message from its outbox). On any database failure the method raises
  `BackendError` and nothing of it is committed: the server must not answer,
  and the station re-sends.
- Each message also moves the station's `last_seen` forward, in the same
  transaction (one upsert on a one-row-per-station table: cheap).
- At-least-once events (streetlight status and mode, StatusNotification with a
  timestamp, meter values) have a UNIQUE key on their identity and are inserted
  with ON CONFLICT DO NOTHING; the methods report whether the event was new.
  Identities: StreetlightStatus (contactorId, status, timestamp); StreetlightMode
  (contactorId or "all", mode, timestamp); sampled value (timestamp, measurand,
  location, context); StatusNotification: SHA-256 of its normalised payload when
  it has a timestamp. A StatusNotification *without* timestamp, a Firmware- or
  GetFileStatusNotification has no identity that tells a re-send from a genuine
  repeat (a fault raised, resolved, raised again looks byte-identical), so each
  one is stored; a duplicate row of those is harmless, a lost repeat is not.
- Open faults follow the rule in `central.storage.faults`, applied in the
  transaction that stores the StatusNotification, only when it was new.
- A store is used by one thread at a time (sqlite3 connections are
  single-threaded); from asyncio use `AsyncStore`, which owns that thread.
- Time is never read here: every write carries the time it happened.

Time ranges are half-open: `since <= t < until`.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from central.storage import passwords
from central.storage._backends import (
    Connection,
    PostgresConnection,
    Row,
    SqliteConnection,
    ts_text,
)
from central.storage._migrations import MIGRATIONS, SCHEMA_VERSION_DDL
from central.storage.commands import CommandStoreMixin
from central.storage.errors import InvalidURL, SchemaTooNew, StationExists, UnknownStation
from central.storage.faults import MV_FAULT_CODES, effect_of
from central.storage.model import (
    BootNotification,
    BootPolicy,
    Event,
    EventKind,
    FirmwareStatus,
    GetFileStatus,
    LightState,
    Liveness,
    MeterSample,
    MeterValue,
    ModeState,
    OpenFault,
    Station,
    StationState,
    StatusNotification,
    StreetlightMode,
    StreetlightStatus,
    UploadedFile,
)

__all__ = ["CONTACTOR_IDS", "DEFAULT_HEARTBEAT_INTERVAL", "SqlStore", "Store", "open_store"]

DEFAULT_HEARTBEAT_INTERVAL = 300
# §6.7 / §6.8 schemas: contactorId is 1..4; a station-wide mode applies to each.
CONTACTOR_IDS: tuple[int, ...] = (1, 2, 3, 4)
_ALL_CONTACTORS = 0


class Store(Protocol):
    """The central's storage. Synchronous; one thread at a time (see `AsyncStore`)."""

    def close(self) -> None: ...
    def schema_version(self) -> int: ...

    # -- station registry
    def add_station(
        self,
        station_id: str,
        *,
        created_at: datetime,
        password: str | None = None,
        cert_identity: str | None = None,
        policy: BootPolicy = BootPolicy.ACCEPTED,
        heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL,
        enabled: bool = True,
        remember: str | None = None,
    ) -> Station: ...
    def remove_station(self, station_id: str) -> None: ...
    def get_station(self, station_id: str) -> Station | None: ...
    def list_stations(self) -> list[Station]: ...
    def set_policy(
        self, station_id: str, policy: BootPolicy, *, heartbeat_interval: int | None = None
    ) -> Station: ...
    def set_enabled(self, station_id: str, enabled: bool) -> Station: ...
    def set_password(self, station_id: str, password: str | None) -> None: ...
    def set_cert_identity(self, station_id: str, cert_identity: str | None) -> Station: ...
    def verify_password(
        self, station_id: str, password: str, *, remember: str | None = None
    ) -> bool: ...
    def remembered_credentials(self) -> dict[str, str]: ...

    # -- liveness and connection state
    def record_heartbeat(self, station_id: str, *, received_at: datetime) -> None: ...
    def record_heartbeats(self, seen: Mapping[str, datetime]) -> None: ...
    def record_connected(self, station_id: str, connection_id: str, *, at: datetime) -> None: ...
    def record_disconnected(self, station_id: str, connection_id: str, *, at: datetime) -> bool: ...
    def mark_all_disconnected(self, *, at: datetime) -> int: ...
    def get_liveness(self, station_id: str) -> Liveness | None: ...
    def list_liveness(self) -> list[Liveness]: ...

    # -- station-initiated messages (OS³P 0.4 §6)
    def record_boot(
        self,
        station_id: str,
        boot: BootNotification,
        *,
        answered: BootPolicy,
        received_at: datetime,
    ) -> None: ...
    def record_status(
        self, station_id: str, notification: StatusNotification, *, received_at: datetime
    ) -> bool: ...
    def record_streetlight_status(
        self, station_id: str, event: StreetlightStatus, *, received_at: datetime
    ) -> bool: ...
    def record_streetlight_mode(
        self, station_id: str, event: StreetlightMode, *, received_at: datetime
    ) -> bool: ...
    def record_meter_values(
        self, station_id: str, meter_values: Sequence[MeterValue], *, received_at: datetime
    ) -> int: ...
    def record_firmware_status(
        self, station_id: str, notification: FirmwareStatus, *, received_at: datetime
    ) -> None: ...
    def record_get_file_status(
        self, station_id: str, notification: GetFileStatus, *, received_at: datetime
    ) -> None: ...
    def record_uploaded_file(self, upload: UploadedFile) -> None: ...

    # -- queries
    def open_faults(self, station_id: str | None = None) -> list[OpenFault]: ...
    def current_lights(self, station_id: str) -> dict[int, LightState]: ...
    def current_modes(self, station_id: str) -> dict[int, ModeState]: ...
    def station_states(
        self, station_ids: Collection[str] | None = None
    ) -> dict[str, StationState]: ...
    def meter_values(
        self,
        station_id: str,
        *,
        since: datetime,
        until: datetime,
        measurand: str | None = None,
        limit: int | None = None,
    ) -> list[MeterSample]: ...
    def uploaded_files(
        self, station_id: str, request_id: str | None = None
    ) -> list[UploadedFile]: ...
    def last_boot(self, station_id: str) -> BootNotification | None: ...
    def boot_answers(self) -> dict[str, BootPolicy]: ...
    def events(
        self,
        station_id: str,
        *,
        since: datetime,
        until: datetime,
        kinds: Collection[EventKind] | None = None,
        limit: int = 1000,
    ) -> list[Event]: ...


def open_store(url: str) -> SqlStore:
    """Open (creating and migrating as needed) the store named by `url`.

    - `sqlite:///var/lib/central/central.db`: an absolute path after `sqlite://`;
      `sqlite://central.db` is relative to the working directory.
    - `postgresql://user@host:port/dbname` (any libpq URL; `postgres://` too).
    """
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        path = url.removeprefix("sqlite://")
        if path == url or not path:
            raise InvalidURL(url, "expected sqlite://<path>, e.g. sqlite:///var/lib/central.db")
        return SqlStore(SqliteConnection(path))
    if scheme in ("postgresql", "postgres"):
        return SqlStore(PostgresConnection(url))
    raise InvalidURL(url, "the scheme must be sqlite or postgresql")


_STATION_COLUMNS = (
    "station_id, password_hash, cert_identity, boot_policy, heartbeat_interval, created_at, enabled"
)


def _status_key(notification: StatusNotification) -> str | None:
    if notification.timestamp is None:
        return None
    canonical = json.dumps(notification.to_payload(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def modes_in_force(
    latest: Mapping[int, tuple[str, datetime, datetime]],
) -> dict[int, ModeState]:
    """Per contactor 1..4, the later (by station timestamp) of the latest mode naming it
    and the latest naming all of them (§6.7 Table 7); on a tie the contactor's own wins.

    `latest` maps a contactor id (0: all of them) to (mode, timestamp, received_at).
    """
    station_wide = latest.get(_ALL_CONTACTORS)
    modes: dict[int, ModeState] = {}
    for contactor in CONTACTOR_IDS:
        own = latest.get(contactor)
        if own is not None and (station_wide is None or own[1] >= station_wide[1]):
            modes[contactor] = ModeState(contactor, own[0], own[1], False, own[2])
        elif station_wide is not None:
            modes[contactor] = ModeState(
                contactor, station_wide[0], station_wide[1], True, station_wide[2]
            )
    return modes


class SqlStore(CommandStoreMixin):
    """`Store` over one `Connection`; the SQL is shared by both backends."""

    def __init__(self, db: Connection) -> None:
        self._db = db
        try:
            self._migrate()
        except BaseException:
            db.close()
            raise

    # -- lifecycle

    def _migrate(self) -> None:
        db = self._db
        with db.transaction("migrate", write=True):
            db.lock_schema()
            db.run(SCHEMA_VERSION_DDL.format(**db.ddl_types))
            current = self._version()
            if current > len(MIGRATIONS):
                raise SchemaTooNew(current, len(MIGRATIONS))
            for migration in MIGRATIONS[current:]:
                for statement in migration.statements:
                    db.run(statement.format(**db.ddl_types))
                db.run(
                    "INSERT INTO schema_version (version, description) VALUES (?, ?)",
                    (migration.version, migration.description),
                )

    def _version(self) -> int:
        ((version,),) = self._db.query("SELECT COALESCE(MAX(version), 0) FROM schema_version")
        return int(version)

    def close(self) -> None:
        self._db.close()

    def schema_version(self) -> int:
        with self._db.transaction("schema_version", write=False):
            return self._version()

    # -- station registry

    def _station(self, row: Row) -> Station:
        station_id, password_hash, cert_identity, policy, interval, created_at, enabled = row
        return Station(
            station_id=station_id,
            has_password=password_hash is not None,
            cert_identity=cert_identity,
            policy=BootPolicy(policy),
            heartbeat_interval=int(interval),
            created_at=self._db.from_ts(created_at),
            enabled=bool(enabled),
        )

    def _get_station(self, station_id: str) -> Station | None:
        rows = self._db.query(
            f"SELECT {_STATION_COLUMNS} FROM station WHERE station_id = ?", (station_id,)
        )
        return self._station(rows[0]) if rows else None

    def _require_station(self, station_id: str) -> Station:
        station = self._get_station(station_id)
        if station is None:
            raise UnknownStation(station_id)
        return station

    def add_station(
        self,
        station_id: str,
        *,
        created_at: datetime,
        password: str | None = None,
        cert_identity: str | None = None,
        policy: BootPolicy = BootPolicy.ACCEPTED,
        heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL,
        enabled: bool = True,
        remember: str | None = None,
    ) -> Station:
        """`remember`: the password's `passwords.credential_digest`, so that even the
        station's first connection costs no scrypt check."""
        # Hashing takes tens of milliseconds: done before the write lock is taken.
        password_hash = None if password is None else passwords.hash_password(password)
        with self._db.transaction("add_station", write=True):
            added = self._db.run(
                f"INSERT INTO station ({_STATION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (
                    station_id,
                    password_hash,
                    cert_identity,
                    str(policy),
                    heartbeat_interval,
                    self._db.ts(created_at),
                    enabled,
                ),
            )
            if not added:
                raise StationExists(station_id)
            if password_hash is not None and remember is not None:
                self.remember_credential(station_id, password_hash, remember)
            return self._require_station(station_id)

    def remove_station(self, station_id: str) -> None:
        """Delete the registry entry (credentials, policy); the history stays."""
        with self._db.transaction("remove_station", write=True):
            if not self._db.run("DELETE FROM station WHERE station_id = ?", (station_id,)):
                raise UnknownStation(station_id)

    def get_station(self, station_id: str) -> Station | None:
        with self._db.transaction("get_station", write=False):
            return self._get_station(station_id)

    def list_stations(self) -> list[Station]:
        with self._db.transaction("list_stations", write=False):
            rows = self._db.query(f"SELECT {_STATION_COLUMNS} FROM station ORDER BY station_id")
            return [self._station(row) for row in rows]

    def _update_station(
        self, operation: str, station_id: str, sets: str, params: tuple[object, ...]
    ) -> Station:
        with self._db.transaction(operation, write=True):
            if not self._db.run(
                f"UPDATE station SET {sets} WHERE station_id = ?", (*params, station_id)
            ):
                raise UnknownStation(station_id)
            return self._require_station(station_id)

    def set_policy(
        self, station_id: str, policy: BootPolicy, *, heartbeat_interval: int | None = None
    ) -> Station:
        return self._update_station(
            "set_policy",
            station_id,
            "boot_policy = ?, heartbeat_interval = COALESCE(?, heartbeat_interval)",
            (str(policy), heartbeat_interval),
        )

    def set_enabled(self, station_id: str, enabled: bool) -> Station:
        return self._update_station("set_enabled", station_id, "enabled = ?", (enabled,))

    def set_cert_identity(self, station_id: str, cert_identity: str | None) -> Station:
        return self._update_station(
            "set_cert_identity", station_id, "cert_identity = ?", (cert_identity,)
        )

    def set_password(self, station_id: str, password: str | None) -> None:
        password_hash = None if password is None else passwords.hash_password(password)
        self._update_station("set_password", station_id, "password_hash = ?", (password_hash,))

    def verify_password(
        self, station_id: str, password: str, *, remember: str | None = None
    ) -> bool:
        """True only for a registered, enabled station whose password matches.

        An unknown or disabled station, or one without a password, still pays
        for one scrypt so the answer time does not reveal which case it was.
        On a match, `remember` (a `passwords.credential_digest`) is stored bound
        to the hash it matched, for `remembered_credentials`.
        """
        with self._db.transaction("verify_password", write=False):
            rows = self._db.query(
                "SELECT password_hash, enabled FROM station WHERE station_id = ?", (station_id,)
            )
        usable = bool(rows) and rows[0][0] is not None and bool(rows[0][1])
        encoded = rows[0][0] if usable else passwords.DUMMY_HASH
        matches = passwords.verify_password(password, encoded)
        if usable and matches and remember is not None:
            with self._db.transaction("remember_credential", write=True):
                self.remember_credential(station_id, encoded, remember)
        return usable and matches

    def remember_credential(self, station_id: str, password_hash: str, digest: str) -> None:
        """Remember `digest` for the password behind `password_hash` (inside the caller's
        write transaction; `remembered_credentials` drops it once the hash changes)."""
        self._db.run(
            "INSERT INTO station_credential (station_id, password_hash, digest)"
            " VALUES (?, ?, ?) ON CONFLICT (station_id) DO UPDATE SET"
            " password_hash = excluded.password_hash, digest = excluded.digest",
            (station_id, password_hash, digest),
        )

    def remembered_credentials(self) -> dict[str, str]:
        """Digests of passwords that passed scrypt, for enabled stations whose password
        is still the one they were checked against (station id → digest)."""
        with self._db.transaction("remembered_credentials", write=False):
            rows = self._db.query(
                "SELECT c.station_id, c.digest FROM station_credential c"
                " JOIN station s ON s.station_id = c.station_id"
                " WHERE s.password_hash = c.password_hash AND s.enabled"
            )
        return {str(station_id): str(digest) for station_id, digest in rows}

    # -- liveness and connection state

    # Monotonic: a late-processed message never moves last_seen backwards.
    _NEWER_SEEN = (
        " ON CONFLICT (station_id) DO UPDATE SET last_seen = excluded.last_seen"
        " WHERE station_liveness.last_seen IS NULL"
        " OR station_liveness.last_seen < excluded.last_seen"
    )
    _TOUCH = "INSERT INTO station_liveness (station_id, last_seen) VALUES (?, ?)" + _NEWER_SEEN

    def _touch(self, station_id: str, seen_at: datetime) -> None:
        self._db.run(self._TOUCH, (station_id, self._db.ts(seen_at)))

    def record_heartbeat(self, station_id: str, *, received_at: datetime) -> None:
        self.record_heartbeats({station_id: received_at})

    def record_heartbeats(self, seen: Mapping[str, datetime]) -> None:
        """Several stations' heartbeats in one transaction (group commit, see central.liveness).

        Not flushed to disk: a power failure may lose the last moment of last_seen,
        which no one could use after the outage; a crash of the central loses nothing.
        """
        pairs = json.dumps({station_id: ts_text(at) for station_id, at in seen.items()})
        with self._db.transaction("record_heartbeats", write=True, flush=False):
            self._db.run(
                "INSERT INTO station_liveness (station_id, last_seen)"
                f" SELECT * FROM ({self._db.json_pairs}) AS seen WHERE true"  # WHERE: upsert syntax
                + self._NEWER_SEEN,
                (pairs,),
            )

    def record_connected(self, station_id: str, connection_id: str, *, at: datetime) -> None:
        """A connection was accepted; it replaces any earlier one of the station."""
        with self._db.transaction("record_connected", write=True):
            self._db.run(
                "INSERT INTO station_liveness (station_id, connection_id, connected_since)"
                " VALUES (?, ?, ?) ON CONFLICT (station_id) DO UPDATE SET"
                " connection_id = excluded.connection_id,"
                " connected_since = excluded.connected_since, disconnected_at = NULL",
                (station_id, connection_id, self._db.ts(at)),
            )

    def record_disconnected(self, station_id: str, connection_id: str, *, at: datetime) -> bool:
        """The connection `connection_id` closed. Ignored (False) when a newer connection
        of the station has replaced it since: the old half-open socket closing late
        must not mark the live station disconnected."""
        with self._db.transaction("record_disconnected", write=True):
            return bool(
                self._db.run(
                    "UPDATE station_liveness SET disconnected_at = ?"
                    " WHERE station_id = ? AND connection_id = ? AND disconnected_at IS NULL",
                    (self._db.ts(at), station_id, connection_id),
                )
            )

    def mark_all_disconnected(self, *, at: datetime) -> int:
        """At server start: no connection of an earlier process is alive any more."""
        with self._db.transaction("mark_all_disconnected", write=True):
            return self._db.run(
                "UPDATE station_liveness SET disconnected_at = ?"
                " WHERE connected_since IS NOT NULL AND disconnected_at IS NULL",
                (self._db.ts(at),),
            )

    _LIVENESS_COLUMNS = "station_id, last_seen, connection_id, connected_since, disconnected_at"

    def _liveness(self, row: Row) -> Liveness:
        station_id, last_seen, connection_id, since, until = row
        return Liveness(
            station_id=station_id,
            last_seen=self._db.from_opt_ts(last_seen),
            connection_id=connection_id,
            connected_since=self._db.from_opt_ts(since),
            disconnected_at=self._db.from_opt_ts(until),
        )

    def get_liveness(self, station_id: str) -> Liveness | None:
        with self._db.transaction("get_liveness", write=False):
            rows = self._db.query(
                f"SELECT {self._LIVENESS_COLUMNS} FROM station_liveness WHERE station_id = ?",
                (station_id,),
            )
        return self._liveness(rows[0]) if rows else None

    def list_liveness(self) -> list[Liveness]:
        """Every station that ever sent a message or connected, by station id."""
        with self._db.transaction("list_liveness", write=False):
            rows = self._db.query(
                f"SELECT {self._LIVENESS_COLUMNS} FROM station_liveness ORDER BY station_id"
            )
        return [self._liveness(row) for row in rows]

    # -- station-initiated messages

    def record_boot(
        self,
        station_id: str,
        boot: BootNotification,
        *,
        answered: BootPolicy,
        received_at: datetime,
    ) -> None:
        with self._db.transaction("record_boot", write=True):
            self._touch(station_id, received_at)
            self._db.run(
                "INSERT INTO boot_notification (station_id, vendor, model, station_number,"
                " serial_number, firmware_version, iccid, imsi, answered_status, received_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    station_id,
                    boot.vendor,
                    boot.model,
                    boot.station_number,
                    boot.serial_number,
                    boot.firmware_version,
                    boot.iccid,
                    boot.imsi,
                    str(answered),
                    self._db.ts(received_at),
                ),
            )

    def record_status(
        self, station_id: str, notification: StatusNotification, *, received_at: datetime
    ) -> bool:
        """Store a StatusNotification and update the open faults; False for a re-send."""
        db = self._db
        occurred_at = notification.timestamp or received_at
        with db.transaction("record_status", write=True):
            self._touch(station_id, received_at)
            new = db.run(
                "INSERT INTO status_notification (station_id, status, error_code, info,"
                " timestamp, vendor_id, vendor_error_code, test, event_key, occurred_at,"
                " received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (
                    station_id,
                    notification.status,
                    notification.error_code,
                    notification.info,
                    db.opt_ts(notification.timestamp),
                    notification.vendor_id,
                    notification.vendor_error_code,
                    notification.test,
                    _status_key(notification),
                    db.ts(occurred_at),
                    db.ts(received_at),
                ),
            )
            if not new:
                return False
            effect = effect_of(notification)
            if effect.raises is not None:
                db.run(
                    "INSERT INTO open_fault (station_id, error_code, vendor_id, vendor_error_code,"
                    " info, raised_at, last_raised_at, received_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (station_id, error_code, vendor_id, vendor_error_code)"
                    " DO UPDATE SET info = excluded.info,"
                    " last_raised_at = excluded.last_raised_at, received_at = excluded.received_at",
                    (
                        station_id,
                        *effect.raises,
                        notification.info,
                        db.ts(occurred_at),
                        db.ts(occurred_at),
                        db.ts(received_at),
                    ),
                )
            for error_code in sorted(effect.resolves):
                db.run(
                    "DELETE FROM open_fault WHERE station_id = ? AND error_code = ?",
                    (station_id, error_code),
                )
            if effect.resolves_all_but_mv:
                kept = sorted(MV_FAULT_CODES)
                db.run(
                    "DELETE FROM open_fault WHERE station_id = ?"
                    f" AND error_code NOT IN ({', '.join('?' * len(kept))})",
                    (station_id, *kept),
                )
            return True

    def record_streetlight_status(
        self, station_id: str, event: StreetlightStatus, *, received_at: datetime
    ) -> bool:
        """Store a §6.8 event once; False when it was already stored (a re-send)."""
        row = (
            station_id,
            event.contactor_id,
            event.status,
            self._db.ts(event.timestamp),
            event.unexpected,
            self._db.ts(received_at),
        )
        with self._db.transaction("record_streetlight_status", write=True):
            self._touch(station_id, received_at)
            if not self._db.run(
                "INSERT INTO streetlight_status (station_id, contactor_id, status, timestamp,"
                " unexpected, received_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                row,
            ):
                return False
            self._db.run(
                "INSERT INTO streetlight_status_latest (station_id, contactor_id, status,"
                " timestamp, unexpected, received_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (station_id, contactor_id) DO UPDATE SET status = excluded.status,"
                " timestamp = excluded.timestamp, unexpected = excluded.unexpected,"
                " received_at = excluded.received_at"
                " WHERE streetlight_status_latest.timestamp <= excluded.timestamp",
                row,
            )
            return True

    def record_streetlight_mode(
        self, station_id: str, event: StreetlightMode, *, received_at: datetime
    ) -> bool:
        """Store a §6.7 event once; False when it was already stored (a re-send)."""
        contactor = _ALL_CONTACTORS if event.contactor_id is None else event.contactor_id
        row = (
            station_id,
            contactor,
            event.mode,
            self._db.ts(event.timestamp),
            self._db.ts(received_at),
        )
        with self._db.transaction("record_streetlight_mode", write=True):
            self._touch(station_id, received_at)
            if not self._db.run(
                "INSERT INTO streetlight_mode (station_id, contactor_id, mode, timestamp,"
                " received_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                row,
            ):
                return False
            self._db.run(
                "INSERT INTO streetlight_mode_latest (station_id, contactor_id, mode, timestamp,"
                " received_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (station_id, contactor_id) DO UPDATE SET mode = excluded.mode,"
                " timestamp = excluded.timestamp, received_at = excluded.received_at"
                " WHERE streetlight_mode_latest.timestamp <= excluded.timestamp",
                row,
            )
            return True

    def record_meter_values(
        self, station_id: str, meter_values: Sequence[MeterValue], *, received_at: datetime
    ) -> int:
        """Store a whole MeterValues message in one transaction; the number of sampled
        values that were new (a re-sent message stores nothing and returns 0)."""
        db = self._db
        received = db.ts(received_at)
        rows = [
            (
                station_id,
                timestamp,
                sample.measurand,
                sample.location,
                sample.context,
                sample.value,
                sample.unit,
                sample.format,
                received,
            )
            for meter_value in meter_values
            for timestamp in (db.ts(meter_value.timestamp),)
            for sample in meter_value.sampled_values
        ]
        with db.transaction("record_meter_values", write=True):
            self._touch(station_id, received_at)
            if not rows:
                return 0
            # executemany: psycopg sends the rows in pipeline mode, one prepared
            # statement, one round trip; measured against multi-row VALUES (whose
            # long statements psycopg does not cache) and unnest() arrays, it cost
            # the least client CPU and wall time (bench/central_storage.py).
            return db.run_many(
                "INSERT INTO meter_value (station_id, timestamp, measurand, location, context,"
                " value, unit, format, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                rows,
            )

    def _record_file_status(
        self,
        table: str,
        station_id: str,
        status: str,
        request_id: str | None,
        received_at: datetime,
    ) -> None:
        with self._db.transaction(f"record {table}", write=True):
            self._touch(station_id, received_at)
            self._db.run(
                f"INSERT INTO {table} (station_id, status, request_id, received_at)"
                " VALUES (?, ?, ?, ?)",
                (station_id, status, request_id, self._db.ts(received_at)),
            )

    def record_firmware_status(
        self, station_id: str, notification: FirmwareStatus, *, received_at: datetime
    ) -> None:
        self._record_file_status(
            "firmware_status", station_id, notification.status, notification.request_id, received_at
        )

    def record_get_file_status(
        self, station_id: str, notification: GetFileStatus, *, received_at: datetime
    ) -> None:
        self._record_file_status(
            "get_file_status", station_id, notification.status, notification.request_id, received_at
        )

    def record_uploaded_file(self, upload: UploadedFile) -> None:
        with self._db.transaction("record_uploaded_file", write=True):
            self._db.run(
                "INSERT INTO uploaded_file (station_id, request_id, file_name, stored_path, size,"
                " sha256, uploaded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    upload.station_id,
                    upload.request_id,
                    upload.file_name,
                    upload.stored_path,
                    upload.size,
                    upload.sha256,
                    self._db.ts(upload.uploaded_at),
                ),
            )

    # -- queries

    def open_faults(self, station_id: str | None = None) -> list[OpenFault]:
        """Open faults of one station, or of all stations when `station_id` is None."""
        sql = (
            "SELECT station_id, error_code, vendor_id, vendor_error_code, info, raised_at,"
            " last_raised_at, received_at FROM open_fault"
        )
        params: tuple[object, ...] = ()
        if station_id is not None:
            sql += " WHERE station_id = ?"
            params = (station_id,)
        sql += " ORDER BY station_id, raised_at, error_code, vendor_id, vendor_error_code"
        db = self._db
        with db.transaction("open_faults", write=False):
            rows = db.query(sql, params)
        return [
            OpenFault(
                station_id=row[0],
                error_code=row[1],
                vendor_id=row[2],
                vendor_error_code=row[3],
                info=row[4],
                raised_at=db.from_ts(row[5]),
                last_raised_at=db.from_ts(row[6]),
                received_at=db.from_ts(row[7]),
            )
            for row in rows
        ]

    # The *_latest tables (migration 4) keep, per contactor, the latest event by the
    # station's timestamp; on a tie the one stored last, which the upserts above get
    # with `<=` because a new row is stored after every row already there.

    def current_lights(self, station_id: str) -> dict[int, LightState]:
        """Per contactor, the latest StreetlightStatusNotification."""
        return self.station_states([station_id])[station_id].lights

    def current_modes(self, station_id: str) -> dict[int, ModeState]:
        """Per contactor 1..4, the mode in force (see `modes_in_force`)."""
        return self.station_states([station_id])[station_id].modes

    def station_states(self, station_ids: Collection[str] | None = None) -> dict[str, StationState]:
        """Last boot, lights and modes of these stations (None: all), three queries per
        500 stations, in one snapshot.

        Every station asked for is in the result, with empty parts if it never
        reported; with None, every station that ever reported any of them.
        """
        db = self._db
        asked = None if station_ids is None else tuple(station_ids)
        chunks: list[tuple[str, ...]] = (
            [()] if asked is None else [asked[i : i + 500] for i in range(0, len(asked), 500)]
        )
        boots: list[Row] = []
        lights: list[Row] = []
        modes: list[Row] = []
        with db.transaction("station_states", write=False):
            for chunk in chunks:
                where = (
                    "" if asked is None else f" WHERE station_id IN ({', '.join('?' * len(chunk))})"
                )
                boots += db.query(
                    "SELECT b.station_id, b.vendor, b.model, b.station_number, b.serial_number,"
                    " b.firmware_version, b.iccid, b.imsi FROM boot_notification b JOIN ("
                    " SELECT station_id, MAX(id) AS id FROM boot_notification"
                    f"{where} GROUP BY station_id) latest ON b.id = latest.id",
                    chunk,
                )
                lights += db.query(
                    "SELECT station_id, contactor_id, status, timestamp, unexpected, received_at"
                    f" FROM streetlight_status_latest{where}",
                    chunk,
                )
                modes += db.query(
                    "SELECT station_id, contactor_id, mode, timestamp, received_at"
                    f" FROM streetlight_mode_latest{where}",
                    chunk,
                )
        states: dict[str, StationState] = {station_id: StationState() for station_id in asked or ()}
        for station_id, *fields in boots:
            states.setdefault(station_id, StationState()).boot = BootNotification(*fields)
        for station_id, contactor, status, timestamp, unexpected, received_at in lights:
            states.setdefault(station_id, StationState()).lights[int(contactor)] = LightState(
                contactor_id=int(contactor),
                status=status,
                timestamp=db.from_ts(timestamp),
                unexpected=None if unexpected is None else bool(unexpected),
                received_at=db.from_ts(received_at),
            )
        latest_modes: dict[str, dict[int, tuple[str, datetime, datetime]]] = {}
        for station_id, contactor, mode, timestamp, received_at in modes:
            latest_modes.setdefault(station_id, {})[int(contactor)] = (
                mode,
                db.from_ts(timestamp),
                db.from_ts(received_at),
            )
        for station_id, latest in latest_modes.items():
            states.setdefault(station_id, StationState()).modes = modes_in_force(latest)
        return states

    def meter_values(
        self,
        station_id: str,
        *,
        since: datetime,
        until: datetime,
        measurand: str | None = None,
        limit: int | None = None,
    ) -> list[MeterSample]:
        """Sampled values with `since <= timestamp < until`, oldest first."""
        db = self._db
        sql = (
            "SELECT timestamp, measurand, value, unit, location, context, format, received_at"
            " FROM meter_value WHERE station_id = ? AND timestamp >= ? AND timestamp < ?"
        )
        params: list[object] = [station_id, db.ts(since), db.ts(until)]
        if measurand is not None:
            sql += " AND measurand = ?"
            params.append(measurand)
        sql += " ORDER BY timestamp, measurand, location, context"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with db.transaction("meter_values", write=False):
            rows = db.query(sql, params)
        return [
            MeterSample(
                station_id=station_id,
                timestamp=db.from_ts(row[0]),
                measurand=row[1],
                value=row[2],
                unit=row[3],
                location=row[4],
                context=row[5],
                format=row[6],
                received_at=db.from_ts(row[7]),
            )
            for row in rows
        ]

    def uploaded_files(self, station_id: str, request_id: str | None = None) -> list[UploadedFile]:
        db = self._db
        sql = (
            "SELECT station_id, request_id, file_name, stored_path, size, sha256, uploaded_at"
            " FROM uploaded_file WHERE station_id = ?"
        )
        params: list[object] = [station_id]
        if request_id is not None:
            sql += " AND request_id = ?"
            params.append(request_id)
        with db.transaction("uploaded_files", write=False):
            rows = db.query(sql + " ORDER BY uploaded_at, id", params)
        return [
            UploadedFile(
                station_id=row[0],
                request_id=row[1],
                file_name=row[2],
                stored_path=row[3],
                size=int(row[4]),
                sha256=row[5],
                uploaded_at=db.from_ts(row[6]),
            )
            for row in rows
        ]

    def last_boot(self, station_id: str) -> BootNotification | None:
        """The fields of the station's most recent BootNotification."""
        with self._db.transaction("last_boot", write=False):
            rows = self._db.query(
                "SELECT vendor, model, station_number, serial_number, firmware_version, iccid,"
                " imsi FROM boot_notification WHERE station_id = ?"
                " ORDER BY received_at DESC, id DESC LIMIT 1",
                (station_id,),
            )
        return BootNotification(*rows[0]) if rows else None

    def boot_answers(self) -> dict[str, BootPolicy]:
        """What each station's most recent BootNotification was answered (§3.1: only a
        station whose last boot was Accepted may send other CALLs, across restarts)."""
        with self._db.transaction("boot_answers", write=False):
            rows = self._db.query(
                "SELECT b.station_id, b.answered_status FROM boot_notification b"
                " JOIN (SELECT station_id, MAX(id) AS id FROM boot_notification"
                " GROUP BY station_id) latest ON b.id = latest.id"
            )
        return {station_id: BootPolicy(answered) for station_id, answered in rows}

    def events(
        self,
        station_id: str,
        *,
        since: datetime,
        until: datetime,
        kinds: Collection[EventKind] | None = None,
        limit: int = 1000,
    ) -> list[Event]:
        """Events of every kind (all but meter values) with `since <= occurred_at < until`,
        oldest first, at most `limit`. All kinds are read in one snapshot."""
        db = self._db
        wanted = set(EventKind) if kinds is None else set(kinds)
        streams: list[list[Event]] = []
        with db.transaction("events", write=False):
            for kind in EventKind:
                if kind not in wanted:
                    continue
                sql, build = _EVENT_QUERIES[kind]
                rows = db.query(sql, (station_id, db.ts(since), db.ts(until), limit))
                streams.append([build(db, station_id, row) for row in rows])
        merged = heapq.merge(*streams, key=lambda event: (event.occurred_at, event.received_at))
        return [event for _, event in zip(range(limit), merged, strict=False)]


def _event(
    kind: EventKind,
    db: Connection,
    station_id: str,
    *,
    occurred: Any,
    received: Any,
    details: dict[str, Any],
) -> Event:
    return Event(kind, station_id, db.from_ts(occurred), db.from_ts(received), details)


def _boot_event(db: Connection, station_id: str, row: Row) -> Event:
    details = BootNotification(*row[:7]).to_payload()
    details["answeredStatus"] = row[7]
    return _event(EventKind.BOOT, db, station_id, occurred=row[8], received=row[8], details=details)


def _status_event(db: Connection, station_id: str, row: Row) -> Event:
    notification = StatusNotification(
        status=row[0],
        error_code=row[1],
        info=row[2],
        timestamp=db.from_opt_ts(row[3]),
        vendor_id=row[4],
        vendor_error_code=row[5],
        test=None if row[6] is None else bool(row[6]),
    )
    return _event(
        EventKind.STATUS,
        db,
        station_id,
        occurred=row[7],
        received=row[8],
        details=notification.to_payload(),
    )


def _light_event(db: Connection, station_id: str, row: Row) -> Event:
    event = StreetlightStatus(
        contactor_id=int(row[0]),
        status=row[1],
        timestamp=db.from_ts(row[2]),
        unexpected=None if row[3] is None else bool(row[3]),
    )
    return _event(
        EventKind.STREETLIGHT_STATUS,
        db,
        station_id,
        occurred=row[2],
        received=row[4],
        details=event.to_payload(),
    )


def _mode_event(db: Connection, station_id: str, row: Row) -> Event:
    contactor = int(row[0])
    event = StreetlightMode(
        contactor_id=None if contactor == _ALL_CONTACTORS else contactor,
        mode=row[1],
        timestamp=db.from_ts(row[2]),
    )
    return _event(
        EventKind.STREETLIGHT_MODE,
        db,
        station_id,
        occurred=row[2],
        received=row[3],
        details=event.to_payload(),
    )


def _file_status_event(kind: EventKind) -> Callable[[Connection, str, Row], Event]:
    def build(db: Connection, station_id: str, row: Row) -> Event:
        details: dict[str, Any] = {"status": row[0]}
        if row[1] is not None:
            details["requestId"] = row[1]
        return _event(kind, db, station_id, occurred=row[2], received=row[2], details=details)

    return build


def _upload_event(db: Connection, station_id: str, row: Row) -> Event:
    details: dict[str, Any] = {
        "requestId": row[0],
        "fileName": row[1],
        "storedPath": row[2],
        "size": int(row[3]),
        "sha256": row[4],
    }
    return _event(
        EventKind.FILE_UPLOADED, db, station_id, occurred=row[5], received=row[5], details=details
    )


def _range(table: str, columns: str, time_column: str) -> str:
    return (
        f"SELECT {columns} FROM {table} WHERE station_id = ?"
        f" AND {time_column} >= ? AND {time_column} < ? ORDER BY {time_column}, id LIMIT ?"
    )


_EVENT_QUERIES: dict[EventKind, tuple[str, Callable[[Connection, str, Row], Event]]] = {
    EventKind.BOOT: (
        _range(
            "boot_notification",
            "vendor, model, station_number, serial_number, firmware_version, iccid, imsi,"
            " answered_status, received_at",
            "received_at",
        ),
        _boot_event,
    ),
    EventKind.STATUS: (
        _range(
            "status_notification",
            "status, error_code, info, timestamp, vendor_id, vendor_error_code, test,"
            " occurred_at, received_at",
            "occurred_at",
        ),
        _status_event,
    ),
    EventKind.STREETLIGHT_STATUS: (
        _range(
            "streetlight_status",
            "contactor_id, status, timestamp, unexpected, received_at",
            "timestamp",
        ),
        _light_event,
    ),
    EventKind.STREETLIGHT_MODE: (
        _range("streetlight_mode", "contactor_id, mode, timestamp, received_at", "timestamp"),
        _mode_event,
    ),
    EventKind.FIRMWARE_STATUS: (
        _range("firmware_status", "status, request_id, received_at", "received_at"),
        _file_status_event(EventKind.FIRMWARE_STATUS),
    ),
    EventKind.GET_FILE_STATUS: (
        _range("get_file_status", "status, request_id, received_at", "received_at"),
        _file_status_event(EventKind.GET_FILE_STATUS),
    ),
    EventKind.FILE_UPLOADED: (
        _range(
            "uploaded_file",
            "request_id, file_name, stored_path, size, sha256, uploaded_at",
            "uploaded_at",
        ),
        _upload_event,
    ),
}
