"""The supervision subsystem end to end: simulator -> MV monitor, alarms and lights'
faults -> durable outbox -> real websocket -> a scripted central, started afterwards."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection

from os3p.actions import Action
from os3p.connection import Connection
from os3p.messages import (
    BootNotificationRequest,
    BootNotificationResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    MessageTrigger,
    RegistrationStatus,
    StationErrorCode,
    StatusNotificationRequest,
    StatusNotificationResponse,
    TestMVFaultIndicatorRequest,
    TestMVFaultIndicatorResponse,
    TestMVFaultIndicatorStatus,
    TriggerMessageRequest,
    TriggerMessageResponse,
    TriggerMessageStatus,
    to_payload,
)
from os3p.router import Router
from os3p.server import open_server
from os3p.session import Role, Session
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


class Central:
    """Accepts the station and stores every StatusNotification payload in arrival order."""

    def __init__(self) -> None:
        self.notes: list[dict[str, Any]] = []
        self.connections: list[Connection[str]] = []
        self.router: Router[str] = Router()
        self.router.add(BootNotificationRequest, self.boot)
        self.router.add(HeartbeatRequest, self.heartbeat)
        self.router.add(StatusNotificationRequest, self.status)

    async def boot(
        self, request: BootNotificationRequest, station: str
    ) -> BootNotificationResponse:
        return BootNotificationResponse(
            status=RegistrationStatus.ACCEPTED, current_time=datetime.now(UTC), interval=60
        )

    async def heartbeat(self, request: HeartbeatRequest, station: str) -> HeartbeatResponse:
        return HeartbeatResponse(current_time=datetime.now(UTC))

    async def status(
        self, request: StatusNotificationRequest, station: str
    ) -> StatusNotificationResponse:
        self.notes.append(to_payload(request))
        return StatusNotificationResponse()

    def is_known(self, station_id: str) -> bool:
        return True

    def check_password(self, station_id: str, password: str | None) -> bool:
        return True

    async def handle(self, websocket: ServerConnection, station_id: str) -> None:
        session = Session(Role.CENTRAL, VALIDATOR, implemented=self.router.actions)
        connection = Connection(websocket, session, self.router, station_id, peer=station_id)
        self.connections.append(connection)
        await connection.run()


@dataclasses.dataclass
class Records:
    accepted: tuple[dict[str, str], str] | None = None

    async def boot_due(self, fields: Mapping[str, str], endpoint: str) -> bool:
        return self.accepted != (dict(fields), endpoint)

    async def record_accepted_boot(
        self, fields: Mapping[str, str], endpoint: str, at: datetime
    ) -> None:
        self.accepted = (dict(fields), endpoint)

    async def save_clock_offset(self, offset: timedelta) -> None:
        pass


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
            central = Central()
            server = await open_server(central.handle, central)
            endpoint = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/OS3P"
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
                records=Records(),
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
                await eventually(lambda: len(central.notes) == 8, timeout=WAIT)
                assert summary(central.notes) == [
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
                assert central.notes[2]["test"] is False
                await eventually(lambda: outbox.depth() == 0, timeout=WAIT)

                # TriggerMessage StatusNotification: the station as a whole, now.
                theirs = central.connections[-1]
                answer = await theirs.call(
                    TriggerMessageRequest(requested_message=MessageTrigger.STATUS_NOTIFICATION)
                )
                assert answer == TriggerMessageResponse(status=TriggerMessageStatus.ACCEPTED)
                await eventually(lambda: len(central.notes) == 9, timeout=WAIT)
                assert summary(central.notes[8:]) == [
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
                server.close()
                await server.wait_closed()
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
