"""Streetlight profiles as OS³P 0.4 §7.10 defines them, and the rules they must obey.

A SetStreetlightProfile request (§7.10) carries, per contactor, a stack of profiles.
This module turns one `streetlightProfiles` item into a `Profile` and back, and holds
the checks that decide Accepted vs Rejected. The engine (`engine.py`) trusts a
`Profile` only after `validate_profiles` passed it; the types themselves are plain
frozen records so that an invalid request can still be represented, inspected and
rejected with a precise reason instead of failing somewhere in a constructor.

Two layers reject input, both with `InvalidProfile`:

* `profile_from_wire` rejects what cannot even be represented: a malformed
  `HH:mm:ss[.fff]` time, an unparsable validFrom/validTo, an unknown `kind` or
  `recurrencyKind`, a wrong JSON shape. The os3p schemas normally catch the shape
  first; the builder still never lets a `KeyError` or `TypeError` escape, because
  peer input must become an answer, never a crash.
* `validate_profiles` rejects representable but forbidden profiles: the rules of
  §7.10.1 Tables 16 and 18 and of the `StreetlightProfileMaxStackLevel` key (§7.1).

Decisions where §7.10 is silent:

* `recurrencyKind: "None"` means the day schedule is used once, on the schedule day
  of validFrom (see `engine.py` for the reasoning), so it needs a validFrom; a
  Weekly profile needs one too, because validFrom names its weekday (Table 16).
  A Daily profile without validFrom is valid from the beginning of time.
* validFrom/validTo are date-times on the wire, but "we only take into account the
  date part" (Table 16): the date is taken as written, any offset is not applied.
* A period's `time` on a Sunset/Sunrise spec, or `offset` on an Absolute spec, is
  ignored rather than rejected: the schema allows both properties on every spec.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

__all__ = [
    "MAX_PERIODS",
    "InvalidProfile",
    "OnPeriod",
    "Period",
    "Profile",
    "Reason",
    "Recurrency",
    "Site",
    "TimeKind",
    "TimeSpec",
    "parse_time_of_day",
    "profile_from_wire",
    "profile_to_wire",
    "validate_profiles",
]

_T = TypeVar("_T")

MAX_PERIODS = 4  # §7.10.2 schema: daySchedule maxItems 4
MAX_OFFSET = timedelta(seconds=86400)  # §7.10.2 schema: offset within ±86400 s


class Reason(enum.StrEnum):
    """Why a profile was rejected; logged and shown to the technician."""

    MALFORMED = "malformed"  # wrong JSON shape or type for a field
    MALFORMED_TIME = "malformed-time"
    MALFORMED_DATE = "malformed-date"
    STACK_LEVEL_TOO_HIGH = "stack-level-too-high"
    DUPLICATE_PROFILE_ID = "duplicate-profile-id"
    DUPLICATE_STACK_LEVEL = "duplicate-stack-level"
    MISSING_TIME = "missing-time"
    MISSING_OFFSET = "missing-offset"
    OFFSET_OUT_OF_RANGE = "offset-out-of-range"
    MISSING_VALID_FROM = "missing-valid-from"
    VALID_TO_BEFORE_VALID_FROM = "valid-to-before-valid-from"
    NO_PERIODS = "no-periods"
    TOO_MANY_PERIODS = "too-many-periods"


class InvalidProfile(ValueError):
    """A SetStreetlightProfile request the station must answer with `Rejected` (§7.10).

    This is the *peer's* error: the handler answers, logs `reason` and carries on.
    """

    def __init__(self, reason: Reason, detail: str, profile_id: int | None = None) -> None:
        where = f"profile {profile_id}: " if profile_id is not None else ""
        super().__init__(f"{where}{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.profile_id = profile_id


class TimeKind(enum.StrEnum):
    """Table 18 `kind`; the values are the wire names."""

    ABSOLUTE = "Absolute"
    SUNSET = "Sunset"
    SUNRISE = "Sunrise"


class Recurrency(enum.StrEnum):
    """Table 16 `recurrencyKind`; the values are the wire names."""

    NONE = "None"
    DAILY = "Daily"
    WEEKLY = "Weekly"


@dataclasses.dataclass(frozen=True, slots=True)
class Site:
    """Where the astronomical clock stands (§5 `Geolocation`) and its legal time zone."""

    latitude: float
    longitude: float
    timezone: ZoneInfo

    def __post_init__(self) -> None:
        if not (-90.0 <= self.latitude <= 90.0 and -180.0 <= self.longitude <= 180.0):
            raise ValueError(f"no such place: {self.latitude}, {self.longitude}")


@dataclasses.dataclass(frozen=True, slots=True)
class TimeSpec:
    """One period boundary (Table 18).

    `time` is the local wall time of an Absolute spec, `offset` the signed distance
    from sunset or sunrise; the other field is carried but unused.
    """

    kind: TimeKind
    time: time | None = None
    offset: timedelta | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Period:
    """One `daySchedule` item (Table 17): lights on from `start` to `end`."""

    start: TimeSpec
    end: TimeSpec


@dataclasses.dataclass(frozen=True, slots=True)
class Profile:
    """One streetlight profile of a contactor (Table 16); dates only, see module doc."""

    profile_id: int
    stack_level: int
    recurrency: Recurrency
    valid_from: date | None
    valid_to: date | None
    periods: tuple[Period, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class OnPeriod:
    """An interval the lights are on: `start` inclusive, `end` exclusive.

    Both are aware and, as produced by the engine, in UTC: comparisons of two
    datetimes that share a `ZoneInfo` ignore `fold`, so local times would compare
    wrongly inside the autumn repeated hour.
    """

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("OnPeriod bounds must be timezone-aware")
        if not self.start < self.end:
            raise ValueError(f"empty OnPeriod {self.start} .. {self.end}")


# ASCII digits only: `\d` would accept other scripts' digits, which int() then parses.
_TIME_OF_DAY = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,3}))?")


def parse_time_of_day(text: str) -> time:
    """Parse Table 18's `HH:mm:ss` with optional milliseconds (`21:03:00.500`).

    24-hour clock, two digits each, 00:00:00 to 23:59:59.999; 1 to 3 fraction digits
    are a decimal fraction of a second ("21:03:00.5" is half a second past).
    """
    match = _TIME_OF_DAY.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidProfile(Reason.MALFORMED_TIME, f"not HH:mm:ss[.fff]: {text!r}")
    hours, minutes, seconds, fraction = match.groups()
    if int(hours) > 23 or int(minutes) > 59 or int(seconds) > 59:
        raise InvalidProfile(Reason.MALFORMED_TIME, f"no such time of day: {text!r}")
    millis = int((fraction or "0").ljust(3, "0"))
    return time(int(hours), int(minutes), int(seconds), millis * 1000)


def format_time_of_day(value: time) -> str:
    """The inverse of `parse_time_of_day`: milliseconds only when there are any."""
    text = f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    if value.microsecond:
        text += f".{value.microsecond // 1000:03d}"
    return text


def _field(item: Mapping[str, object], key: str, kind: type[_T], profile_id: int | None) -> _T:
    value = item.get(key)
    # bool is an int in Python but not in JSON.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidProfile(Reason.MALFORMED, f"{key} must be {kind.__name__}", profile_id)
    return value


def _parse_date(item: Mapping[str, object], key: str, profile_id: int) -> date | None:
    if key not in item:
        return None
    text = _field(item, key, str, profile_id)
    try:
        return datetime.fromisoformat(text).date()
    except ValueError:
        raise InvalidProfile(Reason.MALFORMED_DATE, f"{key}: {text!r}", profile_id) from None


def _time_spec_from_wire(raw: object, profile_id: int) -> TimeSpec:
    if not isinstance(raw, Mapping):
        raise InvalidProfile(Reason.MALFORMED, "start/end must be an object", profile_id)
    try:
        kind = TimeKind(_field(raw, "kind", str, profile_id))
    except ValueError:
        raise InvalidProfile(Reason.MALFORMED, f"kind {raw.get('kind')!r}", profile_id) from None
    at = None
    if "time" in raw:
        try:
            at = parse_time_of_day(_field(raw, "time", str, profile_id))
        except InvalidProfile as exc:
            raise InvalidProfile(exc.reason, exc.detail, profile_id) from None
    offset = None
    if "offset" in raw:
        offset = timedelta(seconds=_field(raw, "offset", int, profile_id))
    return TimeSpec(kind, at, offset)


def profile_from_wire(item: Mapping[str, object]) -> Profile:
    """Build a `Profile` from one `streetlightProfiles` item of §7.10.2.

    Raises `InvalidProfile` for what cannot be represented; run `validate_profiles`
    on the result before storing or scheduling it.
    """
    if not isinstance(item, Mapping):
        raise InvalidProfile(Reason.MALFORMED, "a streetlight profile must be an object")
    profile_id = _field(item, "profileId", int, None)
    stack_level = _field(item, "stackLevel", int, profile_id)
    try:
        recurrency = Recurrency(_field(item, "recurrencyKind", str, profile_id))
    except ValueError:
        raise InvalidProfile(
            Reason.MALFORMED, f"recurrencyKind {item.get('recurrencyKind')!r}", profile_id
        ) from None
    periods = []
    for raw in _field(item, "daySchedule", list, profile_id):
        if not isinstance(raw, Mapping) or not {"start", "end"} <= raw.keys():
            raise InvalidProfile(Reason.MALFORMED, "a period needs start and end", profile_id)
        periods.append(
            Period(
                _time_spec_from_wire(raw["start"], profile_id),
                _time_spec_from_wire(raw["end"], profile_id),
            )
        )
    return Profile(
        profile_id=profile_id,
        stack_level=stack_level,
        recurrency=recurrency,
        valid_from=_parse_date(item, "validFrom", profile_id),
        valid_to=_parse_date(item, "validTo", profile_id),
        periods=tuple(periods),
    )


def _time_spec_to_wire(spec: TimeSpec) -> dict[str, object]:
    wire: dict[str, object] = {"kind": str(spec.kind)}
    if spec.time is not None:
        wire["time"] = format_time_of_day(spec.time)
    if spec.offset is not None:
        wire["offset"] = int(spec.offset.total_seconds())
    return wire


def profile_to_wire(profile: Profile) -> dict[str, object]:
    """The `streetlightProfiles` item for `profile`; dates as midnight like §7.10.3."""
    wire: dict[str, object] = {
        "profileId": profile.profile_id,
        "stackLevel": profile.stack_level,
        "recurrencyKind": str(profile.recurrency),
    }
    if profile.valid_from is not None:
        wire["validFrom"] = f"{profile.valid_from.isoformat()}T00:00:00"
    if profile.valid_to is not None:
        wire["validTo"] = f"{profile.valid_to.isoformat()}T00:00:00"
    wire["daySchedule"] = [
        {"start": _time_spec_to_wire(p.start), "end": _time_spec_to_wire(p.end)}
        for p in profile.periods
    ]
    return wire


def _check_spec(spec: TimeSpec, profile_id: int) -> None:
    # Table 18: `time` mandatory for Absolute, `offset` for Sunset/Sunrise.
    if spec.kind is TimeKind.ABSOLUTE:
        if spec.time is None:
            raise InvalidProfile(Reason.MISSING_TIME, "Absolute needs a time", profile_id)
        return
    if spec.offset is None:
        raise InvalidProfile(Reason.MISSING_OFFSET, f"{spec.kind} needs an offset", profile_id)
    if abs(spec.offset) > MAX_OFFSET or spec.offset % timedelta(seconds=1):
        raise InvalidProfile(
            Reason.OFFSET_OUT_OF_RANGE, f"offset {spec.offset} not whole s in ±1 day", profile_id
        )


def _check_profile(profile: Profile, max_stack_level: int) -> None:
    pid = profile.profile_id
    # §7.1 / Table 16: "must be lower or equal than StreetlightProfileMaxStackLevel".
    if profile.stack_level > max_stack_level:
        raise InvalidProfile(
            Reason.STACK_LEVEL_TOO_HIGH,
            f"stackLevel {profile.stack_level} > StreetlightProfileMaxStackLevel {max_stack_level}",
            pid,
        )
    if profile.stack_level < 0 or pid < 0:
        raise InvalidProfile(Reason.MALFORMED, "profileId and stackLevel are >= 0", pid)
    if profile.valid_from is None and profile.recurrency is not Recurrency.DAILY:
        raise InvalidProfile(
            Reason.MISSING_VALID_FROM, f"{profile.recurrency} needs validFrom", pid
        )
    if (
        profile.valid_from is not None
        and profile.valid_to is not None
        and profile.valid_to < profile.valid_from
    ):
        raise InvalidProfile(
            Reason.VALID_TO_BEFORE_VALID_FROM,
            f"validTo {profile.valid_to} < validFrom {profile.valid_from}",
            pid,
        )
    if not profile.periods:
        raise InvalidProfile(Reason.NO_PERIODS, "daySchedule is empty", pid)
    if len(profile.periods) > MAX_PERIODS:
        raise InvalidProfile(
            Reason.TOO_MANY_PERIODS, f"{len(profile.periods)} periods > {MAX_PERIODS}", pid
        )
    for period in profile.periods:
        _check_spec(period.start, pid)
        _check_spec(period.end, pid)


def _check_unique(profiles: Iterable[Profile]) -> None:
    # Table 16 and §7.10.1: profileId and stackLevel are each unique per contactor.
    ids: set[int] = set()
    levels: set[int] = set()
    for profile in profiles:
        if profile.profile_id in ids:
            raise InvalidProfile(
                Reason.DUPLICATE_PROFILE_ID, "profileId already used", profile.profile_id
            )
        if profile.stack_level in levels:
            raise InvalidProfile(
                Reason.DUPLICATE_STACK_LEVEL,
                f"stackLevel {profile.stack_level} already used",
                profile.profile_id,
            )
        ids.add(profile.profile_id)
        levels.add(profile.stack_level)


def validate_profiles(
    new: Sequence[Profile],
    existing: Sequence[Profile],
    max_stack_level: int,
    clear_all: bool,
) -> None:
    """Raise `InvalidProfile` unless installing `new` on one contactor is allowed.

    `existing` are the contactor's stored profiles; with `clear_all`
    (`clearAllSchedules`, §7.10.1) they are erased in the same atomic step, so they
    cannot collide. One bad profile rejects the whole request: §7.10.1 makes the
    erase-and-install atomic, and half a stack could light a street at noon.
    A malformed time or date never gets this far: `profile_from_wire` rejects it
    (`Reason.MALFORMED_TIME`, `Reason.MALFORMED_DATE`), as it cannot be a `Profile`.
    """
    for profile in new:
        _check_profile(profile, max_stack_level)
    _check_unique([*new] if clear_all else [*existing, *new])
