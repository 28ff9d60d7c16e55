"""Payload validation against the JSON Schemas in `os3p/schemas/`, mapped to CALLERROR codes.

The schemas are the single source of truth: they are compiled (fastjsonschema
turns each into plain Python code, which is what keeps validation off the
profile) and nothing else decides what a valid payload is.

Rule → CALLERROR code (DESIGN.md "Protocol decisions", implementation guide §4.4 Table 7):

    additionalProperties, anything structural   FormationViolation
    required                                     ProtocolError ("payload is incomplete")
    type                                         TypeConstraintViolation
    enum, min/maxLength, minimum/maximum,
    pattern, format                              PropertyConstraintViolation
    minItems, maxItems, uniqueItems              OccurenceConstraintViolation
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

import fastjsonschema

from os3p.actions import Action
from os3p.errors import ErrorCode, OutgoingInvalid, PayloadInvalid
from os3p.formats import parse_date_time

__all__ = ["Direction", "Validator", "load_schema"]

Direction = str  # "Request" | "Response": the schema file suffix

_RULE_CODES: Mapping[str, ErrorCode] = {
    "required": ErrorCode.PROTOCOL_ERROR,
    "type": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    "enum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "const": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "maxLength": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "minLength": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "minimum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "maximum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "exclusiveMinimum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "exclusiveMaximum": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "multipleOf": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "pattern": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "format": ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    "minItems": ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION,
    "maxItems": ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION,
    "uniqueItems": ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION,
}


def _is_date_time(value: Any) -> bool:
    if not isinstance(value, str):
        return True  # the "type" rule reports non-strings
    try:
        parse_date_time(value)
    except ValueError:
        return False
    return True


_FORMATS: Mapping[str, Callable[[Any], bool]] = {"date-time": _is_date_time}


def load_schema(action: Action, direction: Direction) -> dict[str, Any]:
    """The schema document of one action's request or response, as shipped in the package."""
    name = f"{action.value}{direction}.json"
    text = resources.files("os3p").joinpath("schemas", name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


class Validator:
    """Validates payloads of all 21 actions; compiled lazily, once per action and direction.

    One instance is shared by every session of a process (a central holding
    10,000 connections compiles each schema once); it holds no per-connection state.
    """

    def __init__(self) -> None:
        self._compiled: dict[tuple[Action, Direction], Callable[[Any], Any]] = {}

    def _validator(self, action: Action, direction: Direction) -> Callable[[Any], Any]:
        key = (action, direction)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = fastjsonschema.compile(
                load_schema(action, direction), formats=_FORMATS, use_default=False
            )
            self._compiled[key] = compiled
        return compiled

    def check(self, action: Action, direction: Direction, payload: dict[str, Any]) -> None:
        """Raise PayloadInvalid (with the CALLERROR code) if `payload` violates the schema."""
        try:
            self._validator(action, direction)(payload)
        except fastjsonschema.JsonSchemaValueException as exc:
            code = _RULE_CODES.get(exc.rule or "", ErrorCode.FORMATION_VIOLATION)
            path = ".".join(exc.path[1:])  # drop fastjsonschema's leading "data"
            raise PayloadInvalid(code, exc.message, path=path) from None

    def check_outgoing(self, action: Action, direction: Direction, payload: dict[str, Any]) -> None:
        """Like `check`, for payloads we send: a violation is our bug, not the peer's."""
        try:
            self.check(action, direction, payload)
        except PayloadInvalid as exc:
            raise OutgoingInvalid(exc.code, exc.reason, path=exc.path) from None
