"""Meter-read services on top of what stations deliver (OSGP SmartMetering monitoring).

Each service is `async (central, station_id, params) -> dict` (JSON-able) and is
listed in `SERVICES` with the operator right it needs, so the API runs them
synchronously (`POST /api/stations/{id}/services/{name}`) and a command queue can
run them later. Parameters use the API's wire names; a bad one is `BadParams` (a
ValueError; `CHECKS` holds each service's static check, for a queue's submission).
A station that refuses the trigger is `StationRefused` (a `CommandError`); one that
accepts but sends nothing is `NoAnswer` (a `CommandTimeout`, retried like one).

- `ActualMeterReads` — TriggerMessage MeterValues, then the MeterValues the
  station sends after it (it sends one per meter: collected until `settle`
  seconds pass without another, at most `timeout`).
- `PeriodicMeterReads` — DAILY / MONTHLY / INTERVAL reads for a period from the
  stored values (`central.periodic`). Gaps are fetched once per call: GetFile
  MeterValueHistory for [first gap, last gap] with a central upload location,
  wait for GetFileStatusNotification Uploaded (the upload is recorded before the
  station sends it), validate the file's rows as a MeterValues payload, import
  them idempotently (`import_meter_values`) and compute again. A fill that cannot
  happen (station offline, GetFile Rejected, UploadFailed, timeout, bad file)
  does not fail the read: the result lists the gaps left and `gapFill` says why.
  Its outcomes: `imported`, `offline`, `command_failed` (lost during the call,
  timeout, CALLERROR), `rejected`, `timeout`, `upload_failed`, `no_file`, `bad_file`.
- `FindEvents` — stored events by category (the `EventKind`s, `FaultsOpen`,
  `FaultsClosed`) and period.
- `GetFirmwareVersion` — from the station's last BootNotification.
- `SynchronizeTime` — TriggerMessage Heartbeat: the station corrects its clock from
  the `currentTime` of the central's Heartbeat answer (§6.4); the result is the
  station's answer to the trigger and the central's time when it was sent.

Registers per meter (the OS³P measurands the RTU reports, docs/metering.md): a
DLMS E meter `RealEnergyConsumed.Sum` and `RealEnergyDelivered.Sum` (no location),
a P1 E meter `Energy.Active.Import.Register` (location `P1Meter`). OS³P 0.4 has
no gas measurand, so a G meter has no periodic reads (`BadParams` says so).
Without `meterId` the station's E meters in the inventory (any but DESTROYED /
RETURNED_TO_SUPPLIER) decide; a station without meters in the inventory reads
whichever of those registers it has stored (and then a missing register is no gap).
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from central.errors import CentralError, CommandError, CommandTimeout
from central.historyfile import HistoryFileInvalid, history_payload, parse_history
from central.meters import Lifecycle, MeterKind, MeterProtocol
from central.operations import Right, ServiceOperation, ServiceRegistry
from central.periodic import (
    PeriodError,
    PeriodicReads,
    ReadKind,
    Sample,
    Series,
    log_times,
    periodic_reads,
)
from central.storage import (
    EventKind,
    GetFileStatus,
    MeterValue,
    OpenFault,
    meter_values_from_payload,
)
from central.storage.inventory import UnknownMeter
from os3p.actions import Action
from os3p.errors import PayloadError, PayloadInvalid
from os3p.formats import parse_date_time
from os3p.messages import GetFileResponse, TriggerMessageResponse

if TYPE_CHECKING:
    from central.server import CentralServer

__all__ = [
    "CHECKS",
    "REGISTERS",
    "SERVICES",
    "BadParams",
    "NoAnswer",
    "ServiceError",
    "StationRefused",
    "actual_meter_reads",
    "find_events",
    "get_firmware_version",
    "periodic_meter_reads",
    "service_registry",
    "synchronize_time",
]

Service = Callable[["CentralServer", str, Mapping[str, Any]], Awaitable[dict[str, Any]]]

REGISTERS: Final[Mapping[MeterProtocol, tuple[Series, ...]]] = {
    MeterProtocol.DLMS: (
        Series("RealEnergyConsumed.Sum", "-"),
        Series("RealEnergyDelivered.Sum", "-"),
    ),
    MeterProtocol.P1: (Series("Energy.Active.Import.Register", "P1Meter"),),
}
_ALL_REGISTERS: Final = tuple(s for series in REGISTERS.values() for s in series)
_RETIRED: Final = (Lifecycle.DESTROYED, Lifecycle.RETURNED_TO_SUPPLIER)
_FILL_TIMEOUT: Final = 120.0  # seconds for the station to build and upload the file
_SETTLE: Final = 1.0
_FAULT_CATEGORIES: Final = ("FaultsOpen", "FaultsClosed")


class ServiceError(CentralError):
    """A service could not produce its result for a reason of the central's side."""


class BadParams(ServiceError, ValueError):
    """The parameters are wrong (the operator's mistake). A ValueError, so that the
    `CHECKS` functions serve a queue's check-at-submission as they are."""


class StationRefused(CommandError):
    """The station answered the service's TriggerMessage with Rejected."""


class NoAnswer(CommandTimeout):
    """The station accepted the trigger but sent nothing within the timeout; a
    `CommandTimeout`, so a queue retries it like any unanswered command."""


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# ------------------------------------------------------------------ parameters
def _known(params: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise BadParams(f"unknown parameters: {', '.join(unknown)}; known: {sorted(allowed)}")


def _time(params: Mapping[str, Any], key: str, default: datetime | None) -> datetime:
    value = params.get(key)
    if value is None:
        if default is None:
            raise BadParams(f"{key}: required (RFC 3339 date-time)")
        return default
    if not isinstance(value, str):
        raise BadParams(f"{key}: an RFC 3339 date-time string")
    try:
        return parse_date_time(value)
    except ValueError:
        raise BadParams(f"{key}: not an RFC 3339 date-time: {value!r}") from None


def _seconds(params: Mapping[str, Any], key: str, default: float) -> float:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3600:
        raise BadParams(f"{key}: seconds, more than 0 and at most 3600")
    return float(value)


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadParams(f"timeZone: not an IANA time zone: {name!r}") from None


class _Inbox:
    """What the store tells about one station while a service waits (AsyncStore.listen).
    Opened before the command is sent: the answer may arrive before the CALLRESULT."""

    def __init__(self, central: CentralServer, station_id: str) -> None:
        self.items: asyncio.Queue[object] = asyncio.Queue()
        self._station_id = station_id
        self._store = central.store
        self._stop: Callable[[], None] | None = None

    def __enter__(self) -> _Inbox:
        self._stop = self._store.listen(self._hear)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._stop()

    def _hear(self, station_id: str, stored: object) -> None:
        if station_id == self._station_id:
            self.items.put_nowait(stored)


# ------------------------------------------------------------------ ActualMeterReads
def _value_json(value: MeterValue) -> list[dict[str, Any]]:
    return [
        {
            "timestamp": _iso(value.timestamp),
            "measurand": s.measurand,
            "value": s.value,
            "unit": s.unit,
            "location": s.location,
            "context": s.context,
        }
        for s in value.sampled_values
    ]


def check_actual(params: Mapping[str, Any]) -> None:
    _known(params, {"timeout", "settle"})
    _seconds(params, "timeout", 1.0)
    _seconds(params, "settle", _SETTLE)


async def actual_meter_reads(
    central: CentralServer, station_id: str, params: Mapping[str, Any]
) -> dict[str, Any]:
    check_actual(params)
    timeout = _seconds(params, "timeout", central.config.command_timeout)
    settle = _seconds(params, "settle", _SETTLE)
    with _Inbox(central, station_id) as inbox:
        response = await central.commander.send(
            station_id, "TriggerMessage", {"requestedMessage": "MeterValues"}
        )
        assert isinstance(response, TriggerMessageResponse)  # the session typed it
        if response.status.value != "Accepted":
            raise StationRefused(station_id, "TriggerMessage", "MeterValues: Rejected")
        values: list[MeterValue] = []
        try:
            async with asyncio.timeout(timeout):
                while not values:
                    stored = await inbox.items.get()
                    if isinstance(stored, tuple):
                        values.extend(stored)
        except TimeoutError:
            raise NoAnswer(
                station_id, "TriggerMessage", f"no MeterValues within {timeout:g} s"
            ) from None
        while True:
            try:
                async with asyncio.timeout(settle):
                    stored = await inbox.items.get()
            except TimeoutError:
                break
            if isinstance(stored, tuple):
                values.extend(stored)
    return {
        "station": station_id,
        "values": [sample for value in values for sample in _value_json(value)],
    }


# ------------------------------------------------------------------ PeriodicMeterReads
async def _wanted_series(
    central: CentralServer, station_id: str, meter_id: str | None
) -> tuple[Series, ...] | None:
    meters = await central.store.list_meters(station_id)
    if meter_id is not None:
        meter = next((m for m in meters if m.meter_id == meter_id), None)
        if meter is None:
            raise UnknownMeter(station_id, meter_id)
        if meter.kind is MeterKind.GAS:
            raise BadParams(f"{meter_id} is a G meter: OS³P 0.4 reports no gas register")
        return REGISTERS[meter.protocol]
    protocols = {
        m.protocol
        for m in meters
        if m.kind is MeterKind.ELECTRICITY and m.lifecycle not in _RETIRED
    }
    if not protocols:
        return None
    return tuple(s for p in MeterProtocol if p in protocols for s in REGISTERS[p])


async def _compute(
    central: CentralServer,
    station_id: str,
    kind: ReadKind,
    period: tuple[datetime, datetime],
    *,
    zone: tzinfo,
    series: tuple[Series, ...] | None,
) -> PeriodicReads:
    since, until = period
    samples: list[Sample] = []
    for register in series if series is not None else _ALL_REGISTERS:
        stored = await central.store.meter_values(
            station_id, since=since, until=until, measurand=register.measurand
        )
        samples += [
            Sample(s.timestamp, Series(s.measurand, s.location), s.value, s.unit, s.context)
            for s in stored
            if s.location == register.location
        ]
    try:
        return periodic_reads(samples, kind, since, until, zone=zone, series=series)
    except PeriodError as exc:
        raise BadParams(str(exc)) from None


def _series_json(series: Series) -> dict[str, str]:
    return {"measurand": series.measurand, "location": series.location}


def _reads_json(reads: PeriodicReads) -> dict[str, Any]:
    return {
        "series": [_series_json(s) for s in reads.series],
        "reads": [
            {
                "logTime": _iso(read.log_time),
                "values": [
                    {
                        "measurand": series.measurand,
                        "location": series.location,
                        "value": sample.value,
                        "unit": sample.unit,
                        "context": sample.context,
                    }
                    for series, sample in sorted(read.values.items())
                ],
            }
            for read in reads.reads
        ],
        "gaps": [
            {
                "logTime": _iso(gap.log_time),
                "missing": [_series_json(s) for s in gap.missing],
            }
            for gap in reads.gaps
        ],
    }


async def _fill_gaps(
    central: CentralServer, station_id: str, first: datetime, last: datetime, timeout: float
) -> dict[str, Any]:
    """GetFile MeterValueHistory for [first, last], wait, import. The outcome, as JSON."""
    request_id = str(uuid.uuid4())
    report: dict[str, Any] = {
        "requestId": request_id,
        "startTime": _iso(first),
        "stopTime": _iso(last),
        "imported": 0,
    }
    if not central.connected(station_id):
        # Checked first so that no upload location is issued for nothing.
        return report | {"outcome": "offline", "message": "the station is not connected"}
    with _Inbox(central, station_id) as inbox:
        try:
            response = await central.commander.send(
                station_id,
                "GetFile",
                {
                    "requestId": request_id,
                    # A directory (the station appends its file name, as the upload
                    # route /files/uploads/{token}/{name} wants); the trailing "/" says
                    # so also to a station that reads a location without it as a file.
                    "location": central.files.issue_upload(station_id, request_id) + "/",
                    "fileType": "MeterValueHistory",
                    "startTime": _iso(first),
                    "stopTime": _iso(last),
                },
            )
        except CommandError as exc:
            return report | {"outcome": "command_failed", "message": str(exc)}
        assert isinstance(response, GetFileResponse)
        if response.status.value != "Accepted":
            return report | {"outcome": "rejected", "message": "GetFile answered Rejected"}
        report["fileName"] = response.file_name
        try:
            async with asyncio.timeout(timeout):
                status = await _final_status(inbox, request_id)
        except TimeoutError:
            return report | {"outcome": "timeout", "message": f"no upload within {timeout:g} s"}
    if status == "UploadFailed":
        return report | {"outcome": "upload_failed", "message": "the station reported UploadFailed"}
    return report | await _import_upload(central, station_id, request_id)


async def _final_status(inbox: _Inbox, request_id: str) -> str:
    """Uploaded or UploadFailed, from the GetFileStatusNotifications of our request."""
    while True:
        stored = await inbox.items.get()
        if (
            isinstance(stored, GetFileStatus)
            and stored.request_id == request_id
            and stored.status in ("Uploaded", "UploadFailed")
        ):
            return stored.status


async def _import_upload(
    central: CentralServer, station_id: str, request_id: str
) -> dict[str, Any]:
    files = await central.store.uploaded_files(station_id, request_id)
    if not files:
        return {"outcome": "no_file", "message": "Uploaded, but no file arrived for the request"}
    data = await asyncio.to_thread(Path(files[-1].stored_path).read_bytes)
    try:
        payload = history_payload(parse_history(data))
        central.validator.check(Action.METER_VALUES, "Request", payload)
    except HistoryFileInvalid as exc:
        return {"outcome": "bad_file", "message": str(exc)}
    except (PayloadInvalid, PayloadError) as exc:
        return {"outcome": "bad_file", "message": f"not valid MeterValues: {exc}"}
    values = meter_values_from_payload(payload)
    new = await central.store.import_meter_values(station_id, values, received_at=central.wall())
    return {"outcome": "imported", "imported": new, "fileName": files[-1].file_name}


@dataclasses.dataclass(frozen=True)
class _Periodic:
    since: datetime
    until: datetime
    kind: ReadKind
    meter_id: str | None
    zone_name: str | None
    fill: bool
    timeout: float


def _periodic_params(params: Mapping[str, Any]) -> _Periodic:
    _known(params, {"from", "to", "kind", "meterId", "timeZone", "fillGaps", "timeout"})
    since, until = _time(params, "from", None), _time(params, "to", None)
    try:
        kind = ReadKind(params.get("kind", "DAILY"))
    except ValueError:
        raise BadParams("kind: DAILY, MONTHLY or INTERVAL") from None
    meter_id = params.get("meterId")
    if meter_id is not None and not isinstance(meter_id, str):
        raise BadParams("meterId: a string")
    fill = params.get("fillGaps", True)
    if not isinstance(fill, bool):
        raise BadParams("fillGaps: true or false")
    zone_name = params.get("timeZone")
    if zone_name is not None and not isinstance(zone_name, str):
        raise BadParams("timeZone: an IANA time zone name")
    try:
        # The period's bounds (empty, too long) hardly depend on the zone: UTC decides.
        log_times(kind, since, until, _zone(zone_name) if zone_name else UTC)
    except PeriodError as exc:
        raise BadParams(str(exc)) from None
    timeout = _seconds(params, "timeout", _FILL_TIMEOUT)
    return _Periodic(since, until, kind, meter_id, zone_name, fill, timeout)


def check_periodic(params: Mapping[str, Any]) -> None:
    _periodic_params(params)


async def periodic_meter_reads(
    central: CentralServer, station_id: str, params: Mapping[str, Any]
) -> dict[str, Any]:
    wanted = _periodic_params(params)
    since, until, kind, meter_id = wanted.since, wanted.until, wanted.kind, wanted.meter_id
    zone_name = wanted.zone_name or await central.store.station_time_zone(station_id)
    zone = _zone(zone_name) if zone_name else UTC
    series = await _wanted_series(central, station_id, meter_id)
    period = (since, until)
    reads = await _compute(central, station_id, kind, period, zone=zone, series=series)
    gap_fill: dict[str, Any] | None = None
    if reads.gaps and wanted.fill:
        first, last = reads.gaps[0].log_time, reads.gaps[-1].log_time
        gap_fill = await _fill_gaps(central, station_id, first, last, wanted.timeout)
        if gap_fill["imported"]:
            reads = await _compute(
                central, station_id, kind, (since, until), zone=zone, series=series
            )
    return {
        "station": station_id,
        "kind": kind.value,
        "timeZone": zone_name or "UTC",
        "from": _iso(since),
        "to": _iso(until),
        **_reads_json(reads),
        "gapFill": gap_fill,
    }


# ------------------------------------------------------------------ FindEvents
def _fault_json(fault: OpenFault) -> dict[str, Any]:
    return {
        "errorCode": fault.error_code,
        "vendorId": fault.vendor_id or None,
        "vendorErrorCode": fault.vendor_error_code or None,
        "info": fault.info,
        "raisedAt": _iso(fault.raised_at),
    }


def _events_params(params: Mapping[str, Any]) -> tuple[list[str], int]:
    _known(params, {"from", "to", "categories", "limit"})
    for key in ("from", "to"):
        if key in params:
            _time(params, key, None)
    names = [k.value for k in EventKind] + list(_FAULT_CATEGORIES)
    categories = params.get("categories", names)
    if (
        not isinstance(categories, list)
        or not categories
        or any(c not in names for c in categories)
    ):
        raise BadParams(f"categories: a non-empty list of {', '.join(names)}")
    limit = params.get("limit", 1000)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
        raise BadParams("limit: an integer 1..10000")
    return categories, limit


def check_find_events(params: Mapping[str, Any]) -> None:
    _events_params(params)


async def find_events(
    central: CentralServer, station_id: str, params: Mapping[str, Any]
) -> dict[str, Any]:
    """Events in the period by category. `FaultsOpen`: faults open now that were raised
    in the period; `FaultsClosed`: fault-raising StatusNotifications in the period
    whose fault is no longer open (or was opened again later)."""
    categories, limit = _events_params(params)
    until = _time(params, "to", central.wall() + timedelta(seconds=1))
    since = _time(params, "from", until - timedelta(days=1))
    if until <= since:
        raise BadParams("the period is empty: `to` must be after `from`")
    kinds = {EventKind(c) for c in categories if c not in _FAULT_CATEGORIES}
    result: dict[str, Any] = {"station": station_id, "from": _iso(since), "to": _iso(until)}
    if kinds:
        events = await central.store.events(
            station_id, since=since, until=until, kinds=kinds, limit=limit
        )
        result["events"] = [
            {
                "kind": e.kind.value,
                "occurredAt": _iso(e.occurred_at),
                "receivedAt": _iso(e.received_at),
                "details": dict(e.details),
            }
            for e in events
        ]
    if any(c in _FAULT_CATEGORIES for c in categories):
        result["faults"] = await _faults(central, station_id, (since, until), categories, limit)
    return result


async def _faults(
    central: CentralServer,
    station_id: str,
    period: tuple[datetime, datetime],
    categories: list[str],
    limit: int,
) -> dict[str, Any]:
    since, until = period
    open_now = await central.store.open_faults(station_id)
    faults: dict[str, Any] = {}
    if "FaultsOpen" in categories:
        faults["open"] = [_fault_json(f) for f in open_now if since <= f.raised_at < until]
    if "FaultsClosed" in categories:
        still_open = {(f.error_code, f.vendor_id, f.vendor_error_code): f for f in open_now}
        statuses = await central.store.events(
            station_id, since=since, until=until, kinds={EventKind.STATUS}, limit=limit
        )
        closed = []
        for event in statuses:
            details = event.details
            if details.get("errorCode", "NoError") == "NoError" or details.get("test") is True:
                continue
            key = (
                details["errorCode"],
                details.get("vendorId", ""),
                details.get("vendorErrorCode", ""),
            )
            current = still_open.get(key)
            if current is None or current.raised_at > event.occurred_at:
                closed.append(
                    {
                        "errorCode": key[0],
                        "vendorId": key[1] or None,
                        "vendorErrorCode": key[2] or None,
                        "info": details.get("info"),
                        "raisedAt": _iso(event.occurred_at),
                    }
                )
        faults["closed"] = closed
    return faults


# ------------------------------------------------------------------ firmware, time
def check_no_params(params: Mapping[str, Any]) -> None:
    _known(params, set())


async def get_firmware_version(
    central: CentralServer, station_id: str, params: Mapping[str, Any]
) -> dict[str, Any]:
    check_no_params(params)
    boot = await central.store.last_boot(station_id)
    if boot is None:
        return {"station": station_id, "firmwareVersion": None, "boot": None}
    return {
        "station": station_id,
        "firmwareVersion": boot.firmware_version,
        "boot": boot.to_payload(),
    }


async def synchronize_time(
    central: CentralServer, station_id: str, params: Mapping[str, Any]
) -> dict[str, Any]:
    check_no_params(params)
    sent_at = central.wall()
    response = await central.commander.send(
        station_id, "TriggerMessage", {"requestedMessage": "Heartbeat"}
    )
    assert isinstance(response, TriggerMessageResponse)
    if response.status.value != "Accepted":
        raise StationRefused(station_id, "TriggerMessage", "Heartbeat: Rejected")
    return {"station": station_id, "trigger": response.status.value, "centralTime": _iso(sent_at)}


# Operator right each service needs (`central.operations.Right` values):
# reading stored values or making the station report again changes nothing on it;
# SynchronizeTime changes its clock.
SERVICES: Final[Mapping[str, tuple[str, Service]]] = {
    "ActualMeterReads": ("read", actual_meter_reads),
    "PeriodicMeterReads": ("read", periodic_meter_reads),
    "FindEvents": ("read", find_events),
    "GetFirmwareVersion": ("read", get_firmware_version),
    "SynchronizeTime": ("configure", synchronize_time),
}


def service_registry() -> ServiceRegistry:
    """`SERVICES` and `CHECKS` as the command queue's `ServiceRegistry`:
    `run_forever(config, services=service_registry())` lets requests and bundles name
    these services like OS³P actions (rights and retries as the queue applies them)."""
    return {
        name: ServiceOperation(Right(right), run, CHECKS[name])
        for name, (right, run) in SERVICES.items()
    }


# Static checks of each service's parameters (BadParams, a ValueError), for a queue
# to reject a bad request at submission; each service runs its own check first too.
CHECKS: Final[Mapping[str, Callable[[Mapping[str, Any]], None]]] = {
    "ActualMeterReads": check_actual,
    "PeriodicMeterReads": check_periodic,
    "FindEvents": check_find_events,
    "GetFirmwareVersion": check_no_params,
    "SynchronizeTime": check_no_params,
}
