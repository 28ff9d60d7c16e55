"""The pure core of the sampler: when to sample, day extremes, MeterValues payloads.

No I/O and no clock (STYLE.md practice 1): every function takes `now` (aware)
and the site's zone; `rtu.metering.sampler` is the asyncio shell around it.

Clock-aligned sampling (`ClockAlignedDataInterval`, OCPP heritage): boundaries
are multiples of the interval counted from *local* midnight of the site, so 900
lands on the quarter hours and 3600 on the hours whatever the zone's offset.
An interval that does not divide the day restarts at the next midnight (the
last period of the day is shorter). DST policy: boundaries are counted in
elapsed seconds from local midnight, so on the day the clocks go back, 900
still yields one boundary every 15 real minutes (100 that day, 92 when they go
forward) and no boundary is skipped or doubled; they stay on the quarter
because every real-world offset change is a multiple of 15 minutes.

Day extremes (§6.5 Table 1 `DayMax.*`, `DayMin.*`): kept per source over the
site's local day, from every sample the source delivers (periodic, clock,
triggered). A clock-aligned reading at boundary `b` closes the interval that
ends at `b`, so it counts for the day of `b − ε`: the 00:00 reading is the last
of the old day, and the MeterValues at midnight carry that day's final
extremes ("sent at the day's end"). `DayMax.Energy.Active.Import.Register` is
"Total energy delivered during day": the register's increase since the day's
first reading, not a maximum of the register.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Final

from os3p.messages import (
    Location,
    Measurand,
    MeterValue,
    MeterValuesRequest,
    ReadingContext,
    SampledValue,
    UnitOfMeasure,
)
from rtu.metering.model import Sample

__all__ = [
    "DAY_EXTREMES",
    "DayStats",
    "Reading",
    "day_end",
    "day_of",
    "is_midnight",
    "meter_values",
    "next_aligned",
    "render_value",
    "sampled_value",
]

_EPSILON: Final = timedelta(microseconds=1)


def _local_midnight(day: date, zone: tzinfo) -> datetime:
    """The first instant of `day` at the site, as aware UTC.

    A zone whose midnight does not exist (a DST jump at 00:00) starts the day
    at the first existing local time; `fold=0` plus the UTC round trip gives
    that for zoneinfo zones.
    """
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def next_aligned(now: datetime, interval: int, zone: tzinfo) -> datetime:
    """The first clock-aligned boundary strictly after `now` (aware UTC result)."""
    if interval <= 0:
        raise ValueError("interval must be positive")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    local_day = now.astimezone(zone).date()
    midnight = _local_midnight(local_day, zone)
    next_midnight = _local_midnight(local_day + timedelta(days=1), zone)
    elapsed = (now - midnight).total_seconds()
    periods = int(elapsed // interval) + 1
    boundary = midnight + timedelta(seconds=periods * interval)
    return min(boundary, next_midnight)


def day_end(day: date, zone: tzinfo) -> datetime:
    """The instant local `day` ends at the site (the next day's midnight), aware UTC."""
    return _local_midnight(day + timedelta(days=1), zone)


def is_midnight(moment: datetime, zone: tzinfo) -> bool:
    """Whether `moment` is the first instant of a local day at the site."""
    return _local_midnight(moment.astimezone(zone).date(), zone) == moment.astimezone(UTC)


def day_of(moment: datetime, zone: tzinfo, *, closing: bool = False) -> date:
    """The site's local day `moment` counts for; `closing`: a boundary ending an interval."""
    return (moment - _EPSILON if closing else moment).astimezone(zone).date()


# measurand → (DayMax measurand or None, DayMin measurand or None). Table 1 has no
# DayMin for currents and no phase extremes beyond L1..L3; the energy row is the
# day's consumption (see the module docstring).
DAY_EXTREMES: Final[Mapping[str, tuple[Measurand | None, Measurand | None]]] = {
    "Voltage.L1N": (Measurand.DAY_MAX_VOLTAGE_L1, Measurand.DAY_MIN_VOLTAGE_L1),
    "Voltage.L2N": (Measurand.DAY_MAX_VOLTAGE_L2, Measurand.DAY_MIN_VOLTAGE_L2),
    "Voltage.L3N": (Measurand.DAY_MAX_VOLTAGE_L3, Measurand.DAY_MIN_VOLTAGE_L3),
    "Current.L1": (Measurand.DAY_MAX_CURRENT_L1, None),
    "Current.L2": (Measurand.DAY_MAX_CURRENT_L2, None),
    "Current.L3": (Measurand.DAY_MAX_CURRENT_L3, None),
    "ActivePower.L1": (Measurand.DAY_MAX_ACTIVE_POWER_L1, Measurand.DAY_MIN_ACTIVE_POWER_L1),
    "ActivePower.L2": (Measurand.DAY_MAX_ACTIVE_POWER_L2, Measurand.DAY_MIN_ACTIVE_POWER_L2),
    "ActivePower.L3": (Measurand.DAY_MAX_ACTIVE_POWER_L3, Measurand.DAY_MIN_ACTIVE_POWER_L3),
    "ReactivePower.L1": (Measurand.DAY_MAX_REACTIVE_POWER_L1, Measurand.DAY_MIN_REACTIVE_POWER_L1),
    "ReactivePower.L2": (Measurand.DAY_MAX_REACTIVE_POWER_L2, Measurand.DAY_MIN_REACTIVE_POWER_L2),
    "ReactivePower.L3": (Measurand.DAY_MAX_REACTIVE_POWER_L3, Measurand.DAY_MIN_REACTIVE_POWER_L3),
}
_DAY_ENERGY_FROM: Final = "Energy.Active.Import.Register"


@dataclasses.dataclass(slots=True)
class _Extreme:
    unit: str | None
    location: str | None
    low: Decimal
    high: Decimal
    first: Decimal  # for the energy register: the day's first reading


class DayStats:
    """Extremes of one source over one local day.

    `add` takes samples for a day; samples of a later day start afresh and
    return the finished day's extremes, so the caller can still send them.
    Samples of an earlier day than the current one (a meter clock behind, a
    late gap fill) are ignored: extremes of a day already reported stay closed.
    """

    def __init__(self) -> None:
        self.day: date | None = None
        self._values: dict[str, _Extreme] = {}

    def add(self, day: date, samples: Iterable[Sample], at: datetime) -> list[Sample]:
        """Account `samples` to `day`; returns the previous day's final extremes on a
        day change (stamped `at`), else nothing."""
        finished: list[Sample] = []
        if self.day is not None and day < self.day:
            return finished
        if self.day is not None and day > self.day:
            finished = self.extremes(at)
            self._values = {}
        self.day = day
        for sample in samples:
            if sample.measurand not in DAY_EXTREMES and sample.measurand != _DAY_ENERGY_FROM:
                continue
            known = self._values.get(sample.measurand)
            if known is None:
                self._values[sample.measurand] = _Extreme(
                    sample.unit, sample.location, sample.value, sample.value, sample.value
                )
            else:
                known.low = min(known.low, sample.value)
                known.high = max(known.high, sample.value)
        return finished

    def close(self, at: datetime) -> list[Sample]:
        """The day's final extremes, and forget them (the day is over)."""
        finished = self.extremes(at)
        self._values = {}
        if self.day is not None:
            self.day += timedelta(days=1)
        return finished

    def extremes(self, at: datetime) -> list[Sample]:
        """The current day's extremes as samples stamped `at`."""
        result: list[Sample] = []
        for measurand, extreme in self._values.items():
            if measurand == _DAY_ENERGY_FROM:
                result.append(
                    Sample(
                        Measurand.DAY_MAX_ENERGY_ACTIVE_IMPORT_REGISTER.value,
                        extreme.high - extreme.first,
                        extreme.unit,
                        at,
                        extreme.location,
                    )
                )
                continue
            high, low = DAY_EXTREMES[measurand]
            if high is not None:
                result.append(Sample(high.value, extreme.high, extreme.unit, at, extreme.location))
            if low is not None:
                result.append(Sample(low.value, extreme.low, extreme.unit, at, extreme.location))
        return result


@dataclasses.dataclass(frozen=True, slots=True)
class Reading:
    """Samples that go out as one `meterValue` entry: one timestamp, one context."""

    timestamp: datetime
    context: ReadingContext
    samples: tuple[Sample, ...]


def render_value(value: Decimal) -> str:
    """Plain decimal notation: `Decimal.scaleb` results like 1.2E+3 become "1200"."""
    text = format(value, "f")
    return "0" if text in ("-0", "") else text


def sampled_value(sample: Sample, context: ReadingContext) -> SampledValue:
    """One `sampledValue`. `context` is always sent: the receiver's default
    (Sample.Periodic) is one more thing a reader of the log would have to know."""
    return SampledValue(
        value=render_value(sample.value),
        context=context,
        measurand=Measurand(sample.measurand),
        location=Location(sample.location) if sample.location is not None else None,
        unit=UnitOfMeasure(sample.unit) if sample.unit is not None else None,
    )


def meter_values(readings: Sequence[Reading]) -> MeterValuesRequest:
    """One MeterValues with a `meterValue` entry per reading, oldest first.

    Raises ValueError for no readings or a reading without samples (the
    schema's minItems): the caller decides whether there is anything to send.
    """
    if not readings or any(not reading.samples for reading in readings):
        raise ValueError("a MeterValues needs at least one reading with samples")
    ordered = sorted(readings, key=lambda reading: reading.timestamp)
    return MeterValuesRequest(
        meter_value=tuple(
            MeterValue(
                timestamp=reading.timestamp,
                sampled_value=tuple(sampled_value(s, reading.context) for s in reading.samples),
            )
            for reading in ordered
        )
    )
