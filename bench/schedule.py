"""Schedule engine speed, and its sunrise/sunset against NOAA's own equations.

1. Speed: effective schedules (`rtu.schedule.effective_periods`) for 4 contactors
   × 366 days, each contactor with a different stack of profiles, once cold (sun
   caches cleared) and once warm, best of `--rounds`. Target: ≤ 100 ms cold. The
   figure is process CPU time, so other load on the machine does not inflate it.

2. Accuracy: `rtu.schedule.sunrise/sunset` (astral, plus our choice of which event
   belongs to a day) against an independent implementation of the NOAA Solar
   Calculator spreadsheet equations (NOAA ESRL Global Monitoring Division,
   "NOAA_Solar_Calculations_day.xls", after Meeus, *Astronomical Algorithms*),
   written out below column by column, for every day of 2026 at Arnhem, Madrid and
   Tromsø. The spreadsheet evaluates the sun's position at one time of day; we
   evaluate it at the event itself (two passes, starting from local noon), which is
   what the spreadsheet gives when its time column is set to the event.

   A day is skipped when either side has no event for the local date: the
   equations' hour angle is undefined (polar day or night), the NOAA event falls on
   another local date (Tromsø's sunsets just after midnight), or the engine reports
   `Polar.DAY`/`Polar.NIGHT`. The skips are counted and printed.

    python bench/schedule.py [--rounds 15]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day
from zoneinfo import ZoneInfo

from rtu.schedule import (
    Period,
    Profile,
    Recurrency,
    Site,
    TimeKind,
    TimeSpec,
    effective_periods,
    profile_from_wire,
    solar_noon,
    sunrise,
    sunset,
)

ARNHEM = Site(51.98, 5.91, ZoneInfo("Europe/Amsterdam"))
MADRID = Site(40.42, -3.70, ZoneInfo("Europe/Madrid"))
TROMSO = Site(69.65, 18.96, ZoneInfo("Europe/Oslo"))
YEAR = 2026


# --- NOAA Solar Calculator spreadsheet, one function per column ------------------------


def noaa_event(
    latitude: float, longitude: float, day: date, utc_offset_hours: float, rising: bool
) -> float | None:
    """Sunrise or sunset as a fraction of the local day (spreadsheet columns F..Z).

    None when the hour angle is undefined (columns W: ACOS out of range).
    """
    fraction = 0.5  # first pass at local noon, then at the event found
    for _ in range(2):
        # F: Julian Day. The spreadsheet adds 2415018.5 to the Excel day serial.
        julian_day = (
            day.toordinal() - date(1899, 12, 30).toordinal() + 2415018.5 + fraction
        ) - utc_offset_hours / 24
        g = (julian_day - 2451545) / 36525  # G: Julian Century
        i = (280.46646 + g * (36000.76983 + g * 0.0003032)) % 360  # I: Geom Mean Long Sun
        j = 357.52911 + g * (35999.05029 - 0.0001537 * g)  # J: Geom Mean Anom Sun
        k = 0.016708634 - g * (0.000042037 + 0.0000001267 * g)  # K: Eccent Earth Orbit
        l_ = (  # L: Sun Eq of Ctr
            math.sin(math.radians(j)) * (1.914602 - g * (0.004817 + 0.000014 * g))
            + math.sin(math.radians(2 * j)) * (0.019993 - 0.000101 * g)
            + math.sin(math.radians(3 * j)) * 0.000289
        )
        m = i + l_  # M: Sun True Long
        p = m - 0.00569 - 0.00478 * math.sin(math.radians(125.04 - 1934.136 * g))  # P: App Long
        q = 23 + (26 + (21.448 - g * (46.815 + g * (0.00059 - g * 0.001813))) / 60) / 60  # Q
        r = q + 0.00256 * math.cos(math.radians(125.04 - 1934.136 * g))  # R: Obliq Corr
        t = math.degrees(math.asin(math.sin(math.radians(r)) * math.sin(math.radians(p))))  # T
        u = math.tan(math.radians(r / 2)) ** 2  # U: var y
        v = 4 * math.degrees(  # V: Eq of Time (minutes)
            u * math.sin(2 * math.radians(i))
            - 2 * k * math.sin(math.radians(j))
            + 4 * k * u * math.sin(math.radians(j)) * math.cos(2 * math.radians(i))
            - 0.5 * u * u * math.sin(4 * math.radians(i))
            - 1.25 * k * k * math.sin(2 * math.radians(j))
        )
        cos_w = math.cos(math.radians(90.833)) / (
            math.cos(math.radians(latitude)) * math.cos(math.radians(t))
        ) - math.tan(math.radians(latitude)) * math.tan(math.radians(t))
        if not -1 <= cos_w <= 1:
            return None
        w = math.degrees(math.acos(cos_w))  # W: HA Sunrise (deg)
        x = (720 - 4 * longitude - v + utc_offset_hours * 60) / 1440  # X: Solar Noon (LST)
        fraction = x - w * 4 / 1440 if rising else x + w * 4 / 1440  # Y: Sunrise / Z: Sunset
    return fraction


def _noaa_local(site: Site, day: date, rising: bool) -> datetime | None:
    local_noon = datetime.combine(day, time_of_day(12), site.timezone)
    offset = local_noon.utcoffset()
    assert offset is not None
    fraction = noaa_event(site.latitude, site.longitude, day, offset / timedelta(hours=1), rising)
    if fraction is None or not 0 <= fraction < 1:
        return None
    wall = datetime.combine(day, time_of_day(), site.timezone) + timedelta(days=fraction)
    return wall.astimezone(UTC)


EDGE_DAYS = 14  # "near a polar edge": this close to a day either side cannot compute


def compare(site: Site) -> tuple[tuple[float, date | None], tuple[float, date | None], int, int]:
    """|engine - NOAA| in seconds over the year: (largest, its day) overall and away
    from polar edges, events compared, events skipped."""
    differences: list[tuple[float, date]] = []
    skipped_days: set[date] = set()
    skipped = 0
    day = date(YEAR, 1, 1)
    while day.year == YEAR:
        for rising, engine in ((True, sunrise), (False, sunset)):
            ours = engine(site, day)
            theirs = _noaa_local(site, day, rising)
            # The engine's event for this day's daylight may lie on another local date.
            if (
                not isinstance(ours, datetime)
                or theirs is None
                or ours.astimezone(site.timezone).date() != day
            ):
                skipped += 1
                skipped_days.add(day)
                continue
            differences.append((abs((ours - theirs).total_seconds()), day))
        day += timedelta(days=1)
    away = [
        (seconds, when)
        for seconds, when in differences
        if all(abs((when - edge).days) > EDGE_DAYS for edge in skipped_days)
    ]
    overall = max(differences, default=(0.0, None))
    return overall, max(away, default=(0.0, None)), len(differences), skipped


# --- speed -----------------------------------------------------------------------------


def _contactor_stacks() -> list[list[Profile]]:
    spec_example = profile_from_wire(
        {
            "profileId": 1,
            "stackLevel": 2,
            "recurrencyKind": "Daily",
            "validFrom": f"{YEAR - 1}-06-06T00:00:00",
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

    def absolute(text: str) -> TimeSpec:
        return TimeSpec(TimeKind.ABSOLUTE, time=time_of_day.fromisoformat(text))

    def sun_spec(kind: TimeKind, minutes: int) -> TimeSpec:
        return TimeSpec(kind, offset=timedelta(minutes=minutes))

    weekend = Profile(
        2,
        5,
        Recurrency.WEEKLY,
        date(YEAR, 1, 3),
        None,
        (Period(sun_spec(TimeKind.SUNSET, 0), sun_spec(TimeKind.SUNRISE, 0)),),
    )
    four = Profile(
        3,
        1,
        Recurrency.DAILY,
        None,
        None,
        (
            Period(absolute("16:00:00"), absolute("18:00:00")),
            Period(absolute("19:00:00"), absolute("23:30:00")),
            Period(absolute("04:30:00"), absolute("06:00:00")),
            Period(absolute("07:00:00"), absolute("08:30:00")),
        ),
    )
    holiday = Profile(4, 9, Recurrency.NONE, date(YEAR, 12, 24), None, four.periods[:1])
    dusk_to_dawn = Profile(
        5,
        0,
        Recurrency.DAILY,
        None,
        None,
        (Period(sun_spec(TimeKind.SUNSET, -15), sun_spec(TimeKind.SUNRISE, 15)),),
    )
    return [[spec_example], [spec_example, weekend], [four, holiday], [dusk_to_dawn, four]]


def _clear_caches() -> None:
    for cached in (solar_noon, sunrise, sunset):
        cached.cache_clear()


def time_schedules(site: Site, rounds: int) -> tuple[float, float, int]:
    """Best-of-`rounds` milliseconds for 4 contactors x 366 days, cold and warm."""
    stacks = _contactor_stacks()
    days = [date(YEAR, 1, 1) + timedelta(days=n) for n in range(366)]

    def run() -> int:
        return sum(len(effective_periods(s, d, site)) for d in days for s in stacks)

    def best(prepare: Callable[[], None]) -> float:
        figures = []
        for _ in range(rounds):
            prepare()
            started = time.process_time()
            run()
            figures.append((time.process_time() - started) * 1000)
        return min(figures)

    cold = best(_clear_caches)
    warm = best(lambda: None)
    return cold, warm, run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    print("effective schedules, 4 contactors x 366 days (target <= 100 ms cold):")
    for name, site in (("Arnhem", ARNHEM), ("Tromso", TROMSO)):
        cold, warm, periods = time_schedules(site, args.rounds)
        print(f"  {name:7} cold {cold:6.1f} ms   warm {warm:6.1f} ms   ({periods} on-periods)")

    print(f"\nsunrise/sunset vs NOAA spreadsheet equations, every day of {YEAR}:")
    for name, site in (("Arnhem", ARNHEM), ("Madrid", MADRID), ("Tromso", TROMSO)):
        (worst, worst_day), (far, far_day), compared, skipped = compare(site)
        print(
            f"  {name:7} largest {worst:6.1f} s (on {worst_day});"
            f" > {EDGE_DAYS} days from a polar edge {far:5.1f} s (on {far_day});"
            f" {compared} events compared, {skipped} skipped"
        )


if __name__ == "__main__":
    main()
