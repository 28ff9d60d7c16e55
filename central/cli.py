"""`os3p-central`: run the central (`serve`) or operate a running one over its HTTP API.

    os3p-central serve --config /etc/os3p-central/central.toml
    os3p-central --api http://127.0.0.1:8181 --token ... stations
    os3p-central --config central.toml add-station SUBS001 --password s3cret --policy Pending
    os3p-central accept SUBS001
    os3p-central call SUBS001 OverrideStreetlight '{"action": "On", "contactorId": 1}'
    os3p-central events SUBS001 --from 2026-11-23T00:00:00Z
    os3p-central meter-values SUBS001 --measurand Voltage.L1N
    os3p-central profile SUBS001 --contactor 1 --schedule "on at sunset+10min, off at 23:00"
    os3p-central submit SUBS001 Reset '{}' --priority 7 --schedule 2026-11-24T02:00:00Z
    os3p-central requests --station SUBS001;  os3p-central request <correlationId>
    os3p-central org add acme;  os3p-central org token acme;  os3p-central org own acme SUBS001
    os3p-central org grant acme SUBS002 read;  os3p-central audit --station SUBS001
    os3p-central import-shipment delivery-2026-11.csv
    os3p-central meters SUBS001
    os3p-central read SUBS001 periodic --from 2026-11-01T00:00:00Z --to 2026-11-08T00:00:00Z

The operator commands read `--api` and `--token` from the options, else from
OS3P_CENTRAL_API / OS3P_CENTRAL_TOKEN, else from the `[api]` table of `--config`.
Exit codes: 0 done, 1 the API or the station refused, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from central.config import ConfigError, load_config
from central.meters import Lifecycle
from central.profiles import ProfileError, build_profile_request
from os3p.formats import parse_date_time
from os3p.messages import RecurrencyKind, to_payload

__all__ = ["main"]


class _Refused(Exception):
    """The API answered with an error status."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("message", f"HTTP {status}"))
        self.status = status
        self.body = body


class ApiClient:
    def __init__(self, base_url: str, token: str, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def request(
        self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None
    ) -> Any:
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v})
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as exc:
            raw = exc.read().decode(errors="replace")
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = {"error": "http", "message": raw.strip() or exc.reason}
            raise _Refused(exc.code, parsed) from None
        return json.loads(text) if text else None


def _quote(station_id: str) -> str:
    return urllib.parse.quote(station_id, safe="")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces; None prints as '-'."""
    cells = [[("-" if v is None else str(v)) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def _lights(station: dict[str, Any]) -> str:
    parts = []
    for contactor, light in station.get("lights", {}).items():
        mode = station.get("modes", {}).get(contactor, {}).get("mode")
        parts.append(f"{contactor}:{light['status']}" + (f"/{mode}" if mode else ""))
    return " ".join(parts) or None  # type: ignore[return-value]


def _print_stations(stations: list[dict[str, Any]]) -> None:
    rows = [
        [
            s["id"],
            "yes" if s["connected"] else "no",
            s["lastSeen"],
            s["policy"],
            s["bootStatus"],
            s["heartbeatInterval"],
            s["firmwareVersion"],
            _lights(s),
            ",".join(f["errorCode"] for f in s["openFaults"]) or None,
        ]
        for s in stations
    ]
    print(
        table(
            [
                "STATION",
                "CONN",
                "LAST SEEN",
                "POLICY",
                "BOOT",
                "HB",
                "FIRMWARE",
                "LIGHTS",
                "FAULTS",
            ],
            rows,
        )
    )


def _time(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        parse_date_time(text)
    except ValueError:
        raise SystemExit(f"os3p-central: not an RFC 3339 date-time: {text!r}") from None
    return text


def _client(args: argparse.Namespace) -> ApiClient:
    api = args.api or os.environ.get("OS3P_CENTRAL_API")
    token = args.token or os.environ.get("OS3P_CENTRAL_TOKEN")
    if (api is None or token is None) and args.config is not None:
        config = load_config(Path(args.config))
        api = api or config.api.base_url
        token = token or config.api.token
    if not api or not token:
        raise ConfigError("", "give --api and --token (or OS3P_CENTRAL_API/TOKEN, or --config)")
    return ApiClient(api, token)


def _cmd_stations(client: ApiClient, args: argparse.Namespace) -> None:
    stations = client.request("GET", "/api/stations")["stations"]
    if args.json:
        print(json.dumps(stations, indent=2))
    else:
        _print_stations(stations)


def _cmd_station(client: ApiClient, args: argparse.Namespace) -> None:
    print(json.dumps(client.request("GET", f"/api/stations/{_quote(args.station)}"), indent=2))


def _cmd_add_station(client: ApiClient, args: argparse.Namespace) -> None:
    body: dict[str, Any] = {"id": args.station, "policy": args.policy}
    if args.password is not None:
        body["password"] = args.password
    if args.interval is not None:
        body["heartbeatInterval"] = args.interval
    if args.cert_identity is not None:
        body["certIdentity"] = args.cert_identity
    station = client.request("POST", "/api/stations", body)
    print(f"added {station['id']} (policy {station['policy']})")


def _cmd_remove_station(client: ApiClient, args: argparse.Namespace) -> None:
    client.request("DELETE", f"/api/stations/{_quote(args.station)}")
    print(f"removed {args.station}")


def _cmd_accept(client: ApiClient, args: argparse.Namespace) -> None:
    body = {} if args.interval is None else {"heartbeatInterval": args.interval}
    result = client.request("POST", f"/api/stations/{_quote(args.station)}/accept", body)
    trigger = result["trigger"]
    if trigger is None:
        print(f"{args.station}: policy Accepted (applies at its next boot)")
    elif "status" in trigger:
        print(
            f"{args.station}: policy Accepted; TriggerMessage BootNotification {trigger['status']}"
        )
    else:
        print(f"{args.station}: policy Accepted; trigger failed: {trigger['message']}")


def _cmd_policy(client: ApiClient, args: argparse.Namespace) -> None:
    body: dict[str, Any] = {"policy": args.policy}
    if args.interval is not None:
        body["heartbeatInterval"] = args.interval
    station = client.request("PUT", f"/api/stations/{_quote(args.station)}/policy", body)
    print(f"{station['id']}: policy {station['policy']}")


def _cmd_call(client: ApiClient, args: argparse.Namespace) -> None:
    try:
        payload = json.loads(args.payload)
    except ValueError as exc:
        raise SystemExit(f"os3p-central: the payload is not JSON: {exc}") from None
    result = client.request(
        "POST", f"/api/stations/{_quote(args.station)}/commands/{args.action}", payload
    )
    print(json.dumps(result["response"], indent=2 if args.json else None))


def _cmd_profile(client: ApiClient, args: argparse.Namespace) -> None:
    try:
        request = build_profile_request(
            args.contactor,
            args.schedule,
            profile_id=args.profile_id,
            stack_level=args.stack_level,
            recurrency=RecurrencyKind(args.recurrency),
            valid_from=parse_date_time(args.valid_from) if args.valid_from else None,
            valid_to=parse_date_time(args.valid_to) if args.valid_to else None,
            clear_all_schedules=args.clear_all,
        )
    except (ProfileError, ValueError) as exc:
        raise SystemExit(f"os3p-central: {exc}") from None
    payload = to_payload(request)
    if args.dry_run:
        print(json.dumps(payload, indent=2))
        return
    result = client.request(
        "POST", f"/api/stations/{_quote(args.station)}/commands/SetStreetlightProfile", payload
    )
    print(f"{args.station}: SetStreetlightProfile {result['response']['status']}")


def _history_query(args: argparse.Namespace, **extra: str | None) -> dict[str, str]:
    query = {
        "from": _time(args.since) or "",
        "to": _time(args.until) or "",
        "limit": str(args.limit) if args.limit else "",
    }
    query.update({k: v or "" for k, v in extra.items()})
    return query


def _cmd_events(client: ApiClient, args: argparse.Namespace) -> None:
    path = f"/api/stations/{_quote(args.station)}/events"
    events = client.request("GET", path, None, _history_query(args, kind=args.kind))["events"]
    if args.json:
        print(json.dumps(events, indent=2))
        return
    rows = [
        [e["occurredAt"], e["receivedAt"], e["kind"], json.dumps(e["details"], sort_keys=True)]
        for e in events
    ]
    print(table(["OCCURRED", "RECEIVED", "KIND", "DETAILS"], rows))


def _cmd_meter_values(client: ApiClient, args: argparse.Namespace) -> None:
    path = f"/api/stations/{_quote(args.station)}/meter-values"
    query = _history_query(args, measurand=args.measurand)
    samples = client.request("GET", path, None, query)["meterValues"]
    if args.json:
        print(json.dumps(samples, indent=2))
        return
    rows = [
        [s["timestamp"], s["measurand"], s["value"], s["unit"], s["location"], s["context"]]
        for s in samples
    ]
    print(table(["TIMESTAMP", "MEASURAND", "VALUE", "UNIT", "LOCATION", "CONTEXT"], rows))


def _cmd_files(client: ApiClient, args: argparse.Namespace) -> None:
    files = client.request("GET", f"/api/stations/{_quote(args.station)}/files")["files"]
    rows = [[f["uploadedAt"], f["requestId"], f["fileName"], f["size"], f["sha256"]] for f in files]
    print(table(["UPLOADED", "REQUEST", "NAME", "SIZE", "SHA256"], rows))


def _cmd_submit(client: ApiClient, args: argparse.Namespace) -> None:
    try:
        payload = json.loads(args.payload)
    except ValueError as exc:
        raise SystemExit(f"os3p-central: the payload is not JSON: {exc}") from None
    body: dict[str, Any] = {"action": args.action, "payload": payload, "priority": args.priority}
    if args.schedule:
        body["scheduleTime"] = _time(args.schedule)
    if args.deadline:
        body["deadline"] = _time(args.deadline)
    if args.bypass_retry:
        body["bypassRetry"] = True
    result = client.request("POST", f"/api/stations/{_quote(args.station)}/requests", body)
    print(result["correlationId"])


def _print_requests(requests: list[dict[str, Any]]) -> None:
    rows = [
        [
            r["correlationId"],
            r["station"],
            r["organisation"] or "admin",
            r["status"],
            r["priority"],
            r["attempts"],
            ",".join(op["action"] for op in r["operations"]),
            r["submittedAt"],
        ]
        for r in requests
    ]
    print(
        table(
            ["CORRELATION", "STATION", "BY", "STATUS", "PRIO", "TRIES", "OPERATIONS", "SUBMITTED"],
            rows,
        )
    )


def _cmd_requests(client: ApiClient, args: argparse.Namespace) -> None:
    query = {"station": args.station or "", "status": args.status or ""}
    if args.limit:
        query["limit"] = str(args.limit)
    requests = client.request("GET", "/api/requests", None, query)["requests"]
    if args.json:
        print(json.dumps(requests, indent=2))
    else:
        _print_requests(requests)


def _cmd_request(client: ApiClient, args: argparse.Namespace) -> None:
    path = f"/api/requests/{_quote(args.correlation_id)}"
    print(json.dumps(client.request("GET", path), indent=2))


def _cmd_org(client: ApiClient, args: argparse.Namespace) -> None:
    match args.org_command:
        case "add":
            client.request("POST", "/api/organisations", {"name": args.name})
            print(f"added organisation {args.name}")
        case "list":
            orgs = client.request("GET", "/api/organisations")["organisations"]
            if args.json:
                print(json.dumps(orgs, indent=2))
                return
            rows = [
                [
                    o["name"],
                    ",".join(o["stations"]) or None,
                    " ".join(f"{sid}:{'+'.join(r)}" for sid, r in o["grants"].items()) or None,
                    o["webhook"],
                    o["tokens"],
                ]
                for o in orgs
            ]
            print(table(["ORGANISATION", "OWNS", "GRANTS", "WEBHOOK", "TOKENS"], rows))
        case "token":
            result = client.request("POST", f"/api/organisations/{_quote(args.name)}/tokens")
            print(result["token"])
        case "own" | "disown":
            method = "PUT" if args.org_command == "own" else "DELETE"
            path = f"/api/organisations/{_quote(args.name)}/stations/{_quote(args.station)}"
            client.request(method, path)
            print(f"{args.name} {args.org_command}s {args.station}")
        case "grant" | "revoke":
            method = "PUT" if args.org_command == "grant" else "DELETE"
            path = (
                f"/api/organisations/{_quote(args.name)}/grants/"
                f"{_quote(args.station)}/{_quote(args.right)}"
            )
            client.request(method, path)
            print(f"{args.org_command}: {args.name} {args.right} on {args.station}")


def _cmd_audit(client: ApiClient, args: argparse.Namespace) -> None:
    query = {"station": args.station or "", "actor": args.actor or ""}
    if args.limit:
        query["limit"] = str(args.limit)
    entries = client.request("GET", "/api/audit", None, query)["audit"]
    if args.json:
        print(json.dumps(entries, indent=2))
        return
    rows = [
        [
            e["at"],
            e["actor"],
            e["station"],
            ",".join(e["operations"]),
            e["outcome"],
            e["correlationId"],
            e["detail"],
        ]
        for e in entries
    ]
    print(table(["AT", "WHO", "STATION", "WHAT", "OUTCOME", "CORRELATION", "DETAIL"], rows))


# ----------------------------------------------------------------------- inventory, meter reads
_SHIPMENT_TYPES = {".csv": "text/csv", ".json": "application/json"}
_READS = {
    "actual": "ActualMeterReads",
    "periodic": "PeriodicMeterReads",
    "events": "FindEvents",
    "firmware": "GetFirmwareVersion",
    "sync-time": "SynchronizeTime",
}


def _post_bytes(client: ApiClient, path: str, data: bytes, content_type: str) -> Any:
    request = urllib.request.Request(client.base_url + path, data=data, method="POST")
    request.add_header("Authorization", f"Bearer {client.token}")
    request.add_header("Content-Type", content_type)
    try:
        # A big shipment spends ~30 ms of scrypt per station password: minutes, not 60 s.
        with urllib.request.urlopen(request, timeout=max(client.timeout, 900.0)) as response:
            return json.loads(response.read().decode())
    except urllib.error.HTTPError as exc:
        raw = exc.read().decode(errors="replace")
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = {"error": "http", "message": raw.strip() or exc.reason}
        raise _Refused(exc.code, parsed) from None


def _print_problems(exc: _Refused) -> None:
    for problem in exc.body.get("problems", []):
        where = (
            f"line {problem['line']}"
            if problem.get("line") is not None
            else (problem.get("path") or "file")
        )
        field = f"{problem['field']}: " if problem.get("field") else ""
        print(f"{where}: {field}{problem['reason']}", file=sys.stderr)


def _cmd_import_shipment(client: ApiClient, args: argparse.Namespace) -> None:
    path = Path(args.file)
    suffix = f".{args.type}" if args.type else path.suffix.lower()
    content_type = _SHIPMENT_TYPES.get(suffix)
    if content_type is None:
        raise SystemExit("os3p-central: give --type csv or json (or name the file .csv/.json)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SystemExit(f"os3p-central: cannot read {path}: {exc.strerror or exc}") from None
    try:
        result = _post_bytes(client, "/api/shipments", data, content_type)
    except _Refused as exc:
        _print_problems(exc)
        raise
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"shipment {result['shipmentId']}: {len(result['stations'])} stations,"
        f" {len(result['meters'])} meters"
    )
    for station, password in result["generatedPasswords"].items():
        print(f"{station}: generated password {password} (shown once)")


def _cmd_meters(client: ApiClient, args: argparse.Namespace) -> None:
    meters = client.request("GET", f"/api/stations/{_quote(args.station)}/meters")["meters"]
    if args.json:
        print(json.dumps(meters, indent=2))
        return
    rows = [
        [m["meterId"], m["kind"], m["protocol"], m["channel"], m["status"], m["statusChangedAt"]]
        for m in meters
    ]
    print(table(["METER", "KIND", "PROTOCOL", "CHANNEL", "STATUS", "SINCE"], rows))


def _cmd_add_meter(client: ApiClient, args: argparse.Namespace) -> None:
    body: dict[str, Any] = {"meterId": args.meter, "kind": args.kind, "protocol": args.protocol}
    if args.channel is not None:
        body["channel"] = args.channel
    try:
        meter = client.request("POST", f"/api/stations/{_quote(args.station)}/meters", body)
    except _Refused as exc:
        _print_problems(exc)
        raise
    print(f"added meter {meter['meterId']} to {args.station} ({meter['status']})")


def _cmd_meter_status(client: ApiClient, args: argparse.Namespace) -> None:
    path = f"/api/stations/{_quote(args.station)}/meters/{_quote(args.meter)}/status"
    meter = client.request("PUT", path, {"status": args.status})
    print(f"{meter['meterId']}: {meter['status']}")


def _read_params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if args.since:
        params["from"] = _time(args.since)
    if args.until:
        params["to"] = _time(args.until)
    if args.what == "periodic":
        params["kind"] = args.kind
        if args.meter:
            params["meterId"] = args.meter
        if args.tz:
            params["timeZone"] = args.tz
        if args.no_fill:
            params["fillGaps"] = False
    if args.what == "events" and args.category:
        params["categories"] = args.category.split(",")
    if args.timeout is not None and args.what in ("actual", "periodic"):
        params["timeout"] = args.timeout
    return params


def _cmd_read(client: ApiClient, args: argparse.Namespace) -> None:
    service = _READS[args.what]
    path = f"/api/stations/{_quote(args.station)}/services/{service}"
    # A periodic read may wait for the station's upload (120 s by default).
    patient = ApiClient(client.base_url, client.token, client.timeout + (args.timeout or 120.0))
    result = patient.request("POST", path, _read_params(args))["result"]
    if args.json or args.what not in ("periodic", "actual"):
        print(json.dumps(result, indent=2))
        return
    if args.what == "actual":
        rows = [
            [v["timestamp"], v["measurand"], v["value"], v["unit"], v["location"], v["context"]]
            for v in result["values"]
        ]
        print(table(["TIMESTAMP", "MEASURAND", "VALUE", "UNIT", "LOCATION", "CONTEXT"], rows))
        return
    rows = [
        [read["logTime"], v["measurand"], v["location"], v["value"], v["unit"]]
        for read in result["reads"]
        for v in read["values"]
    ]
    print(table(["LOG TIME", "MEASURAND", "LOCATION", "VALUE", "UNIT"], rows))
    print(f"time zone {result['timeZone']}; {len(result['gaps'])} gap(s) left")
    fill = result["gapFill"]
    if fill is not None:
        print(f"gap fill: {fill['outcome']}, {fill['imported']} value(s) imported")


def _add_inventory_commands(sub: Any) -> None:
    shipment = sub.add_parser("import-shipment", help="import a shipment file (CSV or JSON)")
    shipment.add_argument("file")
    shipment.add_argument("--type", choices=["csv", "json"], help="default: from the suffix")

    meters = sub.add_parser("meters", help="a station's meters in the inventory")
    meters.add_argument("station")

    add = sub.add_parser("add-meter", help="add a meter to a station")
    add.add_argument("station")
    add.add_argument("meter")
    add.add_argument("--kind", required=True, choices=["E", "G"])
    add.add_argument("--protocol", required=True, choices=["DLMS", "P1"])
    add.add_argument("--channel", type=int, help="M-Bus channel: 0 for E (default), 1..4 for G")

    status = sub.add_parser("meter-status", help="move a meter along its lifecycle")
    status.add_argument("station")
    status.add_argument("meter")
    status.add_argument(
        "status",
        choices=[s.value for s in Lifecycle],
    )

    read = sub.add_parser("read", help="meter-read services: actual, periodic, events, ...")
    read.add_argument("station")
    read.add_argument("what", choices=list(_READS))
    read.add_argument("--from", dest="since", help="RFC 3339")
    read.add_argument("--to", dest="until", help="RFC 3339")
    read.add_argument("--kind", default="DAILY", choices=["DAILY", "MONTHLY", "INTERVAL"])
    read.add_argument("--meter", help="periodic: one meter's registers")
    read.add_argument("--tz", help="periodic: IANA time zone (default: the station's, else UTC)")
    read.add_argument("--no-fill", action="store_true", help="periodic: do not GetFile gaps")
    read.add_argument("--category", help="events: comma-separated, e.g. FaultsOpen,FaultsClosed")
    read.add_argument("--timeout", type=float, help="seconds to wait for the station")


_COMMANDS: dict[str, Callable[[ApiClient, argparse.Namespace], None]] = {
    "stations": _cmd_stations,
    "station": _cmd_station,
    "add-station": _cmd_add_station,
    "remove-station": _cmd_remove_station,
    "accept": _cmd_accept,
    "policy": _cmd_policy,
    "call": _cmd_call,
    "profile": _cmd_profile,
    "events": _cmd_events,
    "meter-values": _cmd_meter_values,
    "files": _cmd_files,
    "submit": _cmd_submit,
    "requests": _cmd_requests,
    "request": _cmd_request,
    "org": _cmd_org,
    "audit": _cmd_audit,
    "import-shipment": _cmd_import_shipment,
    "meters": _cmd_meters,
    "add-meter": _cmd_add_meter,
    "meter-status": _cmd_meter_status,
    "read": _cmd_read,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="os3p-central", description=__doc__.split("\n")[0])
    parser.add_argument("--api", help="the central's API URL (http://host:port)")
    parser.add_argument("--token", help="the operator API token")
    parser.add_argument("--config", help="central.toml: serve it, or read [api] from it")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_registry_commands(sub)
    _add_station_commands(sub)
    _add_queue_commands(sub)
    _add_inventory_commands(sub)
    return parser


def _add_registry_commands(sub: Any) -> None:
    sub.add_parser("serve", help="run the central system (needs --config)")
    sub.add_parser("stations", help="list stations")
    one = sub.add_parser("station", help="one station in detail (JSON)")
    one.add_argument("station")

    add = sub.add_parser("add-station", help="register a station")
    add.add_argument("station")
    add.add_argument("--password")
    add.add_argument("--policy", default="Accepted", choices=["Accepted", "Pending", "Rejected"])
    add.add_argument("--interval", type=int, help="heartbeat interval, seconds")
    add.add_argument("--cert-identity", help="required client-certificate CN / DNS name")

    remove = sub.add_parser("remove-station", help="remove a station from the registry")
    remove.add_argument("station")

    accept = sub.add_parser("accept", help="accept a Pending station (it boots again)")
    accept.add_argument("station")
    accept.add_argument("--interval", type=int)

    policy = sub.add_parser("policy", help="set a station's boot policy")
    policy.add_argument("station")
    policy.add_argument("policy", choices=["Accepted", "Pending", "Rejected"])
    policy.add_argument("--interval", type=int)


def _add_station_commands(sub: Any) -> None:
    call = sub.add_parser("call", help="send one of the 13 central-initiated actions")
    call.add_argument("station")
    call.add_argument("action", help="e.g. Reset, GetConfiguration, OverrideStreetlight")
    call.add_argument("payload", nargs="?", default="{}", help="the request payload as JSON")

    profile = sub.add_parser("profile", help="send a streetlight profile from a readable schedule")
    profile.add_argument("station")
    profile.add_argument("--contactor", type=int, required=True)
    profile.add_argument("--schedule", required=True, help='"on at sunset+10min, off at 23:00"')
    profile.add_argument("--profile-id", type=int, default=1)
    profile.add_argument("--stack-level", type=int, default=0)
    profile.add_argument("--recurrency", default="Daily", choices=["None", "Daily", "Weekly"])
    profile.add_argument("--valid-from")
    profile.add_argument("--valid-to")
    profile.add_argument("--clear-all", action="store_true", help="clearAllSchedules first")
    profile.add_argument("--dry-run", action="store_true", help="print the payload only")

    for name, help_text in (("events", "stored events"), ("meter-values", "stored meter values")):
        history = sub.add_parser(name, help=help_text)
        history.add_argument("station")
        history.add_argument("--from", dest="since", help="RFC 3339; default: 24 h before --to")
        history.add_argument("--to", dest="until", help="RFC 3339; default: now")
        history.add_argument("--limit", type=int)
        if name == "events":
            history.add_argument("--kind", help="comma-separated, e.g. StatusNotification")
        else:
            history.add_argument("--measurand")

    files = sub.add_parser("files", help="files uploaded after GetFile")
    files.add_argument("station")


def _add_queue_commands(sub: Any) -> None:
    submit = sub.add_parser("submit", help="queue an action; prints its correlation id")
    submit.add_argument("station")
    submit.add_argument("action", help="an OS³P action or a registered service")
    submit.add_argument("payload", nargs="?", default="{}", help="the payload as JSON")
    submit.add_argument("--priority", type=int, default=4, help="0..9, higher first")
    submit.add_argument("--schedule", help="not before this RFC 3339 time")
    submit.add_argument("--deadline", help="expire if not done by this RFC 3339 time")
    submit.add_argument("--bypass-retry", action="store_true", help="one attempt only")

    requests = sub.add_parser("requests", help="queued and finished requests, newest first")
    requests.add_argument("--station")
    requests.add_argument("--status", choices=["queued", "running", "done", "failed", "expired"])
    requests.add_argument("--limit", type=int)

    one = sub.add_parser("request", help="one request with its results (JSON)")
    one.add_argument("correlation_id")

    org = sub.add_parser("org", help="organisations, their tokens and rights (administrator)")
    org_sub = org.add_subparsers(dest="org_command", required=True)
    org_sub.add_parser("add", help="add an organisation").add_argument("name")
    org_sub.add_parser("list", help="list organisations")
    org_sub.add_parser("token", help="issue a token (printed once)").add_argument("name")
    for name, help_text in (("own", "make it own a station"), ("disown", "undo own")):
        owning = org_sub.add_parser(name, help=help_text)
        owning.add_argument("name")
        owning.add_argument("station")
    for name, help_text in (("grant", "grant a right on a station"), ("revoke", "undo grant")):
        granting = org_sub.add_parser(name, help=help_text)
        granting.add_argument("name")
        granting.add_argument("station")
        granting.add_argument("right", choices=["read", "configure", "lights", "firmware"])

    audit = sub.add_parser("audit", help="the audit trail, newest first")
    audit.add_argument("--station")
    audit.add_argument("--actor", help="admin or an organisation")
    audit.add_argument("--limit", type=int)


def _serve(args: argparse.Namespace) -> int:
    if args.config is None:
        raise ConfigError("", "serve needs --config FILE")
    from central.logs import configure_logging
    from central.service import run_forever

    config = load_config(Path(args.config))
    configure_logging(config.log_level)
    asyncio.run(run_forever(config))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        _COMMANDS[args.command](_client(args), args)
    except ConfigError as exc:
        print(f"os3p-central: configuration: {exc}", file=sys.stderr)
        return 2
    except _Refused as exc:
        body = exc.body
        detail = f" ({body['code']})" if "code" in body else ""
        print(
            f"os3p-central: HTTP {exc.status} {body.get('error', '')}{detail}: {exc}",
            file=sys.stderr,
        )
        return 1
    except urllib.error.URLError as exc:
        print(f"os3p-central: cannot reach the API: {exc.reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
