"""The RPC frames of the implementation guide §4: CALL, CALLRESULT, CALLERROR.

Decoding answers one question: what did the peer send, and if it is unusable,
can we tell which message it was (so we can answer with a CALLERROR) or not
(so we must ignore it, §4.4 case 1)? Payload content is not looked at here;
that is the validator's job.

Rules (DESIGN.md "Protocol decisions"):
- invalid UTF-8, text that is not JSON, a JSON value that is not an array, a
  MessageTypeId that is not 2/3/4 (§4.1.1: "SHALL ignore"), a message id that is
  not a string → ignored;
- a CALL whose id can be discerned but that is otherwise malformed (wrong
  length, action not a string, payload not an object, id over 36 characters,
  §4.1.2 Table 3) → CALLERROR FormationViolation;
- a malformed CALLRESULT/CALLERROR → ignored (there is nothing to answer).
A frame that is not JSON at all but *starts* like a CALL with a readable id
(`[2, "abc", ...`) is answered too: the peer learns which message failed.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from typing import Any

import msgspec

from os3p.errors import ErrorCode, FrameError

__all__ = [
    "MAX_MESSAGE_ID_LENGTH",
    "Call",
    "CallError",
    "CallResult",
    "Frame",
    "MessageType",
    "decode",
    "encode",
    "encode_json",
    "sniff_call_id",
]

MAX_MESSAGE_ID_LENGTH = 36  # §4.1.2 Table 3: "Maximum of 36 characters, to allow for GUID's"


class MessageType(enum.IntEnum):
    """§4.1.1 Table 2."""

    CALL = 2
    CALLRESULT = 3
    CALLERROR = 4


@dataclasses.dataclass(frozen=True, slots=True)
class Call:
    message_id: str
    action: str
    payload: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class CallResult:
    message_id: str
    payload: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class CallError:
    message_id: str
    code: str  # as sent; ErrorCode values when we send
    description: str
    details: dict[str, Any]


Frame = Call | CallResult | CallError

_json_decode = msgspec.json.Decoder().decode
_json_encode = msgspec.json.Encoder().encode

# The start of a CALL frame, to recover the id of a frame that is not valid JSON
# or too large to parse. Escapes are excluded: an id we echo must be the id sent.
_CALL_PREFIX = re.compile(rf'\s*\[\s*2\s*,\s*"([^"\\]{{1,{MAX_MESSAGE_ID_LENGTH}}})"')


def sniff_call_id(text: str) -> str | None:
    """The message id of something that starts like a CALL, else None."""
    match = _CALL_PREFIX.match(text, 0, 4 * MAX_MESSAGE_ID_LENGTH + 64)
    return match.group(1) if match else None


def decode(data: str | bytes, *, max_chars: int | None = None) -> Frame:
    """Parse one websocket message into a frame, or raise FrameError saying how to answer."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            # §4 "MUST be valid JSON encoded with UTF-8"; no id can be trusted.
            raise FrameError(f"not UTF-8: {exc.reason}", message_id=None, code=None) from None
    else:
        text = data
    if max_chars is not None and len(text) > max_chars:
        raise _unparsed(text, f"frame of {len(text)} characters exceeds the limit of {max_chars}")
    try:
        value = _json_decode(text)
    except msgspec.DecodeError as exc:
        raise _unparsed(text, f"not JSON: {exc}") from None
    if not isinstance(value, list) or not value:
        raise FrameError("not a JSON array", message_id=None, code=None)
    type_id = value[0]
    if type(type_id) is not int or type_id not in (2, 3, 4):
        raise FrameError(f"unknown MessageTypeId {type_id!r}", message_id=None, code=None)
    if len(value) < 2 or type(value[1]) is not str:
        raise FrameError("message id missing or not a string", message_id=None, code=None)
    message_id: str = value[1]
    if type_id == MessageType.CALL:
        return _call(value, message_id)
    return _response(value, message_id, type_id)


def _unparsed(text: str, reason: str) -> FrameError:
    """A frame we will not parse: answered if it starts like a CALL with an id, else ignored."""
    message_id = sniff_call_id(text)
    code = ErrorCode.FORMATION_VIOLATION if message_id is not None else None
    return FrameError(reason, message_id=message_id, code=code)


def _call(value: list[Any], message_id: str) -> Call:
    def violation(reason: str) -> FrameError:
        return FrameError(reason, message_id=message_id, code=ErrorCode.FORMATION_VIOLATION)

    if not message_id or len(message_id) > MAX_MESSAGE_ID_LENGTH:
        raise violation(f"message id must be 1 to {MAX_MESSAGE_ID_LENGTH} characters")
    if len(value) != 4:
        raise violation(f"a CALL has 4 elements, this one {len(value)}")
    action, payload = value[2], value[3]
    if type(action) is not str:
        raise violation("action is not a string")
    if payload is None:  # §4.2 Table 4: null and {} both mean "no payload"
        payload = {}
    elif type(payload) is not dict:
        raise violation("payload is not a JSON object")
    return Call(message_id, action, payload)


def _response(value: list[Any], message_id: str, type_id: int) -> CallResult | CallError:
    # Nothing can be answered to a malformed response: these are ignored (code None).
    if type_id == MessageType.CALLRESULT:
        if len(value) != 3:
            raise FrameError("a CALLRESULT has 3 elements", message_id=message_id, code=None)
        payload = value[2]
        if payload is None:
            payload = {}
        elif type(payload) is not dict:
            raise FrameError(
                "CALLRESULT payload is not an object", message_id=message_id, code=None
            )
        return CallResult(message_id, payload)
    if len(value) != 5:
        raise FrameError("a CALLERROR has 5 elements", message_id=message_id, code=None)
    code, description, details = value[2], value[3], value[4]
    if type(code) is not str or type(description) is not str:
        raise FrameError("CALLERROR code/description not strings", message_id=message_id, code=None)
    if details is None:
        details = {}
    elif type(details) is not dict:
        raise FrameError("CALLERROR details is not an object", message_id=message_id, code=None)
    return CallError(message_id, code, description, details)


def encode_json(value: Any) -> str:
    """Compact JSON text of any value (tests build deliberately odd frames with it)."""
    return _json_encode(value).decode("utf-8")


def encode(frame: Frame) -> str:
    """Serialise a frame as compact UTF-8 JSON text (one websocket text message)."""
    match frame:
        case Call(message_id, action, payload):
            wire: list[Any] = [MessageType.CALL, message_id, action, payload]
        case CallResult(message_id, payload):
            wire = [MessageType.CALLRESULT, message_id, payload]
        case CallError(message_id, code, description, details):
            wire = [MessageType.CALLERROR, message_id, code, description, details]
    return _json_encode(wire).decode("utf-8")
