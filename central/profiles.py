"""SetStreetlightProfile payloads from a readable schedule (OS³P 0.4 §7.10).

    on at sunset+10min, off at 23:00, on at 05:30, off at sunrise

Each `on at` starts a period and the next `off at` ends it; one to four periods
(§7.10.1 Table 17: at most four per day). A time is

- `HH:MM` or `HH:MM:SS`: an `Absolute` local time of the station (Table 18);
- `sunset` / `sunrise`, optionally with offsets `+10min`, `-1h`, `+1h30min`, `+45s`
  (each sign applies to the amounts after it):
  a `Sunset` / `Sunrise` time with `offset` in seconds.

The day runs from 12:00 to 11:59:59 (§7.10), so "on at 05:30" after "off at 23:00"
is the same night. Whether a period makes sense at the station's latitude is the
station's call (it answers Rejected, errata S19); what this module guarantees is a
payload that passes the request schema, checked before anything is sent.
"""

from __future__ import annotations

import re
from datetime import datetime

from os3p.actions import Action
from os3p.errors import PayloadInvalid
from os3p.messages import (
    DayPeriod,
    RecurrencyKind,
    SetStreetlightProfileRequest,
    StreetlightProfile,
    TimeKind,
    TimeSpec,
    to_payload,
)
from os3p.validation import Validator

__all__ = ["ProfileError", "build_profile_request", "parse_schedule", "parse_time"]

_ITEM = re.compile(r"(?P<switch>on|off)\s+at\s+(?P<time>.+)", re.IGNORECASE)
_CLOCK = re.compile(r"(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)(?::(?P<s>[0-5]\d))?")
_AMOUNTS = r"(?:\s*\d+\s*(?:h|min|m|s))+"
_SUN = re.compile(rf"(?P<kind>sunset|sunrise)(?P<offsets>(?:\s*[+-]{_AMOUNTS})*)", re.IGNORECASE)
_SIGNED = re.compile(rf"([+-])({_AMOUNTS})", re.IGNORECASE)
_AMOUNT = re.compile(r"(\d+)\s*(h|min|m|s)", re.IGNORECASE)
_UNIT_SECONDS = {"h": 3600, "min": 60, "m": 60, "s": 1}
MAX_PERIODS = 4


class ProfileError(ValueError):
    """The schedule text or the resulting profile is not acceptable."""


def parse_time(text: str) -> TimeSpec:
    text = text.strip()
    if clock := _CLOCK.fullmatch(text):
        h, m, s = int(clock["h"]), int(clock["m"]), int(clock["s"] or 0)
        return TimeSpec(kind=TimeKind.ABSOLUTE, time=f"{h:02d}:{m:02d}:{s:02d}")
    if sun := _SUN.fullmatch(text):
        offset = 0
        for sign, amounts in _SIGNED.findall(sun["offsets"]):
            value = sum(int(n) * _UNIT_SECONDS[u.lower()] for n, u in _AMOUNT.findall(amounts))
            offset += value if sign == "+" else -value
        if abs(offset) > 86400:
            raise ProfileError(f"{text!r}: an offset is at most one day")
        kind = TimeKind.SUNSET if sun["kind"].lower() == "sunset" else TimeKind.SUNRISE
        return TimeSpec(kind=kind, offset=offset)
    raise ProfileError(f"{text!r}: expected HH:MM[:SS], sunset or sunrise with +/- offsets")


def parse_schedule(text: str) -> tuple[DayPeriod, ...]:
    """`on at X, off at Y, ...` → the day's periods."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise ProfileError("empty schedule")
    periods: list[DayPeriod] = []
    start: TimeSpec | None = None
    for item in items:
        match = _ITEM.fullmatch(item)
        if match is None:
            raise ProfileError(f"{item!r}: expected 'on at <time>' or 'off at <time>'")
        spec = parse_time(match["time"])
        if match["switch"].lower() == "on":
            if start is not None:
                raise ProfileError(f"{item!r}: two 'on' in a row")
            start = spec
        else:
            if start is None:
                raise ProfileError(f"{item!r}: 'off' without an 'on' before it")
            periods.append(DayPeriod(start=start, end=spec))
            start = None
    if start is not None:
        raise ProfileError("the last 'on' has no 'off'")
    if len(periods) > MAX_PERIODS:
        raise ProfileError(f"at most {MAX_PERIODS} periods a day (§7.10.1)")
    return tuple(periods)


def build_profile_request(
    contactor_id: int,
    schedule: str,
    *,
    profile_id: int = 1,
    stack_level: int = 0,
    recurrency: RecurrencyKind = RecurrencyKind.DAILY,
    valid_from: datetime | None = None,
    valid_to: datetime | None = None,
    clear_all_schedules: bool = False,
    validator: Validator | None = None,
) -> SetStreetlightProfileRequest:
    """A schema-valid SetStreetlightProfileRequest; ProfileError says what is wrong."""
    if valid_from and valid_to and valid_to < valid_from:
        raise ProfileError("validTo is before validFrom")
    try:
        request = SetStreetlightProfileRequest(
            contactor_id=contactor_id,
            clear_all_schedules=clear_all_schedules or None,
            streetlight_profiles=(
                StreetlightProfile(
                    profile_id=profile_id,
                    stack_level=stack_level,
                    recurrency_kind=recurrency,
                    valid_from=valid_from,
                    valid_to=valid_to,
                    day_schedule=parse_schedule(schedule),
                ),
            ),
        )
        (validator or Validator()).check(
            Action.SET_STREETLIGHT_PROFILE, "Request", to_payload(request)
        )
    except PayloadInvalid as exc:
        raise ProfileError(str(exc)) from None
    return request
