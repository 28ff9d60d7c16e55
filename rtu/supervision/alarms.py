"""Station alarms from measured values: thresholds with hysteresis. Pure core.

`StationAlarms` turns readings into `Change`s for the `FaultBoard`;
`rtu.supervision.sensors` feeds it (metering samples, the host's thermal
zones, the modem's signal level, meter sources failing and recovering).

Theory of operation
-------------------
Each alarm has a trip level and a hysteresis band on the safe side of it:

    high alarm (HighTemperature, OverVoltage):  raised at value >= high,
                                                resolved at value <= high - hysteresis
    low alarm (UnderVoltage, WeakSignal):       raised at value <= low,
                                                resolved at value >= low + hysteresis

A value inside the band changes nothing, so a measurement hovering around the
trip level raises once and resolves once instead of chattering. The timestamp
is the sample's own (the moment the value was measured).

Sources are named by measurand, plus `@location` when the sample has one (a
P1 port and the station analyser may both measure `Voltage.L1N`):
`HighTemperature OilTemperature`, `UnderVoltage Voltage.L2N`.

PowerMeterFailure: a meter source that failed `meter_errors` reads in a row
is raised (one failed read is a hiccup, not a failure); its next good read
resolves it.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal

from os3p.messages import StationErrorCode
from rtu.metering.model import Sample
from rtu.supervision.ledger import Change, FaultKey

__all__ = ["AlarmSettings", "Limit", "StationAlarms"]

SIGNAL_SOURCE = "modem"
_KELVIN_OFFSET = Decimal("273.15")


@dataclasses.dataclass(frozen=True, slots=True)
class Limit:
    """One alarm: raised when the value reaches `level`, resolved `hysteresis` back."""

    code: StationErrorCode
    level: float
    hysteresis: float
    high: bool  # True: a high alarm; False: a low alarm

    def trips(self, value: float) -> bool:
        return value >= self.level if self.high else value <= self.level

    def clears(self, value: float) -> bool:
        if self.high:
            return value <= self.level - self.hysteresis
        return value >= self.level + self.hysteresis


@dataclasses.dataclass(frozen=True, slots=True)
class AlarmSettings:
    oil_temperature_high: float = 95.0  # °C
    ambient_temperature_high: float = 50.0
    board_temperature_high: float = 85.0
    temperature_hysteresis: float = 5.0
    voltage_nominal: float = 230.0  # V, phase to neutral
    voltage_band: float = 10.0  # percent of nominal either way
    voltage_hysteresis: float = 2.0  # percent of nominal
    meter_errors: int = 3  # failed reads in a row before PowerMeterFailure
    signal_weak_below: float = -105.0  # dBm
    signal_hysteresis: float = 5.0  # dB

    def __post_init__(self) -> None:
        if self.voltage_hysteresis >= self.voltage_band:
            raise ValueError("voltage_hysteresis must be smaller than voltage_band")
        if min(self.temperature_hysteresis, self.voltage_hysteresis, self.signal_hysteresis) < 0:
            raise ValueError("hysteresis must not be negative")
        if self.meter_errors < 1:
            raise ValueError("meter_errors must be at least 1")

    def limits(self, measurand: str) -> tuple[Limit, ...]:
        """The alarms a measurand feeds (none for most measurands)."""
        high_temperature = StationErrorCode.HIGH_TEMPERATURE
        hysteresis = self.temperature_hysteresis
        match measurand:
            case "OilTemperature":
                return (Limit(high_temperature, self.oil_temperature_high, hysteresis, True),)
            case "AmbientTemperature":
                return (Limit(high_temperature, self.ambient_temperature_high, hysteresis, True),)
            case "BoardTemperature":
                return (Limit(high_temperature, self.board_temperature_high, hysteresis, True),)
            case "Voltage.L1N" | "Voltage.L2N" | "Voltage.L3N":
                band = self.voltage_nominal * self.voltage_band / 100
                volts = self.voltage_nominal * self.voltage_hysteresis / 100
                return (
                    Limit(StationErrorCode.OVER_VOLTAGE, self.voltage_nominal + band, volts, True),
                    Limit(
                        StationErrorCode.UNDER_VOLTAGE, self.voltage_nominal - band, volts, False
                    ),
                )
            case _:
                return ()

    def signal_limit(self) -> Limit:
        return Limit(
            StationErrorCode.WEAK_SIGNAL, self.signal_weak_below, self.signal_hysteresis, False
        )


def _celsius(sample: Sample) -> Decimal:
    return sample.value - _KELVIN_OFFSET if sample.unit == "K" else sample.value


class StationAlarms:
    def __init__(self, settings: AlarmSettings) -> None:
        self.settings = settings
        self._raised: set[FaultKey] = set()
        self._meter_errors: dict[str, int] = {}

    def feed(self, sample: Sample) -> list[Change]:
        """One measured value; returns the alarms it raises or resolves."""
        limits = self.settings.limits(sample.measurand)
        if not limits:
            return []
        source = sample.measurand + (f"@{sample.location}" if sample.location else "")
        value = float(_celsius(sample))
        changes: list[Change] = []
        for limit in limits:
            changes += self._level(limit, source, value, sample.timestamp, sample.unit)
        return changes

    def signal(self, dbm: float, at: datetime) -> list[Change]:
        """The modem's signal level in dBm."""
        return self._level(self.settings.signal_limit(), SIGNAL_SOURCE, dbm, at, "dBm")

    def source_error(self, name: str, reason: str, at: datetime) -> list[Change]:
        """A meter source failed a read."""
        count = self._meter_errors.get(name, 0) + 1
        self._meter_errors[name] = count
        key = FaultKey(StationErrorCode.POWER_METER_FAILURE, name)
        if count < self.settings.meter_errors or key in self._raised:
            return []
        self._raised.add(key)
        info = f"{name}: {count} reads failed, last: {reason}"
        return [Change(True, key, at, info=info)]

    def source_ok(self, name: str, at: datetime) -> list[Change]:
        """A meter source delivered."""
        self._meter_errors.pop(name, None)
        key = FaultKey(StationErrorCode.POWER_METER_FAILURE, name)
        if key not in self._raised:
            return []
        self._raised.discard(key)
        return [Change(False, key, at)]

    def undo(self, change: Change) -> None:
        """Forget a change that could not be delivered, so the next reading decides again."""
        if change.raised:
            self._raised.discard(change.key)
        else:
            self._raised.add(change.key)

    def _level(
        self, limit: Limit, source: str, value: float, at: datetime, unit: str | None
    ) -> list[Change]:
        key = FaultKey(limit.code, source)
        if key not in self._raised and limit.trips(value):
            self._raised.add(key)
            relation = ">=" if limit.high else "<="
            info = f"{source}: {value:g} {unit or ''} {relation} {limit.level:g}"
            return [Change(True, key, at, info=" ".join(info.split()))]
        if key in self._raised and limit.clears(value):
            self._raised.discard(key)
            return [Change(False, key, at)]
        return []
