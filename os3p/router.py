"""Typed routing of received CALLs to handlers: one handler per action, no global registry.

Each side builds its own `Router` and registers handlers on it explicitly:

    router: Router[Station] = Router()

    @router.on(ResetRequest)
    async def reset(request: ResetRequest, station: Station) -> ResetResponse: ...

`Ctx` is whatever the handlers need (the station object, the central's
connection context); the shell passes it. The router checks at registration
that the request type belongs to an action, and at dispatch that the handler
answered with that action's response type, so a mistake surfaces as our bug
(InternalError to the peer, a log line for us) instead of a malformed frame.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import msgspec

from os3p.actions import Action
from os3p.messages import ACTION_OF, MESSAGE_TYPES

__all__ = ["Handler", "Router"]

Ctx = TypeVar("Ctx")
Req = TypeVar("Req", bound=msgspec.Struct)

Handler = Callable[[Any, Ctx], Awaitable[msgspec.Struct]]


class Router(Generic[Ctx]):
    """Maps actions to async handlers `(request, ctx) -> response`."""

    def __init__(self) -> None:
        self._handlers: dict[Action, Handler[Ctx]] = {}
        self._serial: set[Action] = set()

    def on(
        self, request_type: type[Req]
    ) -> Callable[
        [Callable[[Req, Ctx], Awaitable[msgspec.Struct]]],
        Callable[[Req, Ctx], Awaitable[msgspec.Struct]],
    ]:
        """Decorator form of `add`."""

        def register(
            handler: Callable[[Req, Ctx], Awaitable[msgspec.Struct]],
        ) -> Callable[[Req, Ctx], Awaitable[msgspec.Struct]]:
            self.add(request_type, handler)
            return handler

        return register

    def add(
        self,
        request_type: type[Req],
        handler: Callable[[Req, Ctx], Awaitable[msgspec.Struct]],
        *,
        serial: bool = False,
    ) -> None:
        """Register `handler`; `serial` if it waits only briefly, on local work.

        The shell runs a serial handler in its receive loop: the next frame is
        read once it has answered. That saves a task per CALL, which matters for
        the one message every station sends all the time (Heartbeat, whose wait
        is a group commit). Frames behind it wait as long as it does, and a
        station that pipelines CALLs gets them answered one after another, so
        keep it for the cheap ones. A handler that awaits the peer (our CALL,
        its upload) must never be serial: the frame it waits for would not be read.
        """
        action = ACTION_OF.get(request_type)
        if action is None:
            raise TypeError(f"{request_type.__name__} is not an OS³P request type")
        if action in self._handlers:
            raise ValueError(f"a handler for {action} is already registered")
        self._handlers[action] = handler
        if serial:
            self._serial.add(action)

    def is_serial(self, action: Action) -> bool:
        return action in self._serial

    @property
    def actions(self) -> frozenset[Action]:
        """The actions this side implements; the rest are answered NotImplemented."""
        return frozenset(self._handlers)

    def handler(self, action: Action) -> Handler[Ctx] | None:
        return self._handlers.get(action)

    async def dispatch(self, action: Action, request: msgspec.Struct, ctx: Ctx) -> msgspec.Struct:
        """Run the handler of `action`; raise KeyError if none, TypeError on a wrong answer."""
        handler = self._handlers[action]
        response = await handler(request, ctx)
        expected = MESSAGE_TYPES[action][1]
        if type(response) is not expected:
            raise TypeError(
                f"handler for {action} returned {type(response).__name__}, not {expected.__name__}"
            )
        return response
