"""The meter inventory in the store: meters per station, lifecycle, shipment imports.

Functions over an open `SqlStore` (they share its connection and its rules: one
explicit transaction per call, aware UTC times passed in, nothing read from a
clock). `AsyncStore` runs them on its thread like every other store call.

- A shipment import is ONE transaction: station registry rows (as `add_station`
  writes them), time zones, meters, and the import's bookkeeping row. Conflicts with
  what is stored (station or meter id taken, M-Bus channel taken) are checked inside
  it and raise `ShipmentInvalid` with every conflict, after which nothing is
  written. `shipment_conflicts` runs the same check read-only, so the API can report
  file problems and conflicts in one answer.
- Passwords: hashed by `password_hashes` before the import, off the store's thread
  (scrypt costs ~30 ms a station); the caller supplies generated ones for stations
  that have neither a password nor a cert identity, and returns them once — only the
  hash is stored.
- A meter on M-Bus channel 1..4 must be the only live meter (not DESTROYED, not
  RETURNED_TO_SUPPLIER) on that channel of its station.
- `import_meter_values` stores samples fetched from the station's history
  (GetFile MeterValueHistory) under the same duplicate key as MeterValues, so
  importing a file twice, or values the station also sent live, stores each once.
  It does not move `last_seen`: an imported file says nothing of when the station
  was last heard from.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime

from central.meters import Lifecycle, MeterKind, MeterProtocol, check_transition
from central.shipment import MeterRecord, Problem, Shipment, ShipmentInvalid
from central.storage import passwords
from central.storage._backends import Connection, Row
from central.storage.errors import StorageError, UnknownStation
from central.storage.model import MeterValue
from central.storage.store import DEFAULT_HEARTBEAT_INTERVAL, SqlStore

__all__ = [
    "ChannelTaken",
    "ImportResult",
    "Meter",
    "MeterExists",
    "UnknownMeter",
    "add_meter",
    "get_meter",
    "import_meter_values",
    "import_shipment",
    "list_meters",
    "password_hashes",
    "set_meter_status",
    "shipment_conflicts",
    "station_passwords",
    "station_time_zone",
]

_RETIRED = (Lifecycle.DESTROYED, Lifecycle.RETURNED_TO_SUPPLIER)
_METER_COLUMNS = (
    "meter_id, station_id, kind, protocol, channel, lifecycle, shipment_id, created_at,"
    " status_changed_at"
)


class MeterExists(StorageError):
    def __init__(self, meter_id: str) -> None:
        super().__init__(f"meter {meter_id!r} is already in the inventory")
        self.meter_id = meter_id


class UnknownMeter(StorageError):
    def __init__(self, station_id: str, meter_id: str) -> None:
        super().__init__(f"station {station_id!r} has no meter {meter_id!r}")
        self.station_id = station_id
        self.meter_id = meter_id


class ChannelTaken(StorageError):
    def __init__(self, station_id: str, channel: int, meter_id: str) -> None:
        super().__init__(f"M-Bus channel {channel} of {station_id!r} is taken by {meter_id!r}")
        self.station_id = station_id
        self.channel = channel
        self.meter_id = meter_id


@dataclasses.dataclass(frozen=True)
class Meter:
    meter_id: str
    station_id: str
    kind: MeterKind
    protocol: MeterProtocol
    channel: int
    lifecycle: Lifecycle
    shipment_id: int | None
    created_at: datetime
    status_changed_at: datetime


@dataclasses.dataclass(frozen=True)
class ImportResult:
    shipment_id: int
    stations: tuple[str, ...]
    meters: tuple[str, ...]


def _db(store: SqlStore) -> Connection:
    # Package-private: this module is part of the store, split out by subject.
    return store._db


def _meter(db: Connection, row: Row) -> Meter:
    return Meter(
        meter_id=row[0],
        station_id=row[1],
        kind=MeterKind(row[2]),
        protocol=MeterProtocol(row[3]),
        channel=int(row[4]),
        lifecycle=Lifecycle(row[5]),
        shipment_id=None if row[6] is None else int(row[6]),
        created_at=db.from_ts(row[7]),
        status_changed_at=db.from_ts(row[8]),
    )


def _station_known(db: Connection, station_id: str) -> bool:
    return bool(db.query("SELECT 1 FROM station WHERE station_id = ?", (station_id,)))


def _meter_row(db: Connection, meter_id: str) -> Meter | None:
    rows = db.query(f"SELECT {_METER_COLUMNS} FROM meter WHERE meter_id = ?", (meter_id,))
    return _meter(db, rows[0]) if rows else None


def _channel_holder(db: Connection, station_id: str, channel: int) -> str | None:
    if channel == 0:
        return None
    rows = db.query(
        "SELECT meter_id FROM meter WHERE station_id = ? AND channel = ?"
        " AND lifecycle NOT IN (?, ?)",
        (station_id, channel, *(str(s) for s in _RETIRED)),
    )
    return str(rows[0][0]) if rows else None


def _insert_meter(
    db: Connection,
    station_id: str,
    meter: MeterRecord,
    *,
    lifecycle: Lifecycle,
    shipment_id: int | None,
    at: datetime,
) -> None:
    db.run(
        f"INSERT INTO meter ({_METER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            meter.meter_id,
            station_id,
            str(meter.kind),
            str(meter.protocol),
            meter.channel,
            str(lifecycle),
            shipment_id,
            db.ts(at),
            db.ts(at),
        ),
    )


# ------------------------------------------------------------------ meters
def add_meter(
    store: SqlStore,
    station_id: str,
    meter: MeterRecord,
    *,
    at: datetime,
    lifecycle: Lifecycle = Lifecycle.NEW_IN_INVENTORY,
) -> Meter:
    """Add one meter to a registered station (OSGP AddDevice)."""
    db = _db(store)
    with db.transaction("add_meter", write=True):
        if not _station_known(db, station_id):
            raise UnknownStation(station_id)
        if _meter_row(db, meter.meter_id) is not None:
            raise MeterExists(meter.meter_id)
        if lifecycle not in _RETIRED and (holder := _channel_holder(db, station_id, meter.channel)):
            raise ChannelTaken(station_id, meter.channel, holder)
        _insert_meter(db, station_id, meter, lifecycle=lifecycle, shipment_id=None, at=at)
        added = _meter_row(db, meter.meter_id)
    assert added is not None  # inserted in this transaction
    return added


def list_meters(store: SqlStore, station_id: str) -> list[Meter]:
    db = _db(store)
    with db.transaction("list_meters", write=False):
        rows = db.query(
            f"SELECT {_METER_COLUMNS} FROM meter WHERE station_id = ? ORDER BY channel, meter_id",
            (station_id,),
        )
    return [_meter(db, row) for row in rows]


def get_meter(store: SqlStore, meter_id: str) -> Meter | None:
    db = _db(store)
    with db.transaction("get_meter", write=False):
        return _meter_row(db, meter_id)


def set_meter_status(
    store: SqlStore, station_id: str, meter_id: str, status: Lifecycle, *, at: datetime
) -> Meter:
    """Move a meter along the lifecycle table (`central.meters`); `IllegalTransition`
    when the table forbids it, `ChannelTaken` when it comes back into use on a channel
    another meter now holds."""
    db = _db(store)
    with db.transaction("set_meter_status", write=True):
        meter = _meter_row(db, meter_id)
        if meter is None or meter.station_id != station_id:
            raise UnknownMeter(station_id, meter_id)
        if not check_transition(meter.lifecycle, status):
            return meter
        if meter.lifecycle in _RETIRED and status not in _RETIRED:
            holder = _channel_holder(db, station_id, meter.channel)
            if holder is not None:
                raise ChannelTaken(station_id, meter.channel, holder)
        db.run(
            "UPDATE meter SET lifecycle = ?, status_changed_at = ? WHERE meter_id = ?",
            (str(status), db.ts(at), meter_id),
        )
        updated = _meter_row(db, meter_id)
    assert updated is not None
    return updated


# ------------------------------------------------------------------ time zones
def station_time_zone(store: SqlStore, station_id: str) -> str | None:
    db = _db(store)
    with db.transaction("station_time_zone", write=False):
        rows = db.query(
            "SELECT time_zone FROM station_time_zone WHERE station_id = ?", (station_id,)
        )
    return str(rows[0][0]) if rows else None


# ------------------------------------------------------------------ shipments
def _conflicts(db: Connection, shipment: Shipment) -> list[Problem]:
    problems: list[Problem] = []
    for station in shipment.stations:
        if _station_known(db, station.station_id):
            field = "station_id" if station.line is not None else "stationId"
            problems.append(
                Problem("station is already registered", field, station.line, station.path)
            )
        for meter in station.meters:
            existing = _meter_row(db, meter.meter_id)
            if existing is not None:
                field = "meter_id" if meter.line is not None else "meterId"
                problems.append(
                    Problem(
                        f"meter is already in the inventory (station {existing.station_id})",
                        field,
                        meter.line,
                        meter.path,
                    )
                )
    return problems


def shipment_conflicts(store: SqlStore, shipment: Shipment) -> list[Problem]:
    """What in `shipment` collides with the stored registry and inventory."""
    db = _db(store)
    with db.transaction("shipment_conflicts", write=False):
        return _conflicts(db, shipment)


def station_passwords(
    shipment: Shipment, generated_passwords: Mapping[str, str]
) -> dict[str, str | None]:
    """The password of each station of `shipment`: its own, else the generated one
    (`generated_passwords`, made by the caller for stations that brought neither a
    password nor a cert identity), else None (a cert identity)."""
    return {
        s.station_id: s.password or generated_passwords.get(s.station_id) for s in shipment.stations
    }


def password_hashes(
    shipment: Shipment, generated_passwords: Mapping[str, str]
) -> dict[str, str | None]:
    """The scrypt hash per station, one after the other. About 30 ms per station: never
    on the store's thread (the API hashes on worker threads in parallel instead)."""
    return {
        station_id: None if password is None else passwords.hash_password(password)
        for station_id, password in station_passwords(shipment, generated_passwords).items()
    }


def import_shipment(
    store: SqlStore,
    shipment: Shipment,
    *,
    at: datetime,
    hashes: Mapping[str, str | None],
    sha256: str,
    media_type: str,
    remember: Mapping[str, str] | None = None,
) -> ImportResult:
    """Register every station and meter of `shipment`, or nothing (`ShipmentInvalid`).
    `hashes` from `password_hashes`; `remember`: station → `passwords.credential_digest`
    of the same password, so a first connection costs no scrypt check."""
    db = _db(store)
    with db.transaction("import_shipment", write=True):
        problems = _conflicts(db, shipment)
        if problems:
            raise ShipmentInvalid(problems, shipment)
        ((shipment_id,),) = db.query(
            "INSERT INTO shipment_import (sha256, media_type, stations, meters, imported_at)"
            " VALUES (?, ?, ?, ?, ?) RETURNING id",
            (sha256, media_type, len(shipment.stations), shipment.meter_count, db.ts(at)),
        )
        for station in shipment.stations:
            db.run(
                "INSERT INTO station (station_id, password_hash, cert_identity, boot_policy,"
                " heartbeat_interval, created_at, enabled) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    station.station_id,
                    hashes.get(station.station_id),
                    station.cert_identity,
                    "Accepted",
                    DEFAULT_HEARTBEAT_INTERVAL,
                    db.ts(at),
                    True,
                ),
            )
            password_hash = hashes.get(station.station_id)
            digest = (remember or {}).get(station.station_id)
            if password_hash is not None and digest is not None:
                store.remember_credential(station.station_id, password_hash, digest)
            if station.timezone is not None:
                db.run(
                    "INSERT INTO station_time_zone (station_id, time_zone) VALUES (?, ?)"
                    " ON CONFLICT (station_id) DO UPDATE SET time_zone = excluded.time_zone",
                    (station.station_id, station.timezone),
                )
            for meter in station.meters:
                _insert_meter(
                    db,
                    station.station_id,
                    meter,
                    lifecycle=Lifecycle.NEW_IN_INVENTORY,
                    shipment_id=int(shipment_id),
                    at=at,
                )
    return ImportResult(
        shipment_id=int(shipment_id),
        stations=tuple(s.station_id for s in shipment.stations),
        meters=tuple(m.meter_id for s in shipment.stations for m in s.meters),
    )


# ------------------------------------------------------------------ meter values
def import_meter_values(
    store: SqlStore, station_id: str, meter_values: Sequence[MeterValue], *, received_at: datetime
) -> int:
    """Store samples from the station's history; the number that were new."""
    db = _db(store)
    received = db.ts(received_at)
    rows = [
        (
            station_id,
            db.ts(value.timestamp),
            sample.measurand,
            sample.location,
            sample.context,
            sample.value,
            sample.unit,
            sample.format,
            received,
        )
        for value in meter_values
        for sample in value.sampled_values
    ]
    with db.transaction("import_meter_values", write=True):
        if not rows:
            return 0
        return db.run_many(
            "INSERT INTO meter_value (station_id, timestamp, measurand, location, context,"
            " value, unit, format, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            rows,
        )
