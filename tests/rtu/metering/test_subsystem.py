"""The metering subsystem wired as the daemon wires it: the analyser simulator, the
real outbox and pump, the real link, a scripted central over real websockets.
MeterValues arrive with the right measurands; ChangeConfiguration changes the
intervals live; TriggerMessage and GetFile work from the central's side."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from hil.analyser import AnalyserSimulator
from hil.p1_meter import P1Meter
from os3p.messages import (
    BootNotificationRequest,
    ChangeConfigurationRequest,
    ChangeConfigurationResponse,
    ConfigurationStatus,
    FileType,
    GetFileRequest,
    GetFileResponse,
    GetFileStatus,
    Location,
    MessageTrigger,
    MeterValuesRequest,
    TriggerMessageRequest,
    TriggerMessageResponse,
    TriggerMessageStatus,
)
from os3p.router import Router
from os3p.validation import Validator
from rtu.clock import Clock
from rtu.configkeys import ConfigurationKeys, standard_keys
from rtu.events import EventSink
from rtu.handlers.core import CoreContext, register_core_handlers
from rtu.link import Link, LinkSettings
from rtu.metering.analyser import AnalyserConfig
from rtu.metering.config import MeterConfig, MeteringConfig, MeteringSettings
from rtu.metering.dsmr import DsmrVersion
from rtu.metering.p1 import P1Port, P1Settings
from rtu.metering.subsystem import MeteringSubsystem
from rtu.outbox.pump import Outbox, pump_loop
from rtu.triggers import Triggers
from tests.rtu.files.servers import http_receiver
from tests.support.aio import UNIT, eventually, run
from tests.support.central import ScriptedCentral, scripted_central

BOOT = BootNotificationRequest(
    vendor="OpenGrid",
    model="RTU-1",
    station_number="0001",
    serial_number="SN-0001",
    firmware_version="0.1.0",
    iccid="89310000000000000001",
    imsi="204080000000001",
)


@dataclass
class MemoryRecords:
    accepted: tuple[dict[str, str], str] | None = None

    async def boot_due(self, fields: Mapping[str, str], endpoint: str) -> bool:
        return self.accepted != (dict(fields), endpoint)

    async def record_accepted_boot(
        self, fields: Mapping[str, str], endpoint: str, at: datetime
    ) -> None:
        self.accepted = (dict(fields), endpoint)

    async def save_clock_offset(self, offset: timedelta) -> None:
        return None


@contextlib.asynccontextmanager
async def station(
    tmp_path: Path, central: ScriptedCentral, analyser_port: int
) -> AsyncIterator[MeteringSubsystem]:
    clock = Clock()
    validator = Validator()
    outbox = await Outbox.open(tmp_path / "outbox.db", clock=clock.now)
    events = EventSink(outbox, validator)
    keys = ConfigurationKeys(
        standard_keys(),
        {
            "HeartbeatInterval": 3600,
            "websocketPingInterval": 0,
            "Geolocation": (51.98, 5.91),
            "StreetlightProfileMaxStackLevel": 16,
            "MeterValueSampleInterval": 0,
            "ClockAlignedDataInterval": 1,
        },
        providers={"Sunrise": lambda: "", "Sunset": lambda: ""},
    )
    triggers = Triggers()
    config = MeteringConfig(
        meters=(
            MeterConfig(
                "station",
                "analyser",
                analyser=AnalyserConfig(
                    "127.0.0.1", analyser_port, timeout=UNIT, board_temperature=False
                ),
            ),
        ),
        settings=MeteringSettings(retention_days=7, upload_backoff=0.05),
    )
    metering = await MeteringSubsystem.build(
        config,
        station_id="SUBS001",
        data_dir=tmp_path,
        zone=ZoneInfo("Europe/Amsterdam"),
        clock=clock,
        keys=keys,
        emit=events.emit,
        status=lambda: {"link": "test"},
    )
    background: set[asyncio.Task[None]] = set()

    def spawn(work: Awaitable[None], name: str) -> None:
        async def wrapped() -> None:
            await work

        task = asyncio.get_running_loop().create_task(wrapped(), name=name)
        background.add(task)
        task.add_done_callback(background.discard)

    router: Router[CoreContext] = Router()
    register_core_handlers(router)
    metering.register(router, triggers)
    link: Link | None = None

    async def send_now(request: msgspec.Struct) -> object:
        assert link is not None
        return await link.call(request)

    async def persist(name: str, value: str) -> None:
        return None

    async def reset() -> None:
        return None

    link = Link(
        LinkSettings(
            endpoint=central.endpoint, station_id="SUBS001", boot=BOOT, call_timeout=5 * UNIT
        ),
        router,
        CoreContext(
            keys=keys,
            persist=persist,
            triggers=triggers,
            send_now=send_now,
            request_reset=reset,
            background=spawn,
        ),
        records=MemoryRecords(),
        clock=clock,
        validator=validator,
        heartbeat_interval=3600,
    )
    try:
        async with asyncio.TaskGroup() as tasks:
            running = [tasks.create_task(link.run_loop())]
            running.append(
                tasks.create_task(pump_loop(outbox, link.send_raw, window=1, wake=link.accepted))
            )
            running.extend(tasks.create_task(loop(), name=name) for name, loop in metering.loops())
            try:
                yield metering
            finally:
                await link.close()
                for task in [*running, *background]:
                    task.cancel()
    finally:
        await metering.close()
        await outbox.close()


def sampled(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [sv for mv in payload["meterValue"] for sv in mv["sampledValue"]]


def test_meter_values_triggers_and_getfile_through_the_link(tmp_path: Path) -> None:
    async def scenario() -> None:
        central = ScriptedCentral()
        async with (
            AnalyserSimulator() as simulator,
            scripted_central(central),
            http_receiver() as receiver,
            station(tmp_path, central, simulator.port) as metering,
        ):
            # Clock-aligned every second: Sample.Clock values with the day extremes.
            await eventually(lambda: central.count("MeterValues") >= 2, what="MeterValues")
            first = sampled(central.of("MeterValues")[0])
            values = {sv["measurand"]: (sv["value"], sv.get("unit")) for sv in first}
            assert values["Voltage.L1N"] == ("230.4", "V")
            assert values["PowerFactor.Sum"] == ("0.979", None)
            assert values["THDc.L3"] == ("9.2", "%")
            assert values["DayMax.Voltage.L1"] == ("230.4", "V")
            assert {sv["context"] for sv in first} == {"Sample.Clock"}

            connection = central.current
            assert connection is not None
            # ChangeConfiguration takes effect at once: periodic instead of clock-aligned.
            for key, value in (
                ("ClockAlignedDataInterval", "0"),
                ("MeterValueSampleInterval", "1"),
            ):
                answer = await connection.call_typed(
                    ChangeConfigurationRequest(key=key, value=value), ChangeConfigurationResponse
                )
                assert answer.status is ConfigurationStatus.ACCEPTED
            simulator.set_value("Voltage.L1N", Decimal("236.0"))

            def periodic() -> list[dict[str, Any]]:
                return [
                    sv
                    for payload in central.of("MeterValues")
                    for sv in sampled(payload)
                    if sv["context"] == "Sample.Periodic" and sv["measurand"] == "Voltage.L1N"
                ]

            await eventually(
                lambda: any(sv["value"] == "236.0" for sv in periodic()), what="periodic"
            )

            # TriggerMessage MeterValues: a fresh reading, context Trigger.
            answer = await connection.call_typed(
                TriggerMessageRequest(requested_message=MessageTrigger.METER_VALUES),
                TriggerMessageResponse,
            )
            assert answer.status is TriggerMessageStatus.ACCEPTED
            await eventually(
                lambda: any(
                    sv["context"] == "Trigger"
                    for payload in central.of("MeterValues")
                    for sv in sampled(payload)
                ),
                what="triggered MeterValues",
            )

            # GetFile MeterValueHistory: answered at once, uploaded, notified.
            response = await connection.call_typed(
                GetFileRequest(
                    request_id="req-1",
                    file_type=FileType.METER_VALUE_HISTORY,
                    location=receiver.url,
                ),
                GetFileResponse,
            )
            assert response.status is GetFileStatus.ACCEPTED
            await eventually(
                lambda: (
                    [n["status"] for n in central.of("GetFileStatusNotification")]
                    == ["Uploading", "Uploaded"]
                ),
                what="upload notifications",
            )
            assert {n["requestId"] for n in central.of("GetFileStatusNotification")} == {"req-1"}
            rows = list(csv.DictReader(io.StringIO(receiver.files[response.file_name].decode())))
            assert {row["source"] for row in rows} == {"station"}
            assert {"Sample.Clock", "Sample.Periodic"} <= {row["context"] for row in rows}
            assert "236.0" in {row["value"] for row in rows if row["measurand"] == "Voltage.L1N"}

            answer = await connection.call_typed(
                TriggerMessageRequest(
                    requested_message=MessageTrigger.GET_FILE_STATUS_NOTIFICATION
                ),
                TriggerMessageResponse,
            )
            assert answer.status is TriggerMessageStatus.ACCEPTED
            await eventually(
                lambda: central.of("GetFileStatusNotification")[-1] == {"status": "None"},
                what="idle status",
            )
            snapshot = metering.snapshot()
            assert snapshot["meters"]["station"]["last_values"]["Voltage.L1N"] == "236.0 V"
            assert snapshot["files"]["uploaded"] == 1

    run(scenario(), timeout=60 * UNIT)


def test_trigger_meter_values_is_rejected_without_meters(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = Clock()
        keys = ConfigurationKeys(
            standard_keys(),
            {
                "HeartbeatInterval": 3600,
                "websocketPingInterval": 0,
                "Geolocation": (0.0, 0.0),
                "StreetlightProfileMaxStackLevel": 16,
                "MeterValueSampleInterval": 0,
                "ClockAlignedDataInterval": 900,
            },
            providers={"Sunrise": lambda: "", "Sunset": lambda: ""},
        )

        async def emit(message: msgspec.Struct) -> None:
            return None

        metering = await MeteringSubsystem.build(
            MeteringConfig(),
            station_id="S",
            data_dir=tmp_path,
            zone=UTC,
            clock=clock,
            keys=keys,
            emit=emit,
        )
        try:
            triggers = Triggers()
            metering.register(Router(), triggers)
            assert not triggers.supports(MessageTrigger.METER_VALUES)
            assert triggers.supports(MessageTrigger.GET_FILE_STATUS_NOTIFICATION)
            assert [name for name, _ in metering.loops()] == ["getfile", "metering-retention"]
        finally:
            await metering.close()

    run(scenario())


def test_status_shows_p1_counters_and_its_readings(tmp_path: Path) -> None:
    meter = P1Meter("5", 0.05)

    async def scenario() -> None:
        clock = Clock()
        keys = ConfigurationKeys(
            standard_keys(),
            {
                "HeartbeatInterval": 3600,
                "websocketPingInterval": 0,
                "Geolocation": (0.0, 0.0),
                "StreetlightProfileMaxStackLevel": 16,
                "MeterValueSampleInterval": 1,
                "ClockAlignedDataInterval": 0,
            },
            providers={"Sunrise": lambda: "", "Sunset": lambda: ""},
        )
        sent: list[msgspec.Struct] = []

        async def emit(message: msgspec.Struct) -> None:
            sent.append(message)

        port = P1Port(P1Settings(device=meter.device, version=DsmrVersion.V5, name="lights"))
        metering = await MeteringSubsystem.build(
            MeteringConfig(),
            station_id="S",
            data_dir=tmp_path,
            zone=UTC,
            clock=clock,
            keys=keys,
            emit=emit,
            sources=[port],
        )
        try:
            async with asyncio.TaskGroup() as tasks:
                loops = [tasks.create_task(loop()) for _, loop in metering.loops()]
                await eventually(lambda: len(sent) >= 1, what="P1 MeterValues")
                meter.corrupt_next_crc()  # the port is open now: the reader sees it
                await eventually(lambda: port.counters.crc_errors >= 1, what="a CRC error counted")
                for loop in loops:
                    loop.cancel()
            lines = metering.meter_lines()
            snapshot = metering.snapshot()["meters"]["lights"]
        finally:
            await metering.close()
        assert snapshot["p1"]["crc_errors"] == 1
        assert "CRC errors 1" in lines["lights"]
        assert snapshot["last_values"]["Power.Active.Import@P1Meter"].endswith(" kW")
        assert isinstance(sent[0], MeterValuesRequest)
        assert {sv.location for mv in sent[0].meter_value for sv in mv.sampled_value} == {
            Location.P1_METER
        }

    with meter:
        run(scenario())
