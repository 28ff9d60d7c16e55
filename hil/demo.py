"""`make demo`: a central endpoint and stations on loopback, booting and heartbeating.

This is the protocol-level demo: it runs the OS³P shell on both ends (the
central answers BootNotification and Heartbeat, each station boots, then
heartbeats every few seconds) and prints what crosses the wire, until Ctrl-C.
The full rig (daemons, simulators, schedules) grows on top of it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from datetime import UTC, datetime

from websockets.asyncio.server import ServerConnection

from os3p.client import open_connection
from os3p.connection import Connection
from os3p.messages import (
    BootNotificationRequest,
    BootNotificationResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    RegistrationStatus,
)
from os3p.router import Router
from os3p.server import open_server
from os3p.session import Role, Session
from os3p.validation import Validator

log = logging.getLogger("demo")


class DemoCentral:
    """Accepts every station it was told about, with a short heartbeat interval."""

    def __init__(self, stations: set[str], interval: int) -> None:
        self.stations = stations
        self.interval = interval
        self.validator = Validator()
        self.router: Router[str] = Router()
        self.router.add(BootNotificationRequest, self.boot)
        self.router.add(HeartbeatRequest, self.heartbeat)

    def is_known(self, station_id: str) -> bool:
        return station_id in self.stations

    def check_password(self, station_id: str, password: str | None) -> bool:
        return True

    async def boot(
        self, request: BootNotificationRequest, station_id: str
    ) -> BootNotificationResponse:
        print(
            f"central  ← {station_id}: BootNotification {request.vendor} {request.model}"
            f" fw {request.firmware_version}"
        )
        return BootNotificationResponse(
            status=RegistrationStatus.ACCEPTED,
            current_time=datetime.now(UTC),
            interval=self.interval,
        )

    async def heartbeat(self, request: HeartbeatRequest, station_id: str) -> HeartbeatResponse:
        print(f"central  ← {station_id}: Heartbeat")
        return HeartbeatResponse(current_time=datetime.now(UTC))

    async def handle(self, websocket: ServerConnection, station_id: str) -> None:
        print(f"central  : {station_id} connected")
        session = Session(Role.CENTRAL, self.validator, implemented=self.router.actions)
        await Connection(websocket, session, self.router, station_id, peer=station_id).run()
        print(f"central  : {station_id} disconnected")


async def run_station(endpoint: str, station_id: str, validator: Validator) -> None:
    websocket = await open_connection(endpoint, station_id)
    router: Router[None] = Router()
    session = Session(Role.STATION, validator, implemented=router.actions)
    connection = Connection(websocket, session, router, None, peer=station_id)
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(connection.run())
        boot = await connection.call_typed(
            BootNotificationRequest(
                vendor="OpenGrid",
                model="RTU-DEMO",
                station_number=station_id[-10:],
                serial_number=f"SN-{station_id}",
                firmware_version="0.1.0",
                iccid="89310000000000000000",
                imsi="204080000000000",
            ),
            BootNotificationResponse,
        )
        print(f"{station_id}: boot {boot.status}, heartbeat every {boot.interval} s")
        while not connection.closed:
            await asyncio.sleep(boot.interval)
            answer = await connection.call_typed(HeartbeatRequest(), HeartbeatResponse)
            print(f"{station_id}: heartbeat answered, central time {answer.current_time:%H:%M:%S}")


async def main_async(stations: int, interval: int) -> None:
    ids = {f"SUBS{n:03d}" for n in range(1, stations + 1)}
    central = DemoCentral(ids, interval)
    server = await open_server(central.handle, central, host="127.0.0.1", port=0)
    port = server.sockets[0].getsockname()[1]
    endpoint = f"ws://127.0.0.1:{port}/OS3P"
    print(f"central listening on {endpoint}/<station> — Ctrl-C stops everything")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with asyncio.TaskGroup() as tasks:
        runners = [
            tasks.create_task(run_station(endpoint, i, central.validator)) for i in sorted(ids)
        ]
        await stop.wait()
        for runner in runners:
            runner.cancel()
    server.close()
    await server.wait_closed()
    print("stopped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=3)
    parser.add_argument("--interval", type=int, default=5, help="heartbeat interval in seconds")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main_async(args.stations, args.interval))


if __name__ == "__main__":
    main()
