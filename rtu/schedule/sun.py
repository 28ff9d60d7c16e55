"""Sunrise and sunset for the astronomical clock (OS³P 0.4 §7.10.1 Table 18, §5).

Theory of operation
-------------------
`astral` (NOAA's solar equations) does the astronomy. What this module adds is a
definition of *which* sunrise and sunset belong to a date that holds everywhere the
station may stand, including north of the Arctic Circle:

* `sunset(site, day)` is the sun setting after the solar noon nearest local noon of
  `day`: the sunset that ends that day's daylight, the one a streetlight evening
  begins with.
* `sunrise(site, day)` is the sun rising before that solar noon: the sunrise that
  ends the night before `day`'s daylight.

For Arnhem or Quito this is simply "the sunset/sunrise on that date". It differs
where a local calendar date has no such event although the sun still sets, e.g.
Tromsø in mid-May, where the sunset creeps past local midnight: asking
`astral.sun.sunset` for the local date 17 May fails ("Unable to find a sunset time
on the date specified"), and for 18 May it returns the one belonging to the
evening of 17 May. Its UTC-date matching also fails where an event falls near
00:00 UTC (Yakutia in January), not only near the poles.

So we do not use astral's date matching. `astral.sun.time_at_elevation` with the
elevation astral's own `sunrise`/`sunset` use (the sun's upper limb on the
horizon, refraction added by astral) computes the crossing from a UTC date without
matching it to anything; we compute it from the UTC dates around the expected
half-day and keep the one that lies in it: (solar noon, solar noon + 12 h) for the
sunset, (solar noon - 12 h, solar noon) for the sunrise.

When none does (astral raises `ValueError` because the sun does not reach the
horizon, or a grazing sun puts the estimate outside the half-day), we classify
by the sun's elevation at solar noon and at the solar midnight on the event's side:

* noon below the horizon → `Polar.NIGHT` (the sun never rises: no sunrise, no sunset);
* midnight above the horizon → `Polar.DAY` (the sun never sets);
* otherwise the sun does cross; we find the crossing by bisection on the
  elevation, so the functions are total.

The classification and the bisection use the usual -0.833° for the geometric
centre of the sun (0.567° refraction plus 0.267° semi-diameter), with the
elevation taken without refraction.

Accuracy (bench/schedule.py, against NOAA's spreadsheet equations evaluated at
the event): within 23 s at Arnhem and Madrid all year, the residue mostly being
astral's horizon (refraction taken at the apparent horizon, -0.79°) against
NOAA's fixed -0.833°. Within two weeks of a polar edge, where the sun grazes the
horizon, astral and NOAA drift apart by up to ~11 min at Tromsø (astral takes the
declination at one instant); twilight lasts hours there, so the lights do not
notice.

Nothing here reads a clock: every function takes the site and the date. Results
are memoised (pure inputs, immutable outputs), because the lights controller and
GetEffectiveStreetlightDaySchedule ask the same day for four contactors.
"""

from __future__ import annotations

import enum
import functools
from datetime import UTC, date, datetime, time, timedelta

import astral
import astral.sun

from rtu.schedule.model import Site

__all__ = ["HORIZON_DEGREES", "Polar", "SunTime", "solar_noon", "sunrise", "sunset"]

HORIZON_DEGREES = -0.833
_HALF_DAY = timedelta(hours=12)
# What astral's sunrise()/sunset() pass: the upper limb (16' above the centre) on
# the horizon; time_at_elevation then adds refraction at that zenith.
_UPPER_LIMB_ON_HORIZON = -16.0 / 60.0
_BISECTION_STEPS = 20  # 12 h / 2**20 < 0.05 s


class Polar(enum.Enum):
    """A solar day without the asked-for horizon crossing."""

    DAY = "PolarDay"  # the sun stays above the horizon: it never sets
    NIGHT = "PolarNight"  # the sun stays below the horizon: it never rises


SunTime = datetime | Polar
"""An aware UTC instant of the event, or why there is none."""


@functools.lru_cache(maxsize=64)
def _observer(site: Site) -> astral.Observer:
    return astral.Observer(latitude=site.latitude, longitude=site.longitude)


@functools.lru_cache(maxsize=4096)
def solar_noon(site: Site, day: date) -> datetime:
    """The sun's transit nearest to 12:00 local time on `day`, in UTC."""
    observer = _observer(site)
    local_noon = datetime.combine(day, time(12), site.timezone).astimezone(UTC)
    utc_day = local_noon.date()
    noon: datetime = astral.sun.noon(observer, utc_day)
    # Near the date line the transit computed for the UTC date can be a day off.
    if noon - local_noon > _HALF_DAY:
        noon = astral.sun.noon(observer, utc_day - timedelta(days=1))
    elif local_noon - noon > _HALF_DAY:
        noon = astral.sun.noon(observer, utc_day + timedelta(days=1))
    return noon.astimezone(UTC)


def _elevation(site: Site, at: datetime) -> float:
    return float(astral.sun.elevation(_observer(site), at, with_refraction=False))


def _bisect(site: Site, above: datetime, below: datetime) -> datetime:
    """The horizon crossing between an instant with the sun up and one with it down."""
    for _ in range(_BISECTION_STEPS):
        middle = above + (below - above) / 2
        if _elevation(site, middle) > HORIZON_DEGREES:
            above = middle
        else:
            below = middle
    return above + (below - above) / 2


def _crossing(site: Site, rising: bool, earliest: datetime, latest: datetime) -> datetime | None:
    """astral's horizon crossing in (earliest, latest), or None if it finds none there."""
    observer = _observer(site)
    direction = astral.SunDirection.RISING if rising else astral.SunDirection.SETTING
    expected = (earliest + (latest - earliest) / 2).date()
    for utc_day in (expected, expected - timedelta(days=1), expected + timedelta(days=1)):
        try:
            event: datetime = astral.sun.time_at_elevation(
                observer, _UPPER_LIMB_ON_HORIZON, utc_day, direction, UTC
            )
        except ValueError:
            continue
        if earliest < event < latest:
            return event
    return None


def _event(site: Site, day: date, rising: bool) -> SunTime:
    noon = solar_noon(site, day)
    midnight = noon - _HALF_DAY if rising else noon + _HALF_DAY
    earliest, latest = sorted((noon, midnight))
    event = _crossing(site, rising, earliest, latest)
    if event is not None:
        return event
    if _elevation(site, noon) <= HORIZON_DEGREES:
        return Polar.NIGHT
    if _elevation(site, midnight) > HORIZON_DEGREES:
        return Polar.DAY
    return _bisect(site, above=noon, below=midnight)


@functools.lru_cache(maxsize=4096)
def sunset(site: Site, day: date) -> SunTime:
    """The sunset ending `day`'s daylight (see the module doc), in UTC."""
    return _event(site, day, rising=False)


@functools.lru_cache(maxsize=4096)
def sunrise(site: Site, day: date) -> SunTime:
    """The sunrise starting `day`'s daylight (see the module doc), in UTC."""
    return _event(site, day, rising=True)
