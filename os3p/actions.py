"""The 21 OS³P 0.4 actions and which side initiates each.

OS³P 0.4 §6 lists the eight station-initiated (client) messages, §7 the thirteen
central-initiated (server) ones. The wire name of an action is the enum value.
"""

from __future__ import annotations

import enum

__all__ = ["CENTRAL_INITIATED", "STATION_INITIATED", "Action"]


class Action(enum.StrEnum):
    # §6: initiated by the substation
    BOOT_NOTIFICATION = "BootNotification"
    GET_FILE_STATUS_NOTIFICATION = "GetFileStatusNotification"
    FIRMWARE_STATUS_NOTIFICATION = "FirmwareStatusNotification"
    HEARTBEAT = "Heartbeat"
    METER_VALUES = "MeterValues"
    STATUS_NOTIFICATION = "StatusNotification"
    STREETLIGHT_MODE_STATUS_NOTIFICATION = "StreetlightModeStatusNotification"
    STREETLIGHT_STATUS_NOTIFICATION = "StreetlightStatusNotification"
    # §7: initiated by the central system
    CHANGE_CONFIGURATION = "ChangeConfiguration"
    CLEAR_SINGLE_STREETLIGHT_PROFILE = "ClearSingleStreetlightProfile"
    GET_CONFIGURATION = "GetConfiguration"
    GET_EFFECTIVE_STREETLIGHT_DAY_SCHEDULE = "GetEffectiveStreetlightDaySchedule"
    GET_FILE = "GetFile"
    OVERRIDE_STREETLIGHT = "OverrideStreetlight"
    RESUME_STREETLIGHT = "ResumeStreetlight"
    RESET = "Reset"
    RESET_MV_FAULT_INDICATOR = "ResetMVFaultIndicator"
    SET_STREETLIGHT_PROFILE = "SetStreetlightProfile"
    TEST_MV_FAULT_INDICATOR = "TestMVFaultIndicator"
    TRIGGER_MESSAGE = "TriggerMessage"
    UPDATE_FIRMWARE = "UpdateFirmware"


STATION_INITIATED: frozenset[Action] = frozenset(list(Action)[:8])
CENTRAL_INITIATED: frozenset[Action] = frozenset(list(Action)[8:])
