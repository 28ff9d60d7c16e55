"""The supervision subsystem end to end: simulator -> MV monitor, alarms and lights'
faults -> durable outbox -> real websocket -> a scripted central, started afterwards."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

from os3p.actions import Action
from os3p.messages import (
    BootNotificationRequest,
    MessageTrigger,
    StationErrorCode,
    StatusNotificationRequest,
    TestMVFaultIndicatorRequest,
    TestMVFaultIndicatorResponse,
    TestMVFaultIndicatorStatus,
    TriggerMessageRequest,
    TriggerMessageResponse,
    TriggerMessageStatus,
)
from os3p.router import Router
from os3p.validation import Validator
from rtu.clock import Clock
from rtu.events import EventSink
from rtu.io.model import DEFAULT_IO_MAP
from rtu.io.poller import IOPoller
from rtu.link import Link, LinkSettings
from rtu.metering.model import Sample
from rtu.outbox import Outbox, pump_loop
from rtu.supervision.config import SupervisionConfig
from rtu.supervision.subsystem import SupervisionSubsystem
from rtu.triggers import Triggers
from tests.hil.support import UNIT, async_test, rig
from tests.rtu.supervision.support import MV_SETTINGS, WAIT
from tests.support.aio import eventually
from tests.support.central import MemoryRecords, ScriptedCentral

VALIDATOR = Validator()
BOOT = BootNotificationRequest(
    vendor="OpenGrid",
    model="RTU-1",
    station_number="0001",
    serial_number="SN-0001",
    firmware_version="0.1.0",
    iccid="",
    imsi="",
)
CONFIG = SupervisionConfig(groups=("MV1", "MV2"), mv=MV_SETTINGS, board_temperature_period=UNIT / 5)


def summary(notes: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    return [(n["errorCode"], n["status"], n.get("info")) for n in notes]


@async_test
async def test_faults_raised_offline_arrive_in_order_and_trigger_reports_the_station(
    tmp_path: Path,
) -> None:
    board_temperatures = iter([90.0])

    async def board_temperature() -> float | None:
        return next(board_temperatures, 50.0)

    clock = Clock()
    outbox = await Outbox.open(tmp_path / "outbox.db", clock=clock.now)
    try:
        async with rig() as (sim, driver), asyncio.TaskGroup() as tasks:
            poller = IOPoller(driver, period=UNIT / 5, retry=UNIT / 2)
            supervision = SupervisionSubsystem(
                CONFIG,
                sink=EventSink(outbox, VALIDATOR),
                clock=clock,
                poller=poller,
                indicators=DEFAULT_IO_MAP.indicators,
                board_temperature=board_temperature,
            )
            owned = [tasks.create_task(poller.poll_loop(), name="io-poller")]
            owned += [tasks.create_task(loop(), name=name) for name, loop in supervision.loops()]
            assert [name for name, _ in supervision.loops()] == [
                "mv-monitor",
                "mv-commands",
                "board-temperature",
            ]
            board = supervision.board

            # --- the central is not there: everything goes to the outbox file ---------
            # 90 °C, then 50 °C: raised and resolved, both committed.
            await eventually(lambda: outbox.depth() == 2, timeout=WAIT)
            sim.trip("MV1", "groundfault")
            await eventually(lambda: board.is_open(StationErrorCode.GROUND_FAILURE, "MV1"))
            now = clock.now()
            await supervision.alarms.on_samples([Sample("Voltage.L2N", Decimal("201.5"), "V", now)])
            for _ in range(3):
                await supervision.alarms.on_source_error("station-analyser", "timed out")
            # What the lights controller does when a contactor does not follow its coil:
            await board.raise_fault(
                StationErrorCode.POWER_SWITCH_FAILURE, "contactor 3", info="contactor 3: stuck"
            )
            await board.resolve_fault(StationErrorCode.POWER_SWITCH_FAILURE, "contactor 3")
            await supervision.alarms.on_source_ok("station-analyser")
            assert outbox.depth() == 8
            snapshot = supervision.snapshot()
            assert snapshot["station_status"] == "Faulted"
            assert [line.split(" since ")[0] for line in snapshot["open_faults"]] == [
                "GroundFailure MV1",
                "UnderVoltage Voltage.L2N",
            ]

            # --- the central comes up: the station connects, the pump delivers ---------
            central = ScriptedCentral()
            endpoint = await central.start()
            router: Router[None] = Router()
            link = Link(
                LinkSettings(
                    endpoint=endpoint,
                    station_id="SUBS001",
                    boot=BOOT,
                    call_timeout=20 * UNIT,
                    retry_interval=UNIT,
                ),
                router,
                None,
                records=MemoryRecords(),
                clock=clock,
                validator=VALIDATOR,
                heartbeat_interval=60,
            )
            triggers = Triggers()
            supervision.register(router, triggers)

            async def trigger(request: TriggerMessageRequest, ctx: None) -> TriggerMessageResponse:
                message = request.requested_message
                if not triggers.supports(message):
                    return TriggerMessageResponse(status=TriggerMessageStatus.REJECTED)
                owned.append(
                    tasks.create_task(triggers.fire(message, request.contactor_id, link.call))
                )
                return TriggerMessageResponse(status=TriggerMessageStatus.ACCEPTED)

            router.add(TriggerMessageRequest, trigger)
            owned.append(tasks.create_task(link.run_loop(), name="link"))
            owned.append(
                tasks.create_task(
                    pump_loop(outbox, link.send_raw, window=1, wake=link.accepted), name="pump"
                )
            )
            try:
                await eventually(lambda: len(central.of("StatusNotification")) == 8, timeout=WAIT)
                assert summary(central.of("StatusNotification")) == [
                    ("HighTemperature", "Faulted", "BoardTemperature: 90 C >= 85"),
                    ("NoError", "Ok", "HighTemperature resolved: BoardTemperature"),
                    ("GroundFailure", "Faulted", "MV1"),
                    ("UnderVoltage", "Faulted", "Voltage.L2N: 201.5 V <= 207"),
                    (
                        "PowerMeterFailure",
                        "Faulted",
                        "station-analyser: 3 reads failed, last: timed out",
                    ),
                    ("PowerSwitchFailure", "Faulted", "contactor 3: stuck"),
                    ("NoError", "Faulted", "PowerSwitchFailure resolved: contactor 3"),
                    ("NoError", "Faulted", "PowerMeterFailure resolved: station-analyser"),
                ]
                assert central.of("StatusNotification")[2]["test"] is False
                await eventually(lambda: outbox.depth() == 0, timeout=WAIT)

                # TriggerMessage StatusNotification: the station as a whole, now.
                theirs = central.connections[-1]
                answer = await theirs.call(
                    TriggerMessageRequest(requested_message=MessageTrigger.STATUS_NOTIFICATION)
                )
                assert answer == TriggerMessageResponse(status=TriggerMessageStatus.ACCEPTED)
                await eventually(lambda: len(central.of("StatusNotification")) == 9, timeout=WAIT)
                assert summary(central.of("StatusNotification")[8:]) == [
                    (
                        "GroundFailure",
                        "Faulted",
                        "GroundFailure MV1, UnderVoltage Voltage.L2N",
                    )
                ]
                # The MV handlers are reachable over the wire too.
                answer = await theirs.call(TestMVFaultIndicatorRequest())
                assert answer == TestMVFaultIndicatorResponse(
                    status=TestMVFaultIndicatorStatus.REJECTED_ALREADY_FAULTED
                )
            finally:
                supervision.close()
                for task in owned:
                    task.cancel()
                await central.stop()
    finally:
        await outbox.close()


class Sink:
    async def emit(self, message: object) -> int:
        return 0


@async_test
async def test_a_station_without_io_module_has_no_mv_but_still_its_alarms() -> None:
    supervision = SupervisionSubsystem(
        SupervisionConfig(groups=("MV1",), board_temperature_period=0),
        sink=Sink(),  # type: ignore[arg-type]
        clock=Clock(),
        poller=None,
        indicators=DEFAULT_IO_MAP.indicators,
    )
    router: Router[None] = Router()
    triggers = Triggers()
    supervision.register(router, triggers)
    assert supervision.loops() == []
    answer = await router.dispatch(
        Action.TEST_MV_FAULT_INDICATOR, TestMVFaultIndicatorRequest(), None
    )
    assert answer == TestMVFaultIndicatorResponse(status=TestMVFaultIndicatorStatus.REJECTED)
    assert triggers.supports(MessageTrigger.STATUS_NOTIFICATION)
    [ok] = await supervision.status_notifications(None)
    assert isinstance(ok, StatusNotificationRequest)
    assert (ok.status, ok.error_code) == ("Ok", "NoError")
    assert supervision.snapshot()["open_faults"] == []
