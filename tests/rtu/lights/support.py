"""A station for the lights tests: the Modbus simulator, the real driver and poller,
a real outbox and lights.db, and the controller, all on one event loop.

Wall time runs on a `Clock` shifted to a fixed evening (20:00 UTC at the site,
far from the noon day boundary of §7.10), so profiles with Absolute times a few
seconds ahead mean the same whenever the tests run. Durations are multiples of
`tests.hil.support.UNIT`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hil.io_module import IOModuleSimulator
from os3p.validation import Validator
from rtu.clock import Clock
from rtu.events import EventSink
from rtu.io.modbus import ModbusIOModule
from rtu.io.poller import IOPoller
from rtu.lights.controller import LightsController
from rtu.lights.profiles import LightsStore
from rtu.outbox import Outbox
from rtu.schedule import Profile, Site, profile_from_wire
from rtu.supervision.board import FaultBoard
from tests.hil.support import UNIT, WAIT, eventually, rig

SITE = Site(52.0, 5.0, ZoneInfo("UTC"))
EVENING = datetime(2026, 6, 1, 20, 0, tzinfo=UTC)
FEEDBACK_TIMEOUT = 4 * UNIT
VALIDATOR = Validator()


def evening_clock() -> Clock:
    return Clock(offset=EVENING - datetime.now(UTC))


def at(moment: datetime) -> str:
    """A local (here UTC) wall time as §7.10 Table 18 writes it, to the millisecond."""
    return moment.astimezone(SITE.timezone).strftime("%H:%M:%S.%f")[:-3]


def period_wire(start: datetime, end: datetime) -> dict[str, Any]:
    return {
        "start": {"kind": "Absolute", "time": at(start)},
        "end": {"kind": "Absolute", "time": at(end)},
    }


def daily_wire(profile_id: int, stack_level: int, start: datetime, end: datetime) -> dict[str, Any]:
    return {
        "profileId": profile_id,
        "stackLevel": stack_level,
        "recurrencyKind": "Daily",
        "daySchedule": [period_wire(start, end)],
    }


def daily(profile_id: int, stack_level: int, start: datetime, end: datetime) -> Profile:
    return profile_from_wire(daily_wire(profile_id, stack_level, start, end))


@dataclass
class Station:
    sim: IOModuleSimulator
    driver: ModbusIOModule
    poller: IOPoller
    outbox: Outbox
    store: LightsStore
    controller: LightsController
    clock: Clock
    tasks: asyncio.TaskGroup

    async def events(self, action: str | None = None) -> list[dict[str, Any]]:
        """Payloads committed to the outbox, oldest first (with `action` if given)."""
        return [
            json.loads(e.payload)
            for e in await self.outbox.peek(10_000)
            if action is None or e.action == action
        ]

    async def wait_events(
        self, action: str, count: int, within: float = WAIT
    ) -> list[dict[str, Any]]:
        """The `action` payloads once there are at least `count` of them."""
        return await eventually(lambda: self.events(action), lambda e: len(e) >= count, within)

    def writes(self, contactor: int) -> list[bool]:
        coil = self.sim.physics.iomap.contactor(contactor).coil
        return [w.value for w in self.sim.coil_writes if w.address == coil]

    def monotonic_of(self, moment: datetime) -> float:
        """When the simulator's clock (time.monotonic) reaches wall time `moment`."""
        return self.clock.monotonic() + (moment - self.clock.now()).total_seconds()


@contextlib.asynccontextmanager
async def station(
    tmp_path: Path,
    *,
    sim: IOModuleSimulator | None = None,
    clock: Clock | None = None,
    contactors: tuple[int, ...] = (1, 2, 3, 4),
    faults: FaultBoard | None = None,
) -> AsyncIterator[Station]:
    """Everything running. Pass the `sim` (and `clock`) of an earlier station on the
    same `tmp_path` to restart the daemon's side against a module that kept running."""
    clock = clock or evening_clock()
    async with contextlib.AsyncExitStack() as stack:
        if sim is None:
            sim, driver = await stack.enter_async_context(rig())
        else:
            from rtu.io.modbus import TcpEndpoint
            from tests.hil.support import DRIVER_TIMEOUT, no_sleep

            driver = ModbusIOModule(
                sim.physics.iomap,
                TcpEndpoint("127.0.0.1", sim.port, timeout=DRIVER_TIMEOUT),
                sleep=no_sleep,
            )
            stack.push_async_callback(driver.close)
        outbox = await Outbox.open(tmp_path / "outbox.db", clock=clock.now)
        stack.push_async_callback(outbox.close)
        store = await LightsStore.open(tmp_path / "lights.db", now=clock.now)
        stack.push_async_callback(store.close)
        poller = IOPoller(driver, period=UNIT / 5, retry=UNIT)
        controller = LightsController(
            contactors=contactors,
            store=store,
            poller=poller,
            sink=EventSink(outbox, VALIDATOR),
            clock=clock,
            site=SITE,
            feedback_timeout=FEEDBACK_TIMEOUT,
            max_sleep=20 * UNIT,
            faults=faults,
        )
        tasks = await stack.enter_async_context(asyncio.TaskGroup())
        poll = tasks.create_task(poller.poll_loop(), name="poller")
        control = tasks.create_task(controller.control_loop(), name="lights")
        try:
            yield Station(sim, driver, poller, outbox, store, controller, clock, tasks)
        finally:
            poll.cancel()
            control.cancel()


async def until(condition: Callable[[], bool], within: float = WAIT) -> None:
    """Wait until `condition()` holds (polled), or fail after `within` seconds."""

    async def probe() -> bool:
        return condition()

    await eventually(probe, bool, within)


def soon(clock: Clock, seconds: float) -> datetime:
    """A wall time `seconds` ahead, to the millisecond (what a profile can say)."""
    moment = clock.now() + timedelta(seconds=seconds)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
