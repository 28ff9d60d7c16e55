"""End to end: a scripted central over a real OS³P websocket, the station's link,
router and outbox pump, the lights subsystem and the Modbus simulator.

The central talks to the station only through the wire: SetStreetlightProfile,
GetEffectiveStreetlightDaySchedule, OverrideStreetlight go out as CALLs, and the
notifications arrive as CALLs the real outbox pump sends. With no central at
all, the lights still switch and the notifications wait in the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
from websockets.asyncio.server import ServerConnection

from hil.io_module import IOModuleSimulator
from os3p.connection import Connection
from os3p.messages import (
    BootNotificationRequest,
    BootNotificationResponse,
    GetEffectiveStreetlightDayScheduleRequest,
    HeartbeatRequest,
    HeartbeatResponse,
    OverrideStreetlightRequest,
    RegistrationStatus,
    SetStreetlightProfileRequest,
    StatusNotificationRequest,
    StatusNotificationResponse,
    StreetlightModeStatusNotificationRequest,
    StreetlightModeStatusNotificationResponse,
    StreetlightStatusNotificationRequest,
    StreetlightStatusNotificationResponse,
    from_payload,
    to_payload,
)
from os3p.router import Router
from os3p.server import open_server
from os3p.session import Role, Session
from rtu.clock import Clock
from rtu.configkeys import Change, ConfigurationKeys, standard_keys
from rtu.events import EventSink
from rtu.io.modbus import ModbusIOModule, TcpEndpoint
from rtu.io.poller import IOPoller
from rtu.lights import LightsConfig, LightsSubsystem
from rtu.link import Link, LinkSettings
from rtu.outbox import Outbox, pump_loop
from rtu.schedule import profile_from_wire
from rtu.triggers import Triggers
from tests.hil.support import DRIVER_TIMEOUT, RELAY_DELAY, UNIT, WAIT, async_test, no_sleep
from tests.rtu.lights.support import SITE, VALIDATOR, daily_wire, evening_clock, soon, until
from tests.rtu.test_link import BOOT, MemoryRecords

NOTIFICATIONS = (
    StreetlightStatusNotificationRequest,
    StreetlightModeStatusNotificationRequest,
    StatusNotificationRequest,
)


@dataclass
class Central:
    """Accepts the station, answers its notifications, and can call it."""

    clock: Clock
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    connection: Connection[str] | None = None

    def router(self) -> Router[str]:
        router: Router[str] = Router()
        router.add(BootNotificationRequest, self.boot)
        router.add(HeartbeatRequest, self.heartbeat)
        router.add(StreetlightStatusNotificationRequest, self.status)
        router.add(StreetlightModeStatusNotificationRequest, self.mode)
        router.add(StatusNotificationRequest, self.station_status)
        return router

    async def boot(self, request: BootNotificationRequest, _: str) -> BootNotificationResponse:
        # The station's (shifted) time: the link corrects its clock by it.
        return BootNotificationResponse(
            status=RegistrationStatus.ACCEPTED, current_time=self.clock.now(), interval=300
        )

    async def heartbeat(self, request: HeartbeatRequest, _: str) -> HeartbeatResponse:
        return HeartbeatResponse(current_time=self.clock.now())

    def _record(self, request: msgspec.Struct) -> None:
        self.received.append((type(request).__name__.removesuffix("Request"), to_payload(request)))

    async def status(
        self, request: StreetlightStatusNotificationRequest, _: str
    ) -> StreetlightStatusNotificationResponse:
        self._record(request)
        return StreetlightStatusNotificationResponse()

    async def mode(
        self, request: StreetlightModeStatusNotificationRequest, _: str
    ) -> StreetlightModeStatusNotificationResponse:
        self._record(request)
        return StreetlightModeStatusNotificationResponse()

    async def station_status(
        self, request: StatusNotificationRequest, _: str
    ) -> StatusNotificationResponse:
        self._record(request)
        return StatusNotificationResponse()

    def is_known(self, station_id: str) -> bool:
        return True

    def check_password(self, station_id: str, password: str | None) -> bool:
        return True

    async def handle(self, websocket: ServerConnection, station_id: str) -> None:
        router = self.router()
        session = Session(Role.CENTRAL, VALIDATOR, implemented=router.actions)
        self.connection = Connection(websocket, session, router, station_id, peer=station_id)
        await self.connection.run()

    async def call(self, action: type[msgspec.Struct], payload: dict[str, Any]) -> dict[str, Any]:
        assert self.connection is not None
        response = await self.connection.call(from_payload(action, payload), timeout=WAIT)
        return to_payload(response)

    def of(self, action: str) -> list[dict[str, Any]]:
        return [p for a, p in self.received if a == action]


@dataclass
class Rtu:
    sim: IOModuleSimulator
    link: Link
    outbox: Outbox
    lights: LightsSubsystem
    keys: ConfigurationKeys


@contextlib.asynccontextmanager
async def rtu(tmp_path: Path, endpoint: str, clock: Clock) -> AsyncIterator[Rtu]:
    """The station's side, wired as the daemon wires it."""
    async with contextlib.AsyncExitStack() as stack:
        sim = await stack.enter_async_context(IOModuleSimulator(relay_delay=RELAY_DELAY))
        driver = ModbusIOModule(
            sim.physics.iomap,
            TcpEndpoint("127.0.0.1", sim.port, timeout=DRIVER_TIMEOUT),
            sleep=no_sleep,
        )
        stack.push_async_callback(driver.close)
        poller = IOPoller(driver, period=UNIT / 5, retry=UNIT)
        outbox = await Outbox.open(tmp_path / "outbox.db", clock=clock.now)
        stack.push_async_callback(outbox.close)
        keys = ConfigurationKeys(
            standard_keys(),
            {
                "HeartbeatInterval": 300,
                "websocketPingInterval": 0,
                "Geolocation": (SITE.latitude, SITE.longitude),
                "StreetlightProfileMaxStackLevel": 10,
                "MeterValueSampleInterval": 0,
                "ClockAlignedDataInterval": 0,
            },
            providers={"Sunrise": str, "Sunset": str},
        )
        lights = await LightsSubsystem.open(
            data_dir=tmp_path,
            contactors=(1, 2, 3, 4),
            poller=poller,
            sink=EventSink(outbox, VALIDATOR),
            clock=clock,
            keys=keys,
            zone=SITE.timezone,
            config=LightsConfig(feedback_timeout=4 * UNIT, max_sleep=20 * UNIT),
        )
        stack.push_async_callback(lights.close)
        router: Router[None] = Router()
        lights.register(router, Triggers())
        link = Link(
            LinkSettings(
                endpoint=endpoint,
                station_id="SUBS001",
                boot=BOOT,
                call_timeout=WAIT,
                backoff_base=UNIT,
                backoff_cap=4 * UNIT,
            ),
            router,
            None,
            records=MemoryRecords(),
            clock=clock,
            validator=VALIDATOR,
        )
        tasks = await stack.enter_async_context(asyncio.TaskGroup())
        running = [
            tasks.create_task(poller.poll_loop(), name="poller"),
            tasks.create_task(link.run_loop(), name="link"),
            tasks.create_task(
                pump_loop(outbox, link.send_raw, window=1, wake=link.accepted), name="outbox"
            ),
            *(tasks.create_task(loop(), name=name) for name, loop in lights.loops()),
        ]
        try:
            yield Rtu(sim, link, outbox, lights, keys)
        finally:
            for task in running:
                task.cancel()
            await link.close()


@async_test
async def test_a_central_drives_the_lights_over_the_wire(tmp_path: Path) -> None:
    clock = evening_clock()
    central = Central(clock)
    server = await open_server(central.handle, central)
    endpoint = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/OS3P"
    try:
        async with rtu(tmp_path, endpoint, clock) as station:
            await until(station.link.accepted.is_set)
            on, off = soon(clock, 20 * UNIT), soon(clock, 40 * UNIT)
            answer = await central.call(
                SetStreetlightProfileRequest,
                {"contactorId": 1, "streetlightProfiles": [daily_wire(1, 0, on, off)]},
            )
            assert answer == {"status": "Accepted"}
            answer = await central.call(
                GetEffectiveStreetlightDayScheduleRequest,
                {"contactorId": 1, "at": on.strftime("%Y-%m-%dT00:00:00")},
            )
            assert answer == {
                "contactorId": 1,
                "daySchedule": [
                    {"start": on.strftime("%H:%M:%S"), "end": off.strftime("%H:%M:%S")}
                ],
            }
            answer = await central.call(
                OverrideStreetlightRequest, {"contactorId": 2, "action": "On"}
            )
            assert answer == {"status": "Accepted"}
            await until(lambda: len(central.of("StreetlightStatusNotification")) == 3, 2 * WAIT)
            modes = central.of("StreetlightModeStatusNotification")
            assert [(m["contactorId"], m["mode"]) for m in modes] == [(2, "RemoteOverride")]
            statuses = central.of("StreetlightStatusNotification")
            assert [(s["contactorId"], s["status"]) for s in statuses] == [
                (2, "On"),
                (1, "On"),
                (1, "Off"),
            ]
            await until(lambda: station.outbox.depth() == 0)  # every one acknowledged
            assert station.lights.snapshot()["contactors"]["2"]["mode"] == "RemoteOverride"  # type: ignore[index]
    finally:
        server.close()
        await server.wait_closed()


@async_test
async def test_without_a_central_the_lights_switch_and_the_events_wait(tmp_path: Path) -> None:
    clock = evening_clock()
    # Nobody listens here: the link keeps retrying for the whole test.
    async with rtu(tmp_path, "ws://127.0.0.1:9/OS3P", clock) as station:
        on, off = soon(clock, 10 * UNIT), soon(clock, 25 * UNIT)
        await station.lights.store.install(
            3, [profile_from_wire(daily_wire(1, 0, on, off))], clear_all=False, max_stack_level=10
        )
        station.lights.controller.set_profiles(await station.lights.store.profiles())
        await until(lambda: station.outbox.depth() == 2, 2 * WAIT)
        assert not station.link.accepted.is_set()
        entries = await station.outbox.peek(10)
        assert [(e.action, json.loads(e.payload)["status"]) for e in entries] == [
            ("StreetlightStatusNotification", "On"),
            ("StreetlightStatusNotification", "Off"),
        ]
        coil = station.sim.physics.iomap.contactor(3).coil
        assert [w.value for w in station.sim.coil_writes if w.address == coil] == [True, False]


@async_test
async def test_clock_correction_and_geolocation_recompute(tmp_path: Path) -> None:
    clock = evening_clock()
    async with rtu(tmp_path, "ws://127.0.0.1:9/OS3P", clock) as station:
        lights = station.lights
        start = soon(clock, -60)
        sunset = {"kind": "Sunset", "offset": 0}
        evening = {**daily_wire(1, 0, start, soon(clock, 600)), "profileId": 1}
        night = daily_wire(2, 1, start, start)
        night["daySchedule"] = [{"start": sunset, "end": {"kind": "Absolute", "time": "23:59:00"}}]
        await lights.store.install(
            1, [profile_from_wire(evening)], clear_all=False, max_stack_level=10
        )
        await lights.store.install(
            2, [profile_from_wire(night)], clear_all=False, max_stack_level=10
        )
        lights.controller.set_profiles(await lights.store.profiles())
        await until(lambda: lights.controller.lights(1) is True)
        # The central's time is an hour earlier: before the period, so the lights go off.
        before = clock.now()
        clock.correct(
            before - timedelta(hours=1),
            sent_at=clock.monotonic(),
            received_at=clock.monotonic(),
        )
        # At once, not when the cached verdict would expire (max_sleep = 20 units).
        await until(lambda: lights.controller.lights(1) is False, 8 * UNIT)
        # Geolocation moves the sunset: the effective schedule follows at once.
        request = GetEffectiveStreetlightDayScheduleRequest(contactor_id=2, at=before)
        first = await lights.handlers.effective_day_schedule(request, None)
        change = keys_change(station.keys, "Geolocation", "[60.0, 25.0]")
        station.keys.apply(change)
        second = await lights.handlers.effective_day_schedule(request, None)
        assert first.day_schedule[0].start != second.day_schedule[0].start
        assert second.day_schedule[0].end == "23:59:00"


def keys_change(keys: ConfigurationKeys, name: str, value: str) -> Change:
    change = keys.prepare(name, value)
    assert isinstance(change, Change)
    return change
