"""Handlers of the 8 station-initiated actions (OS³P 0.4 §6).

Each handler stores what it received, stamped with the receive time, and answers
only after the store has committed: the station removes the message from its outbox
when the answer arrives (DESIGN.md "Delivery guarantees"). A storage failure raises,
the shell answers InternalError, and the station re-sends later; re-sent events are
recognised by the store and kept once.

A Heartbeat (§6.4) carries nothing to store but the fact that the station is alive:
its time is committed with the other heartbeats of the moment in one transaction
(`central.liveness`), so that a thousand stations' heartbeats do not cost a thousand
commits, and it too is answered only after the commit.

Boot policy (§3.1): only BootNotification is handled before the station is Accepted.
While Pending, the station may send the one message each accepted TriggerMessage asked
for (§3.1 "Only exception is when the Central System sends a TriggerMessage"); anything
else gets SecurityError (DESIGN.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime

from central.logs import log_event
from central.registry import Registry
from central.storage import (
    AsyncStore,
    BootNotification,
    BootPolicy,
    FirmwareStatus,
    GetFileStatus,
    StatusNotification,
    StreetlightMode,
    StreetlightStatus,
    meter_values_from_payload,
)
from os3p.actions import Action
from os3p.errors import ErrorCode, HandlerError
from os3p.messages import (
    BootNotificationRequest,
    BootNotificationResponse,
    FirmwareStatusNotificationRequest,
    FirmwareStatusNotificationResponse,
    GetFileStatusNotificationRequest,
    GetFileStatusNotificationResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    MeterValuesRequest,
    MeterValuesResponse,
    RegistrationStatus,
    StatusNotificationRequest,
    StatusNotificationResponse,
    StreetlightModeStatusNotificationRequest,
    StreetlightModeStatusNotificationResponse,
    StreetlightStatusNotificationRequest,
    StreetlightStatusNotificationResponse,
    to_payload,
)
from os3p.router import Router

__all__ = ["Services", "StationContext", "build_router"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Services:
    """What every handler needs, shared by all connections."""

    store: AsyncStore
    registry: Registry
    wall: Callable[[], datetime]
    # Heartbeats only move last_seen: committed in groups (central.liveness).
    note_seen: Callable[[str, datetime], Awaitable[None]]


@dataclasses.dataclass
class StationContext:
    """One connection of one station: the `ctx` the router passes to handlers."""

    station_id: str
    connection_id: str
    services: Services
    # Actions an accepted TriggerMessage asked for and not yet received (§3.1 Pending).
    triggered: Counter[str] = dataclasses.field(default_factory=Counter)
    # Set when the boot was answered Rejected: the server closes after the answer (§3.1).
    rejected: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)


def _admit(ctx: StationContext, action: Action) -> datetime:
    """The receive time, once the station may send `action`; SecurityError otherwise."""
    received_at = ctx.services.wall()
    if ctx.services.registry.is_accepted(ctx.station_id):
        return received_at
    if ctx.triggered[action] > 0:
        ctx.triggered[action] -= 1
        return received_at
    answered = ctx.services.registry.answered(ctx.station_id)
    log_event(
        log,
        logging.WARNING,
        "refused_not_accepted",
        station=ctx.station_id,
        action=action.value,
        boot=answered.value if answered else "none",
        policy=ctx.services.registry.policy(ctx.station_id).value,
    )
    raise HandlerError(
        ErrorCode.SECURITY_ERROR,
        f"station is not Accepted (last boot answered {answered.value if answered else 'never'})",
    )


async def boot_notification(
    request: BootNotificationRequest, ctx: StationContext
) -> BootNotificationResponse:
    received_at = ctx.services.wall()
    registry = ctx.services.registry
    policy = registry.policy(ctx.station_id)
    station = registry.get(ctx.station_id)
    interval = station.heartbeat_interval if station else 0
    boot = BootNotification.from_payload(to_payload(request))
    await ctx.services.store.record_boot(
        ctx.station_id, boot, answered=policy, received_at=received_at
    )
    registry.record_answer(ctx.station_id, policy)
    ctx.triggered.pop(Action.BOOT_NOTIFICATION, None)
    log_event(
        log,
        logging.INFO,
        "boot",
        station=ctx.station_id,
        answered=policy.value,
        interval=interval,
        firmware=request.firmware_version,
        serial=request.serial_number,
    )
    if policy is BootPolicy.REJECTED:
        ctx.rejected.set()
    return BootNotificationResponse(
        status=RegistrationStatus(policy.value), current_time=received_at, interval=interval
    )


async def heartbeat(request: HeartbeatRequest, ctx: StationContext) -> HeartbeatResponse:
    received_at = _admit(ctx, Action.HEARTBEAT)
    await ctx.services.note_seen(ctx.station_id, received_at)
    return HeartbeatResponse(current_time=received_at)


async def meter_values(request: MeterValuesRequest, ctx: StationContext) -> MeterValuesResponse:
    received_at = _admit(ctx, Action.METER_VALUES)
    values = meter_values_from_payload(to_payload(request))
    new = await ctx.services.store.record_meter_values(
        ctx.station_id, values, received_at=received_at
    )
    total = sum(len(v.sampled_values) for v in values)
    if new < total:
        log_event(
            log, logging.INFO, "meter_values_resent", station=ctx.station_id, new=new, total=total
        )
    return MeterValuesResponse()


async def status_notification(
    request: StatusNotificationRequest, ctx: StationContext
) -> StatusNotificationResponse:
    received_at = _admit(ctx, Action.STATUS_NOTIFICATION)
    notification = StatusNotification.from_payload(to_payload(request))
    new = await ctx.services.store.record_status(
        ctx.station_id, notification, received_at=received_at
    )
    log_event(
        log,
        logging.INFO if new else logging.DEBUG,
        "status" if new else "status_duplicate",
        station=ctx.station_id,
        status=request.status.value,
        error_code=request.error_code.value,
        info=request.info,
        test=request.test,
    )
    return StatusNotificationResponse()


async def streetlight_status(
    request: StreetlightStatusNotificationRequest, ctx: StationContext
) -> StreetlightStatusNotificationResponse:
    received_at = _admit(ctx, Action.STREETLIGHT_STATUS_NOTIFICATION)
    event = StreetlightStatus.from_payload(to_payload(request))
    new = await ctx.services.store.record_streetlight_status(
        ctx.station_id, event, received_at=received_at
    )
    log_event(
        log,
        logging.INFO if new else logging.DEBUG,
        "lights" if new else "lights_duplicate",
        station=ctx.station_id,
        contactor=request.contactor_id,
        status=request.status.value,
        unexpected=request.unexpected,
    )
    return StreetlightStatusNotificationResponse()


async def streetlight_mode(
    request: StreetlightModeStatusNotificationRequest, ctx: StationContext
) -> StreetlightModeStatusNotificationResponse:
    received_at = _admit(ctx, Action.STREETLIGHT_MODE_STATUS_NOTIFICATION)
    event = StreetlightMode.from_payload(to_payload(request))
    new = await ctx.services.store.record_streetlight_mode(
        ctx.station_id, event, received_at=received_at
    )
    log_event(
        log,
        logging.INFO if new else logging.DEBUG,
        "mode" if new else "mode_duplicate",
        station=ctx.station_id,
        contactor=request.contactor_id or "all",
        mode=request.mode.value,
    )
    return StreetlightModeStatusNotificationResponse()


async def firmware_status(
    request: FirmwareStatusNotificationRequest, ctx: StationContext
) -> FirmwareStatusNotificationResponse:
    received_at = _admit(ctx, Action.FIRMWARE_STATUS_NOTIFICATION)
    notification = FirmwareStatus.from_payload(to_payload(request))
    await ctx.services.store.record_firmware_status(
        ctx.station_id, notification, received_at=received_at
    )
    log_event(
        log,
        logging.INFO,
        "firmware_status",
        station=ctx.station_id,
        status=request.status.value,
        request_id=request.request_id,
    )
    return FirmwareStatusNotificationResponse()


async def get_file_status(
    request: GetFileStatusNotificationRequest, ctx: StationContext
) -> GetFileStatusNotificationResponse:
    received_at = _admit(ctx, Action.GET_FILE_STATUS_NOTIFICATION)
    notification = GetFileStatus.from_payload(to_payload(request))
    await ctx.services.store.record_get_file_status(
        ctx.station_id, notification, received_at=received_at
    )
    log_event(
        log,
        logging.INFO,
        "get_file_status",
        station=ctx.station_id,
        status=request.status.value,
        request_id=request.request_id,
    )
    return GetFileStatusNotificationResponse()


def build_router() -> Router[StationContext]:
    router: Router[StationContext] = Router()
    router.add(BootNotificationRequest, boot_notification)
    router.add(HeartbeatRequest, heartbeat, serial=True)  # waits on a group commit only
    router.add(MeterValuesRequest, meter_values)
    router.add(StatusNotificationRequest, status_notification)
    router.add(StreetlightStatusNotificationRequest, streetlight_status)
    router.add(StreetlightModeStatusNotificationRequest, streetlight_mode)
    router.add(FirmwareStatusNotificationRequest, firmware_status)
    router.add(GetFileStatusNotificationRequest, get_file_status)
    return router
