"""The operator's HTTP JSON API, `/metrics` and the file server: one aiohttp app.

Routes are documented in `central/openapi.yaml`; `tests/central/test_api.py` checks
that the app and the document list the same (method, path) pairs.

- `/api/...` needs `Authorization: Bearer <api.token>` (401 otherwise).
- `/metrics` (Prometheus) is open, as scrapers usually are; bind the API to an
  internal interface.
- `/files/firmware/{name}` and `/files/uploads/{token}/{name}` are for stations,
  which hold no API token: firmware names are public, an upload token is a
  capability issued per GetFile request (see `central.files`).

Command outcomes map to HTTP statuses: 200 the station's answer; 400 a payload that
violates the request schema (with the CALLERROR code the station would answer);
404 an unknown station or action; 409 the station is not connected; 502 the station
answered with a CALLERROR (`code`, `description`) or with an invalid response;
504 no answer within the command timeout.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
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
from central.files import UnknownUpload, safe_name
from central.inventory_api import add_routes as add_inventory_routes
from central.logs import log_event
from central.server import CentralServer
from central.storage import (
    BootPolicy,
    Event,
    EventKind,
    Liveness,
    MeterSample,
    OpenFault,
    Station,
    StationExists,
    UnknownStation,
)
from os3p.formats import parse_date_time
from os3p.messages import to_payload

__all__ = ["build_app"]

log = logging.getLogger(__name__)

_MAX_LIMIT = 10_000
_SERVER_KEY = web.AppKey("central", CentralServer)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Problem(Exception):
    """An API error answered as JSON: {"error": kind, "message": text, ...}."""

    def __init__(self, status: int, kind: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.extra = extra


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, default=str))


@web.middleware
async def _errors_and_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    central = request.app[_SERVER_KEY]
    if request.path.startswith("/api/"):
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        if not hmac.compare_digest(token.encode(), central.config.api.token.encode()):
            return _json({"error": "unauthorized", "message": "missing or wrong bearer token"}, 401)
    try:
        return await handler(request)
    except _Problem as problem:
        return _json(
            {"error": problem.kind, "message": problem.message, **problem.extra}, problem.status
        )
    except UnknownStation as exc:
        return _json({"error": "unknown_station", "message": str(exc)}, 404)


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.body_exists:
        return {}
    try:
        data = await request.json()
    except ValueError:
        raise _Problem(400, "bad_json", "the body is not JSON") from None
    if not isinstance(data, dict):
        raise _Problem(400, "bad_json", "the body must be a JSON object")
    return data


def _time_arg(request: web.Request, name: str, default: datetime) -> datetime:
    text = request.query.get(name)
    if not text:
        return default
    try:
        return parse_date_time(text)
    except ValueError:
        raise _Problem(400, "bad_query", f"{name}: not an RFC 3339 date-time: {text!r}") from None


def _limit_arg(request: web.Request, default: int) -> int:
    text = request.query.get("limit")
    if not text:
        return default
    if not text.isdigit() or not 1 <= int(text) <= _MAX_LIMIT:
        raise _Problem(400, "bad_query", f"limit: an integer 1..{_MAX_LIMIT}")
    return int(text)


def _station_id(request: web.Request) -> str:
    station_id = request.match_info["station_id"]
    if request.app[_SERVER_KEY].registry.get(station_id) is None:
        raise UnknownStation(station_id)
    return station_id


def _fault_json(fault: OpenFault) -> dict[str, Any]:
    return {
        "errorCode": fault.error_code,
        "vendorId": fault.vendor_id or None,
        "vendorErrorCode": fault.vendor_error_code or None,
        "info": fault.info,
        "raisedAt": _iso(fault.raised_at),
        "lastRaisedAt": _iso(fault.last_raised_at),
    }


async def _station_json(
    central: CentralServer,
    station: Station,
    faults: list[OpenFault],
    liveness_of: dict[str, Liveness] | None = None,
) -> dict[str, Any]:
    store = central.store
    sid = station.station_id
    liveness = await store.get_liveness(sid) if liveness_of is None else liveness_of.get(sid)
    boot = await store.last_boot(sid)
    lights = await store.current_lights(sid)
    modes = await store.current_modes(sid)
    answered = central.registry.answered(sid)
    return {
        "id": sid,
        "connected": central.connected(sid),
        "connectedSince": _iso(liveness.connected_since)
        if liveness and liveness.connected
        else None,
        "lastSeen": _iso(liveness.last_seen if liveness else None),
        "policy": station.policy.value,
        "heartbeatInterval": station.heartbeat_interval,
        "bootStatus": answered.value if answered else None,
        "accepted": central.registry.is_accepted(sid),
        "hasPassword": station.has_password,
        "certIdentity": station.cert_identity,
        "firmwareVersion": boot.firmware_version if boot else None,
        "boot": boot.to_payload() if boot else None,
        "lights": {
            str(c): {
                "status": s.status,
                "timestamp": _iso(s.timestamp),
                "unexpected": s.unexpected,
            }
            for c, s in sorted(lights.items())
        },
        "modes": {
            str(c): {"mode": m.mode, "timestamp": _iso(m.timestamp), "stationWide": m.station_wide}
            for c, m in sorted(modes.items())
        },
        "openFaults": [_fault_json(f) for f in faults if f.station_id == sid],
    }


# ----------------------------------------------------------------------- stations
async def list_stations(request: web.Request) -> web.Response:
    central = request.app[_SERVER_KEY]
    faults = await central.store.open_faults(None)
    liveness = {live.station_id: live for live in await central.store.list_liveness()}
    stations = [await _station_json(central, s, faults, liveness) for s in central.registry.all()]
    return _json({"stations": stations})


async def get_station(request: web.Request) -> web.Response:
    central = request.app[_SERVER_KEY]
    station_id = _station_id(request)
    station = central.registry.get(station_id)
    assert station is not None  # _station_id checked it
    faults = await central.store.open_faults(station_id)
    return _json(await _station_json(central, station, faults))


def _policy(value: Any, default: BootPolicy) -> BootPolicy:
    if value is None:
        return default
    try:
        return BootPolicy(value)
    except ValueError:
        raise _Problem(400, "bad_request", "policy: one of Accepted, Pending, Rejected") from None


def _interval(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _Problem(400, "bad_request", "heartbeatInterval: a non-negative integer (seconds)")
    return value


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise _Problem(400, "bad_request", f"{key}: a non-empty string")
    return value


async def add_station(request: web.Request) -> web.Response:
    central = request.app[_SERVER_KEY]
    body = await _body(request)
    unknown = set(body) - {"id", "password", "policy", "heartbeatInterval", "certIdentity"}
    if unknown:
        raise _Problem(400, "bad_request", f"unknown fields: {', '.join(sorted(unknown))}")
    station_id = _optional_str(body, "id")
    if station_id is None:
        raise _Problem(400, "bad_request", "id: required")
    try:
        station = await central.add_station(
            station_id,
            password=_optional_str(body, "password"),
            policy=_policy(body.get("policy"), BootPolicy.ACCEPTED),
            heartbeat_interval=_interval(body.get("heartbeatInterval")) or 300,
            cert_identity=_optional_str(body, "certIdentity"),
        )
    except StationExists as exc:
        raise _Problem(409, "station_exists", str(exc)) from None
    return _json(await _station_json(central, station, []), 201)


async def remove_station(request: web.Request) -> web.Response:
    central = request.app[_SERVER_KEY]
    await central.remove_station(_station_id(request))
    return web.Response(status=204)


async def set_policy(request: web.Request) -> web.Response:
    central = request.app[_SERVER_KEY]
    station_id = _station_id(request)
    body = await _body(request)
    if "policy" not in body:
        raise _Problem(400, "bad_request", "policy: required")
    station = await central.set_policy(
        station_id,
        _policy(body["policy"], BootPolicy.ACCEPTED),
        _interval(body.get("heartbeatInterval")),
    )
    faults = await central.store.open_faults(station_id)
    return _json(await _station_json(central, station, faults))


async def accept_station(request: web.Request) -> web.Response:
    central = request.app[_SERVER_KEY]
    station_id = _station_id(request)
    body = await _body(request)
    trigger: dict[str, Any] | None
    try:
        _, response = await central.accept(station_id, _interval(body.get("heartbeatInterval")))
        trigger = None if response is None else {"status": response.status.value}
    except CommandError as exc:
        # The policy is set; the station will be Accepted at its next boot anyway.
        trigger = {"error": type(exc).__name__, "message": exc.reason}
    station = central.registry.get(station_id)
    assert station is not None  # _station_id checked it; accept() kept it
    faults = await central.store.open_faults(station_id)
    return _json({"station": await _station_json(central, station, faults), "trigger": trigger})


# ----------------------------------------------------------------------- commands
def _command_problem(exc: CommandError) -> _Problem:
    match exc:
        case UnknownCommand():
            return _Problem(404, "unknown_action", exc.reason)
        case InvalidCommand():
            return _Problem(400, "invalid_payload", exc.description, code=exc.code)
        case StationNotConnected():
            return _Problem(409, "station_offline", exc.reason)
        case CommandTimeout():
            return _Problem(504, "timeout", exc.reason)
        case CommandRejected():
            return _Problem(
                502,
                "callerror",
                exc.reason,
                code=exc.code,
                description=exc.description,
                details=exc.details,
            )
        case InvalidStationResponse():
            return _Problem(502, "invalid_response", exc.reason)
        case _:
            return _Problem(500, "command_failed", exc.reason)


async def send_command(request: web.Request) -> web.Response:
    central = request.app[_SERVER_KEY]
    station_id = _station_id(request)
    action = request.match_info["action"]
    body = await _body(request)
    try:
        response = await central.commander.send(station_id, action, body)
    except CommandError as exc:
        raise _command_problem(exc) from None
    return _json({"station": station_id, "action": action, "response": to_payload(response)})


# ----------------------------------------------------------------------- history
def _event_json(event: Event) -> dict[str, Any]:
    return {
        "kind": event.kind.value,
        "occurredAt": _iso(event.occurred_at),
        "receivedAt": _iso(event.received_at),
        "details": dict(event.details),
    }


async def list_events(request: web.Request) -> web.Response:
    central = request.app[_SERVER_KEY]
    station_id = _station_id(request)
    now = central.wall()
    until = _time_arg(request, "to", now + timedelta(seconds=1))
    since = _time_arg(request, "from", until - timedelta(days=1))
    kinds: set[EventKind] | None = None
    if request.query.get("kind"):
        try:
            kinds = {EventKind(k) for k in request.query["kind"].split(",")}
        except ValueError:
            names = ", ".join(k.value for k in EventKind)
            raise _Problem(400, "bad_query", f"kind: comma-separated, of {names}") from None
    events = await central.store.events(
        station_id, since=since, until=until, kinds=kinds, limit=_limit_arg(request, 1000)
    )
    return _json({"station": station_id, "events": [_event_json(e) for e in events]})


def _sample_json(sample: MeterSample) -> dict[str, Any]:
    return {
        "timestamp": _iso(sample.timestamp),
        "measurand": sample.measurand,
        "value": sample.value,
        "unit": sample.unit,
        "location": sample.location,
        "context": sample.context,
        "format": sample.format,
        "receivedAt": _iso(sample.received_at),
    }


async def list_meter_values(request: web.Request) -> web.Response:
    central = request.app[_SERVER_KEY]
    station_id = _station_id(request)
    now = central.wall()
    until = _time_arg(request, "to", now + timedelta(seconds=1))
    since = _time_arg(request, "from", until - timedelta(days=1))
    samples = await central.store.meter_values(
        station_id,
        since=since,
        until=until,
        measurand=request.query.get("measurand") or None,
        limit=_limit_arg(request, 1000),
    )
    return _json({"station": station_id, "meterValues": [_sample_json(s) for s in samples]})


async def list_files(request: web.Request) -> web.Response:
    central = request.app[_SERVER_KEY]
    station_id = _station_id(request)
    files = await central.store.uploaded_files(station_id, request.query.get("requestId"))
    return _json(
        {
            "station": station_id,
            "files": [
                {
                    "requestId": f.request_id,
                    "fileName": f.file_name,
                    "size": f.size,
                    "sha256": f.sha256,
                    "uploadedAt": _iso(f.uploaded_at),
                }
                for f in files
            ],
        }
    )


# ----------------------------------------------------------------------- metrics, files
async def metrics(request: web.Request) -> web.Response:
    text = request.app[_SERVER_KEY].metrics.render()
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


async def firmware(request: web.Request) -> web.StreamResponse:
    path = request.app[_SERVER_KEY].files.firmware_path(request.match_info["name"])
    if path is None:
        raise _Problem(404, "not_found", "no such firmware file")
    return web.FileResponse(path)


async def upload(request: web.Request) -> web.Response:
    central = request.app[_SERVER_KEY]
    token, name = request.match_info["token"], request.match_info["name"]
    if not safe_name(name):
        raise _Problem(400, "bad_name", "file names: letters, digits, . _ + -")

    async def chunks_of_body() -> Any:
        async for chunk in request.content.iter_chunked(64 * 1024):
            yield chunk

    async def chunks_of_form() -> Any:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if getattr(part, "filename", None) is None:
                continue
            while chunk := await part.read_chunk(64 * 1024):  # type: ignore[union-attr]
                yield chunk
            return

    multipart = request.content_type.startswith("multipart/")
    try:
        record = await central.files.receive_upload(
            token, name, chunks_of_form() if multipart else chunks_of_body()
        )
    except UnknownUpload:
        raise _Problem(404, "unknown_upload", "no such upload location (expired?)") from None
    log_event(
        log,
        logging.INFO,
        "file_uploaded",
        station=record.station_id,
        request_id=record.request_id,
        name=name,
        size=record.size,
        sha256=record.sha256,
    )
    return _json({"fileName": name, "size": record.size, "sha256": record.sha256}, 201)


def build_app(central: CentralServer) -> web.Application:
    app = web.Application(middlewares=[_errors_and_auth], client_max_size=1 << 20)
    app[_SERVER_KEY] = central
    app.router.add_get("/api/stations", list_stations)
    app.router.add_post("/api/stations", add_station)
    app.router.add_get("/api/stations/{station_id}", get_station)
    app.router.add_delete("/api/stations/{station_id}", remove_station)
    app.router.add_put("/api/stations/{station_id}/policy", set_policy)
    app.router.add_post("/api/stations/{station_id}/accept", accept_station)
    app.router.add_post("/api/stations/{station_id}/commands/{action}", send_command)
    app.router.add_get("/api/stations/{station_id}/events", list_events)
    app.router.add_get("/api/stations/{station_id}/meter-values", list_meter_values)
    app.router.add_get("/api/stations/{station_id}/files", list_files)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/files/firmware/{name}", firmware)
    app.router.add_put("/files/uploads/{token}/{name}", upload)
    app.router.add_post("/files/uploads/{token}/{name}", upload)
    add_inventory_routes(app, central)
    return app
