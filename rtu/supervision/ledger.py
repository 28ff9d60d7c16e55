"""The station's open faults and the StatusNotifications that describe their changes.

Pure core (no I/O, no clock: every time is passed in). `FaultBoard` wraps it
with a lock and the durable outbox; tests drive it directly.

OS³P 0.4 §6.6 in one paragraph, as we read it (errata T14–T16):

- a fault appearing is a StatusNotification with the fault's `errorCode`,
  `status: Faulted`, `info` naming where it is (for the MV indicators, Table 6:
  "info field indicates which group") and `timestamp` = the moment it was
  detected;
- a fault going away is `errorCode: NoError` with, for the three MV codes, one of
  Table 5's fixed `info` strings, and for the others a free-format text naming the
  code and the source;
- `status` is the station as a whole *after* the change: `Ok` only when nothing
  remains open, so a resolution may still say `Faulted` (Table 4).

A fault is identified by `(errorCode, source)`; the same code may be open for
several sources at once (over-current on MV1 and MV2). Raising an open fault or
resolving a closed one changes nothing and yields no notification, which is
what makes "each raised once, resolved once" hold for every caller.

Faults raised by TestMVFaultIndicator carry `test: true` (§7.11) and count as
open faults (the indicator *is* in alarm; Table 19 calls it that); their
resolution carries `test: true` too, so the central can pair it with the raise.
MV notifications always carry `test` (false for real faults: a re-entered fault
after a reset says so explicitly); the other codes omit it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime

from os3p.messages import StationErrorCode, StationStatus, StatusNotificationRequest

__all__ = [
    "MV_CODES",
    "RESOLVED_INFO",
    "Change",
    "FaultKey",
    "FaultLedger",
    "OpenFault",
]

INFO_MAX = 128  # §6.6.1: info maxLength

#: §6.6 Table 5: the fixed `info` texts that mark an MV fault as resolved.
RESOLVED_INFO: dict[StationErrorCode, str] = {
    StationErrorCode.MV_FAULT_INDICATOR_ERROR: "Indicator fault (MV) resolved",
    StationErrorCode.OVER_CURRENT_FAILURE: "Over current error (MV) resolved",
    StationErrorCode.GROUND_FAILURE: "Ground failure resolved",
}

#: The codes of the MV fault indicators (§6.6 Table 6, §7.11).
MV_CODES = frozenset(RESOLVED_INFO)


@dataclasses.dataclass(frozen=True, slots=True)
class FaultKey:
    code: StationErrorCode
    source: str  # "MV1", "Voltage.L2N", "p1-meter", "contactor 3", ...

    def __str__(self) -> str:
        return f"{self.code} {self.source}"


@dataclasses.dataclass(frozen=True, slots=True)
class OpenFault:
    key: FaultKey
    since: datetime
    info: str
    test: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    """A fault to raise or resolve, as a supervision core decided it (applied in order)."""

    raised: bool
    key: FaultKey
    at: datetime
    info: str | None = None  # for a raise; None: the source
    test: bool = False  # for a raise: caused by TestMVFaultIndicator
    # For a resolution immediately followed by the same fault's raise (an MV
    # indicator re-entering the fault after a reset, §7.9): the station was never
    # Ok in between, so the resolution says Faulted.
    reraised: bool = False


def _clip(text: str) -> str:
    return text if len(text) <= INFO_MAX else text[: INFO_MAX - 1] + "…"


class FaultLedger:
    """Open faults in the order they were raised; each change yields its notification."""

    def __init__(self) -> None:
        self._open: dict[FaultKey, OpenFault] = {}

    def __iter__(self) -> Iterator[OpenFault]:
        return iter(list(self._open.values()))

    def __len__(self) -> int:
        return len(self._open)

    def is_open(self, key: FaultKey) -> bool:
        return key in self._open

    def get(self, key: FaultKey) -> OpenFault | None:
        return self._open.get(key)

    @property
    def status(self) -> StationStatus:
        return StationStatus.FAULTED if self._open else StationStatus.OK

    def raise_(
        self, key: FaultKey, *, at: datetime, info: str | None = None, test: bool = False
    ) -> StatusNotificationRequest | None:
        """Open `key`; None (and no change) if it is open already."""
        if key in self._open:
            return None
        fault = OpenFault(key, at, _clip(info if info is not None else key.source), test)
        self._open[key] = fault
        return StatusNotificationRequest(
            status=self.status,
            error_code=key.code,
            info=fault.info,
            timestamp=at,
            test=test if key.code in MV_CODES else None,
        )

    def resolve(
        self, key: FaultKey, *, at: datetime, reraised: bool = False
    ) -> StatusNotificationRequest | None:
        """Close `key`; None (and no change) if it is not open. `reraised`: see `Change`."""
        fault = self._open.pop(key, None)
        if fault is None:
            return None
        info = RESOLVED_INFO.get(key.code) or _clip(f"{key.code} resolved: {key.source}")
        return StatusNotificationRequest(
            status=StationStatus.FAULTED if reraised else self.status,
            error_code=StationErrorCode.NO_ERROR,
            info=info,
            timestamp=at,
            test=fault.test if key.code in MV_CODES else None,
        )

    def apply(self, change: Change) -> StatusNotificationRequest | None:
        if change.raised:
            return self.raise_(change.key, at=change.at, info=change.info, test=change.test)
        return self.resolve(change.key, at=change.at, reraised=change.reraised)

    def restore(self, faults: list[OpenFault]) -> None:
        """Put back a copy taken with `list(ledger)` (a change whose event was not committed)."""
        self._open = {f.key: f for f in faults}

    def summary(self, at: datetime) -> StatusNotificationRequest:
        """The station status as one notification (TriggerMessage, §4.1: current state).

        Faulted: the oldest open fault's code, `info` listing every open fault
        (clipped to 128 characters); Ok: `NoError`.
        """
        if not self._open:
            return StatusNotificationRequest(
                status=StationStatus.OK, error_code=StationErrorCode.NO_ERROR, timestamp=at
            )
        faults = list(self._open.values())
        listed = ", ".join(f"{f.key}{' (test)' if f.test else ''}" for f in faults)
        oldest = faults[0]
        all_test = all(f.test for f in faults)
        return StatusNotificationRequest(
            status=StationStatus.FAULTED,
            error_code=oldest.key.code,
            info=_clip(listed),
            timestamp=at,
            test=True if all_test else None,
        )

    def describe(self) -> list[str]:
        """One line per open fault, oldest first (for `rtu status`)."""
        return [
            f"{f.key}{' (test)' if f.test else ''} since {f.since.isoformat()}: {f.info}"
            for f in self._open.values()
        ]
