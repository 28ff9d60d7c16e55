"""A scripted central system for station tests: real os3p server, answers every
station-initiated action, records what arrived, and can call the station."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from websockets.asyncio.server import Server, ServerConnection

from os3p.connection import Connection
from os3p.messages import (
    MESSAGE_TYPES,
    BootNotificationRequest,
    BootNotificationResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    RegistrationStatus,
    to_payload,
)
from os3p.router import Router
from os3p.server import open_server
from os3p.session import Role, Session
from os3p.validation import Validator

VALIDATOR = Validator()


@dataclass
class MemoryRecords:
    """The station's boot record as the state database keeps it, in memory (link tests)."""

    accepted: tuple[dict[str, str], str] | None = None
    offsets: list[timedelta] = field(default_factory=list)

    async def boot_due(self, fields: Mapping[str, str], endpoint: str) -> bool:
        return self.accepted != (dict(fields), endpoint)

    async def record_accepted_boot(
        self, fields: Mapping[str, str], endpoint: str, at: datetime
    ) -> None:
        self.accepted = (dict(fields), endpoint)

    async def save_clock_offset(self, offset: timedelta) -> None:
        self.offsets.append(offset)


class ScriptedCentral:
    """Answers BootNotification from a script of (status, interval); everything else
    with its plain response. `received` keeps (loop time, action, payload)."""

    def __init__(
        self,
        statuses: list[tuple[RegistrationStatus, int]] | None = None,
        *,
        skew: timedelta = timedelta(0),
    ) -> None:
        self.statuses = statuses or [(RegistrationStatus.ACCEPTED, 60)]
        self.skew = skew
        self.received: list[tuple[float, str, dict[str, Any]]] = []
        self.connections: list[Connection[str]] = []
        self.router: Router[str] = Router()
        self.router.add(BootNotificationRequest, self.boot)
        self.router.add(HeartbeatRequest, self.heartbeat)
        self.arrived = asyncio.Event()
        for action, (request, response) in MESSAGE_TYPES.items():
            if (
                request in (BootNotificationRequest, HeartbeatRequest)
                or action not in Role.CENTRAL.receives
            ):
                continue
            self.router.add(request, self._recorder(action.value, response))
        self.server: Server | None = None
        self.endpoint = ""

    def _recorder(self, action: str, response: type[msgspec.Struct]) -> Any:
        async def record(request: msgspec.Struct, station: str) -> msgspec.Struct:
            self._note(action, request)
            return response()

        return record

    def _note(self, action: str, request: msgspec.Struct) -> None:
        self.received.append((asyncio.get_running_loop().time(), action, to_payload(request)))
        self.arrived.set()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.skew

    def of(self, action: str) -> list[dict[str, Any]]:
        return [payload for _, a, payload in self.received if a == action]

    def count(self, action: str) -> int:
        return len(self.of(action))

    @property
    def current(self) -> Connection[str] | None:
        if self.connections and not self.connections[-1].closed:
            return self.connections[-1]
        return None

    async def boot(
        self, request: BootNotificationRequest, station: str
    ) -> BootNotificationResponse:
        self._note("BootNotification", request)
        status, interval = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if status is RegistrationStatus.REJECTED:
            # §3.1 Rejected: "the Central System will terminate the connection"
            connection = self.connections[-1]
            asyncio.get_running_loop().call_later(
                0.05, lambda: asyncio.ensure_future(connection.close())
            )
        return BootNotificationResponse(status=status, current_time=self.now(), interval=interval)

    async def heartbeat(self, request: HeartbeatRequest, station: str) -> HeartbeatResponse:
        self._note("Heartbeat", request)
        return HeartbeatResponse(current_time=self.now())

    def is_known(self, station_id: str) -> bool:
        return True

    def check_password(self, station_id: str, password: str | None) -> bool:
        return True

    async def handle(self, websocket: ServerConnection, station_id: str) -> None:
        session = Session(Role.CENTRAL, VALIDATOR, implemented=self.router.actions)
        connection = Connection(websocket, session, self.router, station_id, peer=station_id)
        self.connections.append(connection)
        await connection.run()

    async def start(self, port: int = 0) -> str:
        self.server = await open_server(self.handle, self, port=port)
        self.endpoint = f"ws://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/OS3P"
        return self.endpoint

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None


@contextlib.asynccontextmanager
async def scripted_central(
    central: ScriptedCentral, port: int = 0
) -> AsyncIterator[ScriptedCentral]:
    await central.start(port)
    try:
        yield central
    finally:
        await central.stop()
