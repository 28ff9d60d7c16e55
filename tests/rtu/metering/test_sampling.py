"""The sampler's pure core: clock alignment (with DST days), day extremes, payloads."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from os3p.actions import Action
from os3p.messages import ReadingContext, to_payload
from os3p.validation import Validator
from rtu.metering.model import Sample
from rtu.metering.sampling import (
    DayStats,
    Reading,
    day_end,
    day_of,
    is_midnight,
    meter_values,
    next_aligned,
    render_value,
)

AMS = ZoneInfo("Europe/Amsterdam")
KOLKATA = ZoneInfo("Asia/Kolkata")  # +05:30: quarters of local time are not UTC quarters


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "interval", "zone", "expected"),
    [
        pytest.param(utc(2026, 5, 4, 10, 7, 12), 900, AMS, utc(2026, 5, 4, 10, 15), id="quarter"),
        pytest.param(utc(2026, 5, 4, 10, 15), 900, AMS, utc(2026, 5, 4, 10, 30), id="on-boundary"),
        pytest.param(utc(2026, 5, 4, 10, 7), 3600, AMS, utc(2026, 5, 4, 11), id="hour"),
        pytest.param(
            utc(2026, 5, 4, 10, 7), 900, KOLKATA, utc(2026, 5, 4, 10, 15), id="half-hour-zone"
        ),
        pytest.param(
            utc(2026, 5, 4, 10, 7), 3600, KOLKATA, utc(2026, 5, 4, 10, 30), id="hour-kolkata"
        ),
        # 7 h does not divide the day: the last period ends at local midnight.
        pytest.param(utc(2026, 5, 4, 20, 30), 7 * 3600, AMS, utc(2026, 5, 4, 22), id="short-last"),
        pytest.param(utc(2026, 5, 4, 10, 0, 0, 500000), 1, AMS, utc(2026, 5, 4, 10, 0, 1), id="1s"),
        # DST: 2026-03-29 02:00 CET → 03:00 CEST (01:00 UTC); 2026-10-25 03:00 → 02:00 (01:00 UTC)
        pytest.param(
            utc(2026, 3, 29, 0, 50), 900, AMS, utc(2026, 3, 29, 1, 0), id="spring-forward"
        ),
        pytest.param(
            utc(2026, 10, 25, 0, 50), 900, AMS, utc(2026, 10, 25, 1, 0), id="fall-back-first"
        ),
        pytest.param(
            utc(2026, 10, 25, 1, 5), 900, AMS, utc(2026, 10, 25, 1, 15), id="fall-back-repeat"
        ),
    ],
)
def test_next_aligned(now: datetime, interval: int, zone: ZoneInfo, expected: datetime) -> None:
    assert next_aligned(now, interval, zone) == expected


@pytest.mark.parametrize(
    ("day", "boundaries"),
    [
        pytest.param(date(2026, 3, 29), 92, id="spring-forward-23h"),
        pytest.param(date(2026, 10, 25), 100, id="fall-back-25h"),
        pytest.param(date(2026, 5, 4), 96, id="ordinary"),
    ],
)
def test_a_day_of_quarters_has_one_boundary_per_real_quarter(day: date, boundaries: int) -> None:
    moment = day_end(day - timedelta(days=1), AMS)
    seen = []
    while moment < day_end(day, AMS):
        moment = next_aligned(moment, 900, AMS)
        seen.append(moment)
        assert moment.astimezone(AMS).minute % 15 == 0
    assert len(seen) == boundaries
    assert is_midnight(seen[-1], AMS)


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    )
)
def test_next_aligned_is_the_next_quarter_after_now(now: datetime) -> None:
    boundary = next_aligned(now, 900, AMS)
    assert now < boundary <= now + timedelta(minutes=15)
    assert boundary.astimezone(AMS).minute % 15 == 0
    assert boundary.second == 0
    assert boundary.microsecond == 0


def test_next_aligned_rejects_naive_or_zero() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_aligned(datetime(2026, 1, 1), 900, AMS)
    with pytest.raises(ValueError, match="positive"):
        next_aligned(utc(2026, 1, 1), 0, AMS)


def test_midnight_reading_counts_for_the_day_it_closes() -> None:
    midnight = day_end(date(2026, 5, 4), AMS)
    assert day_of(midnight, AMS, closing=True) == date(2026, 5, 4)
    assert day_of(midnight, AMS) == date(2026, 5, 5)


def s(measurand: str, value: str, unit: str | None = "V", location: str | None = None) -> Sample:
    return Sample(measurand, Decimal(value), unit, utc(2026, 5, 4, 10), location)


def by_name(samples: list[Sample]) -> dict[str, Decimal]:
    return {sample.measurand: sample.value for sample in samples}


def test_day_extremes_from_samples() -> None:
    stats = DayStats()
    at = utc(2026, 5, 4, 12)
    day = date(2026, 5, 4)
    stats.add(
        day, [s("Voltage.L1N", "230.1"), s("Current.L1", "10", "A"), s("Frequency", "50", "Hz")], at
    )
    stats.add(day, [s("Voltage.L1N", "228.7"), s("Current.L1", "12.5", "A")], at)
    stats.add(day, [s("Voltage.L1N", "231.0"), s("ActivePower.L2", "-300", "W")], at)
    extremes = stats.extremes(at)
    assert by_name(extremes) == {
        "DayMax.Voltage.L1": Decimal("231.0"),
        "DayMin.Voltage.L1": Decimal("228.7"),
        "DayMax.Current.L1": Decimal("12.5"),  # Table 1 has no DayMin for currents
        "DayMax.ActivePower.L2": Decimal("-300"),
        "DayMin.ActivePower.L2": Decimal("-300"),
    }
    assert {x.unit for x in extremes if "Voltage" in x.measurand} == {"V"}
    assert all(x.timestamp == at for x in extremes)


def test_day_energy_is_the_increase_since_the_first_reading() -> None:
    stats = DayStats()
    day, at = date(2026, 5, 4), utc(2026, 5, 4, 12)
    for value in ("1000.5", "1002.0", "1004.25"):
        stats.add(day, [s("Energy.Active.Import.Register", value, "kWh", "P1Meter")], at)
    (energy,) = stats.extremes(at)
    assert energy.measurand == "DayMax.Energy.Active.Import.Register"
    assert (energy.value, energy.unit, energy.location) == (Decimal("3.75"), "kWh", "P1Meter")


def test_a_new_day_returns_the_finished_one_and_starts_afresh() -> None:
    stats = DayStats()
    stats.add(date(2026, 5, 4), [s("Voltage.L1N", "240")], utc(2026, 5, 4, 12))
    end = day_end(date(2026, 5, 4), AMS)
    finished = stats.add(date(2026, 5, 5), [s("Voltage.L1N", "220")], end)
    assert by_name(finished) == {
        "DayMax.Voltage.L1": Decimal(240),
        "DayMin.Voltage.L1": Decimal(240),
    }
    assert by_name(stats.extremes(end)) == {
        "DayMax.Voltage.L1": Decimal(220),
        "DayMin.Voltage.L1": Decimal(220),
    }
    # A late sample of a day already closed changes nothing.
    assert stats.add(date(2026, 5, 4), [s("Voltage.L1N", "100")], end) == []
    assert by_name(stats.extremes(end))["DayMin.Voltage.L1"] == Decimal(220)


def test_close_ends_the_day() -> None:
    stats = DayStats()
    stats.add(date(2026, 5, 4), [s("Voltage.L1N", "240")], utc(2026, 5, 4, 12))
    assert len(stats.close(utc(2026, 5, 4, 22))) == 2
    assert stats.day == date(2026, 5, 5)
    assert stats.extremes(utc(2026, 5, 4, 22)) == []


@pytest.mark.parametrize(
    ("value", "text"),
    [("230.1", "230.1"), ("1.2E+3", "1200"), ("-0", "0"), ("0.000", "0.000"), ("-5.5", "-5.5")],
)
def test_render_value(value: str, text: str) -> None:
    assert render_value(Decimal(value)) == text


def test_meter_values_payload_is_valid_and_ordered() -> None:
    later = Reading(
        utc(2026, 5, 4, 10, 15),
        ReadingContext.SAMPLE_CLOCK,
        (s("Voltage.L1N", "230.1"), s("PowerFactor.Sum", "0.98", None)),
    )
    earlier = Reading(
        utc(2026, 5, 4, 10, 0),
        ReadingContext.SAMPLE_PERIODIC,
        (s("Power.Active.Import", "1.5", "kW", "P1Meter"),),
    )
    payload = to_payload(meter_values([later, earlier]))
    Validator().check_outgoing(Action.METER_VALUES, "Request", payload)
    first, second = payload["meterValue"]
    assert first["timestamp"].startswith("2026-05-04T10:00:00")
    assert first["sampledValue"] == [
        {
            "value": "1.5",
            "context": "Sample.Periodic",
            "measurand": "Power.Active.Import",
            "location": "P1Meter",
            "unit": "kW",
        }
    ]
    assert second["sampledValue"][1] == {
        "value": "0.98",
        "context": "Sample.Clock",
        "measurand": "PowerFactor.Sum",
    }


def test_meter_values_needs_samples() -> None:
    with pytest.raises(ValueError, match="at least one"):
        meter_values([])
    with pytest.raises(ValueError, match="at least one"):
        meter_values([Reading(utc(2026, 1, 1), ReadingContext.TRIGGER, ())])
