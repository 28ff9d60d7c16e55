"""The streetlight schedule: OS³P 0.4 §7.10 profiles, the astronomical clock, the engine.

Pure code (no I/O, no clock): the lights controller and the §7.4/§7.10 handlers
call it with the profiles, the site and the day or instant they care about.
"""

from rtu.schedule.engine import (
    active_profile,
    day_schedule_wire,
    desired_state,
    effective_periods,
    next_change,
    normalize,
    profile_applies,
    resolve,
    schedule_day,
    schedule_window,
)
from rtu.schedule.model import (
    MAX_PERIODS,
    InvalidProfile,
    OnPeriod,
    Period,
    Profile,
    Reason,
    Recurrency,
    Site,
    TimeKind,
    TimeSpec,
    parse_time_of_day,
    profile_from_wire,
    profile_to_wire,
    validate_profiles,
)
from rtu.schedule.sun import Polar, SunTime, solar_noon, sunrise, sunset

__all__ = [
    "MAX_PERIODS",
    "InvalidProfile",
    "OnPeriod",
    "Period",
    "Polar",
    "Profile",
    "Reason",
    "Recurrency",
    "Site",
    "SunTime",
    "TimeKind",
    "TimeSpec",
    "active_profile",
    "day_schedule_wire",
    "desired_state",
    "effective_periods",
    "next_change",
    "normalize",
    "parse_time_of_day",
    "profile_applies",
    "profile_from_wire",
    "profile_to_wire",
    "resolve",
    "schedule_day",
    "schedule_window",
    "solar_noon",
    "sunrise",
    "sunset",
    "validate_profiles",
]
