"""The MV monitor against the Modbus simulator, through the real driver and poller."""

from __future__ import annotations

import time

from os3p.messages import (
    ResetMVFaultIndicatorRequest,
    ResetMVFaultIndicatorResponse,
    ResetMVFaultIndicatorStatus,
    StationErrorCode,
    StationStatus,
    TestMVFaultIndicatorRequest,
    TestMVFaultIndicatorResponse,
    TestMVFaultIndicatorStatus,
)
from rtu.io.model import DEFAULT_IO_MAP, IOMap
from tests.hil.support import async_test
from tests.rtu.supervision.support import MV_SETTINGS, WAIT, MVStation, mv_station
from tests.support.aio import eventually

OC, GF, IND, NO, RF = (
    StationErrorCode.OVER_CURRENT_FAILURE,
    StationErrorCode.GROUND_FAILURE,
    StationErrorCode.MV_FAULT_INDICATOR_ERROR,
    StationErrorCode.NO_ERROR,
    StationErrorCode.RESET_FAILURE,
)
FAULTED, OK = StationStatus.FAULTED, StationStatus.OK
OC_OK, GF_OK, IND_OK = (
    "Over current error (MV) resolved",
    "Ground failure resolved",
    "Indicator fault (MV) resolved",
)


async def run_test(station: MVStation) -> TestMVFaultIndicatorStatus:
    answer = await station.monitor.handle_test(TestMVFaultIndicatorRequest(), None)
    assert isinstance(answer, TestMVFaultIndicatorResponse)
    return answer.status


async def reset(station: MVStation) -> ResetMVFaultIndicatorStatus:
    answer = await station.monitor.handle_reset(ResetMVFaultIndicatorRequest(), None)
    assert isinstance(answer, ResetMVFaultIndicatorResponse)
    return answer.status


@async_test
async def test_trip_and_clear_each_fault_type() -> None:
    async with mv_station() as s:
        s.sim.trip("MV1", "overcurrent")
        assert await s.notes(1) == [(OC, FAULTED, "MV1", False)]
        s.sim.clear("MV1", "overcurrent")  # the indicator stays latched until reset
        assert await reset(s) is ResetMVFaultIndicatorStatus.ACCEPTED
        assert (await s.notes(2))[1] == (NO, OK, OC_OK, False)

        s.sim.trip("MV1", "groundfault")
        s.sim.trip("MV2", "overcurrent")
        notes = await s.notes(4)
        assert sorted(notes[2:]) == sorted(
            [(GF, FAULTED, "MV1", False), (OC, FAULTED, "MV2", False)]
        )
        s.sim.clear("MV1", "groundfault")
        s.sim.clear("MV2", "overcurrent")
        await reset(s)
        notes = await s.notes(6)
        assert sorted(notes[4:]) == sorted([(NO, FAULTED, GF_OK, False), (NO, OK, OC_OK, False)])
        assert notes[5][1] is OK  # the last one out says Ok

        s.sim.unhealthy("MV2")
        assert (await s.notes(7))[6] == (IND, FAULTED, "MV2: healthy contact open", False)
        s.sim.restore_health("MV2")  # not latched: recovers without a reset
        assert (await s.notes(8))[7] == (NO, OK, IND_OK, False)
        assert all(n.timestamp is not None for n in s.recorder.notes)


@async_test
async def test_chatter_within_the_debounce_time_notifies_nothing() -> None:
    async with mv_station() as s:
        for _ in range(3):
            s.sim.unhealthy("MV1")
            await eventually(
                lambda: (
                    s.poller.latest is not None
                    and s.poller.latest.indicators["MV1"].healthy is False
                ),
                timeout=WAIT,
            )
            s.sim.restore_health("MV1")
            s.sim.trip("MV2", "overcurrent")
            await eventually(
                lambda: (
                    s.poller.latest is not None
                    and s.poller.latest.indicators["MV2"].overcurrent is True
                ),
                timeout=WAIT,
            )
            s.sim.clear("MV2", "overcurrent")
            s.sim.physics.press_reset("MV2")  # the indicator's own button, not ours
        reverted = time.monotonic()
        await s.readings.wait_span(reverted, 3 * MV_SETTINGS.debounce)
        assert s.recorder.notes == []


@async_test
async def test_test_then_reset_reports_test_faults_and_their_resolution() -> None:
    async with mv_station() as s:
        assert await run_test(s) is TestMVFaultIndicatorStatus.ACCEPTED
        notes = await s.notes(3)
        assert sorted(notes) == sorted(
            [(OC, FAULTED, "MV1", True), (GF, FAULTED, "MV1", True), (OC, FAULTED, "MV2", True)]
        )
        # They stay until reset (§7.11), and a second test is refused meanwhile.
        await s.readings.wait_span(time.monotonic(), MV_SETTINGS.settle)
        assert len(s.recorder.notes) == 3  # every indicator tripped: no self-test error
        assert await run_test(s) is TestMVFaultIndicatorStatus.REJECTED_ALREADY_FAULTED
        assert await reset(s) is ResetMVFaultIndicatorStatus.ACCEPTED
        notes = await s.notes(6)
        assert sorted(notes[3:5]) == sorted(
            [(NO, FAULTED, OC_OK, True), (NO, FAULTED, GF_OK, True)]
        )
        assert notes[5] == (NO, OK, OC_OK, True) or notes[5] == (NO, OK, GF_OK, True)
        await s.readings.wait_span(time.monotonic(), MV_SETTINGS.settle)
        assert len(s.recorder.notes) == 6
        assert await run_test(s) is TestMVFaultIndicatorStatus.ACCEPTED  # all clear again


@async_test
async def test_test_while_faulted_is_rejected_already_faulted() -> None:
    async with mv_station() as s:
        s.sim.trip("MV2", "overcurrent")
        await s.notes(1)
        assert await run_test(s) is TestMVFaultIndicatorStatus.REJECTED_ALREADY_FAULTED
        assert s.sim.indicator("MV1").test is False  # nothing was pulsed


@async_test
async def test_reset_with_the_cause_still_present_faults_again() -> None:
    async with mv_station() as s:
        s.sim.trip("MV1", "overcurrent")
        assert await s.notes(1) == [(OC, FAULTED, "MV1", False)]
        await reset(s)
        assert await s.notes(3) == [
            (OC, FAULTED, "MV1", False),
            (NO, FAULTED, OC_OK, False),  # the indicator re-entered at once: never Ok
            (OC, FAULTED, "MV1", False),
        ]


@async_test
async def test_test_then_a_real_fault_survives_the_reset_as_a_real_fault() -> None:
    async with mv_station() as s:
        await run_test(s)
        await s.notes(3)
        s.sim.trip("MV2", "overcurrent")  # a real fault while the indicators are in test
        await reset(s)
        notes = await s.notes(7)
        assert notes[-1] == (OC, FAULTED, "MV2", False)  # test false: it is real
        assert s.board.fault(OC, "MV2") is not None
        assert s.board.fault(OC, "MV1") is None


@async_test
async def test_reset_that_cannot_reach_the_module_is_a_reset_failure() -> None:
    async with mv_station() as s:
        s.sim.trip("MV2", "overcurrent")
        await s.notes(1)
        await s.sim.stop()
        await reset(s)
        notes = await s.notes(3)
        assert (IND, FAULTED, "MV1, MV2: I/O module not answering", False) in notes
        await eventually(lambda: s.board.fault(RF, "MV1") is not None, timeout=WAIT)
        assert s.board.fault(RF, "MV2") is not None
        await s.sim.start()
        await eventually(lambda: s.board.fault(IND, "I/O module") is None, timeout=WAIT)
        s.sim.clear("MV2", "overcurrent")
        await reset(s)
        await eventually(lambda: s.board.summary().status is OK, timeout=WAIT)
        resolved = [n.info for n in s.recorder.notes if n.error_code is NO]
        assert "ResetFailure resolved: MV1" in resolved
        assert "ResetFailure resolved: MV2" in resolved


@async_test
async def test_station_without_indicators_rejects_test_and_reset() -> None:
    no_indicators = IOMap(contactors=DEFAULT_IO_MAP.contactors, local_switch=4)
    async with mv_station(no_indicators) as s:
        assert await run_test(s) is TestMVFaultIndicatorStatus.REJECTED
        assert await reset(s) is ResetMVFaultIndicatorStatus.REJECTED
    # Indicators wired but none supervised ([mv] groups = []) is the same station.
    async with mv_station(groups=()) as s:
        assert await run_test(s) is TestMVFaultIndicatorStatus.REJECTED
        assert await reset(s) is ResetMVFaultIndicatorStatus.REJECTED
        assert s.sim.coil_writes == []
