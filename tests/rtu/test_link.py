"""The station link against a scripted central over real websockets: boot rules of §3,
heartbeats, reconnects and clock correction."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

from os3p.messages import (
    BootNotificationRequest,
    MessageTrigger,
    RegistrationStatus,
    TriggerMessageRequest,
    TriggerMessageResponse,
    TriggerMessageStatus,
)
from os3p.router import Router
from rtu.clock import Clock
from rtu.link import Link, LinkSettings, LinkState, boot_fields
from tests.support.aio import UNIT, eventually, run
from tests.support.central import VALIDATOR, MemoryRecords, ScriptedCentral

BOOT = BootNotificationRequest(
    vendor="OpenGrid",
    model="RTU-1",
    station_number="0001",
    serial_number="SN-0001",
    firmware_version="0.1.0",
    iccid="89310000000000000001",
    imsi="204080000000001",
)


@contextlib.asynccontextmanager
async def rig(
    central: ScriptedCentral, records: MemoryRecords, *, heartbeat: float = 60.0
) -> AsyncIterator[tuple[Link, str]]:
    endpoint = await central.start()
    router: Router[None] = Router()
    link = Link(
        LinkSettings(
            endpoint=endpoint,
            station_id="SUBS001",
            boot=BOOT,
            call_timeout=5 * UNIT,
            retry_interval=0.2,
        ),
        router,
        None,
        records=records,
        clock=Clock(),
        validator=VALIDATOR,
        heartbeat_interval=heartbeat,
    )

    async def trigger(request: TriggerMessageRequest, ctx: None) -> TriggerMessageResponse:
        if request.requested_message is MessageTrigger.BOOT_NOTIFICATION:
            link.request_boot()
            return TriggerMessageResponse(status=TriggerMessageStatus.ACCEPTED)
        return TriggerMessageResponse(status=TriggerMessageStatus.REJECTED)

    router.add(TriggerMessageRequest, trigger)
    task = asyncio.create_task(link.run_loop())
    try:
        yield link, endpoint
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await central.stop()


def test_first_boot_accepted_then_heartbeats() -> None:
    async def scenario() -> None:
        central = ScriptedCentral([(RegistrationStatus.ACCEPTED, 1)])
        records = MemoryRecords()
        async with rig(central, records) as (link, endpoint):
            await eventually(lambda: link.state is LinkState.ACCEPTED, what="accepted")
            assert link.heartbeat_interval == 1.0  # from the Accepted answer
            await eventually(
                lambda: central.count("Heartbeat") >= 2, timeout=5 * UNIT, what="2 heartbeats"
            )
            assert records.accepted == (boot_fields(BOOT), endpoint)
            assert central.count("BootNotification") == 1

    run(scenario())


def test_reconnect_without_boot_when_nothing_changed() -> None:
    async def scenario() -> None:
        central = ScriptedCentral([(RegistrationStatus.ACCEPTED, 60)])
        records = MemoryRecords()
        async with rig(central, records) as (link, _):
            await eventually(lambda: link.state is LinkState.ACCEPTED)
            await central.connections[-1].close()
            await eventually(lambda: len(central.connections) == 2, what="reconnect")
            await eventually(lambda: link.state is LinkState.ACCEPTED)
            assert central.count("BootNotification") == 1  # §3.3: not required after reconnect

    run(scenario())


def test_changed_boot_field_sends_boot_notification() -> None:
    async def scenario() -> None:
        central = ScriptedCentral([(RegistrationStatus.ACCEPTED, 60)])
        records = MemoryRecords()
        async with rig(central, records) as (link, endpoint):
            await eventually(lambda: link.state is LinkState.ACCEPTED)
        # A firmware update changes firmwareVersion: §3.2 MUST send a new BootNotification.
        old_fields = dict(boot_fields(BOOT))
        records.accepted = (
            {**old_fields, "firmwareVersion": "0.0.9"},
            records.accepted[1] if records.accepted else "",
        )
        central2 = ScriptedCentral([(RegistrationStatus.ACCEPTED, 60)])
        async with rig(central2, records) as (link, endpoint):
            await eventually(lambda: link.state is LinkState.ACCEPTED)
            assert central2.count("BootNotification") == 1
            assert records.accepted == (old_fields, endpoint)

    run(scenario())


def test_pending_then_accepted_through_trigger_message() -> None:
    async def scenario() -> None:
        central = ScriptedCentral(
            [(RegistrationStatus.PENDING, 3600), (RegistrationStatus.ACCEPTED, 60)]
        )
        async with rig(central, MemoryRecords()) as (link, _):
            await eventually(lambda: link.state is LinkState.PENDING, what="pending")
            assert not link.accepted.is_set()
            answer = await central.connections[-1].call(
                TriggerMessageRequest(requested_message=MessageTrigger.BOOT_NOTIFICATION)
            )
            assert answer == TriggerMessageResponse(status=TriggerMessageStatus.ACCEPTED)
            await eventually(
                lambda: link.state is LinkState.ACCEPTED, what="accepted after trigger"
            )
            assert central.count("BootNotification") == 2
            assert central.count("Heartbeat") == 0  # nothing else initiated while Pending

    run(scenario())


def test_rejected_waits_interval_then_retries() -> None:
    async def scenario() -> None:
        central = ScriptedCentral(
            [(RegistrationStatus.REJECTED, 1), (RegistrationStatus.ACCEPTED, 60)]
        )
        async with rig(central, MemoryRecords()) as (link, _):
            await eventually(
                lambda: link.state is LinkState.ACCEPTED,
                timeout=10 * UNIT,
                what="accepted on retry",
            )
            boots = [t for t, a, _ in central.received if a == "BootNotification"]
            assert len(boots) == 2
            assert boots[1] - boots[0] >= 1.0  # §3.1: interval used as the wait before retrying
            assert len(central.connections) == 2

    run(scenario())


def test_heartbeat_interval_change_applies_live() -> None:
    async def scenario() -> None:
        central = ScriptedCentral([(RegistrationStatus.ACCEPTED, 3600)])
        async with rig(central, MemoryRecords()) as (link, _):
            await eventually(lambda: link.state is LinkState.ACCEPTED)
            assert central.count("Heartbeat") == 0
            link.set_heartbeat_interval(0.2)
            await eventually(
                lambda: central.count("Heartbeat") >= 3, timeout=5 * UNIT, what="fast heartbeats"
            )

    run(scenario())


def test_clock_offset_from_current_time() -> None:
    async def scenario() -> None:
        central = ScriptedCentral([(RegistrationStatus.ACCEPTED, 60)], skew=timedelta(hours=1))
        records = MemoryRecords()
        async with rig(central, records) as (link, _):
            await eventually(lambda: link.state is LinkState.ACCEPTED)
            offset = link._clock.offset
            assert abs(offset - timedelta(hours=1)) < timedelta(seconds=1)
            assert records.offsets
            assert abs(records.offsets[-1] - timedelta(hours=1)) < timedelta(seconds=1)
            # Timestamps the station makes are in the central's time.
            assert abs(link._clock.now() - central.now()) < timedelta(seconds=1)

    run(scenario())
