"""Operator commands: the 13 central-initiated actions (OS³P 0.4 §7), sent to one station.

`Commander.send(station_id, action, payload)` validates the payload against the
request schema (a violation is the operator's mistake: `InvalidCommand` with the
CALLERROR code the station would have answered), sends it over the station's
connection and returns the station's typed response, or raises one `CommandError`
(see `central.errors`). Every outcome is counted and its latency observed.

Two commands carry central-side effects:
- GetFile without `location`: the file server issues an upload location for this
  request (and a `requestId` when none is given, so the upload can be matched).
- TriggerMessage answered Accepted: the triggered action is admitted once even while
  the station is Pending (§3.1).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import msgspec

from central.errors import (
    CommandRejected,
    CommandTimeout,
    InvalidCommand,
    InvalidStationResponse,
    StationNotConnected,
    UnknownCommand,
)
from central.files import FileService
from central.handlers import StationContext
from central.logs import log_event
from central.metrics import Metrics
from os3p.actions import CENTRAL_INITIATED, Action
from os3p.errors import (
    CallErrorReceived,
    CallTimeout,
    ConnectionLost,
    InvalidResponse,
    PayloadError,
    PayloadInvalid,
)
from os3p.messages import (
    ACTION_OF,
    MESSAGE_TYPES,
    TriggerMessageRequest,
    TriggerMessageResponse,
    TriggerMessageStatus,
    from_payload,
)
from os3p.validation import Validator

__all__ = ["Commander", "Link", "command_action"]

log = logging.getLogger(__name__)


class Link(Protocol):
    """What the commander needs of a station's live connection."""

    @property
    def ctx(self) -> StationContext: ...

    async def call(
        self, request: msgspec.Struct, *, timeout: float | None = None
    ) -> msgspec.Struct: ...


def command_action(name: str) -> Action | None:
    """The central-initiated action named `name` (its wire name), or None."""
    try:
        action = Action(name)
    except ValueError:
        return None
    return action if action in CENTRAL_INITIATED else None


class Commander:
    def __init__(
        self,
        links: Mapping[str, Link],
        validator: Validator,
        metrics: Metrics,
        files: FileService,
        *,
        timeout: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._links = links
        self._validator = validator
        self._metrics = metrics
        self._files = files
        self._timeout = timeout
        self._monotonic = monotonic

    def prepare(self, station_id: str, name: str, payload: Mapping[str, Any]) -> msgspec.Struct:
        """The typed request for `payload`, or UnknownCommand / InvalidCommand."""
        action = command_action(name)
        if action is None:
            raise UnknownCommand(station_id, name, "not a central-initiated OS³P action")
        body = dict(payload)
        if action is Action.GET_FILE and "location" not in body:
            body.setdefault("requestId", str(uuid.uuid4()))
            body["location"] = self._files.issue_upload(station_id, body["requestId"])
        try:
            self._validator.check(action, "Request", body)
            return from_payload(MESSAGE_TYPES[action][0], body)
        except PayloadInvalid as exc:
            raise InvalidCommand(station_id, name, exc.code.value, str(exc)) from None
        except PayloadError as exc:
            raise InvalidCommand(station_id, name, "FormationViolation", str(exc)) from None

    async def send(self, station_id: str, name: str, payload: Mapping[str, Any]) -> msgspec.Struct:
        request = self.prepare(station_id, name, payload)
        return await self.send_request(station_id, request)

    async def send_request(self, station_id: str, request: msgspec.Struct) -> msgspec.Struct:
        action = ACTION_OF[type(request)]
        name = action.value
        link = self._links.get(station_id)
        if link is None:
            self._metrics.commands[name, "offline"] += 1
            raise StationNotConnected(station_id, name, "station is not connected")
        # The triggered message may arrive right behind the TriggerMessage answer, so it
        # is admitted before the call and the admission withdrawn unless Accepted.
        triggered = (
            request.requested_message.value if isinstance(request, TriggerMessageRequest) else None
        )
        if triggered is not None:
            link.ctx.triggered[triggered] += 1
        started = self._monotonic()
        outcome = "ok"
        response: msgspec.Struct | None = None
        try:
            response = await link.call(request, timeout=self._timeout)
        except CallTimeout:
            outcome = "timeout"
            raise CommandTimeout(
                station_id, name, f"no answer within {self._timeout:g} s"
            ) from None
        except CallErrorReceived as exc:
            outcome = "callerror"
            self._metrics.callerrors_received[exc.code] += 1
            raise CommandRejected(
                station_id, name, exc.code, exc.description, dict(exc.details)
            ) from None
        except InvalidResponse as exc:
            outcome = "invalid_response"
            raise InvalidStationResponse(station_id, name, str(exc)) from None
        except ConnectionLost:
            outcome = "offline"
            raise StationNotConnected(
                station_id, name, "connection closed before the answer"
            ) from None
        finally:
            if triggered is not None and not (
                isinstance(response, TriggerMessageResponse)
                and response.status is TriggerMessageStatus.ACCEPTED
            ):
                link.ctx.triggered[triggered] = max(0, link.ctx.triggered[triggered] - 1)
            elapsed = self._monotonic() - started
            self._metrics.observe_command(name, outcome, elapsed)
            log_event(
                log,
                logging.INFO if outcome == "ok" else logging.WARNING,
                "command",
                station=station_id,
                action=name,
                outcome=outcome,
                ms=round(elapsed * 1000, 1),
            )
        return response
