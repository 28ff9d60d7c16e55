"""HTTP routes of the meter inventory and the meter-read services (`add_routes`).

    POST /api/shipments                                  CSV or JSON by Content-Type
    GET  /api/stations/{id}/meters
    POST /api/stations/{id}/meters                       {"meterId", "kind", "protocol", "channel"?}
    PUT  /api/stations/{id}/meters/{meterId}/status      {"status": "READY_FOR_USE"}
    POST /api/stations/{id}/services/{service}           the service's parameters

Documented in `central/openapi.yaml` with the rest of the API; the bearer token is
checked by `central.api`'s middleware (every path here is under `/api/`), which also
answers the `Forbidden` its guards raise (403). Who may do what: a shipment (it
registers stations and credentials) only the administrator; a station's meters may
be seen by whoever may see the station, added or moved along the lifecycle with the
`configure` right; a service needs the right `SERVICES` names for it.

A shipment is all-or-nothing: 422 lists every problem of the file (line or JSON
pointer, field, reason) and every conflict with what is stored, and nothing is
stored; 201 answers the new station and meter ids and, once, the passwords the
import generated for stations that brought neither a password nor a cert identity.

Services run synchronously here (the answer is the result); command failures map as
for `/commands`: 409 offline, 504 timeout, 502 CALLERROR / invalid response / the
station refused; 400 bad parameters; 404 unknown service, station or meter.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from central.errors import (
    CommandError,
    CommandRejected,
    CommandTimeout,
    InvalidCommand,
    InvalidStationResponse,
    StationNotConnected,
    UnknownCommand,
)
from central.logs import log_event
from central.meterreads import SERVICES, BadParams, NoAnswer, ServiceError, StationRefused
from central.meters import IllegalTransition, Lifecycle
from central.operations import Right
from central.server import CentralServer
from central.shipment import Problem, ShipmentInvalid, parse_meter, parse_shipment
from central.storage import UnknownStation, passwords
from central.storage.inventory import (
    ChannelTaken,
    Meter,
    MeterExists,
    UnknownMeter,
    station_passwords,
)

__all__ = ["add_routes", "meter_json"]

log = logging.getLogger(__name__)

AdminOnly = Callable[[web.Request], None]
Require = Callable[[web.Request, str, Right | None], Awaitable[None]]


@dataclasses.dataclass(frozen=True)
class _Guards:
    """`central.api`'s access checks: raise (403) unless the caller may go on."""

    admin_only: AdminOnly
    require: Require
    actor: Callable[[web.Request], str]  # who the audit trail names
    # The station the route names: UnknownStation (404) for the administrator, and the
    # same 403 as for a station it may not see for an organisation (no probing ids).
    station: Callable[[web.Request], Awaitable[str]]


_CENTRAL = web.AppKey("inventory_central", CentralServer)
_GUARDS = web.AppKey("inventory_guards", _Guards)
_MEDIA_TYPES = ("text/csv", "application/csv", "application/json")


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, default=str))


def _problem(status: int, kind: str, message: str, **extra: Any) -> web.Response:
    return _json({"error": kind, "message": message, **extra}, status)


def meter_json(meter: Meter) -> dict[str, Any]:
    return {
        "meterId": meter.meter_id,
        "station": meter.station_id,
        "kind": meter.kind.value,
        "protocol": meter.protocol.value,
        "channel": meter.channel,
        "status": meter.lifecycle.value,
        "shipmentId": meter.shipment_id,
        "createdAt": _iso(meter.created_at),
        "statusChangedAt": _iso(meter.status_changed_at),
    }


def _invalid(problems: tuple[Problem, ...] | list[Problem], what: str) -> web.Response:
    return _problem(
        422,
        "invalid_shipment" if what == "shipment" else "invalid_meter",
        f"{len(problems)} problem(s); nothing was stored",
        problems=[p.to_json() for p in problems],
    )


async def _json_body(request: web.Request) -> dict[str, Any] | web.Response:
    if not request.body_exists:
        return {}
    try:
        data = await request.json()
    except ValueError:
        return _problem(400, "bad_json", "the body is not JSON")
    if not isinstance(data, dict):
        return _problem(400, "bad_json", "the body must be a JSON object")
    return data


# ----------------------------------------------------------------------- shipments
async def _hash_passwords(plain: dict[str, str | None]) -> dict[str, str | None]:
    """scrypt costs ~30 ms a station: hashed on the default executor's worker threads
    (hashlib.scrypt releases the GIL, so they run in parallel), never on the store's
    thread, which keeps storing station messages meanwhile."""
    given = {station_id: pw for station_id, pw in plain.items() if pw is not None}
    hashed = await asyncio.gather(
        *(asyncio.to_thread(passwords.hash_password, pw) for pw in given.values())
    )
    return dict.fromkeys(plain) | dict(zip(given, hashed, strict=True))


async def import_shipment(request: web.Request) -> web.Response:
    central = request.app[_CENTRAL]
    request.app[_GUARDS].admin_only(request)
    media_type = request.content_type
    if media_type not in _MEDIA_TYPES:
        return _problem(415, "unsupported_media_type", "send text/csv or application/json")
    data = await request.read()
    try:
        shipment = parse_shipment(data, media_type)
    except ShipmentInvalid as invalid:
        # Report the stored conflicts of what did parse in the same answer.
        conflicts = await central.store.shipment_conflicts(invalid.valid)
        return _invalid([*invalid.problems, *conflicts], "shipment")
    generated = {
        s.station_id: secrets.token_hex(16)  # hex: never an option-like '-' on a command line
        for s in shipment.stations
        if s.password is None and s.cert_identity is None
    }
    plain = station_passwords(shipment, generated)
    hashes = await _hash_passwords(plain)
    remember = {
        station_id: digest
        for station_id, password in plain.items()
        if password is not None
        and (digest := central.registry.credential_digest(station_id, password)) is not None
    }
    try:
        result = await central.store.import_shipment(
            shipment,
            at=central.wall(),
            hashes=hashes,
            sha256=hashlib.sha256(data).hexdigest(),
            media_type=media_type,
            remember=remember,
        )
    except ShipmentInvalid as invalid:
        return _invalid(invalid.problems, "shipment")
    await central.registry.load()  # the gate answers from memory: mirror the new stations
    log_event(
        log,
        logging.INFO,
        "shipment_imported",
        station=None,
        shipment=result.shipment_id,
        stations=len(result.stations),
        meters=len(result.meters),
    )
    return _json(
        {
            "shipmentId": result.shipment_id,
            "stations": list(result.stations),
            "meters": list(result.meters),
            "generatedPasswords": generated,
        },
        201,
    )


# ----------------------------------------------------------------------- meters
async def list_meters(request: web.Request) -> web.Response:
    station_id = await request.app[_GUARDS].station(request)
    await request.app[_GUARDS].require(request, station_id, None)
    meters = await request.app[_CENTRAL].store.list_meters(station_id)
    return _json({"station": station_id, "meters": [meter_json(m) for m in meters]})


async def add_meter(request: web.Request) -> web.Response:
    central = request.app[_CENTRAL]
    station_id = await request.app[_GUARDS].station(request)
    await request.app[_GUARDS].require(request, station_id, Right.CONFIGURE)
    body = await _json_body(request)
    if isinstance(body, web.Response):
        return body
    try:
        record = parse_meter(body)
    except ShipmentInvalid as invalid:
        return _invalid(invalid.problems, "meter")
    try:
        meter = await central.store.add_meter(station_id, record, at=central.wall())
    except (MeterExists, ChannelTaken) as exc:
        kind = "meter_exists" if isinstance(exc, MeterExists) else "channel_taken"
        return _problem(409, kind, str(exc))
    except UnknownStation as exc:
        return _problem(404, "unknown_station", str(exc))
    log_event(log, logging.INFO, "meter_added", station=station_id, meter=meter.meter_id)
    return _json(meter_json(meter), 201)


async def set_meter_status(request: web.Request) -> web.Response:
    central = request.app[_CENTRAL]
    station_id = await request.app[_GUARDS].station(request)
    await request.app[_GUARDS].require(request, station_id, Right.CONFIGURE)
    body = await _json_body(request)
    if isinstance(body, web.Response):
        return body
    try:
        status = Lifecycle(str(body.get("status")))
    except ValueError:
        names = ", ".join(s.value for s in Lifecycle)
        return _problem(400, "bad_request", f"status: one of {names}")
    meter_id = request.match_info["meter_id"]
    try:
        meter = await central.store.set_meter_status(
            station_id, meter_id, status, at=central.wall()
        )
    except UnknownMeter as exc:
        return _problem(404, "unknown_meter", str(exc))
    except IllegalTransition as exc:
        return _problem(409, "illegal_transition", str(exc), current=exc.current.value)
    except ChannelTaken as exc:
        return _problem(409, "channel_taken", str(exc))
    log_event(
        log, logging.INFO, "meter_status", station=station_id, meter=meter_id, status=status.value
    )
    return _json(meter_json(meter))


# ----------------------------------------------------------------------- services
_COMMAND_STATUS: dict[type[CommandError], tuple[int, str]] = {
    UnknownCommand: (404, "unknown_action"),
    InvalidCommand: (400, "invalid_payload"),
    StationNotConnected: (409, "station_offline"),
    CommandTimeout: (504, "timeout"),
    CommandRejected: (502, "callerror"),
    InvalidStationResponse: (502, "invalid_response"),
    StationRefused: (502, "station_refused"),
    NoAnswer: (504, "no_answer"),
}
_SERVICE_STATUS: dict[type[ServiceError], tuple[int, str]] = {
    BadParams: (400, "bad_params"),
}


def _status_of(exc: Exception, table: dict[Any, tuple[int, str]]) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        if cls in table:
            status: tuple[int, str] = table[cls]
            return status
    return 500, "service_failed"


async def run_service(request: web.Request) -> web.Response:
    central = request.app[_CENTRAL]
    station_id = await request.app[_GUARDS].station(request)
    name = request.match_info["service"]
    entry = SERVICES.get(name)
    if entry is None:
        return _problem(404, "unknown_service", f"services: {', '.join(sorted(SERVICES))}")
    right, service = entry
    await request.app[_GUARDS].require(request, station_id, Right(right))
    body = await _json_body(request)
    if isinstance(body, web.Response):
        return body
    outcome = "failed"
    detail: str | None = "unexpected error (see the log)"
    try:
        result = await service(central, station_id, body)
        outcome, detail = "done", None
    except CommandError as exc:
        status, kind = _status_of(exc, _COMMAND_STATUS)
        outcome, detail = "failed", f"{kind}: {exc.reason}"
        return _problem(status, kind, exc.reason, action=exc.action)
    except ServiceError as exc:
        status, kind = _status_of(exc, _SERVICE_STATUS)
        outcome, detail = "failed", f"{kind}: {exc}"
        return _problem(status, kind, str(exc))
    except UnknownMeter as exc:
        outcome, detail = "failed", f"unknown_meter: {exc}"
        return _problem(404, "unknown_meter", str(exc))
    finally:
        # Run directly, not through the queue: audited here (who, what, when, outcome).
        await central.store.record_audit(
            at=central.wall(),
            actor=request.app[_GUARDS].actor(request),
            station_id=station_id,
            what=[name],
            outcome=outcome,
            detail=detail,
        )
    return _json({"station": station_id, "service": name, "result": result})


def add_routes(
    app: web.Application,
    central: CentralServer,
    *,
    admin_only: AdminOnly,
    require: Require,
    actor: Callable[[web.Request], str],
    station: Callable[[web.Request], Awaitable[str]],
) -> None:
    """Register the inventory and service routes on the API app (from `build_app`, which
    hands over its access checks)."""
    app[_CENTRAL] = central
    app[_GUARDS] = _Guards(admin_only, require, actor, station)
    routes: list[tuple[str, str, Callable[[web.Request], Any]]] = [
        ("POST", "/api/shipments", import_shipment),
        ("GET", "/api/stations/{station_id}/meters", list_meters),
        ("POST", "/api/stations/{station_id}/meters", add_meter),
        ("PUT", "/api/stations/{station_id}/meters/{meter_id}/status", set_meter_status),
        ("POST", "/api/stations/{station_id}/services/{service}", run_service),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
