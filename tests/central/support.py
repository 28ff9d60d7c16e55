"""A running central on loopback and a scripted station speaking raw OS³P frames.

The station is deliberately not built from `os3p.connection`: it writes the JSON
frames itself (as a third-party station would), so the tests see exactly what
crosses the wire.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from central.config import ApiConfig, CentralConfig, ListenConfig
from central.service import CentralService
from tests.support.aio import UNIT

TOKEN = "test-token-0123456789abcdef"

BOOT = {
    "vendor": "Acme",
    "model": "RTU-4",
    "stationNumber": "987654321",
    "serialNumber": "SN-0001",
    "firmwareVersion": "1.2.3",
    "iccid": "8931000000000000001",
    "imsi": "204040000000001",
}

# One valid request and the answer a well-behaved station gives, per central action.
COMMAND_EXAMPLES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "ChangeConfiguration": ({"key": "HeartbeatInterval", "value": "600"}, {"status": "Accepted"}),
    "ClearSingleStreetlightProfile": ({"profileId": 1}, {"status": "Accepted"}),
    "GetConfiguration": (
        {"key": ["HeartbeatInterval"]},
        {"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]},
    ),
    "GetEffectiveStreetlightDaySchedule": (
        {"contactorId": 1, "at": "2026-11-23T00:00:00Z"},
        {"contactorId": 1, "daySchedule": [{"start": "17:10:00", "end": "23:00:00"}]},
    ),
    "GetFile": ({"fileType": "Syslog"}, {"status": "Accepted", "fileName": "syslog.txt"}),
    "OverrideStreetlight": ({"contactorId": 1, "action": "On"}, {"status": "Accepted"}),
    "ResumeStreetlight": ({"contactorId": 1}, {"status": "Accepted"}),
    "Reset": ({}, {"status": "Accepted"}),
    "ResetMVFaultIndicator": ({}, {"status": "Accepted"}),
    "SetStreetlightProfile": (
        {
            "contactorId": 1,
            "streetlightProfiles": [
                {
                    "profileId": 1,
                    "stackLevel": 0,
                    "recurrencyKind": "Daily",
                    "daySchedule": [
                        {"start": {"kind": "Sunset", "offset": 600}, "end": {"kind": "Sunrise"}}
                    ],
                }
            ],
        },
        {"status": "Accepted"},
    ),
    "TestMVFaultIndicator": ({}, {"status": "Accepted"}),
    "TriggerMessage": ({"requestedMessage": "StatusNotification"}, {"status": "Accepted"}),
    "UpdateFirmware": (
        {"retrieveDate": "2026-11-23T12:00:00Z", "location": "http://example.net/fw.bin"},
        {},
    ),
}

Answer = Callable[[dict[str, Any]], Any]  # payload → result dict, ("error", code), or None


def make_config(tmp_path: Path, **overrides: Any) -> CentralConfig:
    listen = overrides.pop("listen", ListenConfig(host="127.0.0.1", port=0, ping_interval=0))
    return CentralConfig(
        listen=listen,
        api=ApiConfig(host="127.0.0.1", port=overrides.pop("api_port", 0), token=TOKEN),
        storage_url=f"sqlite://{tmp_path / 'central.db'}",
        data_dir=tmp_path / "files",
        command_timeout=overrides.pop("command_timeout", 5 * UNIT),
    )


@contextlib.asynccontextmanager
async def running_central(
    tmp_path: Path, **overrides: Any
) -> AsyncIterator[tuple[CentralService, Api]]:
    async with CentralService(make_config(tmp_path, **overrides)) as central:
        async with Api(central.api_url) as api:
            yield central, api


class Api:
    """The operator API over real HTTP."""

    def __init__(self, base_url: str, token: str = TOKEN) -> None:
        self.base_url = base_url
        self._headers = {"Authorization": f"Bearer {token}"}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Api:
        self._session = aiohttp.ClientSession(headers=self._headers)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._session is not None
        await self._session.close()

    async def request(
        self, method: str, path: str, body: Any = None, **query: str
    ) -> tuple[int, Any]:
        assert self._session is not None
        async with self._session.request(
            method, self.base_url + path, json=body, params=query or None
        ) as response:
            text = await response.text()
            ctype = response.headers.get("Content-Type", "")
            return response.status, json.loads(text) if "json" in ctype and text else text

    async def add_station(self, station_id: str, **fields: Any) -> None:
        status, body = await self.request("POST", "/api/stations", {"id": station_id, **fields})
        assert status == 201, body


class ScriptedStation:
    """A station that sends what the test says and answers central CALLs from a script."""

    def __init__(self, websocket: ClientConnection, station_id: str) -> None:
        self.websocket = websocket
        self.station_id = station_id
        self.answers: dict[str, Answer] = {
            action: (lambda payload, result=result: result)
            for action, (_, result) in COMMAND_EXAMPLES.items()
        }
        self.calls_received: list[tuple[str, dict[str, Any]]] = []
        self.ignored: list[Any] = []  # frames that answered nothing we sent
        self._pending: dict[str, asyncio.Future[list[Any]]] = {}
        self._ids = itertools.count(1)
        # Run after answering a central CALL, as a task (it may make its own CALLs).
        self.on_call: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None
        self.followups: list[asyncio.Task[None]] = []

    async def run(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in self.websocket:
                frame = json.loads(message)
                if frame[0] == 2:
                    await self._answer(frame)
                else:
                    waiter = self._pending.pop(frame[1], None)
                    if waiter is None:
                        self.ignored.append(frame)
                    elif not waiter.done():
                        waiter.set_result(frame)
        for waiter in self._pending.values():
            if not waiter.done():
                waiter.set_exception(ConnectionError("closed"))

    async def _answer(self, frame: list[Any]) -> None:
        _, message_id, action, payload = frame
        self.calls_received.append((action, payload))
        answer = self.answers.get(action)
        result = answer(payload) if answer else ("error", "NotImplemented")
        if result is None:
            return  # say nothing: the central times out
        if isinstance(result, tuple):
            reply: list[Any] = [4, message_id, result[1], "scripted refusal", {}]
        else:
            reply = [3, message_id, result]
        await self.websocket.send(json.dumps(reply))
        if self.on_call is not None:
            self.followups.append(asyncio.create_task(self.on_call(action, payload)))

    async def call(self, action: str, payload: dict[str, Any]) -> list[Any]:
        """Send a CALL, return the whole answer frame (CALLRESULT or CALLERROR)."""
        message_id = f"{self.station_id}-{next(self._ids)}"
        waiter: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = waiter
        await self.websocket.send(json.dumps([2, message_id, action, payload]))
        async with asyncio.timeout(10 * UNIT):
            return await waiter

    async def result(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        frame = await self.call(action, payload)
        assert frame[0] == 3, frame
        result: dict[str, Any] = frame[2]
        return result

    async def boot(self) -> dict[str, Any]:
        return await self.result("BootNotification", BOOT)


def basic_auth(station_id: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{station_id}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@contextlib.asynccontextmanager
async def scripted_station(
    ws_url: str, station_id: str, *, password: str | None = None, **kwargs: Any
) -> AsyncIterator[ScriptedStation]:
    headers = basic_auth(station_id, password) if password is not None else {}
    async with connect(
        f"{ws_url}/{station_id}",
        subprotocols=["OS3P1.0"],  # type: ignore[list-item]
        additional_headers=headers,
        compression=None,
        **kwargs,
    ) as websocket:
        station = ScriptedStation(websocket, station_id)
        async with asyncio.TaskGroup() as tasks:
            runner = tasks.create_task(station.run())
            try:
                yield station
            finally:
                await asyncio.gather(*station.followups, return_exceptions=True)
                await websocket.close()
                await runner
