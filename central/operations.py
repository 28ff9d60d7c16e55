"""What a queued command may run, and the right each one needs.

An *operation* is either one of the 13 central-initiated OS³P actions (§7), sent
through `central.commands.Commander`, or a named *service*: an
`async (central, station_id, params) -> dict` registered in a
`ServiceRegistry` (e.g. the meter-read services). Both are named in requests
the same way (`{"action": name, "payload": {...}}`), so a bundle may mix them.

Rights (functions an organisation is granted on a station; the owner holds all):

- `read`: GetConfiguration, GetEffectiveStreetlightDaySchedule, GetFile,
  TriggerMessage — they change nothing on the station (TriggerMessage only makes
  it report again).
- `configure`: ChangeConfiguration, Reset, ResetMVFaultIndicator,
  TestMVFaultIndicator — they change settings or actuate station hardware other
  than the lights (a test trips the indicator and raises a test fault).
- `lights`: SetStreetlightProfile, ClearSingleStreetlightProfile,
  OverrideStreetlight, ResumeStreetlight — they decide when the lights burn.
- `firmware`: UpdateFirmware — it replaces the station's software.

`tests/central/test_operations.py` checks that every central-initiated action has
exactly one right, so a new action cannot slip through unguarded.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from os3p.actions import Action

if TYPE_CHECKING:
    from central.server import CentralServer

__all__ = [
    "ACTION_RIGHTS",
    "Right",
    "ServiceOperation",
    "ServiceRegistry",
    "UnknownOperation",
    "right_of",
]


class Right(enum.StrEnum):
    READ = "read"
    CONFIGURE = "configure"
    LIGHTS = "lights"
    FIRMWARE = "firmware"


ACTION_RIGHTS: Mapping[Action, Right] = {
    Action.GET_CONFIGURATION: Right.READ,
    Action.GET_EFFECTIVE_STREETLIGHT_DAY_SCHEDULE: Right.READ,
    Action.GET_FILE: Right.READ,
    Action.TRIGGER_MESSAGE: Right.READ,
    Action.CHANGE_CONFIGURATION: Right.CONFIGURE,
    Action.RESET: Right.CONFIGURE,
    Action.RESET_MV_FAULT_INDICATOR: Right.CONFIGURE,
    Action.TEST_MV_FAULT_INDICATOR: Right.CONFIGURE,
    Action.SET_STREETLIGHT_PROFILE: Right.LIGHTS,
    Action.CLEAR_SINGLE_STREETLIGHT_PROFILE: Right.LIGHTS,
    Action.OVERRIDE_STREETLIGHT: Right.LIGHTS,
    Action.RESUME_STREETLIGHT: Right.LIGHTS,
    Action.UPDATE_FIRMWARE: Right.FIRMWARE,
}

ServiceRun = Callable[["CentralServer", str, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class ServiceOperation:
    """A named central-side operation on one station.

    `run` returns the JSON-able result stored for the request; it raises a
    `central.errors.CommandError` when the station did not give what was needed
    (`StationNotConnected` and `CommandTimeout` are retried like an action's).
    `check`, when given, rejects bad `params` at submission (raise ValueError with
    the reason): the client hears about its mistake at once, not at run time.
    """

    right: Right
    run: ServiceRun
    check: Callable[[dict[str, Any]], None] | None = None


ServiceRegistry = Mapping[str, ServiceOperation]


class UnknownOperation(Exception):
    """Neither a central-initiated OS³P action nor a registered service."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name!r} is neither a central-initiated OS³P action nor a service")
        self.name = name


def right_of(name: str, services: ServiceRegistry) -> Right:
    """The right needed to run operation `name`, or UnknownOperation."""
    try:
        action = Action(name)
    except ValueError:
        action = None
    if action is not None and action in ACTION_RIGHTS:
        return ACTION_RIGHTS[action]
    service = services.get(name)
    if service is None:
        raise UnknownOperation(name)
    return service.right
