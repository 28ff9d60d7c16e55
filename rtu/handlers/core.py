"""Core actions of the station: GetConfiguration, ChangeConfiguration, TriggerMessage, Reset."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable

import msgspec

from os3p.messages import (
    ChangeConfigurationRequest,
    ChangeConfigurationResponse,
    ConfigurationKey,
    ConfigurationStatus,
    GetConfigurationRequest,
    GetConfigurationResponse,
    ResetRequest,
    ResetResponse,
    ResetStatus,
    TriggerMessageRequest,
    TriggerMessageResponse,
    TriggerMessageStatus,
)
from os3p.router import Router
from rtu.configkeys import Change, ConfigurationKeys
from rtu.triggers import Triggers

__all__ = ["CoreContext", "register_core_handlers"]

log = logging.getLogger(__name__)


@dataclasses.dataclass
class CoreContext:
    """What the core handlers need from the daemon."""

    keys: ConfigurationKeys
    persist: Callable[[str, str], Awaitable[None]]  # commits a changed key's value
    triggers: Triggers
    send_now: Callable[[msgspec.Struct], Awaitable[object]]  # the link's direct call
    request_reset: Callable[[], Awaitable[None]]  # persist, drain, exit / reboot
    background: Callable[[Awaitable[None], str], None]  # run after the answer went out


def register_core_handlers(router: Router[CoreContext]) -> None:
    router.add(GetConfigurationRequest, get_configuration)
    router.add(ChangeConfigurationRequest, change_configuration)
    router.add(TriggerMessageRequest, trigger_message)
    router.add(ResetRequest, reset)


async def get_configuration(
    request: GetConfigurationRequest, ctx: CoreContext
) -> GetConfigurationResponse:
    # §7.3: no `key` (or an empty list) asks for every key.
    known, unknown = ctx.keys.get(request.key or None)
    return GetConfigurationResponse(
        configuration_key=tuple(
            ConfigurationKey(key=k, readonly=ro, value=v) for k, ro, v in known
        ),
        unknown_key=tuple(unknown),
    )


async def change_configuration(
    request: ChangeConfigurationRequest, ctx: CoreContext
) -> ChangeConfigurationResponse:
    change = ctx.keys.prepare(request.key, request.value)
    if not isinstance(change, Change):
        # §7.1: the response has no room for a reason: it goes to the log.
        log.warning("ChangeConfiguration rejected: %s", change)
        return ChangeConfigurationResponse(status=ConfigurationStatus.REJECTED)
    await ctx.persist(change.name, change.rendered)
    ctx.keys.apply(change)
    log.info("ChangeConfiguration accepted: %s = %s", change.name, change.rendered)
    return ChangeConfigurationResponse(status=ConfigurationStatus.ACCEPTED)


async def trigger_message(
    request: TriggerMessageRequest, ctx: CoreContext
) -> TriggerMessageResponse:
    message = request.requested_message
    if not ctx.triggers.supports(message):
        # §4.1: supported operation, but this station cannot comply (nothing configured).
        log.info("TriggerMessage %s rejected: nothing on this station provides it", message)
        return TriggerMessageResponse(status=TriggerMessageStatus.REJECTED)

    async def after_answer() -> None:
        # Yield once so the CALLRESULT is queued before the triggered CALL (§4.1).
        await asyncio.sleep(0)
        await ctx.triggers.fire(message, request.contactor_id, ctx.send_now)

    ctx.background(after_answer(), f"trigger-{message}")
    return TriggerMessageResponse(status=TriggerMessageStatus.ACCEPTED)


async def reset(request: ResetRequest, ctx: CoreContext) -> ResetResponse:
    async def after_answer() -> None:
        await asyncio.sleep(0)
        await ctx.request_reset()

    log.warning("Reset requested by the central system")
    ctx.background(after_answer(), "reset")
    return ResetResponse(status=ResetStatus.ACCEPTED)
