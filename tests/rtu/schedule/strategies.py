"""Hypothesis strategies for the schedule tests: sites, days, valid profile stacks."""

from __future__ import annotations

from datetime import date, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from rtu.schedule.model import (
    Period,
    Profile,
    Recurrency,
    Site,
    TimeKind,
    TimeSpec,
    validate_profiles,
)

SITES = [
    Site(51.98, 5.91, ZoneInfo("Europe/Amsterdam")),  # Arnhem
    Site(69.65, 18.96, ZoneInfo("Europe/Oslo")),  # Tromsø
    Site(-0.18, -78.47, ZoneInfo("America/Guayaquil")),  # Quito
    Site(-77.85, 166.67, ZoneInfo("Antarctica/McMurdo")),
    Site(-31.55, 159.08, ZoneInfo("Australia/Lord_Howe")),  # 30-minute DST shift
    Site(-33.45, -70.67, ZoneInfo("America/Santiago")),  # DST at midnight, southern
    Site(1.87, -157.4, ZoneInfo("Pacific/Kiritimati")),
]

# Wall times around every transition of the sites above, plus anything.
TRICKY_TIMES = [
    time(0),
    time(0, 30),
    time(1, 59, 59, 999000),
    time(2),
    time(2, 30),
    time(3),
    time(11, 59, 59, 999000),
    time(12),
    time(23, 59, 59, 999000),
]
TIMES = st.one_of(
    st.sampled_from(TRICKY_TIMES),
    st.times().map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000)),
)
OFFSETS = st.one_of(st.integers(-4 * 3600, 4 * 3600), st.integers(-86400, 86400)).map(
    lambda s: timedelta(seconds=s)
)
SPECS = st.one_of(
    TIMES.map(lambda t: TimeSpec(TimeKind.ABSOLUTE, time=t)),
    st.builds(TimeSpec, st.sampled_from([TimeKind.SUNSET, TimeKind.SUNRISE]), st.none(), OFFSETS),
)
DAYS = st.one_of(
    st.sampled_from(
        [
            date(2026, 3, 28),
            date(2026, 3, 29),
            date(2026, 10, 24),
            date(2026, 10, 25),
            date(2026, 4, 4),
            date(2026, 9, 5),
        ]
    ),
    st.dates(date(2025, 1, 1), date(2027, 12, 31)),
)


@st.composite
def stacks(draw: st.DrawFn) -> list[Profile]:
    """0 to 4 profiles one contactor may hold together (validate_profiles passes)."""
    count = draw(st.integers(0, 4))
    levels = draw(st.lists(st.integers(0, 16), min_size=count, max_size=count, unique=True))
    profiles = []
    for number, level in enumerate(levels):
        recurrency = draw(st.sampled_from(Recurrency))
        valid_from = (
            draw(st.one_of(st.none(), DAYS)) if recurrency is Recurrency.DAILY else draw(DAYS)
        )
        valid_to = draw(st.one_of(st.none(), DAYS))
        if valid_from is not None and valid_to is not None and valid_to < valid_from:
            valid_from, valid_to = valid_to, valid_from
        periods = draw(st.lists(st.builds(Period, SPECS, SPECS), min_size=1, max_size=4))
        profiles.append(Profile(number, level, recurrency, valid_from, valid_to, tuple(periods)))
    validate_profiles(profiles, [], max_stack_level=16, clear_all=True)
    return profiles
