"""StationAlarms: thresholds with hysteresis, meter failures; each raised once, resolved once."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from os3p.messages import StationErrorCode
from rtu.metering.model import Sample
from rtu.supervision.alarms import AlarmSettings, StationAlarms
from rtu.supervision.ledger import Change

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
HIGH, OVER, UNDER, WEAK, METER = (
    StationErrorCode.HIGH_TEMPERATURE,
    StationErrorCode.OVER_VOLTAGE,
    StationErrorCode.UNDER_VOLTAGE,
    StationErrorCode.WEAK_SIGNAL,
    StationErrorCode.POWER_METER_FAILURE,
)


def sample(
    measurand: str, value: str, unit: str | None = None, location: str | None = None
) -> Sample:
    return Sample(measurand, Decimal(value), unit, T0, location)


def feed(alarms: StationAlarms, measurand: str, values: list[str]) -> list[tuple[bool, str]]:
    out: list[tuple[bool, str]] = []
    for value in values:
        out += [(c.raised, str(c.key)) for c in alarms.feed(sample(measurand, value))]
    return out


# Defaults: 230 V ±10 % -> 207 / 253 V, hysteresis 2 % = 4.6 V; oil 95 °C, 5 K.
@pytest.mark.parametrize(
    ("measurand", "values", "expected"),
    [
        (
            "OilTemperature",
            ["80", "95", "99", "92", "91", "90.1", "94.9", "90"],
            [(True, "HighTemperature OilTemperature"), (False, "HighTemperature OilTemperature")],
        ),
        (
            "AmbientTemperature",
            ["49.9", "50", "46", "50", "45"],
            [
                (True, "HighTemperature AmbientTemperature"),
                (False, "HighTemperature AmbientTemperature"),
            ],
        ),
        (
            "BoardTemperature",
            ["84", "86", "81", "80"],
            [
                (True, "HighTemperature BoardTemperature"),
                (False, "HighTemperature BoardTemperature"),
            ],
        ),
        (
            "Voltage.L1N",
            ["230", "253", "250", "249", "248.4", "230"],
            [(True, "OverVoltage Voltage.L1N"), (False, "OverVoltage Voltage.L1N")],
        ),
        (
            "Voltage.L3N",
            ["230", "207", "200", "210", "211.6", "212", "207.5"],
            [(True, "UnderVoltage Voltage.L3N"), (False, "UnderVoltage Voltage.L3N")],
        ),
        ("Voltage.L2N", ["208", "252.9", "229"], []),
        ("Current.L1", ["1000", "-5"], []),
    ],
    ids=["oil", "ambient", "board", "over-voltage", "under-voltage", "inside-band", "no-alarm"],
)
def test_thresholds_and_hysteresis(
    measurand: str, values: list[str], expected: list[tuple[bool, str]]
) -> None:
    assert feed(StationAlarms(AlarmSettings()), measurand, values) == expected


def test_kelvin_is_converted_and_location_names_the_source() -> None:
    alarms = StationAlarms(AlarmSettings())
    changes = alarms.feed(sample("OilTemperature", "373.15", unit="K", location="Body"))
    assert [(c.raised, str(c.key), c.info) for c in changes] == [
        (True, "HighTemperature OilTemperature@Body", "OilTemperature@Body: 100 K >= 95")
    ]


def test_weak_signal_raised_once_and_resolved_above_the_band() -> None:
    alarms = StationAlarms(AlarmSettings(signal_weak_below=-100, signal_hysteresis=5))
    out: list[Change] = []
    for dbm in (-90, -100, -103, -98, -96, -95.1, -95, -99, -101):
        out += alarms.signal(dbm, T0)
    assert [(c.raised, c.key.code) for c in out] == [(True, WEAK), (False, WEAK), (True, WEAK)]


def test_meter_failure_after_consecutive_errors_and_its_recovery() -> None:
    alarms = StationAlarms(AlarmSettings(meter_errors=3))
    assert alarms.source_error("p1", "timeout", T0) == []
    assert alarms.source_error("p1", "timeout", T0) == []
    assert alarms.source_ok("p1", T0) == []  # a hiccup: the count starts again
    assert alarms.source_error("p1", "timeout", T0) == []
    assert alarms.source_error("p1", "timeout", T0) == []
    raised = alarms.source_error("p1", "no answer", T0)
    assert [(c.raised, str(c.key), c.info) for c in raised] == [
        (True, "PowerMeterFailure p1", "p1: 3 reads failed, last: no answer")
    ]
    assert alarms.source_error("p1", "no answer", T0) == []  # raised once
    assert [(c.raised, c.key.code) for c in alarms.source_ok("p1", T0)] == [(False, METER)]
    assert alarms.source_ok("p1", T0) == []


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="voltage_hysteresis"):
        AlarmSettings(voltage_band=2, voltage_hysteresis=2)
    with pytest.raises(ValueError, match="meter_errors"):
        AlarmSettings(meter_errors=0)


@given(st.lists(st.floats(min_value=150, max_value=300, allow_nan=False), max_size=60))
def test_any_voltage_sequence_alternates_per_alarm(values: list[float]) -> None:
    alarms = StationAlarms(AlarmSettings())
    changes: list[Change] = []
    for v in values:
        changes += alarms.feed(sample("Voltage.L1N", f"{v:.3f}"))
    for code in (OVER, UNDER):
        flags = [c.raised for c in changes if c.key.code is code]
        assert flags == [True, False] * (len(flags) // 2) + [True] * (len(flags) % 2)
    changes += alarms.feed(sample("Voltage.L1N", "230"))  # nominal clears everything
    for code in (OVER, UNDER):
        flags = [c.raised for c in changes if c.key.code is code]
        assert len(flags) % 2 == 0
