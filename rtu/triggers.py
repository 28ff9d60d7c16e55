"""TriggerMessage (§4.1, §7.12): answer first, then send the requested message.

Each subsystem registers a *provider* for the messages it owns: the lights
controller for the two Streetlight notifications, the MV monitor for
StatusNotification, metering for MeterValues, and so on. A provider returns
the messages that describe the current state (one per contactor, say), built
fresh at that moment (§4.1: "the most recent information").

Triggered messages go straight through the link, not the outbox: they are
snapshots the central asked for, allowed even while Pending (§3.1), and the
guaranteed events they might duplicate are in the outbox anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import msgspec

from os3p.messages import MessageTrigger

__all__ = ["Provider", "Triggers"]

log = logging.getLogger(__name__)

# contactor id (TriggerMessage `connectorId`, errata S14) or None → messages to send
Provider = Callable[[int | None], Awaitable[Sequence[msgspec.Struct]]]


class Triggers:
    def __init__(self) -> None:
        self._providers: dict[MessageTrigger, Provider] = {}
        self._special: dict[MessageTrigger, Callable[[], Awaitable[None]]] = {}

    def provide(self, message: MessageTrigger, provider: Provider) -> None:
        if message in self._providers or message in self._special:
            raise ValueError(f"{message} already has a provider")
        self._providers[message] = provider

    def on_trigger(self, message: MessageTrigger, action: Callable[[], Awaitable[None]]) -> None:
        """For messages the link sends itself (BootNotification, Heartbeat)."""
        if message in self._providers or message in self._special:
            raise ValueError(f"{message} already has a provider")
        self._special[message] = action

    def supports(self, message: MessageTrigger) -> bool:
        return message in self._providers or message in self._special

    async def fire(
        self,
        message: MessageTrigger,
        contactor: int | None,
        send: Callable[[msgspec.Struct], Awaitable[object]],
    ) -> None:
        """Build and send the requested message(s); failures are logged, not retried."""
        special = self._special.get(message)
        if special is not None:
            try:
                await special()
            except Exception as exc:
                log.warning("triggered %s not delivered: %s", message, exc)
            return
        for request in await self._providers[message](contactor):
            try:
                await send(request)
            except Exception as exc:  # a snapshot lost is replaced by the next trigger
                log.warning("triggered %s not delivered: %s", message, exc)
                return
