"""Emitting station-initiated messages through the durable outbox.

Every guaranteed message (DESIGN.md "Delivery guarantees": the two Streetlight
notifications, StatusNotification, FirmwareStatusNotification,
GetFileStatusNotification) and every MeterValues goes through `EventSink.emit`:
validated against its schema *before* it is committed (an invalid event is our
bug and must surface here, not as a dead letter months later), then committed;
only then does the caller carry on.

A data disk that is full or read-only does not make `emit` raise: the outbox
holds the event in memory, in order, delivers it from there and stores it when
the disk works again (`rtu.outbox.pump.Outbox`, docs/faults.md). An emitter —
the lights controller, the fault board — must never be stopped by the disk.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from os3p.messages import ACTION_OF, to_payload
from os3p.validation import Validator
from rtu.outbox.pump import Outbox

__all__ = ["EventSink"]


class EventSink:
    def __init__(self, outbox: Outbox, validator: Validator) -> None:
        self._outbox = outbox
        self._validator = validator
        self._listeners: list[Callable[[msgspec.Struct], None]] = []

    def on_emitted(self, listener: Callable[[msgspec.Struct], None]) -> None:
        """Called with every message once it is committed (the MQTT publisher mirrors them)."""
        self._listeners.append(listener)

    async def emit(self, message: msgspec.Struct) -> int:
        """Commit `message` to the outbox; returns its sequence number (negative: held
        in memory during a disk fault)."""
        action = ACTION_OF[type(message)]
        payload = to_payload(message)
        self._validator.check_outgoing(action, "Request", payload)
        seq = await self._outbox.emit(action.value, payload)
        for listener in self._listeners:
            listener(message)
        return seq
