"""Guide §4 (RPC framework) and annex §4.2 on the wire, for both real peers.

The station side is the real daemon (`rtu run`) connected to a central written frame by
frame; the central side is the real central service with a station written frame by
frame. Each side gets the same table of frames: some it must ignore, some it must
answer, and the answers are checked element by element.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from os3p.client import open_connection
from os3p.connection import Connection
from os3p.messages import (
    HeartbeatRequest,
    HeartbeatResponse,
    StationErrorCode,
    StationStatus,
    StatusNotificationRequest,
)
from os3p.router import Router
from os3p.session import Role, Session
from tests.central.support import BOOT, running_central
from tests.rtu.test_daemon import Daemon
from tests.support.aio import UNIT, eventually, run
from tests.support.central import VALIDATOR

# Frames nobody may answer: message type not 2/3/4 (Guide §4.1.1), no discernible id (§4.4).
IGNORED = [
    '[5, "u1", "GetConfiguration", {}]',
    '[0, "u2"]',
    '["2", "u3", "GetConfiguration", {}]',
    '[9, "u4", {}]',
    "[]",
    "not json",
]


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def natural_language_removed(frame: list[Any]) -> list[Any]:
    """The frame without its natural-language text: CALLERROR errorDescription and a
    StatusNotification's `info` (Guide §4, the only places non-ASCII may appear)."""
    stripped: list[Any] = json.loads(json.dumps(frame))
    if stripped[0] == 4:
        stripped[3] = ""
    if stripped[0] == 2 and stripped[2] == "StatusNotification":
        stripped[3].pop("info", None)
    return stripped


def assert_text_json_frames(messages: list[str | bytes]) -> list[list[Any]]:
    """Guide §4: every message is a text frame (UTF-8 by RFC 6455) holding a JSON array,
    ASCII except for natural-language text."""
    frames = []
    for message in messages:
        assert isinstance(message, str), message  # a text frame, not binary
        message.encode("utf-8")  # a str from a text frame is valid UTF-8 by construction
        frame = json.loads(message)
        assert isinstance(frame, list), frame
        assert frame[0] in (2, 3, 4), frame
        assert json.dumps(natural_language_removed(frame), ensure_ascii=False).isascii(), frame
        frames.append(frame)
    return frames


def assert_callerror(frame: list[Any], message_id: str, code: str) -> None:
    """Guide §4.4: five elements, the CALL's id, a Table 7 code, a description string
    (filled in where possible), details an object, `{}` when there are none."""
    assert len(frame) == 5, frame
    assert frame[:3] == [4, message_id, code], frame
    assert isinstance(frame[3], str), frame
    assert frame[3], frame
    assert frame[4] == {}, frame


# ------------------------------------------------------------------ station side
class RawCentral:
    """A central written by hand: answers every station CALL, keeps every message."""

    def __init__(self) -> None:
        self.messages: list[str | bytes] = []
        self.calls: list[list[Any]] = []
        self.answers: dict[str, list[Any]] = {}
        self.websocket: ServerConnection | None = None

    def result(self, action: str) -> dict[str, Any]:
        if action == "BootNotification":
            return {"status": "Accepted", "currentTime": now(), "interval": 3600}
        if action == "Heartbeat":
            return {"currentTime": now()}
        return {}

    async def handle(self, websocket: ServerConnection) -> None:
        self.websocket = websocket
        async for message in websocket:
            self.messages.append(message)
            frame = json.loads(message)
            if frame[0] == 2:
                self.calls.append(frame)
                await websocket.send(json.dumps([3, frame[1], self.result(frame[2])]))
            else:
                self.answers[frame[1]] = frame

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        async with serve(
            self.handle,
            "127.0.0.1",
            0,
            subprotocols=["OS3P1.0"],  # type: ignore[list-item]
            compression=None,
        ) as server:
            port = server.sockets[0].getsockname()[1] if server.sockets else 0
            yield f"ws://127.0.0.1:{port}/OS3P"


STATION_CALLS: list[tuple[str, str, dict[str, Any]]] = [
    ("c1", "GetConfiguration", {}),
    ("c2", "Frobnicate", {}),  # unknown action
    ("c3", "Frobnicate", {}),  # again: the same answer (§4.2 SHOULD)
    ("c4", "BootNotification", BOOT),  # an action the station does not receive
    ("c5", "ChangeConfiguration", {"key": "HeartbeatInterval"}),  # value missing
]


def test_station_answers_and_ignores_by_the_rules(tmp_path: Path) -> None:
    async def scenario() -> None:
        central = RawCentral()
        async with central.serving() as endpoint:
            daemon = Daemon(tmp_path, endpoint)
            await daemon.start()
            try:
                await eventually(
                    lambda: bool(central.calls), timeout=15 * UNIT, what="the daemon's first CALL"
                )
                assert central.websocket is not None
                for text in IGNORED:
                    await central.websocket.send(text)
                for message_id, action, payload in STATION_CALLS:
                    await central.websocket.send(json.dumps([2, message_id, action, payload]))
                expected = {message_id for message_id, _, _ in STATION_CALLS}
                await eventually(
                    lambda: expected <= set(central.answers), timeout=10 * UNIT, what="answers"
                )
            finally:
                assert daemon.process is not None
                daemon.process.kill()
                await daemon.process.wait()
                daemon.notify.close()

        # Annex §3.1: the very first message is a BootNotification.
        assert central.calls[0][2] == "BootNotification"
        # Guide §4: text frames, JSON, ASCII outside natural language.
        assert_text_json_frames(central.messages)
        # Guide §4.1.2: CALL ids differ on the connection; answers carry the CALL's id.
        ids = [frame[1] for frame in central.calls]
        assert len(set(ids)) == len(ids)
        assert all(0 < len(i) <= 36 for i in ids)
        assert set(central.answers) == expected  # nothing answered the IGNORED frames
        answers = central.answers
        assert answers["c1"][:2] == [3, "c1"]
        assert "configurationKey" in answers["c1"][2]
        assert_callerror(answers["c2"], "c2", "NotImplemented")
        assert answers["c3"][2:] == answers["c2"][2:]
        assert_callerror(answers["c4"], "c4", "NotImplemented")
        assert_callerror(answers["c5"], "c5", "ProtocolError")

    run(scenario(), timeout=60 * UNIT)


# ------------------------------------------------------------------ central side
CENTRAL_CALLS: list[tuple[str, str, dict[str, Any]]] = [
    ("c1", "Heartbeat", {}),
    ("c2", "Frobnicate", {}),
    ("c3", "Frobnicate", {}),
    ("c4", "Reset", {}),  # an action the central does not receive
    ("c5", "StatusNotification", {"status": "Ok"}),  # errorCode missing
    ("c6", "Heartbeat", {"bogus": 1}),
]


def test_central_answers_and_ignores_by_the_rules(tmp_path: Path) -> None:
    async def scenario() -> None:
        messages: list[str | bytes] = []
        async with running_central(tmp_path) as (central, api):
            await api.add_station("SUBS001")
            async with connect(
                f"{central.ws_url}/SUBS001",
                subprotocols=["OS3P1.0"],  # type: ignore[list-item]
                compression=None,
            ) as websocket:
                await websocket.send(json.dumps([2, "b1", "BootNotification", BOOT]))
                messages.append(await websocket.recv())
                for text in IGNORED:
                    await websocket.send(text)
                for message_id, action, payload in CENTRAL_CALLS:
                    await websocket.send(json.dumps([2, message_id, action, payload]))
                async with asyncio.timeout(10 * UNIT):
                    while len(messages) < 1 + len(CENTRAL_CALLS):
                        messages.append(await websocket.recv())
                # Anything answering an IGNORED frame would have arrived before these.
        frames = assert_text_json_frames(messages)
        by_id = {frame[1]: frame for frame in frames}
        assert set(by_id) == {"b1"} | {message_id for message_id, _, _ in CENTRAL_CALLS}
        assert by_id["b1"][2]["status"] == "Accepted"
        assert by_id["c1"][:2] == [3, "c1"]
        assert "currentTime" in by_id["c1"][2]
        assert_callerror(by_id["c2"], "c2", "NotImplemented")
        assert by_id["c3"][2:] == by_id["c2"][2:]
        assert_callerror(by_id["c4"], "c4", "NotImplemented")
        assert_callerror(by_id["c5"], "c5", "ProtocolError")
        assert_callerror(by_id["c6"], "c6", "FormationViolation")

    run(scenario())


def test_central_call_ids_are_unique_and_echoed(tmp_path: Path) -> None:
    """Guide §4.1.2 for the central's CALLs, made through the operator API."""

    async def scenario() -> None:
        seen: list[str] = []
        async with running_central(tmp_path) as (central, api):
            await api.add_station("SUBS001")
            async with connect(
                f"{central.ws_url}/SUBS001",
                subprotocols=["OS3P1.0"],  # type: ignore[list-item]
                compression=None,
            ) as websocket:
                await websocket.send(json.dumps([2, "b1", "BootNotification", BOOT]))
                assert json.loads(await websocket.recv())[:2] == [3, "b1"]

                async def answer_calls() -> None:
                    async for message in websocket:
                        frame = json.loads(message)
                        assert frame[0] == 2, frame
                        seen.append(frame[1])
                        result = {"configurationKey": [], "unknownKey": ["X"]}
                        await websocket.send(json.dumps([3, frame[1], result]))

                answering = asyncio.create_task(answer_calls())
                try:
                    for _ in range(20):
                        status, body = await api.request(
                            "POST",
                            "/api/stations/SUBS001/commands/GetConfiguration",
                            {"key": ["X"]},
                        )
                        assert status == 200, body
                        assert body["response"] == {"configurationKey": [], "unknownKey": ["X"]}
                finally:
                    answering.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await answering
        assert len(seen) == 20
        assert len(set(seen)) == 20
        assert all(0 < len(i) <= 36 for i in seen)

    run(scenario())


# ------------------------------------------------------------------ the shared shell
def test_os3p_call_ids_unique_and_non_ascii_only_in_natural_language(tmp_path: Path) -> None:
    """Guide §4 and §4.1.2 for the os3p shell both peers are built on: 300 CALLs on one
    connection get 300 ids, and text a person wrote travels as UTF-8 in `info` only."""

    async def scenario() -> None:
        central = RawCentral()
        async with central.serving() as endpoint:
            websocket = await open_connection(endpoint, "SUBS001")
            router: Router[None] = Router()
            session = Session(Role.STATION, VALIDATOR, implemented=router.actions, window=8)
            connection = Connection(websocket, session, router, None, peer="SUBS001")
            async with asyncio.TaskGroup() as tasks:
                runner = tasks.create_task(connection.run())
                heartbeat = HeartbeatRequest()
                await asyncio.gather(
                    *(connection.call_typed(heartbeat, HeartbeatResponse) for _ in range(300))
                )
                info = "Überspannung – Trafo 2 (Störung)"
                await connection.call(
                    StatusNotificationRequest(
                        status=StationStatus.FAULTED,
                        error_code=StationErrorCode.OTHER_ERROR,
                        info=info,
                        vendor_id="org.example",
                        vendor_error_code="E42",
                    )
                )
                await connection.close()
                await runner
        frames = assert_text_json_frames(central.messages)
        ids = [frame[1] for frame in frames]
        assert len(ids) == 301
        assert len(set(ids)) == 301
        assert frames[-1][3]["info"] == info
        assert not central.messages[-1].isascii()  # sent as UTF-8, not only as \\u escapes

    run(scenario())
