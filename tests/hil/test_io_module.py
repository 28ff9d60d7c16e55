"""The simulator: its physics in simulated time, its stdin commands, its entry point."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys

import pytest

from hil.io_module import KINDS, IOModuleSimulator, StationPhysics, apply_command
from rtu.io.modbus import ModbusIOModule, TcpEndpoint
from rtu.io.model import DEFAULT_IO_MAP, IndicatorPoints
from tests.hil.support import DRIVER_TIMEOUT, WAIT, async_test, eventually

DELAY = 0.05  # relay delay in the pure tests; they run in simulated time
MV1 = DEFAULT_IO_MAP.indicator("MV1")
MV2 = DEFAULT_IO_MAP.indicator("MV2")


def physics() -> StationPhysics:
    return StationPhysics(DEFAULT_IO_MAP, relay_delay=DELAY)


def test_default_map_makes_a_16_channel_module() -> None:
    station = physics()
    assert (station.coil_channels, station.input_channels) == (16, 16)
    assert len(station.coil_bits()) == 16
    assert len(station.input_bits(0.0)) == 16


@pytest.mark.parametrize(
    ("writes", "at", "feedback"),
    [
        pytest.param([(0.0, True)], DELAY * 0.99, False, id="on-before-delay"),
        pytest.param([(0.0, True)], DELAY, True, id="on-after-delay"),
        pytest.param([(0.0, True), (1.0, False)], 1.0 + DELAY * 0.99, True, id="off-before-delay"),
        pytest.param([(0.0, True), (1.0, False)], 1.0 + DELAY, False, id="off-after-delay"),
        pytest.param([(0.0, True), (DELAY / 2, False)], 1.0, False, id="chatter-never-closes"),
        pytest.param(
            [(0.0, True), (0.0 + DELAY / 2, True)], DELAY, True, id="repeat-on-no-restart"
        ),
    ],
)
def test_relay_feedback_follows_coil_after_delay(
    writes: list[tuple[float, bool]], at: float, feedback: bool
) -> None:
    station = physics()
    for when, on in writes:
        station.write_coils(0, [on], when)
    assert station.feedback(1, at) is feedback
    assert station.input_bits(at)[0] is feedback


def test_forced_feedback_overrides_and_releases() -> None:
    station = physics()
    station.force_feedback(2, True)
    assert station.feedback(2, 10.0) is True
    station.write_coils(1, [True], 10.0)
    station.force_feedback(2, False)
    assert station.feedback(2, 20.0) is False  # welded open despite the coil
    station.force_feedback(2, None)
    assert station.feedback(2, 20.0) is True


def test_multiple_coil_write_drives_each_relay_and_is_recorded() -> None:
    station = physics()
    station.write_coils(0, [True, False, True, True], 5.0)
    assert station.coil_bits()[:4] == [True, False, True, True]
    assert [(w.at, w.address, w.value) for w in station.coil_writes] == [
        (5.0, 0, True),
        (5.0, 1, False),
        (5.0, 2, True),
        (5.0, 3, True),
    ]


def test_test_pulse_latches_on_the_rising_edge_only() -> None:
    station = physics()
    station.write_coils(MV1.test_coil, [True], 0.0)
    view = station.indicator("MV1")
    assert (view.overcurrent, view.groundfault, view.test) == (True, True, True)
    station.press_reset("MV1")
    station.write_coils(MV1.test_coil, [True], 1.0)  # still on: no new edge
    assert station.indicator("MV1").overcurrent is False
    station.write_coils(MV1.test_coil, [False], 2.0)
    station.write_coils(MV1.test_coil, [True], 3.0)
    assert station.indicator("MV1").overcurrent is True


def test_test_pulse_without_ground_fault_detection_trips_over_current_only() -> None:
    station = physics()
    station.write_coils(MV2.test_coil, [True], 0.0)
    view = station.indicator("MV2")
    assert (view.overcurrent, view.groundfault, view.test) == (True, False, True)


def test_reset_re_trips_for_a_cause_still_present_and_drops_the_test_flag() -> None:
    station = physics()
    station.trip("MV1", "overcurrent")
    station.write_coils(MV1.test_coil, [True], 0.0)
    station.write_coils(MV1.reset_coil, [True], 1.0)
    view = station.indicator("MV1")
    assert (view.overcurrent, view.groundfault, view.test) == (True, False, False)
    assert view.causes == {"overcurrent"}


@pytest.mark.parametrize("kind", KINDS)
def test_trip_and_clear_each_kind(kind: str) -> None:
    station = physics()
    address = MV1.overcurrent if kind == "overcurrent" else MV1.groundfault
    assert address is not None
    station.trip("MV1", kind)  # type: ignore[arg-type]
    assert station.input_bits(0.0)[address] is True
    station.clear("MV1", kind)  # type: ignore[arg-type]
    assert station.input_bits(0.0)[address] is True  # latched
    station.write_coils(MV1.reset_coil, [True], 0.0)
    assert station.input_bits(0.0)[address] is False


def test_healthy_contact() -> None:
    station = physics()
    assert MV2.healthy is not None
    assert station.input_bits(0.0)[MV2.healthy] is True
    station.set_healthy("MV2", False)
    assert station.input_bits(0.0)[MV2.healthy] is False


def test_inverted_inputs_are_flipped_on_the_wire() -> None:
    iomap = dataclasses.replace(DEFAULT_IO_MAP, inverted_inputs=frozenset({MV1.healthy or 0}))
    station = StationPhysics(iomap)
    assert MV1.healthy is not None
    assert station.input_bits(0.0)[MV1.healthy] is False  # healthy reads low
    assert station.indicator("MV1").healthy is True


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(lambda s: s.trip("MV2", "groundfault"), "no groundfault", id="no-gf"),
        pytest.param(lambda s: s.trip("MV1", "arc"), "unknown fault kind", id="bad-kind"),
        pytest.param(lambda s: s.trip("MV9", "overcurrent"), "MV9", id="bad-group"),
        pytest.param(lambda s: s.force_feedback(5, True), "contactor 5", id="bad-contactor"),
    ],
)
def test_controls_refuse_what_is_not_wired(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(physics())  # type: ignore[operator]


def test_a_wider_map_makes_a_wider_module() -> None:
    iomap = dataclasses.replace(
        DEFAULT_IO_MAP, indicators=(IndicatorPoints("MV1", test_coil=20, reset_coil=21),)
    )
    assert StationPhysics(iomap).coil_channels == 32


@async_test
async def test_commands() -> None:
    sim = IOModuleSimulator(relay_delay=0.0)
    answers = [
        await apply_command(sim, line)
        for line in (
            "switch on",
            "trip MV1 groundfault",
            "clear MV1 groundfault",
            "unhealthy MV2",
            "test MV2",
            "flip 2 on",
            "flip 3 off",
            "flip 3 auto",
        )
    ]
    assert answers == ["ok"] * 8
    status = json.loads(await apply_command(sim, "status"))
    assert status["local_switch"] is True
    assert status["contactors"]["2"] == {"coil": False, "feedback": True}
    assert status["indicators"]["MV1"]["groundfault"] is True
    assert status["indicators"]["MV1"]["causes"] == []
    assert status["indicators"]["MV2"] == {
        "overcurrent": True,
        "groundfault": False,
        "test": True,
        "healthy": False,
        "causes": [],
    }
    assert await apply_command(sim, "reset MV1") == "ok"
    assert (
        json.loads(await apply_command(sim, "status"))["indicators"]["MV1"]["groundfault"] is False
    )
    assert (await apply_command(sim, "trip MV2 groundfault")).startswith("error: ")
    assert (await apply_command(sim, "flip x on")).startswith("error: unknown command")
    assert "switch on|off" in await apply_command(sim, "help")


@async_test
async def test_disconnect_and_connect_commands_keep_the_port() -> None:
    sim = IOModuleSimulator()
    assert await apply_command(sim, "connect") == "ok"
    port = sim.port
    assert await apply_command(sim, "disconnect") == "ok"
    assert sim.running is False
    assert await apply_command(sim, "connect") == "ok"
    assert sim.port == port
    await sim.stop()


@async_test
async def test_entry_point_serves_and_obeys_stdin() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hil.io_module",
        "--port",
        "0",
        "--relay-delay",
        "0",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    stdin, stdout = process.stdin, process.stdout

    async def command(line: str) -> str:
        stdin.write(f"{line}\n".encode())
        await stdin.drain()
        return (await stdout.readline()).decode().strip()

    try:
        async with asyncio.timeout(WAIT):
            banner = (await stdout.readline()).decode().split()
        assert banner[:2] == ["listening", "127.0.0.1"]
        driver = ModbusIOModule(
            DEFAULT_IO_MAP, TcpEndpoint("127.0.0.1", int(banner[2]), timeout=DRIVER_TIMEOUT)
        )
        try:
            assert await command("trip MV1 overcurrent") == "ok"
            assert await command("flip 2 on") == "ok"
            snapshot = await eventually(driver.read, lambda s: s.feedback[2])
            assert snapshot.indicators["MV1"].overcurrent is True
            await driver.set_contactor(1, True)
            status = json.loads(await command("status"))
            assert status["contactors"]["1"]["coil"] is True
            assert (await command("bogus")).startswith("error:")
        finally:
            await driver.close()
        stdin.write(b"quit\n")
        await stdin.drain()
        async with asyncio.timeout(WAIT):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@async_test
async def test_entry_point_keeps_serving_without_stdin_until_terminated() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "hil.io_module", "--port", "0"),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(WAIT):
            port = int((await process.stdout.readline()).split()[2])
        driver = ModbusIOModule(
            DEFAULT_IO_MAP, TcpEndpoint("127.0.0.1", port, timeout=DRIVER_TIMEOUT)
        )
        try:
            assert (await driver.read()).local_switch is False  # still up after stdin's EOF
        finally:
            await driver.close()
        process.terminate()
        async with asyncio.timeout(WAIT):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
