"""Shipment files: the list of stations and meters a supplier delivers, as CSV or JSON.

Pure: bytes in, a `Shipment` or `ShipmentInvalid` out (OSGP "process shipment
file"). The whole file is checked before anything is stored, and every problem is
reported — with its CSV line (or JSON pointer), field and reason — so that the
supplier can fix the file in one round. Nothing but `ShipmentInvalid` leaves
`parse_shipment`, whatever the bytes (tests/central/test_shipment.py checks that
with hypothesis).

CSV (RFC 4180, UTF-8, an optional BOM, a header row; one line per meter; the
station's own fields may be repeated on each of its lines or given on one of them,
but two different non-empty values are a problem):

    station_id,meter_id,kind,protocol,channel,password,cert_identity,timezone
    SUBS001,E0001,E,DLMS,0,s3cret-pass,,Europe/Amsterdam
    SUBS001,G0001,G,DLMS,1,,,

Required columns: station_id, meter_id, kind, protocol. channel defaults to 0 for
an E meter and is required for a G meter. A station without a password and without
a cert identity gets a generated password at import (returned once).

JSON: `{"stations": [{"stationId", "password"?, "certIdentity"?, "timeZone"?,
"meters": [{"meterId", "kind", "protocol", "channel"?}]}]}`. Its problems carry a
JSON pointer (`/stations/0/meters/1/kind`) instead of a line, except a syntax error,
which has the line the decoder stopped at.

Checks: ids (station: 1..64 printable characters; meter: 1..40 of
`[A-Za-z0-9._-]`, starting alphanumeric), kind E/G and protocol DLMS/P1 (any
case), channel per `central.meters.channel_problem`, a password of 8..128
characters when given, an IANA time zone when given, meter ids unique in the file,
one meter per (station, M-Bus channel 1..4), and at least one meter. Conflicts with
what is already stored (station or meter id taken) are the store's to find
(`central.storage.inventory.shipment_conflicts`), reported the same way.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import zoneinfo
from collections.abc import Iterable, Mapping
from typing import Any, Final

from central.meters import E_CHANNEL, G_CHANNELS, MeterKind, MeterProtocol, channel_problem

__all__ = [
    "CSV_COLUMNS",
    "MeterRecord",
    "Problem",
    "Shipment",
    "ShipmentInvalid",
    "StationRecord",
    "parse_csv",
    "parse_json",
    "parse_meter",
    "parse_shipment",
]

CSV_COLUMNS: Final = (
    "station_id",
    "meter_id",
    "kind",
    "protocol",
    "channel",
    "password",
    "cert_identity",
    "timezone",
)
_REQUIRED_COLUMNS: Final = ("station_id", "meter_id", "kind", "protocol")
_STATION_FIELDS: Final = ("password", "cert_identity", "timezone")
_METER_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
_STATION_ID_MAX: Final = 64
_PASSWORD: Final = range(8, 129)
_ZONE_NAME: Final = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*")
_CHANNEL: Final = re.compile(r"[0-9]{1,2}")


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with the file. `line` is the CSV line (1 = header), `path` a JSON
    pointer; either may be None (a problem of the whole file has neither)."""

    reason: str
    field: str | None = None
    line: int | None = None
    path: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "path": self.path, "field": self.field, "reason": self.reason}

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else (self.path or "file")
        return f"{where}: {self.field + ': ' if self.field else ''}{self.reason}"


@dataclasses.dataclass(frozen=True)
class MeterRecord:
    meter_id: str
    kind: MeterKind
    protocol: MeterProtocol
    channel: int
    line: int | None = None
    path: str | None = None


@dataclasses.dataclass(frozen=True)
class StationRecord:
    station_id: str
    password: str | None
    cert_identity: str | None
    timezone: str | None
    meters: tuple[MeterRecord, ...]
    line: int | None = None
    path: str | None = None


@dataclasses.dataclass(frozen=True)
class Shipment:
    stations: tuple[StationRecord, ...]

    @property
    def meter_count(self) -> int:
        return sum(len(s.meters) for s in self.stations)


class ShipmentInvalid(Exception):
    """The file has problems; `valid` holds what did parse, for the store's conflict check."""

    def __init__(self, problems: Iterable[Problem], valid: Shipment | None = None) -> None:
        self.problems = tuple(problems)
        self.valid = valid if valid is not None else Shipment(())
        count = len(self.problems)
        super().__init__(f"{count} problem{'s' * (count != 1)} in the shipment file")


# ------------------------------------------------------------------ field checks
class _Checker:
    """Collects problems; each check returns the clean value or None."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, reason: str, field: str | None, line: int | None, path: str | None) -> None:
        self.problems.append(Problem(reason, field, line, path))

    def station_id(self, value: object, where: tuple[int | None, str | None]) -> str | None:
        field = "station_id" if where[0] is not None else "stationId"
        if not isinstance(value, str) or not value:
            self.add("required, a non-empty string", field, *where)
            return None
        if len(value) > _STATION_ID_MAX or not value.isprintable() or value != value.strip():
            self.add(
                f"at most {_STATION_ID_MAX} printable characters, no surrounding spaces",
                field,
                *where,
            )
            return None
        return value

    def meter_id(self, value: object, where: tuple[int | None, str | None]) -> str | None:
        field = "meter_id" if where[0] is not None else "meterId"
        if not isinstance(value, str) or not value:
            self.add("required, a non-empty string", field, *where)
            return None
        if _METER_ID.fullmatch(value) is None:
            self.add("1..40 of A-Z a-z 0-9 . _ -, starting with a letter or digit", field, *where)
            return None
        return value

    def kind(self, value: object, where: tuple[int | None, str | None]) -> MeterKind | None:
        if isinstance(value, str) and value.upper() in {k.value for k in MeterKind}:
            return MeterKind(value.upper())
        self.add("E or G", "kind", *where)
        return None

    def protocol(self, value: object, where: tuple[int | None, str | None]) -> MeterProtocol | None:
        if isinstance(value, str) and value.upper() in {p.value for p in MeterProtocol}:
            return MeterProtocol(value.upper())
        self.add("DLMS or P1", "protocol", *where)
        return None

    def channel(
        self, value: object, kind: MeterKind | None, where: tuple[int | None, str | None]
    ) -> int | None:
        channel: int | None
        if value is None or value == "":
            if kind is MeterKind.GAS:
                self.add("required for a G meter (M-Bus channel 1..4)", "channel", *where)
                return None
            channel = E_CHANNEL
        elif isinstance(value, bool):
            channel = None
        elif isinstance(value, int):
            channel = value
        elif isinstance(value, str) and _CHANNEL.fullmatch(value):
            channel = int(value)
        else:
            channel = None
        if channel is None or not 0 <= channel <= max(G_CHANNELS):
            self.add("an integer 0..4", "channel", *where)
            return None
        if kind is not None and (reason := channel_problem(kind, channel)) is not None:
            self.add(reason, "channel", *where)
            return None
        return channel

    def optional_text(
        self, value: object, field: str, where: tuple[int | None, str | None]
    ) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            self.add("a string", field, *where)
            return None
        if field == "password" and len(value) not in _PASSWORD:
            self.add(f"{_PASSWORD.start}..{_PASSWORD.stop - 1} characters", field, *where)
            return None
        if field in ("timezone", "timeZone") and not _known_zone(value):
            self.add("not an IANA time zone (e.g. Europe/Amsterdam)", field, *where)
            return None
        return value


def _known_zone(name: str) -> bool:
    if _ZONE_NAME.fullmatch(name) is None or len(name) > 64:
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _cross_checks(stations: Iterable[StationRecord], checker: _Checker) -> None:
    """Meter ids unique in the file; one meter per station and M-Bus channel."""
    seen: dict[str, MeterRecord] = {}
    channels: dict[tuple[str, int], MeterRecord] = {}
    for station in stations:
        for meter in station.meters:
            earlier = seen.setdefault(meter.meter_id, meter)
            if earlier is not meter:
                checker.add(
                    f"meter {meter.meter_id} already listed ({_where(earlier)})",
                    "meter_id" if meter.line is not None else "meterId",
                    meter.line,
                    meter.path,
                )
            if meter.channel != E_CHANNEL:
                key = (station.station_id, meter.channel)
                first = channels.setdefault(key, meter)
                if first is not meter:
                    checker.add(
                        f"channel {meter.channel} of {station.station_id} is taken by"
                        f" {first.meter_id} ({_where(first)})",
                        "channel",
                        meter.line,
                        meter.path,
                    )


def _where(record: MeterRecord) -> str:
    return f"line {record.line}" if record.line is not None else str(record.path)


def _finish(stations: list[StationRecord], checker: _Checker) -> Shipment:
    _cross_checks(stations, checker)
    shipment = Shipment(tuple(stations))
    if shipment.meter_count == 0 and not checker.problems:
        checker.add("the file lists no meter", None, None, None)
    if checker.problems:
        raise ShipmentInvalid(checker.problems, shipment)
    return shipment


# ------------------------------------------------------------------ CSV
def _decode(data: bytes, checker: _Checker) -> str | None:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        checker.add(f"not UTF-8 (byte {exc.start})", None, None, None)
        return None


def _csv_rows(text: str, checker: _Checker) -> list[tuple[int, list[str]]]:
    """(first line of the record, fields) for each non-blank record."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for fields in reader:
            if any(fields):
                rows.append((start, fields))
            start = reader.line_num + 1
    except csv.Error as exc:
        checker.add(f"not CSV: {exc}", None, reader.line_num or start, None)
    return rows


def _header(fields: list[str], checker: _Checker) -> list[str] | None:
    names = [f.strip().lower() for f in fields]
    ok = True
    for name in names:
        if name not in CSV_COLUMNS:
            checker.add(f"unknown column {name!r}; known: {', '.join(CSV_COLUMNS)}", None, 1, None)
            ok = False
    for name in {n for n in names if names.count(n) > 1}:
        checker.add(f"column {name!r} appears twice", None, 1, None)
        ok = False
    for name in _REQUIRED_COLUMNS:
        if name not in names:
            checker.add(f"missing column {name!r}", None, 1, None)
            ok = False
    return names if ok else None


def parse_csv(data: bytes) -> Shipment:
    checker = _Checker()
    text = _decode(data, checker)
    rows = [] if text is None else _csv_rows(text, checker)
    if not rows:
        if not checker.problems:
            checker.add("empty file: a header row and one line per meter", None, None, None)
        raise ShipmentInvalid(checker.problems)
    (_, header_fields), *body = rows
    names = _header(header_fields, checker)
    if names is None:
        raise ShipmentInvalid(checker.problems)
    stations: dict[str, dict[str, Any]] = {}
    for line, fields in body:
        where = (line, None)
        if len(fields) != len(names):
            checker.add(f"{len(fields)} fields, the header has {len(names)}", None, *where)
            continue
        row = dict(zip(names, (f.strip() for f in fields), strict=True))
        station_id = checker.station_id(row["station_id"], where)
        meter = _meter(checker, row["meter_id"], row["kind"], row["protocol"], row=row, where=where)
        own = {f: checker.optional_text(row.get(f), f, where) for f in _STATION_FIELDS}
        if station_id is None:
            continue
        entry = stations.setdefault(station_id, {"line": line, "meters": [], **dict.fromkeys(own)})
        for field, value in own.items():
            if value is None:
                continue
            if entry[field] is not None and entry[field] != value:
                checker.add(f"differs from an earlier line of {station_id}", field, *where)
            else:
                entry[field] = value
        if meter is not None:
            entry["meters"].append(meter)
    records = [
        StationRecord(
            station_id=sid,
            password=e["password"],
            cert_identity=e["cert_identity"],
            timezone=e["timezone"],
            meters=tuple(e["meters"]),
            line=e["line"],
        )
        for sid, e in stations.items()
    ]
    return _finish(records, checker)


def _meter(
    checker: _Checker,
    meter_id: object,
    kind_value: object,
    protocol_value: object,
    *,
    row: Mapping[str, Any],
    where: tuple[int | None, str | None],
) -> MeterRecord | None:
    clean_id = checker.meter_id(meter_id, where)
    kind = checker.kind(kind_value, where)
    protocol = checker.protocol(protocol_value, where)
    channel = checker.channel(row.get("channel"), kind, where)
    if clean_id is None or kind is None or protocol is None or channel is None:
        return None
    return MeterRecord(clean_id, kind, protocol, channel, where[0], where[1])


# ------------------------------------------------------------------ JSON
_STATION_KEYS: Final = frozenset({"stationId", "password", "certIdentity", "timeZone", "meters"})
_METER_KEYS: Final = frozenset({"meterId", "kind", "protocol", "channel"})


def _unknown_keys(
    checker: _Checker, item: Mapping[str, Any], known: frozenset[str], path: str
) -> None:
    for key in sorted(set(item) - known):
        checker.add(f"unknown field; known: {', '.join(sorted(known))}", key, None, path)


def parse_json(data: bytes) -> Shipment:
    checker = _Checker()
    text = _decode(data, checker)
    if text is None:
        raise ShipmentInvalid(checker.problems)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        checker.add(f"not JSON: {exc.msg} (column {exc.colno})", None, exc.lineno, None)
        raise ShipmentInvalid(checker.problems) from None
    except (ValueError, RecursionError) as exc:
        checker.add(f"not JSON: {exc}", None, None, None)
        raise ShipmentInvalid(checker.problems) from None
    if not isinstance(document, dict) or not isinstance(document.get("stations"), list):
        checker.add('expected {"stations": [...]}', "stations", None, "")
        raise ShipmentInvalid(checker.problems)
    _unknown_keys(checker, document, frozenset({"stations"}), "")
    records: list[StationRecord] = []
    seen: dict[str, str] = {}
    for index, item in enumerate(document["stations"]):
        path = f"/stations/{index}"
        if not isinstance(item, dict):
            checker.add("a station must be an object", None, None, path)
            continue
        record = _json_station(checker, item, path)
        if record is None:
            continue
        if record.station_id in seen:
            checker.add(
                f"station listed twice (also {seen[record.station_id]})", "stationId", None, path
            )
            continue
        seen[record.station_id] = path
        records.append(record)
    return _finish(records, checker)


def _json_station(checker: _Checker, item: Mapping[str, Any], path: str) -> StationRecord | None:
    _unknown_keys(checker, item, _STATION_KEYS, path)
    where: tuple[int | None, str | None] = (None, path)
    station_id = checker.station_id(item.get("stationId"), where)
    password = checker.optional_text(item.get("password"), "password", where)
    cert_identity = checker.optional_text(item.get("certIdentity"), "certIdentity", where)
    timezone = checker.optional_text(item.get("timeZone"), "timeZone", where)
    meters_value = item.get("meters")
    meters: list[MeterRecord] = []
    if not isinstance(meters_value, list) or not meters_value:
        checker.add("a non-empty list of meters", "meters", *where)
    else:
        for index, meter in enumerate(meters_value):
            meter_path = f"{path}/meters/{index}"
            if not isinstance(meter, dict):
                checker.add("a meter must be an object", None, None, meter_path)
                continue
            _unknown_keys(checker, meter, _METER_KEYS, meter_path)
            record = _meter(
                checker,
                meter.get("meterId"),
                meter.get("kind"),
                meter.get("protocol"),
                row=meter,
                where=(None, meter_path),
            )
            if record is not None:
                meters.append(record)
    if station_id is None:
        return None
    return StationRecord(station_id, password, cert_identity, timezone, tuple(meters), None, path)


# ------------------------------------------------------------------ entry points
def parse_meter(item: object) -> MeterRecord:
    """One meter as the API's JSON object (`meterId`, `kind`, `protocol`, `channel`);
    its problems carry JSON pointers into that object."""
    checker = _Checker()
    if not isinstance(item, dict):
        raise ShipmentInvalid([Problem("a meter must be a JSON object", None, None, "")])
    _unknown_keys(checker, item, _METER_KEYS, "")
    where: tuple[int | None, str | None] = (None, "")
    record = _meter(
        checker, item.get("meterId"), item.get("kind"), item.get("protocol"), row=item, where=where
    )
    if record is None or checker.problems:
        raise ShipmentInvalid(checker.problems)
    return record


def parse_shipment(data: bytes, media_type: str) -> Shipment:
    """`media_type` `text/csv` or `application/json` (parameters ignored)."""
    kind = media_type.split(";", maxsplit=1)[0].strip().lower()
    if kind in ("text/csv", "application/csv"):
        return parse_csv(data)
    if kind == "application/json" or kind.endswith("+json"):
        return parse_json(data)
    raise ShipmentInvalid(
        [Problem(f"unsupported type {kind or '(none)'}: send text/csv or application/json")]
    )
