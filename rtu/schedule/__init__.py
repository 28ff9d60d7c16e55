"""The streetlight schedule: OS³P 0.4 §7.10 profiles, the astronomical clock, the engine.

Pure code (no I/O, no clock): the lights controller and the §7.4/§7.10 handlers
call it with the profiles, the site and the day or instant they care about.
"""

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
    "parse_time_of_day",
    "profile_from_wire",
    "profile_to_wire",
    "solar_noon",
    "sunrise",
    "sunset",
    "validate_profiles",
]
