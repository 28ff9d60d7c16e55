"""`FaultBoard`: where every subsystem raises and resolves station faults.

The station status (`Ok` / `Faulted`, §6.6 Table 4) is a property of the
station as a whole, so it is computed in one place: the MV monitor, the
station alarms, the lights controller (PowerSwitchFailure) and metering
(PowerMeterFailure, through the alarms) all go through this board.

Each change is committed to the durable outbox (`EventSink.emit`) before the
call returns, under one lock, so the outbox holds the notifications in the
order the changes happened and each carries the status that was true right
after its change. If the commit fails, the change is undone and the error
propagates: a fault the central will never hear of is not recorded as raised.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import msgspec

from os3p.messages import StationErrorCode, StatusNotificationRequest
from rtu.supervision.ledger import Change, FaultKey, FaultLedger, OpenFault

__all__ = ["Emitter", "FaultBoard"]

log = logging.getLogger(__name__)


class Emitter(Protocol):
    """What the board needs from `rtu.events.EventSink`."""

    async def emit(self, message: msgspec.Struct) -> int: ...


class FaultBoard:
    def __init__(self, sink: Emitter, now: Callable[[], datetime]) -> None:
        self._sink = sink
        self._now = now  # corrected wall time (Clock.now)
        self._ledger = FaultLedger()
        self._lock = asyncio.Lock()

    async def raise_fault(
        self,
        code: StationErrorCode,
        source: str,
        *,
        info: str | None = None,
        test: bool = False,
        at: datetime | None = None,
    ) -> bool:
        """Open fault `(code, source)` and notify; False if it was open already.

        `info` defaults to `source`; `at` (the moment of detection) to now.
        """
        key = FaultKey(code, source)
        async with self._lock:
            before = list(self._ledger)
            note = self._ledger.raise_(key, at=at or self._now(), info=info, test=test)
            return await self._commit(note, before, f"raised {key}")

    async def resolve_fault(
        self, code: StationErrorCode, source: str, *, at: datetime | None = None
    ) -> bool:
        """Close fault `(code, source)` and notify; False if it was not open."""
        key = FaultKey(code, source)
        async with self._lock:
            before = list(self._ledger)
            note = self._ledger.resolve(key, at=at or self._now())
            return await self._commit(note, before, f"resolved {key}")

    async def apply(self, change: Change) -> bool:
        """Raise or resolve as a supervision core decided (`Change`)."""
        async with self._lock:
            before = list(self._ledger)
            note = self._ledger.apply(change)
            what = "raised" if change.raised else "resolved"
            return await self._commit(note, before, f"{what} {change.key}")

    async def _commit(
        self, note: StatusNotificationRequest | None, before: list[OpenFault], what: str
    ) -> bool:
        if note is None:
            return False
        try:
            await self._sink.emit(note)
        except BaseException:
            self._ledger.restore(before)
            raise
        log.info("station fault %s (station %s)", what, note.status)
        return True

    def is_open(self, code: StationErrorCode, source: str) -> bool:
        return self._ledger.is_open(FaultKey(code, source))

    def fault(self, code: StationErrorCode, source: str) -> OpenFault | None:
        return self._ledger.get(FaultKey(code, source))

    def open_faults(self) -> list[OpenFault]:
        """Open faults, oldest first."""
        return list(self._ledger)

    def describe(self) -> list[str]:
        return self._ledger.describe()

    def summary(self) -> StatusNotificationRequest:
        """The current station status as one StatusNotification (for TriggerMessage)."""
        return self._ledger.summary(self._now())
