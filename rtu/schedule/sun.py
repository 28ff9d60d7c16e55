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
Tromsø in mid-May, where the sunset creeps past local midnight: asking astral for
the sunset on the local date 17 May fails ("Unable to find a sunset time on the
date specified") and for 18 May it would return the one belonging to the evening
of 17 May. We therefore ask astral in a fixed-offset zone in which the solar noon
falls just after midnight (for sunset) or just before the next midnight (for
sunrise): the wanted event then lies well inside that zone's date, away from the
edges where astral's date matching goes wrong.

When astral cannot compute the event (it raises `ValueError`: the sun does not
cross the horizon on that solar day), we classify the day by the sun's elevation
at solar noon and at the solar midnight on the event's side:

* noon below the horizon → `Polar.NIGHT` (the sun never rises: no sunrise, no sunset);
* midnight above the horizon → `Polar.DAY` (the sun never sets);
* otherwise the sun does cross and astral's date matching gave up at an edge case;
  we find the crossing by bisection on the elevation, so the functions are total.

The horizon is the usual -0.833° for the geometric centre of the sun (0.567°
refraction plus 0.267° semi-diameter), without refraction applied to the elevation.

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
from datetime import UTC, date, datetime, time, timedelta, timezone

import astral
import astral.sun

from rtu.schedule.model import Site

__all__ = ["HORIZON_DEGREES", "Polar", "SunTime", "solar_noon", "sunrise", "sunset"]

HORIZON_DEGREES = -0.833
_HALF_DAY = timedelta(hours=12)
_EDGE_MARGIN = timedelta(minutes=30)
_BISECTION_STEPS = 20  # 12 h / 2**20 < 0.05 s


class Polar(enum.Enum):
    """A solar day without the asked-for horizon crossing."""

    DAY = "PolarDay"  # the sun stays above the horizon: it never sets
    NIGHT = "PolarNight"  # the sun stays below the horizon: it never rises


SunTime = datetime | Polar
"""An aware UTC instant of the event, or why there is none."""


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


def _zone_with_noon_at(noon: datetime, wall: timedelta) -> tuple[timezone, date]:
    """A fixed-offset zone in which `noon` shows as `wall` past midnight, and that date."""
    utc_midnight = datetime.combine(noon.date(), time(), UTC)
    return timezone(wall - (noon - utc_midnight)), noon.date()


@functools.lru_cache(maxsize=4096)
def sunset(site: Site, day: date) -> SunTime:
    """The sunset ending `day`'s daylight (see the module doc), in UTC."""
    noon = solar_noon(site, day)
    zone, zone_day = _zone_with_noon_at(noon, _EDGE_MARGIN)
    try:
        event: datetime = astral.sun.sunset(_observer(site), zone_day, zone)
    except ValueError:
        pass
    else:
        if noon - _EDGE_MARGIN < event < noon + _HALF_DAY + _EDGE_MARGIN:
            return event.astimezone(UTC)
    midnight = noon + _HALF_DAY
    if _elevation(site, noon) <= HORIZON_DEGREES:
        return Polar.NIGHT
    if _elevation(site, midnight) > HORIZON_DEGREES:
        return Polar.DAY
    return _bisect(site, above=noon, below=midnight)


@functools.lru_cache(maxsize=4096)
def sunrise(site: Site, day: date) -> SunTime:
    """The sunrise starting `day`'s daylight (see the module doc), in UTC."""
    noon = solar_noon(site, day)
    zone, zone_day = _zone_with_noon_at(noon, timedelta(days=1) - _EDGE_MARGIN)
    try:
        event: datetime = astral.sun.sunrise(_observer(site), zone_day, zone)
    except ValueError:
        pass
    else:
        if noon - _HALF_DAY - _EDGE_MARGIN < event < noon + _EDGE_MARGIN:
            return event.astimezone(UTC)
    midnight = noon - _HALF_DAY
    if _elevation(site, noon) <= HORIZON_DEGREES:
        return Polar.NIGHT
    if _elevation(site, midnight) > HORIZON_DEGREES:
        return Polar.DAY
    return _bisect(site, above=noon, below=midnight)
