"""The pymodbus driver: how it groups reads, and how it behaves against the simulator.

Every driver test talks real Modbus to `hil.io_module` on loopback: TCP, RTU
framing over TCP, and RTU on a pseudo-terminal.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

import pytest

from hil.io_module import IOModuleSimulator
from rtu.io import (
    DEFAULT_IO_MAP,
    ContactorPoints,
    IOModule,
    IOModuleFault,
    IOModuleUnavailable,
    IOSnapshot,
)
from rtu.io.modbus import ModbusIOModule, SerialEndpoint, TcpEndpoint, contiguous_runs
from tests.hil.support import DRIVER_TIMEOUT, UNIT, async_test, eventually, rig

MV1 = DEFAULT_IO_MAP.indicator("MV1")
MV2 = DEFAULT_IO_MAP.indicator("MV2")


@pytest.mark.parametrize(
    ("addresses", "max_count", "runs"),
    [
        pytest.param([], 2000, (), id="empty"),
        pytest.param([3], 2000, ((3, 1),), id="one"),
        pytest.param([2, 0, 1], 2000, ((0, 3),), id="unsorted"),
        pytest.param([0, 1, 5, 6, 9], 2000, ((0, 2), (5, 2), (9, 1)), id="gaps"),
        pytest.param([0, 1, 2, 3, 4], 2, ((0, 2), (2, 2), (4, 1)), id="split-at-max"),
        pytest.param([4, 4, 5], 2000, ((4, 2),), id="duplicates"),
    ],
)
def test_contiguous_runs(addresses: list[int], max_count: int, runs: tuple[object, ...]) -> None:
    assert contiguous_runs(addresses, max_count) == runs


def test_default_map_reads_in_one_request_per_table() -> None:
    assert len(contiguous_runs(DEFAULT_IO_MAP.coil_addresses())) == 1
    assert len(contiguous_runs(DEFAULT_IO_MAP.input_addresses())) == 1


def test_driver_satisfies_the_interface() -> None:
    # The annotation is the test, under `mypy --strict tests/rtu/io`.
    driver: IOModule = ModbusIOModule(DEFAULT_IO_MAP, TcpEndpoint("127.0.0.1"))
    assert driver is not None


@async_test
async def test_read_snapshot_of_a_quiet_station() -> None:
    async with rig() as (_, driver):
        snapshot = await driver.read()
    assert snapshot.feedback == {1: False, 2: False, 3: False, 4: False}
    assert snapshot.coils == {1: False, 2: False, 3: False, 4: False}
    assert snapshot.local_switch is False
    assert snapshot.indicators["MV1"].overcurrent is False
    assert snapshot.indicators["MV1"].groundfault is False
    assert snapshot.indicators["MV1"].healthy is True
    assert snapshot.indicators["MV2"].groundfault is None  # not wired


@async_test
async def test_feedback_follows_the_coil_after_the_relay_delay() -> None:
    async with rig() as (sim, driver):
        loop = asyncio.get_running_loop()
        switched_at = loop.time()
        await driver.set_contactor(2, True)
        right_after = await driver.read()
        assert right_after.coils[2] is True
        settled = await eventually(driver.read, lambda s: s.feedback[2])
        assert loop.time() - switched_at >= UNIT  # not before the relay had time to pull in
        assert settled.feedback == {1: False, 2: True, 3: False, 4: False}

        await driver.set_contactor(2, False)
        await eventually(driver.read, lambda s: not s.feedback[2])
    assert [(w.address, w.value) for w in sim.coil_writes] == [(1, True), (1, False)]


@async_test
async def test_local_switch() -> None:
    async with rig() as (sim, driver):
        sim.set_local_switch(True)
        assert (await driver.read()).local_switch is True
        sim.set_local_switch(False)
        assert (await driver.read()).local_switch is False


@pytest.mark.parametrize("kind", ["overcurrent", "groundfault"])
@async_test
async def test_trip_latches_until_reset_once_cleared(kind: str) -> None:
    async with rig() as (sim, driver):
        sim.trip("MV1", kind)  # type: ignore[arg-type]
        assert getattr((await driver.read()).indicators["MV1"], kind) is True
        sim.clear("MV1", kind)  # type: ignore[arg-type]
        assert getattr((await driver.read()).indicators["MV1"], kind) is True  # latched
        await driver.pulse_reset("MV1")
        assert getattr((await driver.read()).indicators["MV1"], kind) is False


@async_test
async def test_unhealthy_indicator() -> None:
    async with rig() as (sim, driver):
        sim.unhealthy("MV2")
        assert (await driver.read()).indicators["MV2"].healthy is False
        sim.restore_health("MV2")
        assert (await driver.read()).indicators["MV2"].healthy is True


@async_test
async def test_test_pulse_trips_with_test_flag_until_reset() -> None:
    pulse_lengths: list[float] = []

    async def sleep(seconds: float) -> None:
        pulse_lengths.append(seconds)

    async with rig(sleep=sleep) as (sim, driver):
        await driver.pulse_test("MV1")
        await driver.pulse_test("MV2")
        snapshot = await driver.read()
        assert snapshot.indicators["MV1"].overcurrent is True
        assert snapshot.indicators["MV1"].groundfault is True
        assert snapshot.indicators["MV2"].overcurrent is True  # MV2 has no ground-fault element
        assert sim.indicator("MV1").test is True
        assert sim.coil(MV1.test_coil) is False  # the pulse ended

        await driver.pulse_reset("MV1")
        snapshot = await driver.read()
        assert snapshot.indicators["MV1"].overcurrent is False
        assert snapshot.indicators["MV1"].groundfault is False
        assert sim.indicator("MV1").test is False
        assert snapshot.indicators["MV2"].overcurrent is True  # groups are independent
    assert pulse_lengths == [DEFAULT_IO_MAP.pulse_seconds] * 3
    assert [(w.address, w.value) for w in sim.coil_writes] == [
        (MV1.test_coil, True),
        (MV1.test_coil, False),
        (MV2.test_coil, True),
        (MV2.test_coil, False),
        (MV1.reset_coil, True),
        (MV1.reset_coil, False),
    ]


@async_test
async def test_reset_with_cause_present_re_trips() -> None:
    async with rig() as (sim, driver):
        sim.trip("MV1", "groundfault")
        await driver.pulse_reset("MV1")
        indicators = (await driver.read()).indicators["MV1"]
        assert indicators.groundfault is True
        assert indicators.overcurrent is False
        sim.clear("MV1", "groundfault")
        await driver.pulse_reset("MV1")
        assert (await driver.read()).indicators["MV1"].groundfault is False


@async_test
async def test_forced_feedback_wins_over_the_coil() -> None:
    async with rig() as (sim, driver):
        sim.force_feedback(3, True)  # somebody closed contactor 3 by hand
        assert (await driver.read()).feedback[3] is True
        await driver.set_contactor(3, False)
        assert (await driver.read()).feedback[3] is True  # welded: it stays closed
        sim.force_feedback(3, None)
        await eventually(driver.read, lambda s: not s.feedback[3])
    # The driver wrote OFF once, and nothing else: no ON was ever written.
    assert [(w.address, w.value) for w in sim.coil_writes] == [(2, False)]


@async_test
async def test_inverted_inputs_are_read_as_logical_values() -> None:
    iomap = dataclasses.replace(
        DEFAULT_IO_MAP, inverted_inputs=frozenset({DEFAULT_IO_MAP.local_switch, MV1.healthy or 0})
    )
    async with rig(iomap) as (sim, driver):
        snapshot = await driver.read()
        assert snapshot.local_switch is False
        assert snapshot.indicators["MV1"].healthy is True
        sim.set_local_switch(True)
        sim.unhealthy("MV1")
        snapshot = await driver.read()
        assert snapshot.local_switch is True
        assert snapshot.indicators["MV1"].healthy is False


@async_test
async def test_unavailable_when_stopped_and_reconnects_by_itself() -> None:
    async with rig() as (sim, driver):
        await driver.set_contactor(1, True)
        await sim.stop()
        with pytest.raises(IOModuleUnavailable) as caught:
            await driver.read()
        assert caught.value.module == driver.name
        with pytest.raises(IOModuleUnavailable):  # still down: the retry fails as cleanly
            await driver.set_contactor(1, False)
        await sim.start()
        snapshot = await driver.read()  # no explicit reconnect call
        assert snapshot.coils[1] is True  # the physics carried on while unplugged


@async_test
async def test_unavailable_when_nothing_listens() -> None:
    async with IOModuleSimulator() as sim:
        port = sim.port
    driver = ModbusIOModule(DEFAULT_IO_MAP, TcpEndpoint("127.0.0.1", port, timeout=DRIVER_TIMEOUT))
    with pytest.raises(IOModuleUnavailable, match="connect"):
        await driver.read()
    await driver.close()


@async_test
async def test_exception_response_is_a_fault_and_keeps_the_link() -> None:
    # The driver believes contactor 4's feedback is wired to input 40; the
    # 16-input module answers ILLEGAL DATA ADDRESS.
    wrong = dataclasses.replace(
        DEFAULT_IO_MAP,
        contactors=(*DEFAULT_IO_MAP.contactors[:3], ContactorPoints(4, coil=3, feedback=40)),
    )
    async with rig(driver_map=wrong) as (_, driver):
        with pytest.raises(IOModuleFault) as caught:
            await driver.read()
        assert caught.value.function_code == 2
        assert caught.value.exception_code == 2  # ILLEGAL DATA ADDRESS
        await driver.set_contactor(1, True)  # same connection still good for the rest


@async_test
async def test_lost_pulse_off_is_written_on_reconnect() -> None:
    sim_holder: list[IOModuleSimulator] = []

    async def sleep_through_an_outage(seconds: float) -> None:
        await sim_holder[0].stop()  # the cable is pulled while the test output is on

    async with rig(sleep=sleep_through_an_outage) as (sim, driver):
        sim_holder.append(sim)
        with pytest.raises(IOModuleUnavailable):
            await driver.pulse_test("MV1")
        assert sim.coil(MV1.test_coil) is True  # stuck on in the field
        assert driver.owed_off == {MV1.test_coil}
        with pytest.raises(IOModuleUnavailable):
            await driver.read()  # still down: the debt stays
        assert driver.owed_off == {MV1.test_coil}

        await sim.start()
        await driver.read()
        assert sim.coil(MV1.test_coil) is False
        assert driver.owed_off == frozenset()
    assert [(w.address, w.value) for w in sim.coil_writes] == [
        (MV1.test_coil, True),
        (MV1.test_coil, False),
    ]


@async_test
async def test_cancelled_pulse_still_writes_off() -> None:
    pulse_on = asyncio.Event()

    async def sleep_forever(seconds: float) -> None:
        pulse_on.set()
        await asyncio.Event().wait()

    async with rig(sleep=sleep_forever) as (sim, driver):
        pulse = asyncio.create_task(driver.pulse_reset("MV2"))
        await pulse_on.wait()
        assert sim.coil(MV2.reset_coil) is True
        pulse.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pulse
        assert sim.coil(MV2.reset_coil) is False
        assert driver.owed_off == frozenset()


@async_test
async def test_unknown_contactor_or_group_is_a_caller_error() -> None:
    async with rig() as (sim, driver):
        with pytest.raises(ValueError, match="contactor 5"):
            await driver.set_contactor(5, True)
        with pytest.raises(ValueError, match="MV7"):
            await driver.pulse_test("MV7")
    assert sim.coil_writes == []


@async_test
async def test_rtu_framing_through_a_serial_url() -> None:
    # RTU frames over TCP, as through a transparent serial-to-Ethernet
    # gateway: the serial code path end to end, without a tty.
    async with IOModuleSimulator(link="rtu-over-tcp") as sim:
        endpoint = SerialEndpoint(f"socket://127.0.0.1:{sim.port}", timeout=DRIVER_TIMEOUT)
        driver = ModbusIOModule(DEFAULT_IO_MAP, endpoint)
        try:
            sim.set_local_switch(True)
            snapshot: IOSnapshot = await driver.read()
            assert snapshot.local_switch is True
            await driver.set_contactor(4, True)
            assert sim.coil(3) is True
        finally:
            await driver.close()


@async_test
async def test_modbus_rtu_on_a_pseudo_terminal() -> None:
    async with IOModuleSimulator(link="rtu-pty", relay_delay=UNIT) as sim:
        driver = ModbusIOModule(
            DEFAULT_IO_MAP, SerialEndpoint(sim.device, baudrate=115200, timeout=DRIVER_TIMEOUT)
        )
        try:
            await driver.set_contactor(1, True)
            await eventually(driver.read, lambda s: s.feedback[1])
            sim.trip("MV2", "overcurrent")
            assert (await driver.read()).indicators["MV2"].overcurrent is True

            await sim.stop()  # the RS-485 pair is cut: requests go unanswered
            with pytest.raises(IOModuleUnavailable):
                await driver.read()
            await sim.start()
            assert (await driver.read()).coils[1] is True
        finally:
            await driver.close()


@async_test
async def test_reads_during_a_pulse_do_not_cut_it_short() -> None:
    pulse_on, end_pulse = asyncio.Event(), asyncio.Event()

    async def sleep_until_told(seconds: float) -> None:
        pulse_on.set()
        await end_pulse.wait()

    async with rig(sleep=sleep_until_told) as (sim, driver):
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(driver.pulse_test("MV1"))
            await pulse_on.wait()
            await driver.read()  # the MV monitor polling meanwhile
            await driver.set_contactor(1, True)
            assert sim.coil(MV1.test_coil) is True
            end_pulse.set()
        assert sim.coil(MV1.test_coil) is False
    assert [(w.address, w.value) for w in sim.coil_writes] == [
        (MV1.test_coil, True),
        (0, True),
        (MV1.test_coil, False),
    ]


@async_test
async def test_refused_pulse_owes_nothing() -> None:
    # The driver believes MV1's test output is coil 40; the 16-coil module refuses it.
    wrong = dataclasses.replace(
        DEFAULT_IO_MAP,
        indicators=(dataclasses.replace(MV1, test_coil=40), MV2),
    )
    async with rig(driver_map=wrong) as (sim, driver):
        with pytest.raises(IOModuleFault) as caught:
            await driver.pulse_test("MV1")
        assert caught.value.function_code == 5
        assert driver.owed_off == frozenset()
        await driver.set_contactor(1, False)  # nothing owed, so nothing refused on the way
    assert [(w.address, w.value) for w in sim.coil_writes] == [(0, False)]


@async_test
async def test_overlapping_reads_and_writes_each_get_their_answer() -> None:
    # The poller reads while the lights and the MV monitor write, on one client.
    async with rig() as (sim, driver):
        calls = [driver.read() for _ in range(12)]
        calls += [driver.set_contactor(1 + n % 4, n % 2 == 0) for n in range(12)]
        results = await asyncio.gather(*calls)
        assert all(isinstance(r, IOSnapshot) for r in results[:12])
        assert len([w for w in sim.coil_writes if w.address < 4]) == 12


@async_test
async def test_a_cancelled_poll_loop_stops() -> None:
    # pymodbus' wait_for may swallow a cancellation (Python 3.11); the driver re-raises it.
    async with rig() as (_, driver):

        async def poll() -> None:
            while True:
                await driver.read()

        for _ in range(20):
            task = asyncio.create_task(poll())
            await asyncio.sleep(UNIT / 10)
            task.cancel()
            async with asyncio.timeout(4 * UNIT):  # a request's answer, not a retry
                with pytest.raises(asyncio.CancelledError):
                    await task


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


COILS, INPUTS = 1, 2


@async_test
async def test_a_quiet_poll_reads_only_the_inputs() -> None:
    clock = FakeClock()
    async with rig(coil_refresh=1.0, clock=clock) as (sim, driver):
        await driver.read()  # first poll: both tables
        assert (sim.requests[COILS], sim.requests[INPUTS]) == (1, 1)
        for _ in range(5):
            await driver.read()
        assert (sim.requests[COILS], sim.requests[INPUTS]) == (1, 6)
        clock.now += 1.0  # the refresh period: another master may have written
        await driver.read()
        assert sim.requests[COILS] == 2


@async_test
async def test_coils_are_read_again_after_a_write_or_an_input_change() -> None:
    clock = FakeClock()
    async with rig(coil_refresh=3600.0, clock=clock) as (sim, driver):
        await driver.read()
        await driver.set_contactor(2, True)
        after_write = await driver.read()
        assert after_write.coils[2] is True
        assert sim.requests[COILS] == 2
        await driver.read()
        assert sim.requests[COILS] == 2  # quiet again
        sim.set_local_switch(True)  # an input changed
        changed = await driver.read()
        assert changed.local_switch is True
        assert sim.requests[COILS] == 3


@async_test
async def test_a_coil_changed_by_someone_else_shows_with_its_feedback() -> None:
    """A relay dropped by another master (or a module restart) changes its feedback
    contact, which makes the same poll read the coils: no stale coil survives it."""
    clock = FakeClock()
    async with rig(coil_refresh=3600.0, clock=clock) as (sim, driver):
        await driver.set_contactor(1, True)
        await eventually(driver.read, lambda s: s.feedback[1])
        coil_reads = sim.requests[COILS]
        assert (await driver.read()).coils[1] is True
        assert sim.requests[COILS] == coil_reads  # quiet: the coils come from the last read
        sim.physics.write_coils(sim.physics.iomap.contactor(1).coil, [False], time.monotonic())
        snapshot = await eventually(driver.read, lambda s: not s.feedback[1])
        assert snapshot.coils[1] is False
