"""Errors of the central service (storage has its own tree in `central.storage.errors`).

    CentralError
    └── CommandError            an operator command did not produce the station's answer
        ├── UnknownCommand      not one of the 13 central-initiated actions (§7)
        ├── InvalidCommand      the payload violates the request schema; `code` is the
        │                       CALLERROR code the station would have answered with
        ├── StationNotConnected the station has no open connection (or it closed meanwhile)
        ├── CommandTimeout      no answer within the command timeout
        ├── CommandRejected     the station answered with a CALLERROR (`code`, `description`)
        └── InvalidStationResponse  the station's CALLRESULT violates the response schema

Each maps to one HTTP status in `central.api`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CentralError",
    "CommandError",
    "CommandRejected",
    "CommandTimeout",
    "InvalidCommand",
    "InvalidStationResponse",
    "StationNotConnected",
    "UnknownCommand",
]


class CentralError(Exception):
    """Root of the central service's own errors."""


class CommandError(CentralError):
    def __init__(self, station_id: str, action: str, reason: str) -> None:
        super().__init__(f"{action} to {station_id}: {reason}")
        self.station_id = station_id
        self.action = action
        self.reason = reason


class UnknownCommand(CommandError):
    pass


class InvalidCommand(CommandError):
    def __init__(self, station_id: str, action: str, code: str, reason: str) -> None:
        super().__init__(station_id, action, f"{code}: {reason}")
        self.code = code
        self.description = reason


class StationNotConnected(CommandError):
    pass


class CommandTimeout(CommandError):
    pass


class CommandRejected(CommandError):
    def __init__(
        self, station_id: str, action: str, code: str, description: str, details: dict[str, Any]
    ) -> None:
        super().__init__(station_id, action, f"CALLERROR {code}: {description}")
        self.code = code
        self.description = description
        self.details = details


class InvalidStationResponse(CommandError):
    pass
