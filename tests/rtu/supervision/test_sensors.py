"""AlarmMonitor: samples, meter failures, the host's thermal zones and the modem's signal."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from os3p.messages import StationErrorCode, StationStatus
from rtu.metering.model import Sample
from rtu.supervision.alarms import AlarmSettings, StationAlarms
from rtu.supervision.board import FaultBoard
from rtu.supervision.sensors import AlarmMonitor, file_signal_reader, thermal_zone_reader
from tests.rtu.supervision.support import Recorder
from tests.support.aio import UNIT, eventually, run

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def wall() -> datetime:
    return datetime.now(UTC)


def volts(phase: int, value: str) -> Sample:
    return Sample(f"Voltage.L{phase}N", Decimal(value), "V", T0)


def monitor(recorder: Recorder, **kwargs: object) -> AlarmMonitor:
    return AlarmMonitor(
        StationAlarms(AlarmSettings()),
        FaultBoard(recorder, wall),
        now=wall,
        **kwargs,  # type: ignore[arg-type]
    )


def test_samples_raise_once_and_resolve_once_around_the_band() -> None:
    recorder = Recorder()

    async def scenario() -> None:
        alarms = monitor(recorder)
        for value in ("230", "254", "260", "250", "253.5", "248", "247"):
            await alarms.on_samples([volts(1, value), volts(2, "230")])
        await alarms.on_samples([Sample("OilTemperature", Decimal("96"), "C", T0)])
        await alarms.on_samples([Sample("OilTemperature", Decimal("90"), "C", T0)])

    run(scenario())
    assert recorder.summary() == [
        ("OverVoltage", "Faulted", "Voltage.L1N: 254 V >= 253", None),
        ("NoError", "Ok", "OverVoltage resolved: Voltage.L1N", None),
        ("HighTemperature", "Faulted", "OilTemperature: 96 C >= 95", None),
        ("NoError", "Ok", "HighTemperature resolved: OilTemperature", None),
    ]
    assert recorder.notes[0].timestamp == T0  # the moment of measurement


def test_meter_source_failure_and_recovery() -> None:
    recorder = Recorder()

    async def scenario() -> None:
        alarms = monitor(recorder)
        for _ in range(5):
            await alarms.on_source_error("dlms", "timeout")
        await alarms.on_source_ok("dlms")
        await alarms.on_source_ok("dlms")

    run(scenario())
    assert recorder.summary() == [
        ("PowerMeterFailure", "Faulted", "dlms: 3 reads failed, last: timeout", None),
        ("NoError", "Ok", "PowerMeterFailure resolved: dlms", None),
    ]


def test_thermal_zones_hottest_counts(tmp_path: Path) -> None:
    for zone, millidegrees in (("thermal_zone0", "45000\n"), ("thermal_zone1", "87500\n")):
        (tmp_path / zone).mkdir()
        (tmp_path / zone / "temp").write_text(millidegrees)
    (tmp_path / "thermal_zone2").mkdir()
    (tmp_path / "thermal_zone2" / "temp").write_text("garbage")
    assert run(thermal_zone_reader(tmp_path)()) == 87.5
    assert run(thermal_zone_reader(tmp_path / "none")()) is None


def test_signal_file(tmp_path: Path) -> None:
    path = tmp_path / "signal_dbm"
    assert run(file_signal_reader(path)()) is None
    path.write_text("-97.5\n")
    assert run(file_signal_reader(path)()) == -97.5


def test_board_temperature_and_signal_loops_feed_the_board() -> None:
    recorder = Recorder()
    temperatures = iter([80.0, 90.0, None, 70.0])
    signals = iter([-90.0, -110.0, -95.0])

    async def board_temperature() -> float | None:
        return next(temperatures, 70.0)

    async def signal() -> float | None:
        return next(signals, -90.0)

    async def scenario() -> None:
        alarms = monitor(
            recorder,
            board_temperature=board_temperature,
            signal=signal,
            board_period=UNIT / 100,
            signal_period=UNIT / 100,
        )
        async with asyncio.TaskGroup() as tasks:
            loops = [
                tasks.create_task(alarms.board_temperature_loop()),
                tasks.create_task(alarms.signal_loop()),
            ]
            await eventually(lambda: len(recorder.notes) == 4, timeout=5 * UNIT)
            for loop in loops:
                loop.cancel()

    run(scenario())
    codes = [(n.error_code, n.info) for n in recorder.notes]
    assert sorted(codes) == sorted(
        [
            (StationErrorCode.HIGH_TEMPERATURE, "BoardTemperature: 90 C >= 85"),
            (StationErrorCode.NO_ERROR, "HighTemperature resolved: BoardTemperature"),
            (StationErrorCode.WEAK_SIGNAL, "modem: -110 dBm <= -105"),
            (StationErrorCode.NO_ERROR, "WeakSignal resolved: modem"),
        ]
    )
    assert recorder.notes[-1].status is StationStatus.OK


class Failing(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.fail = True

    async def emit(self, message: msgspec.Struct) -> int:
        if self.fail:
            raise OSError("disk full")
        return await super().emit(message)


def test_an_alarm_not_committed_is_raised_by_the_next_reading() -> None:
    sink = Failing()

    async def scenario() -> None:
        alarms = monitor(sink)
        with pytest.raises(OSError, match="disk full"):
            await alarms.on_samples([volts(3, "190")])
        sink.fail = False
        await alarms.on_samples([volts(3, "190")])

    run(scenario())
    assert [n.error_code for n in sink.notes] == [StationErrorCode.UNDER_VOLTAGE]
