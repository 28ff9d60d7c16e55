"""The operator API over real HTTP against real stations: every command, every failure
mode of a command, the registry routes, files, metrics, auth, and the OpenAPI document."""

from __future__ import annotations

import asyncio
import hashlib
import re
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp

from central.api import build_app
from central.config import ApiConfig
from tests.central.support import (
    COMMAND_EXAMPLES,
    Api,
    make_config,
    running_central,
    scripted_station,
)
from tests.support.aio import UNIT, eventually, run


def test_every_central_command_returns_the_stations_typed_answer(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_central(tmp_path) as (central, api):
            await api.add_station("SUBS 100")  # a space: percent-encoded in both URLs
            async with scripted_station(central.ws_url, "SUBS%20100") as st:
                await st.boot()
                for action, (request, answer) in COMMAND_EXAMPLES.items():
                    status, body = await api.request(
                        "POST", f"/api/stations/SUBS%20100/commands/{action}", request
                    )
                    assert status == 200, (action, body)
                    assert body["response"] == answer, action
                    received_action, payload = st.calls_received[-1]
                    assert received_action == action
                    if action != "GetFile":
                        assert payload == request
            assert [a for a, _ in st.calls_received] == list(COMMAND_EXAMPLES)
            _, metrics = await api.request("GET", "/metrics")
            assert 'os3p_commands_total{action="Reset",outcome="ok"} 1' in metrics
            assert 'os3p_command_latency_seconds_count{action="GetFile"} 1' in metrics
            assert 'os3p_messages_received_total{action="BootNotification"} 1' in metrics

    run(scenario())


def test_command_failures_map_to_http_statuses(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_central(tmp_path, command_timeout=0.3 * UNIT) as (central, api):
            await api.add_station("SUBS101")
            await api.add_station("SUBS102")
            path = "/api/stations/SUBS101/commands"
            status, body = await api.request("POST", f"{path}/Reset", {})
            assert (status, body["error"]) == (409, "station_offline")
            async with scripted_station(central.ws_url, "SUBS101") as st:
                await st.boot()
                st.answers["Reset"] = lambda payload: ("error", "NotSupported")
                st.answers["TestMVFaultIndicator"] = lambda payload: None  # silence
                st.answers["ResetMVFaultIndicator"] = lambda payload: {"status": "Maybe"}
                cases: list[tuple[str, str, Any, int, str, str | None]] = [
                    ("SUBS101", "Reset", {}, 502, "callerror", "NotSupported"),
                    ("SUBS101", "TestMVFaultIndicator", {}, 504, "timeout", None),
                    ("SUBS101", "ResetMVFaultIndicator", {}, 502, "invalid_response", None),
                    ("SUBS101", "OverrideStreetlight", {}, 400, "invalid_payload", "ProtocolError"),
                    (
                        "SUBS101",
                        "OverrideStreetlight",
                        {"action": "Blink"},
                        400,
                        "invalid_payload",
                        "PropertyConstraintViolation",
                    ),
                    (
                        "SUBS101",
                        "Reset",
                        {"type": "Hard"},
                        400,
                        "invalid_payload",
                        "FormationViolation",
                    ),
                    ("SUBS101", "Heartbeat", {}, 404, "unknown_action", None),
                    ("SUBS101", "Launch", {}, 404, "unknown_action", None),
                    ("NOPE", "Reset", {}, 404, "unknown_station", None),
                    ("SUBS102", "Reset", {}, 409, "station_offline", None),
                ]
                for station_id, action, payload, code, kind, callerror in cases:
                    status, body = await api.request(
                        "POST", f"/api/stations/{station_id}/commands/{action}", payload
                    )
                    assert (status, body["error"]) == (code, kind), (action, body)
                    assert body.get("code") == callerror, (action, body)
                # The station still works after all that.
                status, _ = await api.request("POST", f"{path}/GetConfiguration", {})
                assert status == 200
            _, metrics = await api.request("GET", "/metrics")
            assert 'os3p_callerrors_received_total{code="NotSupported"} 1' in metrics
            assert 'os3p_commands_total{action="TestMVFaultIndicator",outcome="timeout"} 1' in (
                metrics
            )

    run(scenario())


def test_registry_routes_and_bearer_token(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_central(tmp_path) as (central, api):
            async with Api(central.api_url, token="wrong-token-xxxxxxxxxxxx") as intruder:
                status, _ = await intruder.request("GET", "/api/stations")
                assert status == 401
            async with aiohttp.ClientSession() as anonymous:
                async with anonymous.get(central.api_url + "/api/stations") as response:
                    assert response.status == 401
            await api.add_station("SUBS103", policy="Pending", heartbeatInterval=30)
            status, body = await api.request("POST", "/api/stations", {"id": "SUBS103"})
            assert (status, body["error"]) == (409, "station_exists")
            for bad in [{}, {"id": ""}, {"id": "X", "policy": "Maybe"}, {"id": "X", "colour": 1}]:
                status, body = await api.request("POST", "/api/stations", bad)
                assert status == 400, bad
            status, body = await api.request(
                "PUT", "/api/stations/SUBS103/policy", {"policy": "Rejected"}
            )
            assert (status, body["policy"]) == (200, "Rejected")
            status, body = await api.request("POST", "/api/stations/SUBS103/accept", {})
            assert (status, body["station"]["policy"], body["trigger"]) == (200, "Accepted", None)
            status, _ = await api.request("DELETE", "/api/stations/SUBS103")
            assert status == 204
            status, body = await api.request("GET", "/api/stations/SUBS103")
            assert (status, body["error"]) == (404, "unknown_station")
            status, body = await api.request("GET", "/api/stations")
            assert body == {"stations": []}
            status, body = await api.request(
                "GET", "/api/stations/SUBS103/events", **{"from": "yesterday"}
            )
            assert status == 404
            await api.add_station("SUBS104")
            for query in [{"from": "yesterday"}, {"kind": "Gossip"}, {"limit": "0"}]:
                status, body = await api.request("GET", "/api/stations/SUBS104/events", **query)
                assert (status, body["error"]) == (400, "bad_query"), query

    run(scenario())


def test_removing_a_connected_station_closes_its_connection(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_central(tmp_path) as (central, api):
            await api.add_station("SUBS105")
            async with scripted_station(central.ws_url, "SUBS105") as st:
                await st.boot()
                status, _ = await api.request("DELETE", "/api/stations/SUBS105")
                assert status == 204
                async with asyncio.timeout(5 * UNIT):
                    await st.websocket.wait_closed()
                assert st.websocket.close_code == 1008

    run(scenario())


def test_get_file_upload_location_and_firmware_download(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_central(tmp_path) as (central, api):
            firmware = central.config.data_dir / "firmware" / "rtu-2.0.0.bundle"
            firmware.write_bytes(b"signed bundle")
            await api.add_station("SUBS106")
            async with scripted_station(central.ws_url, "SUBS106") as st:
                await st.boot()
                status, body = await api.request(
                    "POST", "/api/stations/SUBS106/commands/GetFile", {"fileType": "Syslog"}
                )
                assert status == 200
                _, request = st.calls_received[-1]
                location, request_id = request["location"], request["requestId"]
                assert body["requestId"] == request_id  # the operator can match the upload
                assert location.startswith(central.api_url + "/files/uploads/")
                content = b"Nov 23 17:00:00 rtu: hello\n" * 100
                async with aiohttp.ClientSession() as station_http:
                    async with station_http.put(f"{location}/syslog.txt", data=content) as r:
                        assert r.status == 201
                        stored = await r.json()
                    form = aiohttp.FormData()
                    form.add_field("file", b"second", filename="second.txt")
                    async with station_http.post(f"{location}/second.txt", data=form) as r:
                        assert r.status == 201
                    async with station_http.put(
                        central.api_url + "/files/uploads/not-a-token/x.txt", data=b"x"
                    ) as r:
                        assert r.status == 404
                    async with station_http.put(f"{location}/..evil", data=b"x") as r:
                        assert r.status == 400
                    async with station_http.get(
                        central.api_url + "/files/firmware/rtu-2.0.0.bundle"
                    ) as r:
                        assert (r.status, await r.read()) == (200, b"signed bundle")
                    async with station_http.get(central.api_url + "/files/firmware/nope") as r:
                        assert r.status == 404
                assert stored["sha256"] == hashlib.sha256(content).hexdigest()
                await st.result(
                    "GetFileStatusNotification", {"status": "Uploaded", "requestId": request_id}
                )
            status, body = await api.request("GET", "/api/stations/SUBS106/files")
            files = {f["fileName"]: f for f in body["files"]}
            assert files["syslog.txt"]["size"] == len(content)
            assert files["syslog.txt"]["requestId"] == request_id
            assert files["second.txt"]["size"] == len(b"second")
            _, body = await api.request(
                "GET", "/api/stations/SUBS106/events", kind="GetFileStatusNotification"
            )
            assert [e["details"] for e in body["events"]] == [
                {"status": "Uploaded", "requestId": request_id}
            ]

    run(scenario())


def _openapi_routes() -> set[tuple[str, str]]:
    """(METHOD, path) pairs of central/openapi.yaml, read from its indentation."""
    text = resources.files("central").joinpath("openapi.yaml").read_text(encoding="utf-8")
    routes: set[tuple[str, str]] = set()
    in_paths, path = False, None
    for line in text.splitlines():
        if re.match(r"^\S", line):
            in_paths = line.startswith("paths:")
            continue
        if not in_paths:
            continue
        if m := re.match(r"^  (/\S*):\s*$", line):
            path = m.group(1)
        elif (m := re.match(r"^    (get|put|post|delete|patch):", line)) and path:
            routes.add((m.group(1).upper(), path))
    return routes


def test_openapi_document_lists_exactly_the_apps_routes(tmp_path: Path) -> None:
    async def scenario() -> set[tuple[str, str]]:
        from central.dispatcher import Dispatcher
        from central.server import CentralServer
        from central.storage import AsyncStore

        config = make_config(tmp_path)
        async with await AsyncStore.open(config.storage_url) as store:
            server = CentralServer(config, store)
            app = build_app(server, Dispatcher(server))
            return {
                (route.method, route.resource.canonical)
                for route in app.router.routes()
                if route.method != "HEAD" and route.resource is not None
            }

    app_routes = run(scenario())
    assert app_routes == _openapi_routes()
    assert len(app_routes) == 32


def test_public_url_defaults_to_the_api_address() -> None:
    assert ApiConfig(host="0.0.0.0", port=8181).base_url == "http://127.0.0.1:8181"
    assert ApiConfig(public_url="https://c.example/").base_url == "https://c.example"


def test_metrics_need_no_token_and_count_connections(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_central(tmp_path) as (central, api):
            await api.add_station("SUBS107")
            async with scripted_station(central.ws_url, "SUBS107") as st:
                await st.boot()
                async with aiohttp.ClientSession() as scraper:
                    async with scraper.get(central.api_url + "/metrics") as response:
                        assert response.status == 200
                        text = await response.text()
                assert "os3p_connected_stations 1" in text
                assert "# TYPE os3p_command_latency_seconds histogram" in text
            await eventually(lambda: "os3p_connected_stations 0" in central.server.metrics.render())

    run(scenario())
