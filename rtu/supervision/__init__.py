"""Station supervision: MV fault indicators, station alarms, and the station status."""

from rtu.supervision.alarms import AlarmSettings, StationAlarms
from rtu.supervision.board import Emitter, FaultBoard
from rtu.supervision.config import (
    SupervisionConfig,
    load_supervision_config,
    read_supervision_config,
)
from rtu.supervision.ledger import Change, FaultKey, FaultLedger, OpenFault
from rtu.supervision.mv import MVMachine, MVSettings
from rtu.supervision.mvmonitor import MVMonitor
from rtu.supervision.sensors import AlarmMonitor, file_signal_reader, thermal_zone_reader
from rtu.supervision.subsystem import SupervisionSubsystem

__all__ = [
    "AlarmMonitor",
    "AlarmSettings",
    "Change",
    "Emitter",
    "FaultBoard",
    "FaultKey",
    "FaultLedger",
    "MVMachine",
    "MVMonitor",
    "MVSettings",
    "OpenFault",
    "StationAlarms",
    "SupervisionConfig",
    "SupervisionSubsystem",
    "file_signal_reader",
    "load_supervision_config",
    "read_supervision_config",
    "thermal_zone_reader",
]
