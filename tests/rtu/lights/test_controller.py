"""The controller against the Modbus simulator over real Modbus TCP, with a real outbox."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import datetime, timedelta
from pathlib import Path

from hil.io_module import IOModuleSimulator
from os3p.messages import StationErrorCode, StreetlightMode
from rtu.events import EventSink
from rtu.outbox import Outbox
from rtu.supervision.board import FaultBoard
from tests.hil.support import RELAY_DELAY, UNIT, WAIT, async_test
from tests.rtu.lights.support import (
    FEEDBACK_TIMEOUT,
    VALIDATOR,
    daily,
    evening_clock,
    soon,
    station,
    until,
)

STATUS = "StreetlightStatusNotification"
MODE = "StreetlightModeStatusNotification"
FAULT = "StatusNotification"


@async_test
async def test_a_profile_switches_on_time_and_reports(tmp_path: Path) -> None:
    async with station(tmp_path) as st:
        on, off = soon(st.clock, 20 * UNIT), soon(st.clock, 40 * UNIT)
        await st.store.install(1, [daily(1, 0, on, off)], clear_all=False, max_stack_level=9)
        st.controller.set_profiles(await st.store.profiles())
        first, second = await st.wait_events(STATUS, 2, within=WAIT + 40 * UNIT)
        coil = st.sim.physics.iomap.contactor(1).coil
        on_write, off_write = (w for w in st.sim.coil_writes if w.address == coil)
        assert (on_write.value, off_write.value) == (True, False)
        # §7.10 switching tolerance: within 1 s of the computed moment, and never early.
        for write, moment in ((on_write, on), (off_write, off)):
            late = write.at - st.monotonic_of(moment)
            assert -UNIT / 5 < late < 1.0, late
        assert (first["contactorId"], first["status"], second["status"]) == (1, "On", "Off")
        assert "unexpected" not in first
        assert "unexpected" not in second
        # Stamped at the switch moment: when the feedback was seen to change.
        for event, moment in ((first, on), (second, off)):
            seen = datetime.fromisoformat(event["timestamp"])
            assert moment <= seen < moment + timedelta(seconds=1), (seen, moment)
        assert st.writes(2) == []  # no profile: the schedule says off, and it is off
        assert await st.events(MODE) == []


@async_test
async def test_a_hand_flipped_contactor_is_unexpected_and_not_fought(tmp_path: Path) -> None:
    async with station(tmp_path) as st:
        await until(lambda: st.controller.core.available)
        st.sim.force_feedback(3, True)  # someone closes contactor 3 by hand (or it welds)
        (event,) = await st.wait_events(STATUS, 1)
        assert (event["contactorId"], event["status"], event["unexpected"]) == (3, "On", True)
        # The coil disagrees with the feedback for too long: a switch failure...
        (fault,) = await st.wait_events(FAULT, 1)
        assert (fault["status"], fault["errorCode"]) == ("Faulted", "PowerSwitchFailure")
        assert "contactor 3" in fault["info"]
        st.sim.force_feedback(3, None)  # ...resolved when it follows the coil again
        events = await st.wait_events(FAULT, 2)
        assert (events[1]["status"], events[1]["errorCode"]) == ("Ok", "NoError")
        assert st.writes(3) == []  # the controller never wrote: the coil was right


@async_test
async def test_a_resolved_switch_failure_keeps_the_station_faulted_while_another_fault_is_open(
    tmp_path: Path,
) -> None:
    """PowerSwitchFailure goes through the station's one fault board: its resolution
    says Faulted, not Ok, while an MV fault is still open (the central would otherwise
    close every open fault)."""
    clock = evening_clock()
    async with contextlib.AsyncExitStack() as stack:
        outbox = await Outbox.open(tmp_path / "faults.db", clock=clock.now)
        stack.push_async_callback(outbox.close)
        board = FaultBoard(EventSink(outbox, VALIDATOR), clock.now)
        await board.raise_fault(StationErrorCode.OVER_CURRENT_FAILURE, "MV1")
        st = await stack.enter_async_context(station(tmp_path, clock=clock, faults=board))
        await until(lambda: st.controller.core.available)
        st.sim.force_feedback(3, True)
        await until(lambda: board.is_open(StationErrorCode.POWER_SWITCH_FAILURE, "contactor 3"))
        st.sim.force_feedback(3, None)
        await until(lambda: not board.is_open(StationErrorCode.POWER_SWITCH_FAILURE, "contactor 3"))
        notes = [json.loads(e.payload) for e in await outbox.peek(100)]
        assert [(n["status"], n["errorCode"]) for n in notes] == [
            ("Faulted", "OverCurrentFailure"),
            ("Faulted", "PowerSwitchFailure"),
            ("Faulted", "NoError"),  # resolved, but MV1 is still open
        ]


@async_test
async def test_feedback_that_does_not_follow_a_command_is_a_power_switch_failure(
    tmp_path: Path,
) -> None:
    async with station(tmp_path) as st:
        st.sim.force_feedback(1, False)  # contactor 1 will not pull in
        await until(lambda: st.controller.core.available)
        on, off = soon(st.clock, 2 * UNIT), soon(st.clock, 3600)
        await st.store.install(1, [daily(1, 0, on, off)], clear_all=False, max_stack_level=9)
        st.controller.set_profiles(await st.store.profiles())
        (fault,) = await st.wait_events(FAULT, 1)
        assert fault["errorCode"] == "PowerSwitchFailure"
        assert fault["status"] == "Faulted"
        assert await st.events(STATUS) == []  # the lights did not change
        await asyncio.sleep(2 * FEEDBACK_TIMEOUT)
        assert st.writes(1) == [True]  # the coil is on: nothing to write again
        st.sim.force_feedback(1, None)
        (switched,) = await st.wait_events(STATUS, 1)
        assert (switched["status"], "unexpected" in switched) == ("On", False)
        resolved = (await st.wait_events(FAULT, 2))[1]
        assert (resolved["status"], resolved["errorCode"]) == ("Ok", "NoError")


@async_test
async def test_local_switch_reports_every_contactor_and_blocks_commands(tmp_path: Path) -> None:
    async with station(tmp_path) as st:
        await until(lambda: st.controller.core.available)
        st.sim.set_local_switch(True)
        modes = await st.wait_events(MODE, 4)
        assert [(m["contactorId"], m["mode"]) for m in modes] == [
            (c, "LocalOverride") for c in (1, 2, 3, 4)
        ]
        # A schedule that wants the lights on does nothing while the switch is engaged.
        on, off = soon(st.clock, 0), soon(st.clock, 3600)
        await st.store.install(2, [daily(1, 0, on, off)], clear_all=False, max_stack_level=9)
        st.controller.set_profiles(await st.store.profiles())
        await asyncio.sleep(4 * UNIT)
        assert st.writes(2) == []
        st.sim.set_local_switch(False)
        modes = await st.wait_events(MODE, 8)
        assert {m["mode"] for m in modes[4:]} == {"Schedule"}
        await st.wait_events(STATUS, 1)
        assert st.writes(2) == [True]
        assert st.controller.mode(2) is StreetlightMode.SCHEDULE


@async_test
async def test_a_restart_with_the_lights_on_never_writes_off(tmp_path: Path) -> None:
    async with IOModuleSimulator(relay_delay=RELAY_DELAY) as sim:
        clock = evening_clock()
        async with station(tmp_path, sim=sim, clock=clock) as st:
            on, off = soon(clock, -60), soon(clock, 3600)
            await st.store.install(1, [daily(1, 0, on, off)], clear_all=False, max_stack_level=9)
            st.controller.set_profiles(await st.store.profiles())
            await st.wait_events(STATUS, 1)
        # The daemon stopped; the module kept the lights on; the daemon starts again.
        async with station(tmp_path, sim=sim, clock=clock) as again:
            await until(lambda: again.controller.core.available)
            await asyncio.sleep(4 * UNIT)  # many snapshots, many steps
            assert again.controller.lights(1) is True
            # Nothing new to report. The first run may have been stopped between
            # emitting its event and unstaging it: then the restart re-emits it byte
            # for byte (at-least-once; the central stores it once), and nothing else.
            statuses = await again.events(STATUS)
            assert statuses, "the first run's event is in the outbox"
            assert all(event == statuses[0] for event in statuses), statuses
        assert again.writes(1) == [True]  # one ON ever, and never an OFF
        assert False not in [w.value for w in sim.coil_writes]


@async_test
async def test_the_schedule_catches_up_when_the_module_is_back(tmp_path: Path) -> None:
    async with station(tmp_path) as st:
        await until(lambda: st.controller.core.available)
        await st.sim.stop()
        await until(lambda: not st.controller.core.available)
        on, off = soon(st.clock, 2 * UNIT), soon(st.clock, 3600)
        await st.store.install(4, [daily(1, 0, on, off)], clear_all=False, max_stack_level=9)
        st.controller.set_profiles(await st.store.profiles())
        await asyncio.sleep(4 * UNIT)  # the moment passes while the module is away
        await st.sim.start()
        (event,) = await st.wait_events(STATUS, 1)
        assert (event["contactorId"], event["status"]) == (4, "On")
        assert st.writes(4) == [True]


@async_test
async def test_a_read_only_lights_db_never_stops_a_contactor_command(tmp_path: Path) -> None:
    """Issue 4 / safety first: the bookkeeping fails, the lights switch all the same."""
    async with station(tmp_path) as st:
        await until(lambda: st.controller.core.available)
        on, off = soon(st.clock, 4 * UNIT), soon(st.clock, 3600)
        await st.store.install(1, [daily(1, 0, on, off)], clear_all=False, max_stack_level=9)
        profiles = await st.store.profiles()
        # The store's own connection, on its own thread: SQLITE_READONLY from now on.
        inner = st.store._store  # the test plays the failing disk
        await st.store._thread.run(inner._conn.execute, "PRAGMA query_only = 1")
        st.controller.set_profiles(profiles)
        (event,) = await st.wait_events(STATUS, 1, within=WAIT + 4 * UNIT)
        assert (event["contactorId"], event["status"]) == (1, "On")
        assert st.writes(1) == [True]
        assert st.controller.snapshot()["lights_db_error"] is not None
        st.controller.store_settle = 0.5
        await st.store._thread.run(inner._conn.execute, "PRAGMA query_only = 0")
        st.sim.force_feedback(2, True)  # a later change: its write finds the disk back
        await st.wait_events(STATUS, 2)
        await until(lambda: st.controller.snapshot()["lights_db_error"] is None, within=10.0)
        assert await st.store.staged() == []
