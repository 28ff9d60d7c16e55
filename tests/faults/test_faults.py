"""The fault suite (issue 9 part 3) on the real rig: one case per fault.

Every case runs the real central, the real daemon and the simulators as
processes, generates events by flipping contactor 1 by hand on the I/O
simulator (each flip: one StreetlightStatusNotification), keeps contactor 2
under a schedule that demands "on" for the whole case, injects its fault, and
then asserts the four things (tests/faults/support.py): nothing lost, nothing
stored twice, the lights as demanded, the daemon running and reporting.
The summary table is printed at the end of the run (conftest.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hil.demo import demo_profile
from hil.rig import Rig, StationProcess
from tests.faults.support import (
    FaultTable,
    assert_delivered,
    assert_running,
    emitted,
    flip,
    io_status,
    open_faults,
    snapshot,
    wait_for,
)
from tests.support.aio import UNIT, run
from tests.support.disk import fill, small_tmpfs

pytestmark = pytest.mark.faults

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


@contextlib.asynccontextmanager
async def rig_up(rig: Rig) -> AsyncIterator[StationProcess]:
    """Start `rig`, wait for the boot, and put contactor 2 under an "on now" schedule."""
    try:
        await rig.start()
        station = rig.stations[0]
        await rig.until_all_accepted(timeout=60 * UNIT)
        now = datetime.now().astimezone()
        # On from 40 min ago to an hour from now: wide enough that a clock jump of
        # ±30 min (test_clock_jump) stays inside it.
        answer = await rig.command(
            station.station_id, "SetStreetlightProfile", demo_profile(2, now, [(-2400, 3600)])
        )
        assert answer["response"]["status"] == "Accepted"

        async def lights_on() -> bool:
            status = await io_status(rig, station)
            return bool(status["contactors"]["2"]["feedback"])

        await wait_for(lights_on, 30 * UNIT, "contactor 2 on by schedule")
        yield station
    finally:
        await rig.stop()


async def flips(rig: Rig, station: StationProcess, pairs: int, rng: random.Random) -> None:
    """`pairs` times: contactor 1 closed by hand, then released (it follows its coil: off).

    Two StreetlightStatusNotifications a pair. Released well within the lights'
    feedback timeout (2 s), so the flips never add a PowerSwitchFailure of their own.
    """
    for _ in range(pairs):
        for state in ("on", "auto"):
            await flip(rig, station, 1, state)
            await asyncio.sleep(rng.uniform(0.15, 0.4))  # the poller (50 ms) sees each one


async def assert_lights_as_demanded(rig: Rig, station: StationProcess) -> None:
    """Check 3: contactor 2 on (its schedule), contactor 1 off (no schedule, released)."""

    async def as_demanded() -> bool:
        status = await io_status(rig, station)
        two = status["contactors"]["2"]
        return bool(two["coil"] and two["feedback"])

    await wait_for(as_demanded, 30 * UNIT, "contactor 2 on as its schedule demands")
    assert emitted(station, 1), "no flip was seen"
    one = (await io_status(rig, station))["contactors"]["1"]
    assert one == {"coil": False, "feedback": False}  # no schedule, released: off


async def link_error_reported(station: StationProcess) -> None:
    """Check 4 for link faults: status.json (what `rtu status` shows) names the failure."""

    async def reported() -> bool:
        with contextlib.suppress(OSError, ValueError):
            return bool(snapshot(station)["link"]["last_error"])
        return False

    await wait_for(reported, 30 * UNIT, "status.json to report the link failure")


async def _not(condition: Callable[[], Awaitable[bool]]) -> bool:
    return not await condition()


def proxied(tmp_path: Path) -> Rig:
    return Rig(tmp_path, 1, heartbeat=5, ping_interval=1, call_timeout=3, proxy=True)


def test_proxy_drops_connections_mid_stream(tmp_path: Path, fault_table: FaultTable) -> None:
    rng = random.Random(9301)

    async def scenario() -> None:
        rig = proxied(tmp_path)
        async with rig_up(rig) as station:
            assert rig.proxy is not None
            for _ in range(5):
                flipping = asyncio.create_task(flips(rig, station, 2, rng))
                await asyncio.sleep(rng.uniform(0.0, 0.6))
                rig.proxy.drop()  # RST in the middle of whatever is in flight
                await flipping
            rig.proxy.refuse(True)  # and once unreachable for a moment
            rig.proxy.drop()
            await flips(rig, station, 1, rng)
            await link_error_reported(station)
            rig.proxy.refuse(False)
            await rig.until_all_accepted(timeout=60 * UNIT)
            await assert_delivered(rig, station, fault_table, "proxy drop", contactors=(1, 2))
            await assert_lights_as_demanded(rig, station)
            assert_running(station)
            assert rig.proxy.connections >= 6

    run(scenario(), timeout=110 * UNIT)


def test_proxy_delays_every_chunk(tmp_path: Path, fault_table: FaultTable) -> None:
    rng = random.Random(9302)

    async def scenario() -> None:
        rig = proxied(tmp_path)
        async with rig_up(rig) as station:
            assert rig.proxy is not None
            rig.proxy.delay = 0.2  # 400 ms round trip
            await flips(rig, station, 4, rng)
            await assert_delivered(
                rig, station, fault_table, "proxy delay 200 ms", contactors=(1, 2)
            )
            await assert_lights_as_demanded(rig, station)
            assert_running(station)

            async def accepted() -> bool:  # slow is not broken
                with contextlib.suppress(OSError, ValueError):
                    return bool(snapshot(station)["link"]["state"] == "accepted")
                return False

            await wait_for(accepted, 15 * UNIT, "status.json to show the link accepted")
            view = (await rig.station_views())[0]
            assert view["connected"]

    run(scenario(), timeout=110 * UNIT)


def test_proxy_half_open_link_is_detected_by_ping_timeout(
    tmp_path: Path, fault_table: FaultTable
) -> None:
    rng = random.Random(9303)

    async def scenario() -> None:
        rig = proxied(tmp_path)
        async with rig_up(rig) as station:
            assert rig.proxy is not None
            connections = rig.proxy.connections
            since = datetime.now(UTC)
            rig.proxy.blackhole(True)  # TCP stays up, nothing arrives either way
            await flips(rig, station, 2, rng)

            async def link_down() -> bool:
                with contextlib.suppress(OSError, ValueError):
                    status = snapshot(station)
                    fresh = datetime.fromisoformat(status["written_at"]) > since
                    return fresh and status["link"]["state"] != "accepted"
                return False

            # websockets' keepalive: a ping every second, closed after 20 s without pong.
            await wait_for(link_down, 45 * UNIT, "the daemon to notice the half-open link")
            assert "disconnected from" in station.log.read_text(errors="replace")
            rig.proxy.blackhole(False)
            await rig.until_all_accepted(timeout=60 * UNIT)
            assert rig.proxy.connections > connections  # it reconnected
            await assert_delivered(rig, station, fault_table, "proxy half-open", contactors=(1, 2))
            await assert_lights_as_demanded(rig, station)
            assert_running(station)

    run(scenario(), timeout=115 * UNIT)


def test_central_restart_with_events_in_the_gap(tmp_path: Path, fault_table: FaultTable) -> None:
    rng = random.Random(9304)

    async def scenario() -> None:
        rig = Rig(tmp_path, 1, heartbeat=5, call_timeout=3)
        async with rig_up(rig) as station:
            await flips(rig, station, 1, rng)
            await rig.stop_central()
            await flips(rig, station, 3, rng)
            await link_error_reported(station)
            await rig.start_central()  # same ports, same database
            await flips(rig, station, 1, rng)

            async def connected() -> bool:
                # Not until_all_accepted: a station whose boot record is current sends
                # no new BootNotification (§3.3), so the new central's view has none.
                return all(view.get("connected") for view in await rig.station_views())

            await wait_for(connected, 60 * UNIT, "the station to reconnect")
            await assert_delivered(rig, station, fault_table, "central restart", contactors=(1, 2))
            await assert_lights_as_demanded(rig, station)
            assert_running(station)

    run(scenario(), timeout=110 * UNIT)


def test_io_module_power_cycle(tmp_path: Path, fault_table: FaultTable) -> None:
    """The I/O module's process ends (its coils with it) and comes back blank."""
    rng = random.Random(9305)

    async def scenario() -> None:
        rig = Rig(tmp_path, 1, heartbeat=5, call_timeout=3)
        async with rig_up(rig) as station:
            await flips(rig, station, 2, rng)
            await rig.stop_io(station)

            async def reported() -> bool:
                faults = await open_faults(rig, station.station_id)
                return any("not answering" in (f.get("info") or "") for f in faults)

            await wait_for(reported, 30 * UNIT, "the central to show the I/O module fault")

            async def shown() -> bool:
                with contextlib.suppress(OSError, ValueError):
                    return any("not answering" in f for f in snapshot(station)["open_faults"])
                return False

            await wait_for(shown, 20 * UNIT, "status.json to show the I/O module fault")
            await rig.start_io(station)  # a fresh module: every coil off

            async def resolved() -> bool:
                faults = await open_faults(rig, station.station_id)
                return not any("not answering" in (f.get("info") or "") for f in faults)

            await wait_for(resolved, 30 * UNIT, "the I/O module fault to be resolved")
            await flips(rig, station, 1, rng)
            await assert_delivered(
                rig, station, fault_table, "I/O module restart", contactors=(1, 2)
            )
            await assert_lights_as_demanded(rig, station)  # contactor 2 switched on again
            assert_running(station)
            writes = [w for w in (await io_status(rig, station))["coil_writes"] if w[2]]
            assert writes, "the daemon did not restore the schedule's coil"

    run(scenario(), timeout=110 * UNIT)


def test_meter_disconnect_raises_and_clears_power_meter_failure(
    tmp_path: Path, fault_table: FaultTable
) -> None:
    rng = random.Random(9306)

    async def meter_failure(rig: Rig, station: StationProcess) -> list[dict[str, Any]]:
        faults = await open_faults(rig, station.station_id)
        return [f for f in faults if f["errorCode"] == "PowerMeterFailure"]

    async def scenario() -> None:
        rig = Rig(tmp_path, 1, heartbeat=5, call_timeout=3, meters=True)
        async with rig_up(rig) as station:
            answer = await rig.command(
                station.station_id,
                "ChangeConfiguration",
                {"key": "MeterValueSampleInterval", "value": "1"},
            )
            assert answer["response"]["status"] == "Accepted"
            await flips(rig, station, 1, rng)
            await rig.stop_meter(station)

            async def raised() -> bool:
                return bool(await meter_failure(rig, station))

            await wait_for(raised, 40 * UNIT, "PowerMeterFailure at the central")
            await flips(rig, station, 2, rng)
            await rig.start_meter(station)

            async def cleared() -> bool:
                return not await meter_failure(rig, station)

            await wait_for(cleared, 40 * UNIT, "PowerMeterFailure to clear")
            await assert_delivered(rig, station, fault_table, "meter disconnect", contactors=(1, 2))
            await assert_lights_as_demanded(rig, station)
            assert_running(station)

    run(scenario(), timeout=115 * UNIT)


def test_data_disk_fills_up_and_is_freed(tmp_path: Path, fault_table: FaultTable) -> None:
    """The daemon's data directory on an 8 MiB tmpfs, filled by a ballast file."""
    rng = random.Random(9307)

    async def scenario(mount: Path) -> None:
        rig = Rig(tmp_path, 1, heartbeat=5, call_timeout=3)
        rig.stations[0].data_dir = mount
        async with rig_up(rig) as station:
            await flips(rig, station, 1, rng)
            ballast = await asyncio.to_thread(fill, mount)

            async def disk_fault() -> bool:
                faults = await open_faults(rig, station.station_id)
                return any("data disk" in (f.get("info") or "") for f in faults)

            # SQLite may still fit a few commits into pages it already owns: flip
            # until a write needs a new one and fails.
            for _ in range(40):
                await flips(rig, station, 1, rng)
                if await disk_fault():
                    break
            await wait_for(disk_fault, 20 * UNIT, "the central to show the data disk fault")

            async def shown() -> bool:
                with contextlib.suppress(OSError, ValueError):
                    return bool(snapshot(station)["storage"]["fault"])
                return False

            await wait_for(shown, 20 * UNIT, "status.json to show the data disk fault")
            assert "full" in snapshot(station)["storage"]["fault"]
            await flips(rig, station, 2, rng)  # delivered from memory meanwhile
            await assert_lights_as_demanded(rig, station)
            ballast.unlink()

            since = datetime.now(UTC)

            async def recovered() -> bool:
                with contextlib.suppress(OSError, ValueError):
                    status = snapshot(station)
                    fresh = datetime.fromisoformat(status["written_at"]) > since
                    return fresh and status["storage"]["fault"] is None
                return False

            # Retried with backoff (cap 10 s), then 10 s without a failure to settle.
            await wait_for(recovered, 45 * UNIT, "status.json to show the data disk back")
            await wait_for(
                lambda: _not(disk_fault), 20 * UNIT, "the central to resolve the disk fault"
            )
            log = station.log.read_text(errors="replace")
            assert log.count("the data disk refused a write") == 1
            assert log.count("the data disk takes writes again") == 1
            await assert_delivered(rig, station, fault_table, "data disk full", contactors=(1, 2))
            assert_running(station)

    with small_tmpfs(tmp_path / "disk", "8m") as mount:
        if mount is None:
            pytest.skip("mount -t tmpfs is not permitted here (reason printed above)")
        run(scenario(mount), timeout=115 * UNIT)


@pytest.mark.skipif(
    not LIBFAKETIME.exists(), reason=f"libfaketime not installed ({LIBFAKETIME}); apt: faketime"
)
def test_clock_jump_forward_and_back(tmp_path: Path, fault_table: FaultTable) -> None:
    """The station's own system clock steps +30 min, then -30 min past the true time.

    libfaketime (LD_PRELOAD) moves CLOCK_REALTIME of the daemon process only,
    re-reading its offset file on every call, so the clock jumps while the
    daemon runs, as when an RTC or a GPS fix steps it. Monotonic time is left
    alone, as the kernel does. The daemon must follow the central's time
    (Heartbeat currentTime every 2 s) and keep the schedule.
    """
    rng = random.Random(9308)
    offset_file = tmp_path / "faketime"
    offset_file.write_text("+0\n")

    async def jump_to(station: StationProcess, seconds: int) -> None:
        offset_file.write_text(f"{seconds:+d}\n")

        async def corrected() -> bool:
            with contextlib.suppress(OSError, ValueError):
                return abs(snapshot(station)["clock_offset_s"] + seconds) < 5
            return False

        await wait_for(corrected, 30 * UNIT, f"the daemon to correct a {seconds:+d} s jump")

    async def scenario() -> None:
        rig = Rig(tmp_path, 1, heartbeat=2, call_timeout=3)
        rig.stations[0].env = {
            "LD_PRELOAD": str(LIBFAKETIME),
            "FAKETIME_TIMESTAMP_FILE": str(offset_file),
            "FAKETIME_NO_CACHE": "1",
            "DONT_FAKE_MONOTONIC": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }
        async with rig_up(rig) as station:
            await flips(rig, station, 1, rng)
            await jump_to(station, 1800)
            await flips(rig, station, 2, rng)
            await jump_to(station, -1800)
            await flips(rig, station, 2, rng)
            await assert_delivered(rig, station, fault_table, "clock jump", contactors=(1, 2))
            await assert_lights_as_demanded(rig, station)
            # Flips force feedback only: the one coil write is the schedule's "on".
            coil = (await io_status(rig, station))["coil_writes"]
            assert [value for _, _, value in coil] == [True], f"a blink across the jumps: {coil}"
            assert_running(station)

    if os.environ.get("LD_PRELOAD"):
        pytest.skip("already under an LD_PRELOAD")
    run(scenario(), timeout=110 * UNIT)
