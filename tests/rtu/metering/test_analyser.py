"""ModbusAnalyser against the analyser simulator over real Modbus TCP on 127.0.0.1."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from hil.analyser import INITIAL_VALUES, AnalyserSimulator
from rtu.metering.analyser import AnalyserConfig, ModbusAnalyser, board_temperature
from rtu.metering.model import MeterSource, SourceError
from rtu.metering.registers import DEFAULT_POINTS, Point
from tests.support.aio import UNIT, run

NOW = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
# The default map's units, written out independently of rtu.metering.registers.
UNITS = {
    "Voltage": "V", "Current": "A", "ActivePower": "W", "ReactivePower": "var",
    "ApparentPower": "VA", "PowerFactor": None, "Frequency": "Hz", "THDv": "%", "THDc": "%",
    "OilTemperature": "C", "AmbientTemperature": "C",
}  # fmt: skip


def thermal(tmp_path: Path, *millidegrees: str) -> str:
    for index, value in enumerate(millidegrees):
        zone = tmp_path / f"thermal_zone{index}"
        zone.mkdir()
        (zone / "temp").write_text(value + "\n")
    return str(tmp_path / "thermal_zone*" / "temp")


def analyser(sim: AnalyserSimulator, **kwargs: object) -> ModbusAnalyser:
    config = AnalyserConfig("127.0.0.1", sim.port, timeout=UNIT, **kwargs)  # type: ignore[arg-type]
    return ModbusAnalyser("station", config, now=lambda: NOW)


def test_reads_every_quantity_scaled_with_its_unit(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with AnalyserSimulator() as sim:
            meter: MeterSource = analyser(sim, thermal_glob=thermal(tmp_path, "41500", "47250"))
            try:
                samples = {s.measurand: s for s in await meter.read()}
            finally:
                await meter.close()
        assert len(samples) == len(DEFAULT_POINTS) + 1
        for measurand, value in INITIAL_VALUES.items():
            assert samples[measurand].value == value, measurand
            assert samples[measurand].unit == UNITS[measurand.split(".")[0]], measurand
            assert samples[measurand].timestamp == NOW
        assert samples["ReactivePower.L1"].value == Decimal(-13810)  # int32, negative
        assert samples["AmbientTemperature"].value == Decimal("-3.5")  # int16, negative
        board = samples["BoardTemperature"]
        assert (board.value, board.unit) == (Decimal("47.250"), "C")  # the hottest zone

    run(scenario())


def test_a_configured_map_with_swapped_words_and_floats() -> None:
    points = (
        Point("Voltage.L1N", 10, "float32", "V", word_order="little"),
        Point("Current.Sum", 12, "int32", "A", Decimal("0.01"), word_order="little"),
        Point("OilTemperature", 3, "int16", "C", Decimal("0.1"), table="input"),
    )

    async def scenario() -> None:
        async with AnalyserSimulator(points, values={}) as sim:
            sim.set_value("Voltage.L1N", Decimal("231.7"))
            sim.set_value("Current.Sum", Decimal("-12.34"))
            sim.set_value("OilTemperature", Decimal("61.2"))
            assert sim.words("holding", 12, 2) == [0xFB2E, 0xFFFF]  # low word first
            meter = analyser(sim, points=points, board_temperature=False)
            try:
                samples = {s.measurand: s.value for s in await meter.read()}
            finally:
                await meter.close()
        assert samples == {
            "Voltage.L1N": Decimal("231.7"),
            "Current.Sum": Decimal("-12.34"),
            "OilTemperature": Decimal("61.2"),
        }

    run(scenario())


def test_an_unreachable_module_is_a_source_error_and_heals() -> None:
    async def scenario() -> None:
        async with AnalyserSimulator() as sim:
            meter = analyser(sim, board_temperature=False)
            try:
                assert await meter.read()
                await sim.stop()
                with pytest.raises(SourceError) as failure:
                    await meter.read()
                assert failure.value.source == "station"
                with pytest.raises(SourceError, match="connect"):
                    await meter.read()
                await sim.start()
                sim.set_value("Frequency", Decimal("50.02"))
                values = {s.measurand: s.value for s in await meter.read()}
                assert values["Frequency"] == Decimal("50.02")
            finally:
                await meter.close()

    run(scenario())


def test_an_exception_response_is_a_source_error() -> None:
    async def scenario() -> None:
        async with AnalyserSimulator() as sim:
            meter = analyser(sim, points=(Point("Frequency", 300),), board_temperature=False)
            try:
                with pytest.raises(SourceError, match="exception response"):
                    await meter.read()
            finally:
                await meter.close()

    run(scenario())


def test_board_temperature_without_thermal_zones(tmp_path: Path) -> None:
    assert board_temperature(str(tmp_path / "none*" / "temp")) is None
    (tmp_path / "z0").mkdir()
    (tmp_path / "z0" / "temp").write_text("garbage")
    assert board_temperature(str(tmp_path / "z*" / "temp")) is None
