"""Emitting station-initiated messages through the durable outbox.

Every guaranteed message (DESIGN.md "Delivery guarantees": the two Streetlight
notifications, StatusNotification, FirmwareStatusNotification,
GetFileStatusNotification) and every MeterValues goes through `EventSink.emit`:
validated against its schema *before* it is committed (an invalid event is our
bug and must surface here, not as a dead letter months later), then committed;
only then does the caller carry on.
"""

from __future__ import annotations

import msgspec

from os3p.messages import MESSAGE_TYPES, to_payload
from os3p.validation import Validator
from rtu.outbox.pump import Outbox

__all__ = ["EventSink"]

_ACTION_OF = {request: action for action, (request, _) in MESSAGE_TYPES.items()}


class EventSink:
    def __init__(self, outbox: Outbox, validator: Validator) -> None:
        self._outbox = outbox
        self._validator = validator

    async def emit(self, message: msgspec.Struct) -> int:
        """Commit `message` to the outbox; returns its sequence number."""
        action = _ACTION_OF[type(message)]
        payload = to_payload(message)
        self._validator.check_outgoing(action, "Request", payload)
        return await self._outbox.emit(action.value, payload)
