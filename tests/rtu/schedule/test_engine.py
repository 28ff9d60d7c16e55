"""The schedule engine against OS³P 0.4 §7.10: days, stacking, DST, polar days."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rtu.schedule.engine import (
    day_schedule_wire,
    desired_state,
    effective_periods,
    next_change,
    normalize,
    schedule_day,
    schedule_window,
)
from rtu.schedule.model import (
    OnPeriod,
    Period,
    Profile,
    Recurrency,
    Site,
    TimeKind,
    TimeSpec,
    profile_from_wire,
    validate_profiles,
)
from tests.rtu.schedule.strategies import DAYS, SITES, stacks

ARNHEM = Site(51.98, 5.91, ZoneInfo("Europe/Amsterdam"))
TROMSO = Site(69.65, 18.96, ZoneInfo("Europe/Oslo"))
QUITO = Site(-0.18, -78.47, ZoneInfo("America/Guayaquil"))
AMSTERDAM = ARNHEM.timezone

# §7.10.3: contactor 1, Sunset+3600 → 01:00 and 06:00 → Sunrise+0, Daily.
SPEC_EXAMPLE = profile_from_wire(
    {
        "profileId": 1,
        "stackLevel": 2,
        "recurrencyKind": "Daily",
        "validFrom": "2015-06-06T00:00:00",
        "validTo": "2019-09-06T00:00:00",
        "daySchedule": [
            {
                "start": {"kind": "Sunset", "offset": 3600},
                "end": {"kind": "Absolute", "time": "01:00:00"},
            },
            {
                "start": {"kind": "Absolute", "time": "06:00:00"},
                "end": {"kind": "Sunrise", "offset": 0},
            },
        ],
    }
)
FOREVER = dataclasses.replace(SPEC_EXAMPLE, valid_from=None, valid_to=None)


def at(text: str) -> TimeSpec:
    return TimeSpec(TimeKind.ABSOLUTE, time=time.fromisoformat(text))


def sunset(seconds: int = 0) -> TimeSpec:
    return TimeSpec(TimeKind.SUNSET, offset=timedelta(seconds=seconds))


def sunrise(seconds: int = 0) -> TimeSpec:
    return TimeSpec(TimeKind.SUNRISE, offset=timedelta(seconds=seconds))


def daily(*periods: tuple[TimeSpec, TimeSpec], level: int = 0, **changes: object) -> Profile:
    profile = Profile(
        profile_id=100 + level,
        stack_level=level,
        recurrency=Recurrency.DAILY,
        valid_from=None,
        valid_to=None,
        periods=tuple(Period(start, end) for start, end in periods),
    )
    return dataclasses.replace(profile, **changes)  # type: ignore[arg-type]


def wire(profiles: list[Profile], day: date, site: Site = ARNHEM) -> list[tuple[str, str]]:
    return [
        (p["start"], p["end"])
        for p in day_schedule_wire(effective_periods(profiles, day, site), site)
    ]


def local(text: str, site: Site = ARNHEM, fold: int = 0) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=site.timezone, fold=fold)


# --- the spec's example ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        pytest.param(date(2015, 6, 5), [], id="day-before-validFrom"),
        # Summer: sunrise (05:2x) is before 06:00, so the morning period gives no light.
        pytest.param(date(2015, 6, 6), [("22:50:54", "01:00:00")], id="validFrom-midsummer"),
        pytest.param(
            date(2015, 12, 21),
            [("17:26:20", "01:00:00"), ("06:00:00", "08:42:44")],
            id="midwinter",
        ),
        pytest.param(
            date(2019, 9, 6),
            [("21:12:39", "01:00:00"), ("06:00:00", "06:57:32")],
            id="validTo-inclusive",
        ),
        pytest.param(date(2019, 9, 7), [], id="day-after-validTo"),
    ],
)
def test_spec_example_at_arnhem(day: date, expected: list[tuple[str, str]]) -> None:
    assert wire([SPEC_EXAMPLE], day) == expected


def test_spec_example_is_accepted() -> None:
    validate_profiles([SPEC_EXAMPLE], [], max_stack_level=16, clear_all=True)


# --- days and validity -------------------------------------------------------------------

ALL_DAY = (at("12:00:00"), at("11:59:59.999"))
JUNE_6_TO_8 = daily(ALL_DAY, valid_from=date(2026, 6, 6), valid_to=date(2026, 6, 8))


@pytest.mark.parametrize(
    ("now", "on"),
    [
        pytest.param("2026-06-06 11:59:59.999", False, id="validFrom-morning-is-previous-day"),
        pytest.param("2026-06-06 12:00:00", True, id="validFrom-noon"),
        pytest.param("2026-06-09 11:59:59", True, id="validTo-ends-next-day-11:59:59"),
        pytest.param("2026-06-09 12:00:00", False, id="validTo-next-day-noon"),
    ],
)
def test_validity_turns_at_noon(now: str, on: bool) -> None:
    assert desired_state([JUNE_6_TO_8], local(now), ARNHEM) is on


@pytest.mark.parametrize(
    ("now", "day"),
    [
        pytest.param("2026-06-06 12:00:00", date(2026, 6, 6), id="noon-starts-the-day"),
        pytest.param("2026-06-07 11:59:59.999999", date(2026, 6, 6), id="morning-is-previous-day"),
        pytest.param("2026-06-07 00:00:00", date(2026, 6, 6), id="midnight-is-previous-day"),
    ],
)
def test_schedule_day(now: str, day: date) -> None:
    assert schedule_day(local(now), ARNHEM) == day


WEEKLY_SATURDAY = daily(ALL_DAY, recurrency=Recurrency.WEEKLY, valid_from=date(2026, 1, 3))
ONCE = daily(
    ALL_DAY, recurrency=Recurrency.NONE, valid_from=date(2026, 1, 3), valid_to=date(2026, 1, 10)
)


@pytest.mark.parametrize(
    ("profile", "day", "applies"),
    [
        pytest.param(WEEKLY_SATURDAY, date(2026, 1, 3), True, id="weekly-validFrom"),
        pytest.param(WEEKLY_SATURDAY, date(2026, 1, 4), False, id="weekly-sunday"),
        pytest.param(WEEKLY_SATURDAY, date(2026, 1, 10), True, id="weekly-next-saturday"),
        pytest.param(WEEKLY_SATURDAY, date(2027, 1, 2), True, id="weekly-a-year-on"),
        pytest.param(WEEKLY_SATURDAY, date(2025, 12, 27), False, id="weekly-saturday-before"),
        pytest.param(ONCE, date(2026, 1, 3), True, id="once-on-validFrom"),
        pytest.param(ONCE, date(2026, 1, 4), False, id="once-not-the-day-after"),
        pytest.param(ONCE, date(2026, 1, 10), False, id="once-not-on-validTo"),
    ],
)
def test_recurrency(profile: Profile, day: date, applies: bool) -> None:
    assert bool(effective_periods([profile], day, ARNHEM)) is applies


# --- stacking ------------------------------------------------------------------------------

BASE = daily((sunset(), sunrise()), level=0)
NIGHT_SAVING = daily((sunset(), at("23:00:00")), (at("06:00:00"), sunrise()), level=1)
DARK_HOLIDAY = daily(
    (at("20:00:00"), at("19:00:00")),
    level=5,
    valid_from=date(2026, 12, 24),
    valid_to=date(2026, 12, 24),
)
SATURDAY_LATE = daily(
    (sunset(), at("02:00:00")), level=3, recurrency=Recurrency.WEEKLY, valid_from=date(2026, 12, 19)
)


@pytest.mark.parametrize(
    ("profiles", "day", "expected"),
    [
        pytest.param([BASE], date(2026, 12, 22), [("16:26:58", "08:43:20")], id="base-alone"),
        pytest.param(
            [BASE, NIGHT_SAVING],
            date(2026, 12, 22),
            [("16:26:58", "23:00:00"), ("06:00:00", "08:43:20")],
            id="higher-level-wins",
        ),
        pytest.param(
            [NIGHT_SAVING, BASE],
            date(2026, 12, 22),
            [("16:26:58", "23:00:00"), ("06:00:00", "08:43:20")],
            id="order-does-not-matter",
        ),
        pytest.param(
            [BASE, NIGHT_SAVING, SATURDAY_LATE],
            date(2026, 12, 26),
            [("16:29:34", "02:00:00")],
            id="weekly-on-top-whole-day",
        ),
        pytest.param(
            [BASE, NIGHT_SAVING, DARK_HOLIDAY],
            date(2026, 12, 24),
            [],
            id="dark-holiday-wins-whole-day",
        ),
        pytest.param(
            [BASE, NIGHT_SAVING, DARK_HOLIDAY],
            date(2026, 12, 25),
            [("16:28:50", "23:00:00"), ("06:00:00", "08:44:19")],
            id="holiday-over",
        ),
    ],
)
def test_stack_precedence(
    profiles: list[Profile], day: date, expected: list[tuple[str, str]]
) -> None:
    assert wire(profiles, day) == expected


# --- periods -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        pytest.param(daily((at("23:00:00"), at("22:00:00"))), [], id="end-before-start"),
        pytest.param(daily((at("22:00:00"), at("22:00:00"))), [], id="end-equals-start"),
        pytest.param(daily((at("01:00:00"), at("13:00:00"))), [], id="end-next-noon-is-before"),
        # §7.10.1: "safe to use the Sunset or Sunrise offsets, if they cross an absolute time".
        pytest.param(daily((sunset(), at("16:00:00"))), [], id="sunset-after-absolute-end"),
        pytest.param(
            daily((at("07:00:00"), sunrise(-7200))), [], id="sunrise-before-absolute-start"
        ),
        pytest.param(
            daily((sunset(-86400), at("13:00:00"))),
            [("12:00:00", "13:00:00")],
            id="clipped-to-window-start",
        ),
        pytest.param(
            daily((at("10:00:00"), sunrise(86400))),
            [("10:00:00", "11:59:59")],
            id="clipped-to-window-end",
        ),
        pytest.param(
            daily((at("18:00:00"), at("22:00:00")), (at("21:00:00"), at("23:00:00"))),
            [("18:00:00", "23:00:00")],
            id="overlapping-merged",
        ),
        pytest.param(
            daily((at("18:00:00"), at("22:00:00")), (at("22:00:00"), at("23:00:00"))),
            [("18:00:00", "23:00:00")],
            id="touching-merged",
        ),
        pytest.param(
            daily(
                (at("05:00:00"), at("07:00:00")),
                (at("16:00:00"), at("18:00:00")),
                (at("00:30:00"), at("01:30:00")),
                (at("19:00:00.500"), at("23:30:00")),
            ),
            [
                ("16:00:00", "18:00:00"),
                ("19:00:00", "23:30:00"),
                ("00:30:00", "01:30:00"),
                ("05:00:00", "07:00:00"),
            ],
            id="four-periods-sorted",
        ),
    ],
)
def test_periods(profile: Profile, expected: list[tuple[str, str]]) -> None:
    assert wire([profile], date(2026, 12, 22)) == expected


# --- DST (Europe/Amsterdam: 2026-03-29 02:00 CET → 03:00 CEST, 2026-10-25 03:00 → 02:00) ---------


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("profile", "day", "expected"),
    [
        pytest.param(
            daily(ALL_DAY),
            date(2026, 3, 28),
            [("2026-03-28 11:00", "2026-03-29 09:59:59.999")],
            id="spring-23h-window",
        ),
        pytest.param(
            daily(ALL_DAY),
            date(2026, 10, 24),
            [("2026-10-24 10:00", "2026-10-25 10:59:59.999")],
            id="autumn-25h-window",
        ),
        pytest.param(
            daily(ALL_DAY),
            date(2026, 3, 29),
            [("2026-03-29 10:00", "2026-03-30 09:59:59.999")],
            id="spring-day-after-24h",
        ),
        pytest.param(
            daily((at("01:30:00"), at("02:30:00"))),
            date(2026, 3, 28),
            [("2026-03-29 00:30", "2026-03-29 01:30")],  # 02:30 → 03:30 CEST
            id="spring-end-in-gap-moves-forward",
        ),
        pytest.param(
            daily((at("02:30:00"), at("04:00:00"))),
            date(2026, 3, 28),
            [("2026-03-29 01:30", "2026-03-29 02:00")],  # 03:30 CEST to 04:00 CEST
            id="spring-start-in-gap-moves-forward",
        ),
        pytest.param(
            daily((at("02:15:00"), at("02:45:00"))),
            date(2026, 3, 28),
            [("2026-03-29 01:15", "2026-03-29 01:45")],  # both move by the gap: still 30 min
            id="spring-period-inside-gap",
        ),
        pytest.param(
            daily((at("02:30:00"), at("04:00:00"))),
            date(2026, 10, 24),
            [("2026-10-25 00:30", "2026-10-25 03:00")],  # first 02:30 (CEST) to 04:00 CET
            id="autumn-start-in-fold-first-occurrence",
        ),
        pytest.param(
            daily((at("01:00:00"), at("02:30:00"))),
            date(2026, 10, 24),
            [("2026-10-24 23:00", "2026-10-25 00:30")],  # ends at the first 02:30
            id="autumn-end-in-fold-first-occurrence",
        ),
        pytest.param(
            daily((at("20:00:00"), at("06:00:00"))),
            date(2026, 10, 24),
            [("2026-10-24 18:00", "2026-10-25 05:00")],  # 11 hours of light, not 10
            id="autumn-night-is-longer",
        ),
        pytest.param(
            daily((at("02:30:00"), at("04:00:00"))),
            date(2026, 10, 25),
            [("2026-10-26 01:30", "2026-10-26 03:00")],
            id="autumn-day-after-plain-CET",
        ),
    ],
)
def test_dst(profile: Profile, day: date, expected: list[tuple[str, str]]) -> None:
    assert [(p.start, p.end) for p in effective_periods([profile], day, ARNHEM)] == [
        (utc(start), utc(end)) for start, end in expected
    ]


def test_sunset_across_spring_forward_is_cest() -> None:
    # The sunset of 29 March is an instant; it shows in summer time.
    assert wire([daily((sunset(), at("23:00:00")))], date(2026, 3, 29)) == [
        ("20:04:35", "23:00:00")
    ]


# --- polar and equatorial sites ------------------------------------------------------------

DUSK_TO_DAWN = daily((sunset(), sunrise()))
SUNRISE_MORNING = daily((sunrise(-1800), sunrise(1800)))


@pytest.mark.parametrize(
    ("profiles", "site", "day", "expected"),
    [
        pytest.param(
            [FOREVER],
            TROMSO,
            date(2026, 6, 21),
            [],
            id="tromso-midsummer-spec",
        ),
        pytest.param(
            [DUSK_TO_DAWN], TROMSO, date(2026, 6, 21), [], id="tromso-midsummer-dusk-to-dawn"
        ),
        pytest.param(
            [FOREVER],
            TROMSO,
            date(2026, 12, 21),
            [("12:00:00", "01:00:00"), ("06:00:00", "11:59:59")],
            id="tromso-midwinter-spec",
        ),
        pytest.param(
            [DUSK_TO_DAWN],
            TROMSO,
            date(2026, 12, 21),
            [("12:00:00", "11:59:59")],
            id="tromso-midwinter-all-window",
        ),
        pytest.param(
            [SUNRISE_MORNING], TROMSO, date(2026, 12, 21), [], id="tromso-midwinter-sunrise-period"
        ),
        pytest.param(
            [FOREVER],
            TROMSO,
            date(2026, 11, 26),
            [("13:01:01", "01:00:00"), ("06:00:00", "11:20:59")],
            id="tromso-last-sunrise-before-polar-night",
        ),
        pytest.param(
            [FOREVER],
            TROMSO,
            date(2026, 11, 27),
            [("12:41:47", "01:00:00"), ("06:00:00", "11:59:59")],
            id="tromso-last-sunset-then-no-sunrise",
        ),
        # The sunset of 17 May is at 00:20 on 18 May: an hour later is past 01:00.
        pytest.param([FOREVER], TROMSO, date(2026, 5, 17), [], id="tromso-sunset-after-midnight"),
        pytest.param(
            [DUSK_TO_DAWN],
            TROMSO,
            date(2026, 5, 17),
            [("00:20:37", "00:58:47")],
            id="tromso-short-night",
        ),
        pytest.param(
            [FOREVER],
            QUITO,
            date(2026, 3, 20),
            [("19:24:19", "01:00:00"), ("06:00:00", "06:17:52")],
            id="quito-equinox",
        ),
        pytest.param(
            [FOREVER],
            QUITO,
            date(2026, 6, 21),
            [("19:18:56", "01:00:00"), ("06:00:00", "06:12:47")],
            id="quito-june-solstice",
        ),
    ],
)
def test_sites(
    profiles: list[Profile], site: Site, day: date, expected: list[tuple[str, str]]
) -> None:
    assert wire(profiles, day, site) == expected


# --- desired state and the next change -------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "on", "change"),
    [
        pytest.param("2015-12-21 16:00:00", False, "2015-12-21 17:26:20.798968", id="afternoon"),
        pytest.param("2015-12-21 17:26:20.798968", True, "2015-12-22 01:00:00", id="at-switch-on"),
        pytest.param("2015-12-21 23:00:00", True, "2015-12-22 01:00:00", id="evening"),
        pytest.param("2015-12-22 01:00:00", False, "2015-12-22 06:00:00", id="at-switch-off"),
        pytest.param("2015-12-22 07:00:00", True, "2015-12-22 08:42:44.043578", id="morning"),
        pytest.param("2015-12-22 10:00:00", False, "2015-12-22 17:26:50.360155", id="across-noon"),
    ],
)
def test_desired_state_and_next_change(now: str, on: bool, change: str) -> None:
    instant = local(now)
    assert desired_state([SPEC_EXAMPLE], instant, ARNHEM) is on
    assert next_change([SPEC_EXAMPLE], instant, ARNHEM) == local(change)


@pytest.mark.parametrize(
    ("end", "expected"),
    [
        pytest.param(
            "11:59:59", [("2026-01-01 11:00", "2026-01-02 11:00")], id="end-of-day-is-window-end"
        ),
        pytest.param(
            "11:59:59.000", [("2026-01-01 11:00", "2026-01-02 11:00")], id="same-with-zero-ms"
        ),
        pytest.param(
            "11:59:59.999",
            [("2026-01-01 11:00", "2026-01-02 10:59:59.999")],
            id="milliseconds-literal",
        ),
        pytest.param(
            "11:59:58", [("2026-01-01 11:00", "2026-01-02 10:59:58")], id="one-second-earlier"
        ),
    ],
)
def test_end_of_day(end: str, expected: list[tuple[str, str]]) -> None:
    # Table 18: "start of day is 12:00:00 end of day is 11:59:59".
    periods = effective_periods([daily((at("12:00:00"), at(end)))], date(2026, 1, 1), ARNHEM)
    assert [(p.start, p.end) for p in periods] == [(utc(s), utc(e)) for s, e in expected]


def test_start_at_end_of_day_is_literal() -> None:
    assert wire([daily((at("11:59:59"), at("11:59:59")))], date(2026, 1, 1)) == [
        ("11:59:59", "11:59:59")
    ]


def test_whole_days_do_not_blink_at_noon() -> None:
    whole_day = daily((at("12:00:00"), at("11:59:59")), valid_to=date(2026, 1, 10))
    now = local("2026-01-02 15:00:00")
    assert desired_state([whole_day], local("2026-01-03 11:59:59.5"), ARNHEM)
    assert next_change([whole_day], now, ARNHEM) == local("2026-01-11 12:00:00")


def test_next_change_merges_across_day_boundaries() -> None:
    # On from noon to the next noon every day until validTo: one switch-off, at its end.
    always = daily(
        (at("12:00:00"), sunrise(86400)), valid_from=date(2026, 1, 1), valid_to=date(2026, 1, 10)
    )
    now = local("2026-01-02 15:00:00")
    assert desired_state([always], now, ARNHEM)
    assert next_change([always], now, ARNHEM) == local("2026-01-11 12:00:00")


def test_next_change_through_the_polar_night() -> None:
    # Dusk to dawn is on all window through Tromsø's polar night; the first gap is
    # the first day the sun rises again, in January.
    change = next_change([DUSK_TO_DAWN], local("2026-12-21 15:00:00", TROMSO), TROMSO)
    assert change is not None
    assert change.astimezone(TROMSO.timezone).date() == date(2027, 1, 15)


@pytest.mark.parametrize(
    ("profiles", "now"),
    [
        pytest.param([], "2026-01-01 12:00:00", id="no-profiles"),
        pytest.param([JUNE_6_TO_8], "2026-06-10 12:00:00", id="expired"),
        pytest.param(
            [daily((at("12:00:00"), sunrise(86400)))], "2026-01-01 15:00:00", id="always-on"
        ),
    ],
)
def test_no_next_change(profiles: list[Profile], now: str) -> None:
    assert next_change(profiles, local(now), ARNHEM, horizon_days=30) is None


def test_far_future_profile_found_within_horizon() -> None:
    later = daily((at("20:00:00"), at("21:00:00")), valid_from=date(2026, 9, 1))
    assert next_change([later], local("2026-01-01 12:00:00"), ARNHEM) == local(
        "2026-09-01 20:00:00"
    )


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        desired_state([SPEC_EXAMPLE], datetime(2026, 1, 1, 12), ARNHEM)


def test_day_schedule_wire_shape() -> None:
    # §7.4.2: local wall times, HH:MM:SS, the window end as "11:59:59".
    periods = effective_periods(
        [daily((at("20:11:00"), at("23:00:00")), (at("05:30:00"), sunrise(86400)))],
        date(2026, 7, 7),
        ARNHEM,
    )
    assert day_schedule_wire(periods, ARNHEM) == [
        {"start": "20:11:00", "end": "23:00:00"},
        {"start": "05:30:00", "end": "11:59:59"},
    ]


# --- invariants ------------------------------------------------------------------------------


def _check_shape(periods: tuple[OnPeriod, ...], window: tuple[datetime, datetime]) -> None:
    low, high = window
    for period in periods:
        assert period.start.tzinfo is UTC
        assert period.end.tzinfo is UTC
        assert low <= period.start < period.end <= high
    for earlier, later in itertools.pairwise(periods):
        assert earlier.end < later.start  # sorted, disjoint, touching ones merged


@settings(deadline=None, max_examples=200)
@given(profiles=stacks(), day=DAYS, site=st.sampled_from(SITES))
def test_invariants(profiles: list[Profile], day: date, site: Site) -> None:
    window = schedule_window(day, site)
    periods = effective_periods(profiles, day, site)
    _check_shape(periods, window)
    assert effective_periods(profiles, day, site) == periods
    assert normalize(((p.start, p.end) for p in periods), window) == periods
    probes = {window[0], window[1] - timedelta(microseconds=1)}
    for period in periods:
        probes |= {period.start, period.end, period.end - timedelta(microseconds=1)}
    for probe in sorted(probes):
        if probe < window[1]:
            expected = any(p.start <= probe < p.end for p in periods)
            assert desired_state(profiles, probe, site) is expected


@given(
    instant=st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)),
    site=st.sampled_from(SITES),
)
def test_schedule_day_window_holds_the_instant(instant: datetime, site: Site) -> None:
    start, end = schedule_window(schedule_day(instant, site), site)
    assert start <= instant < end


@settings(deadline=None, max_examples=100)
@given(
    profiles=stacks(),
    day=DAYS,
    site=st.sampled_from(SITES),
    fraction=st.floats(0, 1, exclude_max=True),
)
def test_next_change_is_the_next_change(
    profiles: list[Profile], day: date, site: Site, fraction: float
) -> None:
    low, high = schedule_window(day, site)
    now = low + (high - low) * fraction
    state = desired_state(profiles, now, site)
    change = next_change(profiles, now, site, horizon_days=3)
    # Every boundary between now and the change (or the horizon) keeps the state.
    days = [day + timedelta(days=n) for n in range(3)]
    boundaries = sorted(
        {b for d in days for p in effective_periods(profiles, d, site) for b in (p.start, p.end)}
    )
    for boundary in boundaries:
        if now < boundary and (change is None or boundary < change):
            assert desired_state(profiles, boundary, site) is state
    if change is not None:
        assert change > now
        assert desired_state(profiles, change, site) is not state


@settings(deadline=None, max_examples=100)
@given(profiles=stacks(), day=DAYS, zone=st.sampled_from(["UTC", "Asia/Tokyo", "Europe/Amsterdam"]))
def test_own_output_as_a_profile_gives_it_back(
    profiles: list[Profile], day: date, zone: str
) -> None:
    """Effective periods, written back as an Absolute profile, are a fixed point."""
    site = Site(52.0, 5.9, ZoneInfo(zone))
    periods = effective_periods(
        [
            p
            for p in profiles
            if all(s.kind is TimeKind.ABSOLUTE for q in p.periods for s in (q.start, q.end))
        ],
        day,
        site,
    )
    _, high = schedule_window(day, site)
    walls = [(p.start.astimezone(site.timezone), p.end.astimezone(site.timezone)) for p in periods]
    # Only wall times that name one instant can be written back.
    assume(
        all(
            w.replace(fold=0).utcoffset() == w.replace(fold=1).utcoffset()
            for pair in walls
            for w in pair
        )
    )
    # The window end is written as Table 18's "end of day", 11:59:59.
    ends = [
        "11:59:59" if p.end == high else e.time().isoformat()
        for p, (_, e) in zip(periods, walls, strict=True)
    ]
    again = daily(
        *((at(s.time().isoformat()), at(end)) for (s, _), end in zip(walls, ends, strict=True))
    )
    assert effective_periods([again], day, site) == periods
