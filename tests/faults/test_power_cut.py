"""Power cuts and outages on the real rig (central, daemon, I/O simulator as processes).

Kill test (issue "RTU daemon core"): the station's contactor is flipped by hand
again and again (each flip is a guaranteed StreetlightStatusNotification) while
the daemon is SIGKILLed at random moments, 20 times, and restarted like systemd
does. At the end the central must hold every transition, in order, once: per
contactor the stored statuses alternate On/Off (a lost event would put two equal
statuses next to each other, a duplicate likewise), and the last one is the
state the contactor is actually in.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from datetime import datetime
from pathlib import Path

import pytest

from hil.rig import running_rig
from tests.faults.support import FaultTable, assert_running, light_events, statuses, wait_for
from tests.support.aio import UNIT, run


@pytest.mark.faults
def test_sigkill_at_random_moments_loses_no_event_and_stores_none_twice(
    tmp_path: Path, fault_table: FaultTable
) -> None:
    rng = random.Random(20261123)

    async def scenario() -> None:
        async with running_rig(tmp_path, 1, heartbeat=60) as rig:
            station = rig.stations[0]
            await rig.until_all_accepted(timeout=60 * UNIT)
            state = "off"
            flips = 0
            for _ in range(20):
                # A burst of hand flips, then the power goes at a random moment: right
                # after a flip (not yet seen), mid-delivery, or well after.
                for _ in range(rng.randint(1, 3)):
                    state = "on" if state == "off" else "off"
                    await rig.io_command(station, f"flip 1 {state}")
                    flips += 1
                    await asyncio.sleep(rng.uniform(0.0, 0.3))
                await rig.kill_daemon(station)
                await rig.start_daemon(station)  # systemd: Restart=always
                await asyncio.sleep(rng.uniform(0.3, 1.0))
            expected_last = "On" if state == "on" else "Off"

            async def settled() -> bool:
                seen = statuses(await light_events(rig, station.station_id), 1)
                return bool(seen) and seen[-1] == expected_last

            await wait_for(settled, 60 * UNIT, "the last transition at the central")
            await asyncio.sleep(1.0)  # anything still in flight would arrive now
            events = await light_events(rig, station.station_id)
            seen = statuses(events, 1)
            assert seen[-1] == expected_last
            assert all(a != b for a, b in itertools.pairwise(seen)), f"lost or doubled: {seen}"
            stamps = [(e["occurredAt"], e["details"]["status"]) for e in events]
            assert len(stamps) == len(set(stamps)), "an event was stored twice"
            # Every flip that the daemon saw is a transition; flips undone while it was
            # down are invisible to any observer, so there may be fewer, never more.
            assert flips // 2 <= len(seen) <= flips + 1
            # The table's "sent" is what the daemon could have seen: a transition per
            # alternation at the central, plus none missing (an equal pair would show it).
            lost = sum(a == b for a, b in itertools.pairwise(seen))
            fault_table.record(
                "daemon SIGKILL x20",
                sent=len(seen) + lost,
                stored=len(seen),
                lost=lost,
                doubled=len(stamps) - len(set(stamps)),
            )
            assert_running(station)
            print(f"{flips} flips, 20 power cuts: {len(seen)} transitions stored, none lost")

    run(scenario(), timeout=300 * UNIT)


@pytest.mark.faults
def test_central_down_events_pile_up_then_arrive_oldest_first(
    tmp_path: Path, fault_table: FaultTable
) -> None:
    async def scenario() -> None:
        async with running_rig(tmp_path, 1, heartbeat=60) as rig:
            station = rig.stations[0]
            await rig.until_all_accepted(timeout=60 * UNIT)
            await rig.stop_central()
            sequence = ["on", "off", "on", "off", "on"]
            for state in sequence:
                await rig.io_command(station, f"flip 2 {state}")
                await asyncio.sleep(0.3)
            await rig.start_central()  # same ports, same database

            async def all_arrived() -> bool:
                return len(statuses(await light_events(rig, station.station_id), 2)) >= 5

            await wait_for(all_arrived, 60 * UNIT, "the backlog")
            events = await light_events(rig, station.station_id)
            fault_table.record(
                "central down (backlog)",
                sent=len(sequence),
                stored=len(statuses(events, 2)),
                lost=max(0, len(sequence) - len(statuses(events, 2))),
                doubled=max(0, len(statuses(events, 2)) - len(sequence)),
            )
            assert statuses(events, 2) == [s.capitalize() for s in sequence]
            assert all(e["details"]["unexpected"] for e in events)
            received = [datetime.fromisoformat(e["receivedAt"]) for e in events]
            assert received == sorted(received)  # delivered oldest first

    run(scenario(), timeout=180 * UNIT)


@pytest.mark.faults
@pytest.mark.parametrize("stop", ["sigkill", "sigterm"])
def test_restart_with_the_lights_on_never_writes_off(tmp_path: Path, stop: str) -> None:
    """DESIGN.md "Lights: safety rules": a restart must never make the lights blink."""

    async def scenario() -> None:
        from hil.demo import demo_profile

        async with running_rig(tmp_path, 1, heartbeat=60) as rig:
            station = rig.stations[0]
            await rig.until_all_accepted(timeout=60 * UNIT)
            now = datetime.now().astimezone()
            answer = await rig.command(
                station.station_id, "SetStreetlightProfile", demo_profile(1, now, [(-60, 3600)])
            )
            assert answer["response"]["status"] == "Accepted"

            async def coil_on() -> bool:
                status = json.loads(await rig.io_command(station, "status"))
                return bool(status["contactors"]["1"]["coil"])

            await wait_for(coil_on, 30 * UNIT, "contactor 1 on")
            if stop == "sigkill":
                await rig.kill_daemon(station)
            else:
                await rig.stop_daemon(station)
            await rig.start_daemon(station)
            await rig.until_all_accepted(timeout=60 * UNIT)
            await asyncio.sleep(2.0)  # several control-loop steps after the restart
            status = json.loads(await rig.io_command(station, "status"))
            assert status["contactors"]["1"]["coil"] is True
            writes = [value for _, _, value in status["coil_writes"]]
            assert writes == [True], f"coil writes around the restart: {writes}"

    run(scenario(), timeout=180 * UNIT)
