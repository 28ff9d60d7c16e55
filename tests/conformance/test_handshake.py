"""Guide §2, §3 and §5.2 on the wire: the opening handshake each side really sends.

The station side is the real daemon (`rtu run`) talking to a bare TCP listener that
records the HTTP request it receives; the central side is the real central service
answering hand-written HTTP requests. Nothing here goes through a websocket library
on the peer's side, so the headers asserted are the bytes that crossed the socket.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from pathlib import Path

from websockets.asyncio.client import connect

from os3p.client import connection_url
from tests.central.support import BOOT, running_central
from tests.rtu.test_daemon import Daemon
from tests.support.aio import UNIT, eventually, run


class RecordingListener:
    """Accepts TCP connections, keeps each HTTP request head, answers 503 and closes."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests.append(head)
            writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


def parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    """Request line and headers (names lower-cased) of an HTTP/1.1 request head."""
    lines = head.decode("ascii").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return lines[0], headers


def test_station_handshake_is_rfc6455_on_the_derived_url_with_os3p_subprotocol(
    tmp_path: Path,
) -> None:
    """Guide §2 (RFC 6455), §3.1.1 (connection URL), §3.1.2 (subprotocol), §5.2."""

    async def scenario() -> None:
        listener = RecordingListener()
        port = await listener.start()
        daemon = Daemon(tmp_path, f"ws://127.0.0.1:{port}/webServices/OS3P")
        await daemon.start()
        try:
            await eventually(
                lambda: bool(listener.requests), timeout=15 * UNIT, what="the daemon's handshake"
            )
        finally:
            assert daemon.process is not None
            daemon.process.kill()
            await daemon.process.wait()
            daemon.notify.close()
            await listener.stop()
        request_line, headers = parse_head(listener.requests[0])
        # §3.1.1: endpoint path + "/" + the percent-encoded identity ("SUBS 001").
        assert request_line == "GET /webServices/OS3P/SUBS%20001 HTTP/1.1"
        # RFC 6455 §4.1: version 13 and a 16-byte base64 nonce, not a draft handshake.
        assert headers["sec-websocket-version"] == "13"
        assert headers["upgrade"].lower() == "websocket"
        assert "upgrade" in headers["connection"].lower()
        assert len(base64.b64decode(headers["sec-websocket-key"])) == 16
        # §3.1.2: the OS³P version is named in Sec-WebSocket-Protocol, from Table 1.
        assert headers["sec-websocket-protocol"] == "OS3P1.0"
        # §5.2: no compression offered.
        assert "sec-websocket-extensions" not in headers

    run(scenario(), timeout=60 * UNIT)


async def raw_handshake(port: int, path: str, version: str) -> tuple[str, dict[str, str]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: {version}\r\nSec-WebSocket-Protocol: OS3P1.0\r\n\r\n"
        ).encode("ascii")
    )
    await writer.drain()
    try:
        async with asyncio.timeout(5 * UNIT):
            head = await reader.readuntil(b"\r\n\r\n")
    finally:
        writer.close()
    status_line, headers = parse_head(head)
    return status_line, headers


def test_central_speaks_rfc6455_only(tmp_path: Path) -> None:
    """Guide §2: a draft-era handshake (version 8) is refused, version 13 is upgraded."""

    async def scenario() -> None:
        async with running_central(tmp_path) as (central, api):
            await api.add_station("SUBS001")
            port = central.server.port
            status_line, headers = await raw_handshake(port, "/OS3P/SUBS001", "8")
            assert status_line.split(" ", 2)[1].startswith("4")  # refused, not upgraded
            status_line, headers = await raw_handshake(port, "/OS3P/SUBS001", "13")
            assert status_line.split(" ", 2)[1] == "101"
            assert headers["sec-websocket-protocol"] == "OS3P1.0"

    run(scenario())


def test_central_endpoint_url_serves_derived_connection_urls(tmp_path: Path) -> None:
    """Guide §3.1.1: the central provides an endpoint URL (ws/wss) and a station reaches it
    on endpoint + "/" + its percent-encoded identity."""

    async def scenario() -> None:
        async with running_central(tmp_path) as (central, api):
            await api.add_station("SUBS 123")
            assert central.ws_url.split("://", 1)[0] in ("ws", "wss")
            url = connection_url(central.ws_url, "SUBS 123")
            assert url == f"{central.ws_url}/SUBS%20123"
            async with connect(url, subprotocols=["OS3P1.0"]) as websocket:  # type: ignore[list-item]
                assert websocket.subprotocol == "OS3P1.0"
            await eventually(lambda: not central.server.connected("SUBS 123"))

    run(scenario())


def test_central_declines_compression(tmp_path: Path) -> None:
    """Guide §5.2: offered permessage-deflate is not accepted by the central."""

    async def scenario() -> None:
        async with running_central(tmp_path) as (central, api):
            await api.add_station("SUBS001")
            async with connect(
                f"{central.ws_url}/SUBS001",
                subprotocols=["OS3P1.0"],  # type: ignore[list-item]
                compression="deflate",
            ) as websocket:
                assert websocket.request is not None
                offered = websocket.request.headers.get("Sec-WebSocket-Extensions", "")
                assert "permessage-deflate" in offered  # the offer really was made
                assert websocket.response is not None
                assert "Sec-WebSocket-Extensions" not in websocket.response.headers
                await websocket.send(json.dumps([2, "b1", "BootNotification", BOOT]))
                answer = json.loads(await websocket.recv())
                assert answer[:2] == [3, "b1"]
                assert answer[2]["status"] == "Accepted"

    run(scenario())
