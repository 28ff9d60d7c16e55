"""Annex §3 (commissioning and boot) and Guide §5.4 against the real station.

The station is the real daemon (`rtu run` as a subprocess) or, where time must be
compressed, the real link (`rtu.link.Link`); the central is the scripted central of
`tests.support.central`, a real os3p server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import rtu.link
from os3p.messages import (
    ChangeConfigurationRequest,
    ChangeConfigurationResponse,
    ConfigurationStatus,
    GetConfigurationRequest,
    GetConfigurationResponse,
    MessageTrigger,
    RegistrationStatus,
    TriggerMessageRequest,
    TriggerMessageResponse,
    TriggerMessageStatus,
)
from rtu.link import LinkState
from tests.central.support import running_central, scripted_station
from tests.rtu.test_daemon import station
from tests.rtu.test_link import rig
from tests.support.aio import UNIT, eventually, run
from tests.support.central import MemoryRecords, ScriptedCentral, scripted_central


def actions(central: ScriptedCentral) -> list[str]:
    return [action for _, action, _ in central.received]


def test_pending_station_answers_and_initiates_only_what_is_triggered(tmp_path: Path) -> None:
    """§3.1 Pending: the station MUST answer the central's requests and initiates
    nothing (errata T10) except the message a TriggerMessage asks for."""

    async def scenario() -> None:
        pending = ScriptedCentral([(RegistrationStatus.PENDING, 3600)])
        async with scripted_central(pending) as central, station(tmp_path, central) as daemon:
            await daemon.ready()
            await eventually(lambda: central.current is not None, timeout=15 * UNIT)
            await eventually(lambda: central.count("BootNotification") == 1, timeout=15 * UNIT)
            link = central.current
            assert link is not None
            configuration = await link.call(GetConfigurationRequest(key=("HeartbeatInterval",)))
            assert isinstance(configuration, GetConfigurationResponse)
            assert [k.key for k in configuration.configuration_key or ()] == ["HeartbeatInterval"]
            change = ChangeConfigurationRequest(key="HeartbeatInterval", value="1")
            changed = await link.call(change)
            assert changed == ChangeConfigurationResponse(status=ConfigurationStatus.ACCEPTED)
            triggered = await link.call(
                TriggerMessageRequest(requested_message=MessageTrigger.STATUS_NOTIFICATION)
            )
            assert triggered == TriggerMessageResponse(status=TriggerMessageStatus.ACCEPTED)
            await eventually(lambda: central.count("StatusNotification") == 1, what="triggered")
            # Absence can only be observed over time: three heartbeat intervals of 1 s.
            await asyncio.sleep(3.0)
            assert not link.closed  # the connection stays open while Pending
            assert actions(central) == ["BootNotification", "StatusNotification"]

    run(scenario(), timeout=60 * UNIT)


def test_changed_boot_fields_and_endpoint_send_a_new_boot_notification(tmp_path: Path) -> None:
    """§3.2: a changed BootNotification field means a new BootNotification; §3.1 Note 2:
    so does a changed central URL; §3.3/Guide §5.5: an unchanged restart sends none."""

    async def scenario() -> None:
        async with (
            scripted_central(ScriptedCentral()) as central,
            station(tmp_path, central) as daemon,
        ):
            await daemon.ready()
            await eventually(lambda: central.count("BootNotification") == 1, timeout=15 * UNIT)
            assert await daemon.stop() == 0

            await daemon.start()  # nothing changed
            await daemon.ready()
            await eventually(lambda: len(central.connections) == 2, timeout=15 * UNIT)
            assert await daemon.stop() == 0
            assert central.count("BootNotification") == 1

            daemon.config.write_text(
                daemon.config.read_text().replace('model = "RTU-TEST"', 'model = "RTU-TEST-2"')
            )
            await daemon.start()
            await eventually(lambda: central.count("BootNotification") == 2, timeout=15 * UNIT)
            assert central.of("BootNotification")[1]["model"] == "RTU-TEST-2"
            assert await daemon.stop() == 0

            # Same central, reached through a different URL: first-boot behaviour again.
            daemon.config.write_text(
                daemon.config.read_text().replace("ws://127.0.0.1:", "ws://localhost:")
            )
            await daemon.start()
            await eventually(lambda: central.count("BootNotification") == 3, timeout=15 * UNIT)

    run(scenario(), timeout=90 * UNIT)


def test_other_error_names_vendor_and_vendor_error_code(tmp_path: Path) -> None:
    """§6.6 Table 4: with errorCode OtherError, vendorId and vendorErrorCode should be
    given. The daemon's OtherError is the state database it had to replace."""

    async def scenario() -> None:
        data = tmp_path / "data"
        data.mkdir()
        (data / "state.db").write_bytes(b"this is not a database" * 100)
        async with (
            scripted_central(ScriptedCentral()) as central,
            station(tmp_path, central) as daemon,
        ):
            await daemon.ready()
            await eventually(lambda: central.count("StatusNotification") == 1, timeout=15 * UNIT)
            [report] = central.of("StatusNotification")
            assert report["errorCode"] == "OtherError"
            assert report["vendorId"]
            assert report["vendorErrorCode"]

    run(scenario(), timeout=60 * UNIT)


@pytest.mark.parametrize("interval", [3600, 0], ids=["long-interval", "zero-interval"])
def test_at_least_one_heartbeat_a_day(monkeypatch: pytest.MonkeyPatch, interval: int) -> None:
    """Guide §5.4: at least one Heartbeat a day, whatever the interval. The day is
    compressed to 0.3 s (time is the one thing tests may fake)."""
    monkeypatch.setattr(rtu.link, "ONE_DAY", 0.3)

    async def scenario() -> None:
        central = ScriptedCentral([(RegistrationStatus.ACCEPTED, interval)])
        async with rig(central, MemoryRecords(), heartbeat=86_400 * 7) as (link, _):
            await eventually(lambda: link.state is LinkState.ACCEPTED)
            await eventually(
                lambda: central.count("Heartbeat") >= 3, timeout=5 * UNIT, what="daily heartbeats"
            )

    run(scenario())


def test_central_accepts_nothing_before_the_first_boot_notification(tmp_path: Path) -> None:
    """§3.1: the station MUST first send a BootNotification; the central answers any
    other CALL before it with SecurityError (DESIGN.md) and then accepts the boot."""

    async def scenario() -> None:
        async with running_central(tmp_path) as (central, api):
            await api.add_station("SUBS001")
            async with scripted_station(central.ws_url, "SUBS001") as st:
                for action, payload in (
                    ("Heartbeat", {}),
                    ("StatusNotification", {"status": "Ok", "errorCode": "NoError"}),
                ):
                    frame = await st.call(action, payload)
                    assert frame[:3] == [4, frame[1], "SecurityError"]
                assert (await st.boot())["status"] == "Accepted"
                assert (await st.call("Heartbeat", {}))[0] == 3

    run(scenario())
