"""The schedule engine: which stacked streetlight profile lights a contactor when.

Theory of operation
-------------------
Everything here is a pure function of the profiles, a schedule day (or an instant)
and the site. No clock is read: the lights controller passes `now` and sleeps until
`next_change`; GetEffectiveStreetlightDaySchedule (§7.4) passes the asked date.

**Schedule day** (§7.10): "a day, in SetStreetlightProfile context, starts at noon
12:00 and ends the next day at 11:59:59", so a night belongs to the day it begins
on. The window of schedule day D is the half-open interval [12:00 local on D,
12:00 local on D+1); "11:59:59" in the spec is that end seen with a one-second
clock, and no instant falls between the days. All instants are computed and
returned in UTC; local time appears only when wall times are interpreted.

**Which profile** (Table 16): a profile applies on day D when
validFrom <= D <= validTo (dates, both inclusive, either may be absent). Because
D's window starts at noon, a profile "valid from 6 June" starts at 12:00 on 6 June
and one "valid to 9 June" ends at 11:59:59 on 10 June, as Table 16 says. Then:

* Daily: every day of the validity.
* Weekly: the days whose weekday is validFrom's weekday (Table 16: validFrom "is
  also used to determine on which day-of-the-week a weekly recurring schedule
  should be active").
* None: once, on the schedule day of validFrom. Table 16 calls it "not
  recurring"; if it applied on every day of [validFrom, validTo] it would be Daily
  by another name and the spec would not need a third kind. This matches the
  OCPP heritage of these fields, where a non-recurring profile runs once from its
  start. validTo still applies (a validTo before validFrom is rejected anyway).

Of the profiles that apply, the one with the highest stackLevel wins the *whole*
day (Table 16: "a higher number has higher precedence"): its periods are the
day's periods even if they give no light, which is how an operator darkens a
holiday. Periods of lower profiles are not mixed in.

**Period bounds** (Table 18), each resolved to one instant:

* Absolute `HH:mm:ss[.fff]`: local wall time; 12:00:00 to 23:59:59.999 are on D,
  00:00:00 to 11:59:59.999 on D+1. Table 18 names the day's bounds: "start of
  day is 12:00:00, end of day is 11:59:59". So an *end* of exactly 11:59:59 is
  the end of the window (the lights stay on through 11:59:59.999...), not one
  second before it: otherwise "12:00:00 → 11:59:59" every day, the spec's own
  whole day, would switch the contactor off and on again at every noon.
* Sunset + offset: the sunset of D's evening (`sun.sunset(site, D)`) plus the
  signed offset.
* Sunrise + offset: the sunrise of D+1's morning (`sun.sunrise(site, D+1)`) plus the
  signed offset.

A period whose end is before or equal to its start gives no light (§7.10.1: "the
light will not be switched on", so crossing offsets are safe). The rest is
clipped to the window, overlapping or touching periods are merged, and the result
is sorted: a tuple of disjoint `OnPeriod`s inside the window.

DST policy
----------
* The window is wall-clock noon to wall-clock noon, so it is 23 h on the night
  clocks spring forward and 25 h on the night they fall back.
* An Absolute time in the spring-forward gap (02:30 on 29 March 2026 in
  Amsterdam) does not exist; it moves forward by the gap (03:30 CEST, i.e. 01:30 UTC).
  A period never silently vanishes, and "on at 02:30" still means "on after 02:00".
* An ambiguous Absolute time in the fall-back hour (02:30 on 25 October 2026)
  means its first occurrence (fold=0, 02:30 CEST = 00:30 UTC): the moment the
  wall clock first shows it, which is what a technician watching the clock that
  night expects, and the default of `zoneinfo` and dateutil. A period from 20:00
  to 06:00 simply lasts an hour longer that night.
* Both follow from PEP 495 with fold=0, which is what `zoneinfo` does when a wall
  time is converted to UTC; the tests pin the behaviour.
* Sunset/Sunrise are instants and need no DST handling; an offset is elapsed time.

Polar policy
------------
`sun.sunset`/`sun.sunrise` return `Polar.NIGHT` or `Polar.DAY` when the sun does
not cross the horizon. The anchor (the sunset or sunrise), not the offset, then
resolves to a window edge, and the offset is ignored, because "an hour after a
sunset that does not happen" has no time to be relative to:

* Polar night (the sun never rises): a Sunset anchor resolves to the window start
  and a Sunrise anchor to the window end: it has been dark since before the
  window began and stays dark past its end. The usual evening period
  (Sunset+x → 01:00) then starts at 12:00 and the morning period
  (06:00 → Sunrise+y) ends at 11:59:59: the lights are on the whole window except
  where an absolute bound (the 01:00–06:00 night-time saving) turns them off, and
  a Sunset → Sunrise period is on all window.
* Polar day (the sun never sets): a Sunset anchor resolves to the window end and a
  Sunrise anchor to the window start; evening periods start at the end and morning
  periods end at the start, so they give no light: no dark, no light.
* Only the side that lacks the event is affected; on the last evening before the
  polar night the real sunset starts the evening and the missing sunrise holds
  the lights on to the window end.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta

from rtu.schedule import sun
from rtu.schedule.model import OnPeriod, Profile, Recurrency, Site, TimeKind, TimeSpec

__all__ = [
    "NEXT_CHANGE_HORIZON_DAYS",
    "active_profile",
    "day_schedule_wire",
    "desired_state",
    "effective_periods",
    "next_change",
    "normalize",
    "profile_applies",
    "resolve",
    "schedule_day",
    "schedule_window",
]

NEXT_CHANGE_HORIZON_DAYS = 400  # schedule days `next_change` looks ahead; > a year of seasons

_NOON = time(12)
_END_OF_DAY = time(11, 59, 59)  # Table 18: "end of day is 11:59:59"
_ONE_DAY = timedelta(days=1)


def schedule_window(day: date, site: Site) -> tuple[datetime, datetime]:
    """[start, end) of schedule day `day` in UTC: local noon to the next local noon."""
    tz = site.timezone
    return (
        datetime.combine(day, _NOON, tz).astimezone(UTC),
        datetime.combine(day + _ONE_DAY, _NOON, tz).astimezone(UTC),
    )


def schedule_day(now: datetime, site: Site) -> date:
    """The schedule day whose window holds the aware instant `now`."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    local = now.astimezone(site.timezone)
    day = local.date() if local.time() >= _NOON else local.date() - _ONE_DAY
    start, end = schedule_window(day, site)
    # Only a zone that moves its clocks at noon could get here; trust the window.
    if now < start:
        return day - _ONE_DAY
    if now >= end:
        return day + _ONE_DAY
    return day


def profile_applies(profile: Profile, day: date) -> bool:
    """Whether `profile` is a candidate for schedule day `day` (Table 16)."""
    if profile.valid_from is not None and day < profile.valid_from:
        return False
    if profile.valid_to is not None and day > profile.valid_to:
        return False
    match profile.recurrency:
        case Recurrency.DAILY:
            return True
        case Recurrency.WEEKLY:
            return profile.valid_from is not None and day.weekday() == profile.valid_from.weekday()
        case Recurrency.NONE:
            return day == profile.valid_from


def active_profile(profiles: Iterable[Profile], day: date) -> Profile | None:
    """The applying profile with the highest stackLevel, which owns the whole day."""
    candidates = [p for p in profiles if profile_applies(p, day)]
    return max(candidates, key=lambda p: p.stack_level, default=None)


def _absolute(at: time, day: date, site: Site) -> datetime:
    # fold=0 (the default) gives the DST policy of the module doc.
    wall_day = day if at >= _NOON else day + _ONE_DAY
    return datetime.combine(wall_day, at, site.timezone).astimezone(UTC)


def resolve(spec: TimeSpec, day: date, site: Site, *, is_end: bool) -> datetime:
    """The UTC instant of a period's start or end on schedule day `day` (module doc)."""
    return _resolve(spec, day, site, schedule_window(day, site), is_end=is_end)


def _resolve(
    spec: TimeSpec, day: date, site: Site, window: tuple[datetime, datetime], *, is_end: bool
) -> datetime:
    if spec.kind is TimeKind.ABSOLUTE:
        if spec.time is None:
            raise ValueError("Absolute bound without a time; validate_profiles first")
        if is_end and spec.time == _END_OF_DAY:
            return window[1]
        return _absolute(spec.time, day, site)
    if spec.offset is None:
        raise ValueError(f"{spec.kind} bound without an offset; validate_profiles first")
    start, end = window
    if spec.kind is TimeKind.SUNSET:
        anchor, polar_night_edge, polar_day_edge = sun.sunset(site, day), start, end
    else:
        anchor, polar_night_edge, polar_day_edge = sun.sunrise(site, day + _ONE_DAY), end, start
    match anchor:
        case sun.Polar.NIGHT:
            return polar_night_edge
        case sun.Polar.DAY:
            return polar_day_edge
        case _:
            return anchor + spec.offset


def normalize(
    intervals: Iterable[tuple[datetime, datetime]], window: tuple[datetime, datetime]
) -> tuple[OnPeriod, ...]:
    """Drop empty intervals, clip to `window`, merge overlapping or touching, sort.

    Touching intervals merge because the lights do not change state between them.
    """
    low, high = window
    clipped = sorted(
        (max(start, low), min(end, high))
        for start, end in intervals
        if max(start, low) < min(end, high)
    )
    merged: list[tuple[datetime, datetime]] = []
    for start, end in clipped:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(OnPeriod(start.astimezone(UTC), end.astimezone(UTC)) for start, end in merged)


def effective_periods(profiles: Iterable[Profile], day: date, site: Site) -> tuple[OnPeriod, ...]:
    """The periods the lights are on during schedule day `day` (§7.10, module doc)."""
    winner = active_profile(profiles, day)
    if winner is None:
        return ()
    window = schedule_window(day, site)
    return normalize(
        (
            (
                _resolve(p.start, day, site, window, is_end=False),
                _resolve(p.end, day, site, window, is_end=True),
            )
            for p in winner.periods
        ),
        window,
    )


def _wall(at: datetime, site: Site) -> str:
    return at.astimezone(site.timezone).strftime("%H:%M:%S")


def day_schedule_wire(periods: Sequence[OnPeriod], site: Site) -> list[dict[str, str]]:
    """The `daySchedule` of a GetEffectiveStreetlightDayScheduleResponse (§7.4).

    Local wall times to the whole second (truncated), like the §7.4.2 example. A
    period that runs to the end of the window ends at "11:59:59", the spec's
    "end of day" (Table 18), not "12:00:00", which would read as its start; as
    an Absolute end, "11:59:59" means the same again (see `resolve`).
    """
    wire = []
    for period in periods:
        end = period.end.astimezone(site.timezone)
        end_text = "11:59:59" if end.time() == _NOON else _wall(period.end, site)
        wire.append({"start": _wall(period.start, site), "end": end_text})
    return wire


def desired_state(profiles: Iterable[Profile], now: datetime, site: Site) -> bool:
    """Whether the schedule wants this contactor's lights on at the aware instant `now`."""
    day = schedule_day(now, site)
    return any(p.start <= now < p.end for p in effective_periods(profiles, day, site))


def _merged_periods_from(
    profiles: Sequence[Profile], day: date, site: Site, days: int
) -> Iterator[tuple[OnPeriod, bool]]:
    """On periods of `days` schedule days from `day`, merged across day boundaries.

    Each comes with whether its end is known: the last one may run on past the
    scanned range, so its end must not be mistaken for a switch-off.
    """
    pending: OnPeriod | None = None
    for offset in range(days):
        for period in effective_periods(profiles, day + offset * _ONE_DAY, site):
            if pending is not None and period.start <= pending.end:
                pending = OnPeriod(pending.start, max(pending.end, period.end))
                continue
            if pending is not None:
                yield pending, True
            pending = period
    if pending is not None:
        _, range_end = schedule_window(day + (days - 1) * _ONE_DAY, site)
        yield pending, pending.end < range_end


def next_change(
    profiles: Iterable[Profile],
    now: datetime,
    site: Site,
    horizon_days: int = NEXT_CHANGE_HORIZON_DAYS,
) -> datetime | None:
    """The first instant after `now` at which `desired_state` differs from its value at `now`.

    Looks across schedule-day boundaries (an evening period running into the
    next day's period is one switch-on, not two). None means no change within
    `horizon_days` schedule days, e.g. no profile applies any more; the lights
    controller then sleeps until the profiles, the clock or the site change.
    """
    stack = tuple(profiles)
    day = schedule_day(now, site)
    for period, end_known in _merged_periods_from(stack, day, site, horizon_days):
        if now < period.start:
            return period.start
        if now < period.end:
            return period.end if end_known else None
    return None
