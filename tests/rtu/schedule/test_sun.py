"""The astronomical clock: which sunrise and sunset belong to a day, and polar days."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import astral
import astral.sun
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtu.schedule.model import Site
from rtu.schedule.sun import HORIZON_DEGREES, Polar, SunTime, solar_noon, sunrise, sunset

ARNHEM = Site(51.98, 5.91, ZoneInfo("Europe/Amsterdam"))
TROMSO = Site(69.65, 18.96, ZoneInfo("Europe/Oslo"))
QUITO = Site(-0.18, -78.47, ZoneInfo("America/Guayaquil"))
KIRITIMATI = Site(1.87, -157.4, ZoneInfo("Pacific/Kiritimati"))  # UTC+14, far from its meridian
YAKUTSK = Site(62.03, 129.73, ZoneInfo("Asia/Yakutsk"))
MCMURDO = Site(-77.85, 166.67, ZoneInfo("Antarctica/McMurdo"))


def _matches(event: SunTime, expected: str, site: Site, tolerance: timedelta) -> bool:
    if isinstance(event, Polar):
        return event.value == expected
    if expected in {"PolarDay", "PolarNight"}:
        return False
    wanted = datetime.fromisoformat(expected).replace(tzinfo=site.timezone)
    return abs(event - wanted) <= tolerance


MINUTE = timedelta(minutes=1)
NEAR_EDGE = timedelta(minutes=15)  # astral and NOAA drift apart where the sun grazes the horizon


@pytest.mark.parametrize(
    ("site", "day", "rise", "set_", "tolerance"),
    [
        # Local times from NOAA's spreadsheet equations (bench/schedule.py), to 1 minute.
        pytest.param(
            ARNHEM,
            date(2026, 6, 21),
            "2026-06-21 05:16:14",
            "2026-06-21 22:00:06",
            MINUTE,
            id="arnhem-midsummer",
        ),
        pytest.param(
            ARNHEM,
            date(2026, 12, 21),
            "2026-12-21 08:42:01",
            "2026-12-21 16:26:49",
            MINUTE,
            id="arnhem-midwinter",
        ),
        pytest.param(
            ARNHEM,
            date(2026, 3, 29),
            "2026-03-29 07:18:22",
            "2026-03-29 20:04:52",
            MINUTE,
            id="arnhem-spring-forward",
        ),
        pytest.param(
            QUITO,
            date(2026, 3, 20),
            "2026-03-20 06:17:59",
            "2026-03-20 18:24:30",
            MINUTE,
            id="quito-equinox",
        ),
        pytest.param(
            TROMSO,
            date(2026, 3, 20),
            "2026-03-20 05:43:51",
            "2026-03-20 18:01:32",
            MINUTE,
            id="tromso-equinox",
        ),
        pytest.param(
            TROMSO,
            date(2026, 1, 20),
            "2026-01-20 10:36:00",
            "2026-01-20 13:15:11",
            2 * MINUTE,
            id="tromso-after-polar-night",
        ),
        # Sunrise at 23:58 UTC: astral.sun.sunrise cannot find it ("Unable to find a
        # sunrise time on the date specified") although Yakutsk is far from any pole.
        pytest.param(
            YAKUTSK,
            date(2026, 1, 28),
            "2026-01-28 08:58:04",
            "2026-01-28 16:10:38",
            MINUTE,
            id="yakutsk-sunrise-at-utc-midnight",
        ),
        pytest.param(
            TROMSO, date(2026, 6, 21), "PolarDay", "PolarDay", MINUTE, id="tromso-midnight-sun"
        ),
        pytest.param(
            TROMSO, date(2026, 12, 21), "PolarNight", "PolarNight", MINUTE, id="tromso-polar-night"
        ),
        # The sunset ending 17 May's daylight is after local midnight, where astral's
        # local-date lookup fails; it still belongs to 17 May.
        pytest.param(
            TROMSO,
            date(2026, 5, 17),
            "2026-05-17 01:17:16",
            "2026-05-18 00:15:00",
            NEAR_EDGE,
            id="tromso-sunset-after-midnight",
        ),
        pytest.param(
            TROMSO,
            date(2026, 5, 18),
            "2026-05-18 00:50:00",
            "PolarDay",
            NEAR_EDGE,
            id="tromso-last-sunrise",
        ),
        pytest.param(
            TROMSO,
            date(2026, 7, 25),
            "PolarDay",
            "2026-07-26 00:40:00",
            NEAR_EDGE,
            id="tromso-first-sunset",
        ),
    ],
)
def test_sunrise_and_sunset(
    site: Site, day: date, rise: str, set_: str, tolerance: timedelta
) -> None:
    assert _matches(sunrise(site, day), rise, site, tolerance), sunrise(site, day)
    assert _matches(sunset(site, day), set_, site, tolerance), sunset(site, day)


def _elevation(site: Site, at: datetime) -> float:
    observer = astral.Observer(site.latitude, site.longitude)
    return float(astral.sun.elevation(observer, at, with_refraction=False))


# astral finds the event from the declination at one instant: at mid latitudes the
# sun is then within 0.05° of the horizon, near polar edges (grazing sun) within 0.5°.
MID_LATITUDE = 0.06
POLAR = 0.5

SITES = [
    pytest.param(ARNHEM, MID_LATITUDE, id="arnhem"),
    pytest.param(TROMSO, POLAR, id="tromso"),
    pytest.param(QUITO, MID_LATITUDE, id="quito"),
    pytest.param(KIRITIMATI, MID_LATITUDE, id="kiritimati"),
    pytest.param(YAKUTSK, MID_LATITUDE, id="yakutsk"),
    pytest.param(MCMURDO, POLAR, id="mcmurdo"),
]


def _check_day(site: Site, day: date, degrees: float) -> None:
    """What the engine relies on: events on the right side of their solar noon,
    at the horizon, and polar days that really are polar."""
    noon = solar_noon(site, day)
    rise, set_ = sunrise(site, day), sunset(site, day)
    if isinstance(rise, datetime):
        assert noon - timedelta(hours=12, minutes=30) < rise < noon
        assert set_ is not Polar.NIGHT
        assert _elevation(site, rise) == pytest.approx(HORIZON_DEGREES, abs=degrees)
    if isinstance(set_, datetime):
        assert noon < set_ < noon + timedelta(hours=12, minutes=30)
        assert _elevation(site, set_) == pytest.approx(HORIZON_DEGREES, abs=degrees)
    if Polar.NIGHT in (rise, set_):
        assert _elevation(site, noon) <= HORIZON_DEGREES + 0.1
    if rise is Polar.DAY:
        assert _elevation(site, noon - timedelta(hours=12)) > HORIZON_DEGREES - 0.1
    if set_ is Polar.DAY:
        assert _elevation(site, noon + timedelta(hours=12)) > HORIZON_DEGREES - 0.1


@pytest.mark.parametrize(("site", "degrees"), SITES)
def test_every_day_of_a_year(site: Site, degrees: float) -> None:
    for offset in range(366):
        _check_day(site, date(2026, 1, 1) + timedelta(days=offset), degrees)


@pytest.mark.parametrize(("site", "degrees"), SITES)
def test_solar_noon_is_near_local_noon(site: Site, degrees: float) -> None:
    del degrees
    day = date(2026, 6, 1)
    local_noon = datetime.combine(day, time(12), site.timezone)
    assert abs(solar_noon(site, day) - local_noon) < timedelta(hours=3)


@settings(deadline=None, max_examples=200)
@given(
    latitude=st.floats(-89.0, 89.0),
    longitude=st.floats(-180.0, 180.0),
    day=st.dates(date(1990, 1, 1), date(2100, 12, 31)),
)
def test_total_and_consistent_anywhere(latitude: float, longitude: float, day: date) -> None:
    # UTC keeps every longitude valid; the zone only picks which solar noon is meant.
    _check_day(Site(latitude, longitude, ZoneInfo("UTC")), day, POLAR)


def test_results_are_utc() -> None:
    event = sunset(ARNHEM, date(2026, 6, 21))
    assert isinstance(event, datetime)
    assert event.tzinfo is UTC
