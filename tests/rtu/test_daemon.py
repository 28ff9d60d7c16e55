"""The real daemon (`rtu run` as a subprocess) against a scripted central over real
websockets: boot, READY, configuration persisted across restarts, unexpected restarts
reported, Reset, TriggerMessage, a corrupt database, a bad config file."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from os3p.errors import CallErrorReceived
from os3p.messages import (
    ChangeConfigurationRequest,
    ChangeConfigurationResponse,
    ConfigurationStatus,
    GetConfigurationRequest,
    GetConfigurationResponse,
    MessageTrigger,
    ResetRequest,
    ResetResponse,
    ResetStatus,
    TriggerMessageRequest,
    TriggerMessageResponse,
    TriggerMessageStatus,
    UpdateFirmwareRequest,
)
from rtu.daemon import firmware_version
from tests.support.aio import UNIT, eventually, run
from tests.support.central import ScriptedCentral, scripted_central

CONFIG = """\
[station]
id = "SUBS 001"
vendor = "OpenGrid"
model = "RTU-TEST"
station_number = "0001"
serial_number = "SN-TEST-1"
iccid = "89310000000000000001"
imsi = "204080000000001"

[central]
url = "{url}"
call_timeout = 5

[data]
dir = "{data}"

[site]
latitude = 51.98
longitude = 5.91
timezone = "Europe/Amsterdam"

[link]
heartbeat_interval = 3600
reconnect_backoff_base = 0.05
reconnect_backoff_cap = 0.5
"""


class Daemon:
    """One `rtu run` process with a notify socket, restartable like systemd does."""

    def __init__(self, tmp_path: Path, url: str) -> None:
        self.dir = tmp_path
        self.config = tmp_path / "rtu.toml"
        self.config.write_text(CONFIG.format(url=url, data=tmp_path / "data"))
        self.process: asyncio.subprocess.Process | None = None
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify_path = tmp_path / "notify.sock"
        self.notify.bind(str(self.notify_path))
        self.notify.setblocking(False)
        self.notifications: list[str] = []
        self.runs = 0

    async def start(self) -> None:
        self.runs += 1
        log = (self.dir / f"daemon-{self.runs}.log").open("wb")
        env = {**os.environ, "NOTIFY_SOCKET": str(self.notify_path), "WATCHDOG_USEC": "2000000"}
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "rtu.cli", "run", "--config", str(self.config),
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        log.close()

    def drain_notify(self) -> list[str]:
        with contextlib.suppress(BlockingIOError):
            while True:
                self.notifications.append(self.notify.recv(4096).decode())
        return self.notifications

    async def ready(self) -> None:
        await eventually(
            lambda: "READY=1" in self.drain_notify(), timeout=15 * UNIT, what="READY=1"
        )

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        async with asyncio.timeout(15 * UNIT):
            return await self.process.wait()

    def log(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.dir.glob("daemon-*.log"))
        )


@contextlib.asynccontextmanager
async def station(tmp_path: Path, central: ScriptedCentral) -> AsyncIterator[Daemon]:
    daemon = Daemon(tmp_path, central.endpoint)
    await daemon.start()
    try:
        yield daemon
    finally:
        if daemon.process is not None and daemon.process.returncode is None:
            daemon.process.kill()
            await daemon.process.wait()
        daemon.notify.close()


async def accepted(central: ScriptedCentral) -> None:
    await eventually(
        lambda: central.current is not None, timeout=15 * UNIT, what="station connected"
    )


def status_text(daemon: Daemon) -> str:
    return subprocess.run(
        [sys.executable, "-m", "rtu.cli", "status", "--data-dir", str(daemon.dir / "data")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def test_first_boot_ready_status_and_persisted_configuration(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with (
            scripted_central(ScriptedCentral()) as central,
            station(tmp_path, central) as daemon,
        ):
            await daemon.ready()
            await eventually(lambda: central.count("BootNotification") == 1, timeout=15 * UNIT)
            boot = central.of("BootNotification")[0]
            assert boot["firmwareVersion"] == firmware_version()  # from the installed package
            assert boot["vendor"] == "OpenGrid"
            await eventually(
                lambda: "link:         accepted" in status_text(daemon), timeout=15 * UNIT
            )
            link = central.current
            assert link is not None
            change = await link.call(ChangeConfigurationRequest(key="HeartbeatInterval", value="1"))
            assert change == ChangeConfigurationResponse(status=ConfigurationStatus.ACCEPTED)
            await eventually(
                lambda: central.count("Heartbeat") >= 2, timeout=10 * UNIT, what="heartbeats"
            )
            rejected = await link.call(
                ChangeConfigurationRequest(key="websocketPingInterval", value="-1")
            )
            assert rejected == ChangeConfigurationResponse(status=ConfigurationStatus.REJECTED)
            assert await daemon.stop() == 0
            assert "WATCHDOG=1" in daemon.drain_notify()
            assert "STOPPING=1" in daemon.drain_notify()

            await daemon.start()  # like systemd's Restart=always
            await eventually(
                lambda: len(central.connections) == 2 and central.current is not None,
                timeout=15 * UNIT,
            )
            answer = await central.connections[-1].call(
                GetConfigurationRequest(key=("HeartbeatInterval",))
            )
            assert isinstance(answer, GetConfigurationResponse)
            assert [(k.key, k.value) for k in answer.configuration_key or ()] == [
                ("HeartbeatInterval", "1")
            ]
            # §3.3: nothing changed, so no BootNotification; a clean stop is not "unexpected".
            assert central.count("BootNotification") == 1
            assert central.count("StatusNotification") == 0

    run(scenario(), timeout=90 * UNIT)


def test_kill_9_is_reported_as_unexpected_restart_and_reset_is_not(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with (
            scripted_central(ScriptedCentral()) as central,
            station(tmp_path, central) as daemon,
        ):
            await daemon.ready()
            await accepted(central)
            assert await daemon.stop(signal.SIGKILL) == -signal.SIGKILL
            await daemon.start()
            await eventually(lambda: central.count("StatusNotification") == 1, timeout=15 * UNIT)
            [report] = central.of("StatusNotification")
            assert report["errorCode"] == "NoError"
            assert report["info"].startswith("Unexpected restart")

            await eventually(lambda: central.current is not None and len(central.connections) == 2)
            reset = await central.connections[-1].call(ResetRequest())
            assert reset == ResetResponse(status=ResetStatus.ACCEPTED)
            assert daemon.process is not None
            async with asyncio.timeout(15 * UNIT):
                assert (
                    await daemon.process.wait() == 0
                )  # §7.8: the daemon stops; systemd restarts it
            await daemon.start()
            await eventually(
                lambda: len(central.connections) == 3 and central.current is not None,
                timeout=15 * UNIT,
            )
            await daemon.ready()
            assert central.count("StatusNotification") == 1  # Reset was asked for: not unexpected

    run(scenario(), timeout=90 * UNIT)


def test_trigger_messages(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with (
            scripted_central(ScriptedCentral()) as central,
            station(tmp_path, central) as daemon,
        ):
            await daemon.ready()
            await accepted(central)
            await eventually(lambda: central.count("BootNotification") == 1, timeout=15 * UNIT)
            link = central.current
            assert link is not None

            async def trigger(message: MessageTrigger) -> TriggerMessageStatus:
                answer = await link.call(TriggerMessageRequest(requested_message=message))
                assert isinstance(answer, TriggerMessageResponse)
                return answer.status

            assert (
                await trigger(MessageTrigger.STATUS_NOTIFICATION) is TriggerMessageStatus.ACCEPTED
            )
            await eventually(
                lambda: central.count("StatusNotification") == 1, what="triggered status"
            )
            assert central.of("StatusNotification")[0]["status"] == "Ok"
            assert await trigger(MessageTrigger.HEARTBEAT) is TriggerMessageStatus.ACCEPTED
            await eventually(lambda: central.count("Heartbeat") == 1, what="triggered heartbeat")
            assert await trigger(MessageTrigger.BOOT_NOTIFICATION) is TriggerMessageStatus.ACCEPTED
            await eventually(lambda: central.count("BootNotification") == 2, what="triggered boot")
            # Nothing on this station measures anything: it cannot comply (§4.1).
            assert await trigger(MessageTrigger.METER_VALUES) is TriggerMessageStatus.REJECTED
            # No [firmware] section: UpdateFirmware is implemented but not available here.
            assert (
                await trigger(MessageTrigger.FIRMWARE_STATUS_NOTIFICATION)
                is TriggerMessageStatus.REJECTED
            )
            with pytest.raises(CallErrorReceived) as refused:
                await link.call(
                    UpdateFirmwareRequest(
                        retrieve_date=datetime(2026, 1, 1, tzinfo=UTC), location="http://x/b.tar"
                    )
                )
            assert refused.value.code == "NotSupported"

    run(scenario(), timeout=60 * UNIT)


def test_corrupt_state_database_is_moved_aside_and_reported(tmp_path: Path) -> None:
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
            assert report["vendorErrorCode"] == "StorageReplaced"
            assert "state.db" in report["info"]
            assert list(data.glob("state.db.corrupt-*"))
            assert "moved aside" in daemon.log()

    run(scenario(), timeout=60 * UNIT)


def test_bad_config_stops_at_start_with_key_path_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "rtu.toml"
    config.write_text(
        CONFIG.format(url="http://nowhere/OS3P", data=tmp_path / "data").replace(
            "latitude = 51.98", "latitude = 951.98"
        )
    )
    for command in (["check-config", str(config)], ["run", "--config", str(config)]):
        result = subprocess.run(
            [sys.executable, "-m", "rtu.cli", *command], capture_output=True, text=True, check=False
        )
        assert result.returncode == 2, result.stderr
        assert "site.latitude" in result.stderr
        assert "central.url" in result.stderr  # every problem, not only the first
        assert str(config) in result.stderr
    assert not (tmp_path / "data").exists()  # nothing ran half-configured
