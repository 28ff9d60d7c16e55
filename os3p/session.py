"""One OS³P connection as a pure state machine (no sockets, no clock, no asyncio).

Theory of operation
-------------------
Text in, events out; calls in, text out. The shell feeds every received
websocket message to `receive(data, now)` and gets events back:

- `CallReceived`   the peer asks us to do something; the shell runs the handler
                   and answers with `reply()` or `reply_error()`;
- `CallCompleted`  / `CallFailed`  one of our CALLs ended;
- `PeerViolation`  the peer broke the rules; the session has already queued the
                   CALLERROR the rules demand (or ignored the frame): log it;
- `UnmatchedResponse`  a result for no pending call (late after a timeout, or
                   unknown): dropped, log it.

Our CALLs go through `call(request, now)`. At most `window` are in flight (1 by
default: the OCPP-J rule of one outstanding CALL per direction); the rest wait
in FIFO order and are released as answers arrive or deadlines pass. The shell
asks `next_deadline()` how long it may sleep and calls `expire(now)` when it
wakes. Everything to write to the socket is collected by `data_to_send()`:
the one send path of the connection.

`now` is any monotonic clock in seconds; the session only compares it.
"""

from __future__ import annotations

import dataclasses
import enum
import uuid
from collections import deque
from collections.abc import Callable, Collection
from typing import Any

import msgspec

from os3p import frames
from os3p.actions import CENTRAL_INITIATED, STATION_INITIATED, Action
from os3p.errors import (
    CallErrorReceived,
    CallFailed,
    CallTimeout,
    ConnectionLost,
    ErrorCode,
    FrameError,
    InvalidResponse,
    PayloadInvalid,
)
from os3p.messages import ACTION_OF, MESSAGE_TYPES, PayloadError, from_payload, to_payload
from os3p.validation import Validator

__all__ = [
    "CallCompleted",
    "CallFailedEvent",
    "CallReceived",
    "Event",
    "PeerViolation",
    "Role",
    "Session",
    "UnmatchedResponse",
]

DEFAULT_MAX_FRAME_CHARS = 256 * 1024


class Role(enum.Enum):
    """Which end of the connection we are (§3: the substation is the websocket client)."""

    STATION = "station"
    CENTRAL = "central"

    @property
    def sends(self) -> frozenset[Action]:
        return STATION_INITIATED if self is Role.STATION else CENTRAL_INITIATED

    @property
    def receives(self) -> frozenset[Action]:
        return CENTRAL_INITIATED if self is Role.STATION else STATION_INITIATED


@dataclasses.dataclass(frozen=True, slots=True)
class CallReceived:
    message_id: str
    action: Action
    request: msgspec.Struct


@dataclasses.dataclass(frozen=True, slots=True)
class CallCompleted:
    message_id: str
    action: Action
    response: msgspec.Struct


@dataclasses.dataclass(frozen=True, slots=True)
class CallFailedEvent:
    message_id: str
    action: Action
    error: CallFailed


@dataclasses.dataclass(frozen=True, slots=True)
class PeerViolation:
    """The peer sent something unacceptable. `answered` is the CALLERROR code we sent
    (None: the frame was ignored, as the spec requires when no id can be discerned)."""

    message_id: str | None
    answered: ErrorCode | None
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class UnmatchedResponse:
    message_id: str
    reason: str


Event = CallReceived | CallCompleted | CallFailedEvent | PeerViolation | UnmatchedResponse


@dataclasses.dataclass(slots=True)
class _Outgoing:
    message_id: str
    action: Action
    text: str
    timeout: float
    deadline: float = 0.0


def _new_message_id() -> str:
    return str(uuid.uuid4())


class Session:
    """The protocol state of one websocket connection, from one side."""

    def __init__(
        self,
        ours: Role,
        validator: Validator,
        *,
        implemented: Collection[Action] | None = None,
        window: int = 1,
        call_timeout: float = 30.0,
        max_frame_chars: int | None = DEFAULT_MAX_FRAME_CHARS,
        new_message_id: Callable[[], str] = _new_message_id,
    ) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        self.ours = ours
        self._validator = validator
        self._implemented = frozenset(ours.receives if implemented is None else implemented)
        self._window = window
        self._call_timeout = call_timeout
        self._max_frame_chars = max_frame_chars
        self._new_message_id = new_message_id
        self._in_flight: dict[str, _Outgoing] = {}
        self._queued: deque[_Outgoing] = deque()
        self._handling: dict[str, Action] = {}  # CALLs received and not yet answered
        self._to_send: list[str] = []

    # ----------------------------------------------------------------- inspection
    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def queued(self) -> int:
        return len(self._queued)

    @property
    def handling(self) -> frozenset[str]:
        """Ids of received CALLs still waiting for our answer."""
        return frozenset(self._handling)

    def data_to_send(self) -> list[str]:
        """Take the frames to write, oldest first (the connection's one send path)."""
        out, self._to_send = self._to_send, []
        return out

    def next_deadline(self) -> float | None:
        """The earliest moment `expire` has work to do, or None."""
        if not self._in_flight:
            return None
        return min(call.deadline for call in self._in_flight.values())

    # ------------------------------------------------------------------ receiving
    def receive(self, data: str | bytes, now: float) -> list[Event]:
        """Feed one websocket message; returns what happened. Never raises for peer input."""
        try:
            frame = frames.decode(data, max_chars=self._max_frame_chars)
        except FrameError as exc:
            return [self._violation(exc.message_id, exc.code, exc.reason)]
        match frame:
            case frames.Call():
                return [self._on_call(frame)]
            case frames.CallResult():
                return self._on_result(frame, now)
            case frames.CallError():
                return self._on_error(frame, now)

    def _violation(
        self, message_id: str | None, code: ErrorCode | None, reason: str
    ) -> PeerViolation:
        if message_id is None or code is None:
            return PeerViolation(message_id, None, reason)
        self._to_send.append(frames.encode(frames.CallError(message_id, code, reason, {})))
        return PeerViolation(message_id, code, reason)

    def _on_call(self, call: frames.Call) -> Event:
        if call.message_id in self._handling:
            # §4.4 case 2: "an existing call with the same unique identifier is being
            # handled already". The first one still gets its own answer.
            return self._violation(
                call.message_id, ErrorCode.PROTOCOL_ERROR, "message id already being handled"
            )
        try:
            action = Action(call.action)
        except ValueError:
            action = None
        if action is None or action not in self._implemented:
            return self._violation(
                call.message_id,
                ErrorCode.NOT_IMPLEMENTED,
                f"action {call.action!r} not implemented",
            )
        try:
            self._validator.check(action, "Request", call.payload)
            request = from_payload(MESSAGE_TYPES[action][0], call.payload)
        except PayloadInvalid as exc:
            return self._violation(call.message_id, exc.code, str(exc))
        except PayloadError as exc:
            return self._violation(call.message_id, ErrorCode.FORMATION_VIOLATION, str(exc))
        self._handling[call.message_id] = action
        return CallReceived(call.message_id, action, request)

    def _on_result(self, result: frames.CallResult, now: float) -> list[Event]:
        pending = self._in_flight.pop(result.message_id, None)
        if pending is None:
            return [UnmatchedResponse(result.message_id, "CALLRESULT for no pending call")]
        response_type = MESSAGE_TYPES[pending.action][1]
        event: Event
        try:
            self._validator.check(pending.action, "Response", result.payload)
            response = from_payload(response_type, result.payload)
        except PayloadInvalid as exc:
            event = CallFailedEvent(pending.message_id, pending.action, InvalidResponse(exc))
        except PayloadError as exc:
            invalid = PayloadInvalid(ErrorCode.FORMATION_VIOLATION, str(exc))
            event = CallFailedEvent(pending.message_id, pending.action, InvalidResponse(invalid))
        else:
            event = CallCompleted(pending.message_id, pending.action, response)
        self._release(now)
        return [event]

    def _on_error(self, error: frames.CallError, now: float) -> list[Event]:
        pending = self._in_flight.pop(error.message_id, None)
        if pending is None:
            return [UnmatchedResponse(error.message_id, "CALLERROR for no pending call")]
        failure = CallErrorReceived(error.code, error.description, error.details)
        self._release(now)
        return [CallFailedEvent(pending.message_id, pending.action, failure)]

    # ---------------------------------------------------------------- answering
    def reply(self, message_id: str, response: msgspec.Struct) -> None:
        """Answer a received CALL. Raises OutgoingInvalid (our bug) without sending anything."""
        action = self._handling.get(message_id)
        if action is None:
            raise KeyError(f"no received call {message_id!r} is waiting for an answer")
        expected = MESSAGE_TYPES[action][1]
        if type(response) is not expected:
            raise TypeError(f"{action} must be answered with {expected.__name__}")
        payload = to_payload(response)
        self._validator.check_outgoing(action, "Response", payload)
        del self._handling[message_id]
        self._to_send.append(frames.encode(frames.CallResult(message_id, payload)))

    def reply_error(
        self,
        message_id: str,
        code: ErrorCode,
        description: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        """Answer a received CALL with a CALLERROR (handler raised, or refused it)."""
        if self._handling.pop(message_id, None) is None:
            raise KeyError(f"no received call {message_id!r} is waiting for an answer")
        error = frames.CallError(message_id, code, description, details or {})
        self._to_send.append(frames.encode(error))

    # ------------------------------------------------------------------- calling
    def call(self, request: msgspec.Struct, now: float, *, timeout: float | None = None) -> str:
        """Queue one of our CALLs; returns its message id. Raises OutgoingInvalid on our bug."""
        action = ACTION_OF.get(type(request))
        if action is None or action not in self.ours.sends:
            raise TypeError(
                f"{type(request).__name__} is not a request the {self.ours.value} sends"
            )
        payload = to_payload(request)
        self._validator.check_outgoing(action, "Request", payload)
        message_id = self._new_message_id()
        text = frames.encode(frames.Call(message_id, action.value, payload))
        call = _Outgoing(
            message_id, action, text, self._call_timeout if timeout is None else timeout
        )
        self._queued.append(call)
        self._release(now)
        return message_id

    def call_raw(
        self, action: Action, payload_json: str, now: float, *, timeout: float | None = None
    ) -> str:
        """Queue a CALL whose payload is JSON text validated when it was made.

        For the station's durable outbox: an event is validated and encoded once, when
        it is committed, and every (re)delivery puts the very same bytes on the wire,
        so the central can recognise a re-sent event as the one it already stored.
        """
        if action not in self.ours.sends:
            raise TypeError(f"{action} is not a request the {self.ours.value} sends")
        message_id = self._new_message_id()
        head = f"[2,{frames.encode_json(message_id)},{frames.encode_json(action.value)},"
        text = f"{head}{payload_json}]"
        call = _Outgoing(
            message_id, action, text, self._call_timeout if timeout is None else timeout
        )
        self._queued.append(call)
        self._release(now)
        return message_id

    def _release(self, now: float) -> None:
        while self._queued and len(self._in_flight) < self._window:
            call = self._queued.popleft()
            call.deadline = now + call.timeout
            self._in_flight[call.message_id] = call
            self._to_send.append(call.text)

    def expire(self, now: float) -> list[Event]:
        """Fail every in-flight call whose deadline has passed; release queued ones."""
        events: list[Event] = []
        for call in [c for c in self._in_flight.values() if c.deadline <= now]:
            del self._in_flight[call.message_id]
            timeout = CallTimeout(f"no answer to {call.action} within {call.timeout:g} s")
            events.append(CallFailedEvent(call.message_id, call.action, timeout))
        if events:
            self._release(now)
        return events

    def close(self) -> list[Event]:
        """The connection is gone: every pending and queued call fails with ConnectionLost."""
        lost = [*self._in_flight.values(), *self._queued]
        self._in_flight.clear()
        self._queued.clear()
        self._handling.clear()
        self._to_send.clear()
        return [
            CallFailedEvent(c.message_id, c.action, ConnectionLost("connection closed"))
            for c in lost
        ]
