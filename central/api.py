"""The operator's HTTP JSON API, `/metrics` and the file server: one aiohttp app.

Routes are documented in `central/openapi.yaml`; `tests/central/test_api.py` checks
that the app and the document list the same (method, path) pairs.

- `/api/...` needs `Authorization: Bearer <token>` (401 otherwise): the `api.token`
  of the configuration is the administrator; an organisation's token (`central.orgs`)
  sees only the stations it owns or holds a right on, and gets 403 otherwise.
- `/metrics` (Prometheus) is open, as scrapers usually are; bind the API to an
  internal interface.
- `/files/firmware/{name}` and `/files/uploads/{token}/{name}` are for stations,
  which hold no API token: firmware names are public, an upload token is a
  capability issued per GetFile request (see `central.files`).

Commands go through the persistent queue (`central.dispatcher`):
`POST /api/stations/{id}/requests` answers 202 with the correlation id at once;
`GET /api/requests/{correlationId}` has the status and per-operation results.
The synchronous `POST /api/stations/{id}/commands/{action}` is a submit (priority 9,
bypassRetry) and a wait on top: the queue keeps one command in flight per station,
audits it and checks rights, and the route stays what it was. Its outcomes map to
HTTP statuses: 200 the station's answer; 400 a payload that violates the request
schema (with the CALLERROR code the station would answer); 403 an organisation
without the right; 404 an unknown station or action; 409 the station is not
connected; 502 the station answered with a CALLERROR (`code`, `description`) or
with an invalid response; 504 no answer within the command timeout; 202 with the
correlation id when the queue did not get to it within the wait.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from central.dispatcher import Dispatcher, InvalidRequest, Operation, Submission
from central.errors import CommandError
from central.files import UnknownUpload, safe_name
from central.inventory_api import add_routes as add_inventory_routes
from central.logs import log_event
from central.operations import Right, UnknownOperation
from central.orgs import Forbidden, Principal, hash_token, missing_rights, new_token
from central.queueing import DEFAULT_PRIORITY, MAX_PRIORITY, CommandStatus
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
    StationState,
    UnknownStation,
)
from central.storage.commands import (
    AuditRecord,
    CommandRecord,
    Organisation,
    OrganisationExists,
    UnknownOrganisation,
)
from central.webhooks import new_secret as new_webhook_secret
from os3p.formats import parse_date_time

__all__ = ["build_app"]

log = logging.getLogger(__name__)

_MAX_LIMIT = 10_000
_SERVER_KEY = web.AppKey("central", CentralServer)
_DISPATCHER_KEY = web.AppKey("dispatcher", Dispatcher)
_PRINCIPAL = web.RequestKey("principal", Principal)
_RIGHTS = web.RequestKey("station_rights", dict[str, tuple[bool, frozenset[str]]])

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


async def _principal(central: CentralServer, token: str) -> Principal | None:
    if hmac.compare_digest(token.encode(), central.config.api.token.encode()):
        return Principal(None)
    if not token:
        return None
    organisation = await central.store.organisation_of_token(hash_token(token))
    return None if organisation is None else Principal(organisation)


@web.middleware
async def _errors_and_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    central = request.app[_SERVER_KEY]
    if request.path.startswith("/api/"):
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        principal = await _principal(central, token)
        if principal is None:
            return _json({"error": "unauthorized", "message": "missing or wrong bearer token"}, 401)
        request[_PRINCIPAL] = principal
    try:
        return await handler(request)
    except _Problem as problem:
        return _json(
            {"error": problem.kind, "message": problem.message, **problem.extra}, problem.status
        )
    except UnknownStation as exc:
        return _json({"error": "unknown_station", "message": str(exc)}, 404)
    except UnknownOrganisation as exc:
        return _json({"error": "unknown_organisation", "message": str(exc)}, 404)
    except Forbidden as exc:
        return _json(
            {
                "error": "forbidden",
                "message": str(exc),
                "station": exc.station_id,
                "missing": [str(r) for r in exc.missing],
            },
            403,
        )


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


async def _rights(request: web.Request, station_id: str) -> tuple[bool, frozenset[str]]:
    """The calling organisation's (owner, granted rights) on the station, read once per
    request (`_station_id` and `_require` both need them)."""
    cache = request.get(_RIGHTS)
    if cache is None:
        cache = request[_RIGHTS] = {}
    found = cache.get(station_id)
    if found is None:
        principal = _principal_of(request)
        assert principal.organisation is not None
        store = request.app[_SERVER_KEY].store
        found = cache[station_id] = await store.station_rights(principal.organisation, station_id)
    return found


async def _station_id(request: web.Request) -> str:
    """The station the route names; 404 if unknown, but only to the administrator.

    An organisation gets the same 403 for a station that does not exist as for one
    it has no right at all on, so it cannot probe which station ids are in use.
    """
    station_id = request.match_info["station_id"]
    central = request.app[_SERVER_KEY]
    principal = _principal_of(request)
    if principal.organisation is not None:
        owner, granted = await _rights(request, station_id)
        if not owner and not granted:
            raise Forbidden(principal, station_id, ())
    if central.registry.get(station_id) is None:
        raise UnknownStation(station_id)
    return station_id


def _principal_of(request: web.Request) -> Principal:
    principal: Principal = request[_PRINCIPAL]
    return principal


def _admin_only(request: web.Request) -> None:
    principal = _principal_of(request)
    if not principal.is_admin:
        raise _Problem(
            403,
            "forbidden",
            f"organisation {principal.organisation!r}: this route is for the administrator",
        )


async def _require(request: web.Request, station_id: str, right: Right | None) -> None:
    """Forbidden unless the caller may use `right` on the station (None: may see it)."""
    principal = _principal_of(request)
    if principal.organisation is None:
        return
    owner, granted = await _rights(request, station_id)
    if right is None:
        if not owner and not granted:
            raise Forbidden(principal, station_id, ())
        return
    if missing_rights({right}, owner=owner, granted=granted):
        raise Forbidden(principal, station_id, {right})


def _fault_json(fault: OpenFault) -> dict[str, Any]:
    return {
        "errorCode": fault.error_code,
        "vendorId": fault.vendor_id or None,
        "vendorErrorCode": fault.vendor_error_code or None,
        "info": fault.info,
        "raisedAt": _iso(fault.raised_at),
        "lastRaisedAt": _iso(fault.last_raised_at),
    }


def _station_json(
    central: CentralServer,
    station: Station,
    faults: list[OpenFault],
    liveness: Liveness | None,
    state: StationState,
) -> dict[str, Any]:
    sid = station.station_id
    boot, lights, modes = state.boot, state.lights, state.modes
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
        "openFaults": [_fault_json(f) for f in faults],
    }


# ----------------------------------------------------------------------- stations
async def _one_station_json(central: CentralServer, station: Station) -> dict[str, Any]:
    sid = station.station_id
    faults = await central.store.open_faults(sid)
    liveness = await central.store.get_liveness(sid)
    states = await central.store.station_states([sid])
    return _station_json(central, station, faults, liveness, states[sid])


async def list_stations(request: web.Request) -> web.Response:
    central = request.app[_SERVER_KEY]
    faults = await central.store.open_faults(None)
    liveness = {live.station_id: live for live in await central.store.list_liveness()}
    visible = central.registry.all()
    principal = _principal_of(request)
    if principal.organisation is not None:
        org = await central.store.get_organisation(principal.organisation)
        mine = set() if org is None else set(org.stations) | set(org.grants)
        visible = [s for s in visible if s.station_id in mine]
    # Whole-table queries, grouped here: one store call per part, not per station.
    states = await central.store.station_states(
        None if principal.organisation is None else [s.station_id for s in visible]
    )
    faults_of: dict[str, list[OpenFault]] = {}
    for fault in faults:
        faults_of.setdefault(fault.station_id, []).append(fault)
    stations = [
        _station_json(
            central,
            s,
            faults_of.get(s.station_id, []),
            liveness.get(s.station_id),
            states.get(s.station_id) or StationState(),
        )
        for s in visible
    ]
    return _json({"stations": stations})


async def get_station(request: web.Request) -> web.Response:
    central = request.app[_SERVER_KEY]
    station_id = await _station_id(request)
    await _require(request, station_id, None)
    station = central.registry.get(station_id)
    assert station is not None  # _station_id checked it
    return _json(await _one_station_json(central, station))


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
    _admin_only(request)
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
    return _json(await _one_station_json(central, station), 201)


async def remove_station(request: web.Request) -> web.Response:
    _admin_only(request)
    central = request.app[_SERVER_KEY]
    await central.remove_station(await _station_id(request))
    return web.Response(status=204)


async def set_policy(request: web.Request) -> web.Response:
    _admin_only(request)
    central = request.app[_SERVER_KEY]
    station_id = await _station_id(request)
    body = await _body(request)
    if "policy" not in body:
        raise _Problem(400, "bad_request", "policy: required")
    station = await central.set_policy(
        station_id,
        _policy(body["policy"], BootPolicy.ACCEPTED),
        _interval(body.get("heartbeatInterval")),
    )
    return _json(await _one_station_json(central, station))


async def accept_station(request: web.Request) -> web.Response:
    _admin_only(request)
    central = request.app[_SERVER_KEY]
    station_id = await _station_id(request)
    body = await _body(request)
    trigger: dict[str, Any] | None
    try:
        _, response = await central.accept(station_id, _interval(body.get("heartbeatInterval")))
        trigger = None if response is None else {"status": response.status.value}
    except CommandError as exc:
        # The policy is set; the station will be Accepted at its next boot anyway.
        trigger = {"error": type(exc).__name__, "message": exc.reason}
    # Its TriggerMessage goes straight to the station, not through the queue (an
    # operator accepting a station waits for that boot): audited here instead.
    await central.store.record_audit(
        at=central.wall(),
        actor=_principal_of(request).actor,
        station_id=station_id,
        what=["Accept"] if trigger is None else ["Accept", "TriggerMessage"],
        outcome="failed" if trigger is not None and "error" in trigger else "done",
        detail=None if trigger is None else json.dumps(trigger, separators=(",", ":")),
    )
    station = central.registry.get(station_id)
    assert station is not None  # _station_id checked it; accept() kept it
    return _json({"station": await _one_station_json(central, station), "trigger": trigger})


# ----------------------------------------------------------------------- commands
# The HTTP status of each stored error kind (`central.dispatcher.error_json`).
_ERROR_STATUS = {
    "unknown_action": 404,
    "invalid_payload": 400,
    "station_offline": 409,
    "timeout": 504,
    "callerror": 502,
    "invalid_response": 502,
    "interrupted": 503,
    "service_failed": 500,
}
# How long the synchronous route waits beyond the command timeout for the queue.
_SYNC_SLACK = 10.0


def _operation_json(record: CommandRecord) -> list[dict[str, Any]]:
    return [
        {
            "action": op.name,
            "payload": op.params,
            "status": op.status,
            "result": op.result,
            "error": op.error,
            "attempts": op.attempts,
            "finishedAt": _iso(op.finished_at),
        }
        for op in record.operations
    ]


def _command_json(record: CommandRecord) -> dict[str, Any]:
    return {
        "correlationId": record.correlation_id,
        "station": record.station_id,
        "organisation": record.organisation,
        "status": str(record.status),
        "priority": record.priority,
        "scheduleTime": _iso(record.schedule_time),
        "deadline": _iso(record.deadline),
        "bypassRetry": record.bypass_retry,
        "attempts": record.attempts,
        "retryAt": _iso(record.retry_at),
        "submittedAt": _iso(record.submitted_at),
        "finishedAt": _iso(record.finished_at),
        "operations": _operation_json(record),
    }


async def _submit(request: web.Request, submission: Submission) -> CommandRecord:
    dispatcher = request.app[_DISPATCHER_KEY]
    try:
        return await dispatcher.submit(_principal_of(request), submission)
    except InvalidRequest as exc:
        extra: dict[str, Any] = {}
        if exc.position is not None:
            extra["operation"] = exc.position
        if exc.code is not None:
            extra["code"] = exc.code
        raise _Problem(400, "invalid_payload", str(exc), **extra) from None


async def send_command(request: web.Request) -> web.Response:
    central = request.app[_SERVER_KEY]
    station_id = await _station_id(request)
    action = request.match_info["action"]
    body = await _body(request)
    try:
        record = await _submit(
            request,
            Submission(
                station_id, (Operation(action, body),), priority=MAX_PRIORITY, bypass_retry=True
            ),
        )
    except UnknownOperation as exc:
        raise _Problem(404, "unknown_action", str(exc)) from None
    cid = record.correlation_id
    waited = await request.app[_DISPATCHER_KEY].wait(
        cid, central.config.command_timeout + _SYNC_SLACK
    )
    assert waited is not None  # stored above; commands are never deleted
    if not waited.status.final:
        return _json({"correlationId": cid, "status": str(waited.status)}, 202)
    op = waited.operations[0]
    if op.status == "done":
        answer = {"station": station_id, "action": action, "response": op.result}
        if action == "GetFile" and "requestId" in op.params:
            answer["requestId"] = op.params["requestId"]  # matches the upload (files, events)
        return _json({**answer, "correlationId": cid})
    error = dict(op.error or {"error": "expired", "message": "the deadline passed"})
    kind = str(error.pop("error"))
    message = str(error.pop("message", kind))
    raise _Problem(_ERROR_STATUS.get(kind, 500), kind, message, correlationId=cid, **error)


def _time_field(body: dict[str, Any], key: str) -> datetime | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Problem(400, "bad_request", f"{key}: an RFC 3339 date-time")
    try:
        return parse_date_time(value)
    except ValueError:
        raise _Problem(400, "bad_request", f"{key}: not an RFC 3339 date-time: {value!r}") from None


def _operations_field(body: dict[str, Any]) -> tuple[Operation, ...]:
    if "operations" in body:
        if "action" in body or "payload" in body:
            raise _Problem(400, "bad_request", "give either operations or action/payload")
        items = body["operations"]
        if not isinstance(items, list) or not items:
            raise _Problem(400, "bad_request", "operations: a non-empty list")
    else:
        items = [{"action": body.get("action"), "payload": body.get("payload", {})}]
    operations = []
    for position, item in enumerate(items):
        where = f"operations[{position}]" if "operations" in body else "action"
        if not isinstance(item, dict) or set(item) - {"action", "payload"}:
            raise _Problem(400, "bad_request", f"{where}: an object with action and payload")
        action, payload = item.get("action"), item.get("payload", {})
        if not isinstance(action, str) or not action:
            raise _Problem(400, "bad_request", f"{where}.action: required, a string")
        if not isinstance(payload, dict):
            raise _Problem(400, "bad_request", f"{where}.payload: an object")
        operations.append(Operation(action, payload))
    return tuple(operations)


async def submit_request(request: web.Request) -> web.Response:
    station_id = await _station_id(request)
    body = await _body(request)
    unknown = set(body) - {
        "operations",
        "action",
        "payload",
        "priority",
        "scheduleTime",
        "deadline",
        "bypassRetry",
    }
    if unknown:
        raise _Problem(400, "bad_request", f"unknown fields: {', '.join(sorted(unknown))}")
    priority = body.get("priority", DEFAULT_PRIORITY)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise _Problem(400, "bad_request", f"priority: an integer 0..{MAX_PRIORITY}")
    bypass = body.get("bypassRetry", False)
    if not isinstance(bypass, bool):
        raise _Problem(400, "bad_request", "bypassRetry: true or false")
    submission = Submission(
        station_id,
        _operations_field(body),
        priority=priority,
        schedule_time=_time_field(body, "scheduleTime"),
        deadline=_time_field(body, "deadline"),
        bypass_retry=bypass,
    )
    try:
        record = await _submit(request, submission)
    except UnknownOperation as exc:
        raise _Problem(400, "unknown_action", str(exc)) from None
    return _json(_command_json(record), 202)


async def _visible_command(request: web.Request, correlation_id: str) -> CommandRecord:
    record = await request.app[_SERVER_KEY].store.get_command(correlation_id)
    principal = _principal_of(request)
    # Another organisation's request is answered as unknown: ids are not a directory.
    if record is None or not (principal.is_admin or record.organisation == principal.organisation):
        raise _Problem(404, "unknown_request", f"no request {correlation_id!r}")
    return record


async def get_request(request: web.Request) -> web.Response:
    cid = request.match_info["correlation_id"]
    record = await _visible_command(request, cid)
    body = _command_json(record)
    state = await request.app[_SERVER_KEY].store.delivery_state(cid)
    body["notification"] = (
        None if state is None else {"state": state[0], "attempts": state[1], "error": state[2]}
    )
    return _json(body)


async def list_requests(request: web.Request) -> web.Response:
    central = request.app[_SERVER_KEY]
    status: CommandStatus | None = None
    if request.query.get("status"):
        try:
            status = CommandStatus(request.query["status"])
        except ValueError:
            names = ", ".join(s.value for s in CommandStatus)
            raise _Problem(400, "bad_query", f"status: one of {names}") from None
    records = await central.store.list_commands(
        station_id=request.query.get("station") or None,
        organisation=_principal_of(request).organisation,
        status=status,
        limit=_limit_arg(request, 100),
    )
    return _json({"requests": [_command_json(r) for r in records]})


# ----------------------------------------------------------------------- organisations
def _organisation_json(org: Organisation) -> dict[str, Any]:
    return {
        "name": org.name,
        "createdAt": _iso(org.created_at),
        "stations": sorted(org.stations),
        "grants": {sid: sorted(rights) for sid, rights in sorted(org.grants.items())},
        "webhook": org.webhook,
        "tokens": org.tokens,
    }


async def list_organisations(request: web.Request) -> web.Response:
    _admin_only(request)
    orgs = await request.app[_SERVER_KEY].store.list_organisations()
    return _json({"organisations": [_organisation_json(o) for o in orgs]})


async def add_organisation(request: web.Request) -> web.Response:
    _admin_only(request)
    central = request.app[_SERVER_KEY]
    body = await _body(request)
    name = _optional_str(body, "name")
    if name is None or set(body) - {"name"}:
        raise _Problem(400, "bad_request", "a body of exactly {name}")
    try:
        org = await central.store.add_organisation(name, at=central.wall())
    except OrganisationExists as exc:
        raise _Problem(409, "organisation_exists", str(exc)) from None
    log_event(log, logging.INFO, "organisation_added", station=None, organisation=name)
    return _json(_organisation_json(org), 201)


async def add_token(request: web.Request) -> web.Response:
    _admin_only(request)
    central = request.app[_SERVER_KEY]
    name = request.match_info["name"]
    token = new_token()
    await central.store.add_org_token(name, hash_token(token), at=central.wall())
    log_event(log, logging.INFO, "organisation_token", station=None, organisation=name)
    return _json({"organisation": name, "token": token}, 201)


async def _org_station_change(request: web.Request) -> tuple[str, str, bool]:
    _admin_only(request)
    return (
        request.match_info["name"],
        await _station_id(request),
        request.method == "PUT",
    )


async def set_owner(request: web.Request) -> web.Response:
    name, station_id, owned = await _org_station_change(request)
    await request.app[_SERVER_KEY].store.set_owner(name, station_id, owned=owned)
    return web.Response(status=204)


async def set_grant(request: web.Request) -> web.Response:
    name, station_id, granted = await _org_station_change(request)
    try:
        right = Right(request.match_info["right"])
    except ValueError:
        names = ", ".join(r.value for r in Right)
        raise _Problem(400, "bad_request", f"right: one of {names}") from None
    await request.app[_SERVER_KEY].store.set_grant(name, station_id, str(right), granted=granted)
    return web.Response(status=204)


def _own_organisation(request: web.Request) -> str:
    principal = _principal_of(request)
    if principal.organisation is None:
        raise _Problem(400, "not_an_organisation", "use an organisation's token for this route")
    return principal.organisation


async def get_own_organisation(request: web.Request) -> web.Response:
    org = await request.app[_SERVER_KEY].store.get_organisation(_own_organisation(request))
    if org is None:  # deleted meanwhile; organisations are not deleted today
        raise UnknownOrganisation(_own_organisation(request))
    body = _organisation_json(org)
    del body["tokens"]
    return _json(body)


async def set_webhook(request: web.Request) -> web.Response:
    central = request.app[_SERVER_KEY]
    name = _own_organisation(request)
    body = await _body(request)
    url = body.get("url")
    if set(body) - {"url"} or "url" not in body:
        raise _Problem(400, "bad_request", "a body of exactly {url} (null removes it)")
    if url is not None:
        parsed = urlsplit(url) if isinstance(url, str) else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise _Problem(400, "bad_request", "url: an http(s) URL")
    if url is None:
        await central.store.set_webhook(name, None, at=central.wall())
        return _json({"organisation": name, "webhook": None})
    # A fresh secret with every change: shown here once, it signs every notification.
    secret = new_webhook_secret()
    await central.store.set_webhook(name, url, at=central.wall(), secret=secret)
    return _json({"organisation": name, "webhook": url, "secret": secret})


def _audit_json(entry: AuditRecord) -> dict[str, Any]:
    return {
        "at": _iso(entry.at),
        "actor": entry.actor,
        "station": entry.station_id,
        "correlationId": entry.correlation_id,
        "operations": entry.what,
        "outcome": entry.outcome,
        "detail": entry.detail,
    }


async def list_audit(request: web.Request) -> web.Response:
    principal = _principal_of(request)
    actor = request.query.get("actor") or None
    if principal.organisation is not None:
        actor = principal.organisation  # an organisation sees its own entries only
    entries = await request.app[_SERVER_KEY].store.audit_trail(
        station_id=request.query.get("station") or None,
        actor=actor,
        limit=_limit_arg(request, 100),
    )
    return _json({"audit": [_audit_json(e) for e in entries]})


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
    station_id = await _station_id(request)
    await _require(request, station_id, Right.READ)
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
    station_id = await _station_id(request)
    await _require(request, station_id, Right.READ)
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
    station_id = await _station_id(request)
    await _require(request, station_id, Right.READ)
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


def build_app(central: CentralServer, dispatcher: Dispatcher) -> web.Application:
    app = web.Application(middlewares=[_errors_and_auth], client_max_size=1 << 20)
    app[_SERVER_KEY] = central
    app[_DISPATCHER_KEY] = dispatcher
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
    app.router.add_post("/api/stations/{station_id}/requests", submit_request)
    app.router.add_get("/api/requests", list_requests)
    app.router.add_get("/api/requests/{correlation_id}", get_request)
    app.router.add_get("/api/audit", list_audit)
    app.router.add_get("/api/organisations", list_organisations)
    app.router.add_post("/api/organisations", add_organisation)
    app.router.add_post("/api/organisations/{name}/tokens", add_token)
    for method in ("PUT", "DELETE"):
        app.router.add_route(method, "/api/organisations/{name}/stations/{station_id}", set_owner)
        app.router.add_route(
            method, "/api/organisations/{name}/grants/{station_id}/{right}", set_grant
        )
    app.router.add_get("/api/organisation", get_own_organisation)
    app.router.add_put("/api/organisation/webhook", set_webhook)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/files/firmware/{name}", firmware)
    app.router.add_put("/files/uploads/{token}/{name}", upload)
    app.router.add_post("/files/uploads/{token}/{name}", upload)
    add_inventory_routes(
        app,
        central,
        admin_only=_admin_only,
        require=_require,
        actor=lambda request: _principal_of(request).actor,
        station=_station_id,
    )
    return app
