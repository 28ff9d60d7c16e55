"""Errors of the OS³P package.

Two kinds, kept apart as in h11: the *peer* broke the protocol (answer with a
CALLERROR or ignore the frame, log, count, carry on: these never escape the
core), or *we* did (a bug in our own code: raised, so it is found).

    OS3PError
    ├── FrameError             peer: a frame we cannot accept (carries the CALLERROR code
    │                          to answer with, or none when the frame must be ignored)
    ├── PayloadInvalid         a payload violates its JSON schema (code says which rule)
    │   └── OutgoingInvalid    ... and it is ours: we were about to send it (our bug)
    ├── PayloadError           a schema-valid payload does not convert into its typed message
    │                          (the classes drifted from the schemas: a bug, tested against)
    ├── CallFailed             an outgoing CALL did not produce a result
    │   ├── CallErrorReceived  the peer answered with a CALLERROR
    │   ├── CallTimeout        no answer before the deadline
    │   ├── InvalidResponse    the peer's CALLRESULT violates the response schema
    │   └── ConnectionLost     the connection closed while the call was pending
    └── HandlerError           raised by an action handler to answer with a chosen CALLERROR
                               (NotSupported, SecurityError, ...)
"""

from __future__ import annotations

import enum
from typing import Any

__all__ = [
    "CallErrorReceived",
    "CallFailed",
    "CallTimeout",
    "ConnectionLost",
    "ErrorCode",
    "FrameError",
    "HandlerError",
    "InvalidResponse",
    "OS3PError",
    "OutgoingInvalid",
    "PayloadError",
    "PayloadInvalid",
]


class ErrorCode(enum.StrEnum):
    """CALLERROR codes, implementation guide §4.4 Table 7 (spelling as in the spec)."""

    NOT_IMPLEMENTED = "NotImplemented"
    NOT_SUPPORTED = "NotSupported"
    INTERNAL_ERROR = "InternalError"
    PROTOCOL_ERROR = "ProtocolError"
    SECURITY_ERROR = "SecurityError"
    FORMATION_VIOLATION = "FormationViolation"
    PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
    OCCURENCE_CONSTRAINT_VIOLATION = "OccurenceConstraintViolation"
    TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"
    GENERIC_ERROR = "GenericError"


class OS3PError(Exception):
    """Root of every error this package raises."""


class FrameError(OS3PError):
    """A received frame that cannot be accepted.

    `message_id` is the id we could discern (None: not discernible, so the frame
    is ignored, §4.4 case 1); `code` is the CALLERROR code to answer with, or
    None when the spec says to ignore the frame (§4.1.1 unknown message type).
    """

    def __init__(self, reason: str, *, message_id: str | None, code: ErrorCode | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message_id = message_id
        self.code = code


class PayloadInvalid(OS3PError):
    """A payload violates its schema; `code` is the CALLERROR code the rule maps to."""

    def __init__(self, code: ErrorCode, reason: str, *, path: str = "") -> None:
        super().__init__(f"{reason} (at {path or 'payload'})")
        self.code = code
        self.reason = reason
        self.path = path


class OutgoingInvalid(PayloadInvalid):
    """We were about to send a payload that violates its schema: a bug on our side."""


class PayloadError(OS3PError, ValueError):
    """A payload that does not convert into the message type it was meant for.

    Raised by `os3p.messages.from_payload`, the one place msgspec's exceptions are
    translated. Peer payloads are validated against the schemas first, so for them this
    should not happen; when it does, `detail` carries msgspec's account, which names the
    offending path (e.g. "Expected `int` >= 1 - at `$.contactorId`").
    """

    def __init__(self, message_type: type, detail: str) -> None:
        super().__init__(f"{message_type.__name__}: {detail}")
        self.message_type = message_type
        self.detail = detail


class CallFailed(OS3PError):
    """An outgoing CALL ended without a CALLRESULT we can use."""


class CallErrorReceived(CallFailed):
    """The peer answered our CALL with a CALLERROR."""

    def __init__(self, code: str, description: str, details: dict[str, Any]) -> None:
        super().__init__(f"{code}: {description}" if description else code)
        self.code = code  # kept as sent: a peer may use a code outside Table 7
        self.description = description
        self.details = details


class CallTimeout(CallFailed):
    """No answer arrived before the call's deadline."""


class InvalidResponse(CallFailed):
    """The peer's CALLRESULT payload violates the response schema."""

    def __init__(self, cause: PayloadInvalid) -> None:
        super().__init__(str(cause))
        self.cause = cause


class ConnectionLost(CallFailed):
    """The connection closed while the call was waiting for its answer."""


class HandlerError(OS3PError):
    """Raised by an action handler to answer the CALL with a specific CALLERROR.

    For example `HandlerError(ErrorCode.NOT_SUPPORTED, "no MV indicators configured")`
    (implementation guide §4.2: implemented, but cannot be handled here).
    """

    def __init__(
        self, code: ErrorCode, description: str = "", details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.details = details or {}
