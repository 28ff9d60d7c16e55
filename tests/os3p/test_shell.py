"""The asyncio shell over real websockets on 127.0.0.1: URL, 404/401, subprotocols, TLS,
ping, calls in both directions, handler failures and bad frames."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.asyncio.server import Server, ServerConnection
from websockets.exceptions import ConnectionClosed

from hil.proxy import FaultyProxy
from os3p.client import (
    ConnectRefused,
    SubprotocolRefused,
    connection_url,
    open_connection,
    pong_timeout,
)
from os3p.connection import Connection
from os3p.errors import CallErrorReceived, ErrorCode, HandlerError
from os3p.messages import (
    HeartbeatRequest,
    HeartbeatResponse,
    ResetMVFaultIndicatorRequest,
    ResetMVFaultIndicatorResponse,
    ResetRequest,
    ResetResponse,
    TestMVFaultIndicatorRequest,
    TestMVFaultIndicatorResponse,
)
from os3p.router import Router
from os3p.server import open_server, station_id_from_path
from os3p.session import Role, Session
from os3p.validation import Validator
from tests.support.aio import UNIT, eventually, run
from tests.support.tls import make_pki

VALIDATOR = Validator()
NOW = datetime(2026, 1, 1, tzinfo=UTC)


# ------------------------------------------------------------------ §3.1.1 URLs
@pytest.mark.parametrize(
    ("endpoint", "station_id", "url"),
    [
        (
            "ws://centralsystem.example.com/OS3P",
            "SUBS001",
            "ws://centralsystem.example.com/OS3P/SUBS001",
        ),
        (
            "wss://centralsystem.example.com/OS3P",
            "SUBS 123",
            "wss://centralsystem.example.com/OS3P/SUBS%20123",
        ),
    ],
    ids=["example-1", "example-2"],
)
def test_spec_connection_url_examples(endpoint: str, station_id: str, url: str) -> None:
    assert connection_url(endpoint, station_id) == url
    assert station_id_from_path(urlsplit(url).path, "/OS3P") == station_id


@given(st.text(min_size=1, max_size=40))
def test_any_identity_round_trips_through_the_path(station_id: str) -> None:
    url = connection_url("ws://h/OS3P", station_id)
    assert station_id_from_path(urlsplit(url).path, "/OS3P") == station_id


@pytest.mark.parametrize("path", ["/OS3P", "/OS3P/", "/other/SUBS1", "/OS3P/a/b"])
def test_paths_that_name_no_station(path: str) -> None:
    assert station_id_from_path(path, "/OS3P") is None


# ------------------------------------------------------------------ a test rig
class Gate:
    def __init__(self, stations: dict[str, str | None]) -> None:
        self.stations = stations  # id → password (None: no password required)

    def is_known(self, station_id: str) -> bool:
        return station_id in self.stations

    def check_password(self, station_id: str, password: str | None) -> bool:
        expected = self.stations[station_id]
        return expected is None or password == expected


class Central:
    """A minimal central built from the shell: answers Heartbeat, records connections."""

    def __init__(self) -> None:
        self.router: Router[str] = Router()
        self.connections: dict[str, Connection[str]] = {}
        self.router.add(HeartbeatRequest, self.heartbeat)

    async def heartbeat(self, request: HeartbeatRequest, station_id: str) -> HeartbeatResponse:
        return HeartbeatResponse(current_time=NOW)

    async def handle(self, websocket: ServerConnection, station_id: str) -> None:
        session = Session(
            Role.CENTRAL, VALIDATOR, implemented=self.router.actions, max_frame_chars=2000
        )
        connection = Connection(websocket, session, self.router, station_id, peer=station_id)
        self.connections[station_id] = connection
        await connection.run()


@asynccontextmanager
async def central_server(
    gate: Gate, *, ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[Central, str]]:
    central = Central()
    server: Server = await open_server(central.handle, gate, ssl_context=ssl_context)
    port = server.sockets[0].getsockname()[1]
    scheme = "wss" if ssl_context else "ws"
    try:
        yield (
            central,
            f"{scheme}://localhost:{port}/OS3P"
            if ssl_context
            else f"{scheme}://127.0.0.1:{port}/OS3P",
        )
    finally:
        server.close()
        await server.wait_closed()


def station_router() -> Router[None]:
    router: Router[None] = Router()

    async def reset(request: ResetRequest, ctx: None) -> ResetResponse:
        return ResetResponse(status="Accepted")  # type: ignore[arg-type]

    async def test_indicator(
        request: TestMVFaultIndicatorRequest, ctx: None
    ) -> TestMVFaultIndicatorResponse:
        raise HandlerError(ErrorCode.NOT_SUPPORTED, "no MV indicators configured")

    async def reset_indicator(
        request: ResetMVFaultIndicatorRequest, ctx: None
    ) -> ResetMVFaultIndicatorResponse:
        raise RuntimeError("driver exploded")

    router.add(ResetRequest, reset)
    router.add(TestMVFaultIndicatorRequest, test_indicator)
    router.add(ResetMVFaultIndicatorRequest, reset_indicator)
    return router


@asynccontextmanager
async def station_connection(
    endpoint: str, station_id: str, **kwargs: object
) -> AsyncIterator[Connection[None]]:
    websocket = await open_connection(endpoint, station_id, **kwargs)  # type: ignore[arg-type]
    router = station_router()
    session = Session(Role.STATION, VALIDATOR, implemented=router.actions, call_timeout=5.0)
    connection = Connection(websocket, session, router, None, peer=station_id)
    async with asyncio.TaskGroup() as tasks:
        runner = tasks.create_task(connection.run())
        try:
            yield connection
        finally:
            await connection.close()
            await runner


# ------------------------------------------------------------------ the tests
def test_calls_in_both_directions_with_a_percent_encoded_identity() -> None:
    async def scenario() -> None:
        async with central_server(Gate({"SUBS 123": None})) as (central, endpoint):
            async with station_connection(endpoint, "SUBS 123") as station:
                response = await station.call_typed(HeartbeatRequest(), HeartbeatResponse)
                assert response.current_time == NOW
                await eventually(
                    lambda: "SUBS 123" in central.connections, what="central saw SUBS 123"
                )
                reset = await central.connections["SUBS 123"].call(ResetRequest())
                assert reset == ResetResponse(status="Accepted")  # type: ignore[arg-type]

    run(scenario())


def test_unknown_station_gets_404_before_upgrade() -> None:
    async def scenario() -> None:
        async with central_server(Gate({"SUBS001": None})) as (_, endpoint):
            with pytest.raises(ConnectRefused) as caught:
                await open_connection(endpoint, "SUBS999")
            assert caught.value.status == 404

    run(scenario())


@pytest.mark.parametrize(("password", "status"), [(None, 401), ("wrong", 401), ("s3cret", None)])
def test_basic_credentials(password: str | None, status: int | None) -> None:
    async def scenario() -> None:
        async with central_server(Gate({"SUBS001": "s3cret"})) as (_, endpoint):
            if status is None:
                websocket = await open_connection(endpoint, "SUBS001", password=password)
                await websocket.close()
                return
            with pytest.raises(ConnectRefused) as caught:
                await open_connection(endpoint, "SUBS001", password=password)
            assert caught.value.status == status

    run(scenario())


def test_subprotocol_mismatch_completes_handshake_without_header_then_closes() -> None:
    async def scenario() -> None:
        async with central_server(Gate({"SUBS001": None})) as (_, endpoint):
            async with connect(f"{endpoint}/SUBS001", subprotocols=["ocpp1.6"]) as websocket:  # type: ignore[list-item]
                assert websocket.response is not None
                assert websocket.response.status_code == 101
                assert "Sec-WebSocket-Protocol" not in websocket.response.headers
                await asyncio.wait_for(websocket.wait_closed(), 5)
                assert websocket.close_code == 1002
            with pytest.raises(SubprotocolRefused):
                await open_connection(endpoint, "SUBS001", subprotocols=("OS3P9.9",))

    run(scenario())


def test_tls_with_test_ca_works_and_wrong_ca_fails(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "good")
    other = make_pki(tmp_path / "other", ca_name="Some Other CA")

    async def scenario() -> None:
        async with central_server(Gate({"SUBS001": None}), ssl_context=pki.server_context()) as (
            _,
            endpoint,
        ):
            assert endpoint.startswith("wss://")
            async with station_connection(
                endpoint, "SUBS001", ssl_context=pki.client_context()
            ) as station:
                await station.call(HeartbeatRequest())
            with pytest.raises(ssl.SSLCertVerificationError):
                await open_connection(endpoint, "SUBS001", ssl_context=other.client_context())

    run(scenario())


def test_handler_errors_become_callerrors_and_the_session_carries_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        async with central_server(Gate({"SUBS001": None})) as (central, endpoint):
            async with station_connection(endpoint, "SUBS001"):
                await eventually(lambda: "SUBS001" in central.connections)
                theirs = central.connections["SUBS001"]
                with pytest.raises(CallErrorReceived) as not_supported:
                    await theirs.call(TestMVFaultIndicatorRequest())
                assert not_supported.value.code == "NotSupported"
                with pytest.raises(CallErrorReceived) as internal:
                    await theirs.call(ResetMVFaultIndicatorRequest())
                assert internal.value.code == "InternalError"
                assert await theirs.call(ResetRequest()) == ResetResponse(status="Accepted")  # type: ignore[arg-type]

    with caplog.at_level(logging.ERROR, logger="os3p.connection"):
        run(scenario())
    assert any(
        "SUBS001" in r.getMessage() and "ResetMVFaultIndicator" in r.getMessage()
        for r in caplog.records
    )


def test_bad_frames_from_a_raw_client_are_answered_or_ignored_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        async with central_server(Gate({"SUBS001": None})) as (_, endpoint):
            async with connect(f"{endpoint}/SUBS001", subprotocols=["OS3P1.0"]) as websocket:  # type: ignore[list-item]
                await websocket.send('[2,"x1","Heartbeat",{"bogus":true}]')
                assert json.loads(await websocket.recv())[:3] == [4, "x1", "FormationViolation"]
                await websocket.send("not json at all")  # ignored: no id
                await websocket.send('[2,"x2","MeterValues",{"meterValue":[' + "1," * 2000 + "1]}]")
                assert json.loads(await websocket.recv())[:3] == [
                    4,
                    "x2",
                    "FormationViolation",
                ]  # oversized
                await websocket.send(b"\xff\xfe")  # binary, not UTF-8: ignored
                await websocket.send('[2,"x3","Heartbeat",{}]')
                answer = json.loads(await websocket.recv())
                assert answer[:2] == [3, "x3"]  # the session is still healthy

    with caplog.at_level(logging.WARNING, logger="os3p.connection"):
        run(scenario())
    messages = [r.getMessage() for r in caplog.records]
    assert sum("SUBS001: bad frame" in m for m in messages) == 4


@pytest.mark.parametrize(
    ("interval", "pings"), [(0.0, False), (0.05, True)], ids=["ping-0-disabled", "ping-positive"]
)
def test_websocket_ping_interval(interval: float, pings: bool) -> None:
    async def scenario() -> None:
        async with central_server(Gate({"SUBS001": None})) as (_, endpoint):
            websocket = await open_connection(endpoint, "SUBS001", ping_interval=interval)
            try:
                await asyncio.sleep(0.3)
                # websockets measures latency from each pong; no ping, no measurement.
                assert (websocket.latency > 0) is pings
            finally:
                await websocket.close()

    run(scenario())


@pytest.mark.parametrize(
    ("interval", "timeout"),
    [(None, None), (0.0, None), (0.2, 5.0), (10.0, 10.0), (300.0, 20.0)],
)
def test_pong_timeout_is_one_ping_interval_within_bounds(
    interval: float | None, timeout: float | None
) -> None:
    assert pong_timeout(interval) == timeout


def test_a_half_open_link_is_noticed_by_the_missing_pong() -> None:
    """The central's packets stop arriving without a FIN (a black hole): the station's
    connection closes after one ping interval plus the pong timeout, not 20 s later."""

    async def scenario() -> None:
        async with central_server(Gate({"SUBS001": None})) as (_, endpoint):
            target = urlsplit(endpoint)
            assert target.hostname is not None
            assert target.port is not None
            async with FaultyProxy(target.hostname, target.port) as proxy:
                websocket = await open_connection(
                    f"ws://127.0.0.1:{proxy.port}{target.path}", "SUBS001", ping_interval=0.2
                )
                try:
                    await asyncio.sleep(0.3)
                    proxy.blackhole(True)
                    started = asyncio.get_running_loop().time()
                    # What the station's receive loop sees: the connection is over.
                    with pytest.raises(ConnectionClosed):
                        async with asyncio.timeout(15 * UNIT):
                            await websocket.recv()
                    took = asyncio.get_running_loop().time() - started
                    assert took < 12, took  # 0.2 s + 5 s for the pong + 5 s for the close, not 30 s
                finally:
                    proxy.blackhole(False)
                    await websocket.close()

    run(scenario())


@pytest.mark.parametrize(
    ("serial", "answer_order"),
    [(True, ["x1", "x2"]), (False, ["x2", "x1"])],
    ids=["serial-holds-the-next-frame", "task-lets-it-pass"],
)
def test_a_serial_handler_is_awaited_before_the_next_frame_is_read(
    serial: bool, answer_order: list[str]
) -> None:
    """`Router.add(serial=True)`: the receive loop itself waits for the handler."""
    gate = asyncio.Event()
    started: list[int] = []

    async def heartbeat(request: HeartbeatRequest, station_id: str) -> HeartbeatResponse:
        started.append(len(started) + 1)
        if len(started) == 1:
            await gate.wait()  # the first CALL waits on "local work"
        return HeartbeatResponse(current_time=NOW)

    async def scenario() -> None:
        router: Router[str] = Router()
        router.add(HeartbeatRequest, heartbeat, serial=serial)

        async def handle(websocket: ServerConnection, station_id: str) -> None:
            session = Session(Role.CENTRAL, VALIDATOR, implemented=router.actions)
            await Connection(websocket, session, router, station_id, peer=station_id).run()

        server = await open_server(handle, Gate({"SUBS001": None}))
        endpoint = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/OS3P/SUBS001"
        try:
            async with connect(endpoint, subprotocols=["OS3P1.0"]) as websocket:  # type: ignore[list-item]
                await websocket.send('[2,"x1","Heartbeat",{}]')
                await websocket.send('[2,"x2","Heartbeat",{}]')
                answers = []
                if serial:
                    await eventually(lambda: started == [1])
                    await asyncio.sleep(0.1 * UNIT)
                    assert started == [1]  # x2 is not read while x1's handler waits
                else:
                    answers.append(json.loads(await websocket.recv())[1])  # x2, at once
                gate.set()
                while len(answers) < 2:
                    answers.append(json.loads(await websocket.recv())[1])
                assert answers == answer_order
                assert started == [1, 2]
        finally:
            server.close()
            await server.wait_closed()

    run(scenario())
