"""The station's Modbus I/O module: contactors, feedback, override switch, MV indicators."""

from rtu.io.errors import IOModuleError, IOModuleFault, IOModuleUnavailable
from rtu.io.interface import IOModule
from rtu.io.model import (
    CONTACTORS,
    DEFAULT_IO_MAP,
    ContactorPoints,
    IndicatorPoints,
    IndicatorState,
    IOMap,
    IOSnapshot,
)

__all__ = [
    "CONTACTORS",
    "DEFAULT_IO_MAP",
    "ContactorPoints",
    "IOMap",
    "IOModule",
    "IOModuleError",
    "IOModuleFault",
    "IOModuleUnavailable",
    "IOSnapshot",
    "IndicatorPoints",
    "IndicatorState",
]
