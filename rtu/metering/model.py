"""What every meter source hands to the sampler: samples in OS³P terms.

Sources translate their own quantities (OBIS codes, DSMR fields, Modbus
registers) into OS³P measurands and units at their boundary, so the sampler,
the history table and MeterValues never see a device-specific name.
Values are `Decimal` because meters deliver scaled integers
(value × 10^scaler): a float would turn 230.1 V into 230.09999999999999.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol

__all__ = ["MeterSource", "Sample", "SourceError"]


@dataclasses.dataclass(frozen=True, slots=True)
class Sample:
    """One measured value, ready to become an OS³P `sampledValue`."""

    measurand: str  # OS³P measurand wire name, e.g. "Voltage.L1N"
    value: Decimal
    unit: str | None  # OS³P unit wire name ("V", "kWh", ...); None where the spec has "-"
    timestamp: datetime  # timezone-aware; the meter's own time where it has a clock
    location: str | None = None  # OS³P location ("P1Meter" for P1 ports)

    def __post_init__(self) -> None:
        if self.timestamp.tzinfo is None:
            raise ValueError("Sample.timestamp must be timezone-aware")


class SourceError(Exception):
    """A meter source could not deliver (disconnected, timed out, garbled answer).

    Drivers translate their library's exceptions into this one at their boundary,
    so supervision (PowerMeterFailure) needs to know only this type.
    """

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class MeterSource(Protocol):
    """A meter the daemon polls in its own supervised loop."""

    @property
    def name(self) -> str:
        """Identifies the source in logs, alarms and `rtu status`."""
        ...

    async def read(self) -> Sequence[Sample]:
        """Take one reading of every configured quantity; raise SourceError on failure."""
        ...

    async def close(self) -> None:
        """Release the connection; the next `read` reconnects."""
        ...
