"""The agent in-process: real firmware.db, releases root and HTTP server; the sink and
the installer are fakes, the restart is a flag. What the daemon adds is covered by
test_update_end_to_end.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from os3p.messages import FirmwareStatusNotificationRequest, UpdateFirmwareRequest
from rtu.clock import Clock
from rtu.firmware.agent import FirmwareAgent
from rtu.firmware.config import FirmwareConfig
from rtu.firmware.state import FirmwareState, Outcome, Phase, Request
from rtu.firmware.store import FirmwareStore
from tests.firmware.support import make_bundle
from tests.support.aio import eventually, run

KEY = Ed25519PrivateKey.generate()


class Sink:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str | None]] = []

    async def emit(self, message: msgspec.Struct) -> int:
        assert isinstance(message, FirmwareStatusNotificationRequest)
        self.sent.append((message.status.value, message.request_id))
        return len(self.sent)


class FakeInstaller:
    """Makes `bin/` and waits for `release` to be set (to hold the agent in INSTALLING)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.release.set()
        self.installed: list[str] = []

    async def install(self, wheels: Path, version: str, release: Path) -> None:
        await self.release.wait()
        (release / "bin").mkdir(parents=True)
        self.installed.append(version)


def config(root: Path) -> FirmwareConfig:
    return FirmwareConfig(
        trusted_keys=(KEY.public_key(),),
        releases_root=root,
        confirm_timeout=60,
        max_crashes=1,
        installer="overlay",
        python=Path(sys.executable),
        default_retries=0,
        default_retry_interval=0,
        download_timeout=10,
        max_bundle_size=1 << 20,
    )


class Rig:
    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path / "opt"
        (self.root / "releases" / "0.1.0").mkdir(parents=True)
        os.symlink("releases/0.1.0", self.root / "current")
        self.data = tmp_path / "data"
        self.sink = Sink()
        self.installer = FakeInstaller()
        self.restarts = 0
        self.accepted = asyncio.Event()

    async def restart(self) -> None:
        self.restarts += 1

    def agent(self, running: str = "0.1.0") -> FirmwareAgent:
        return FirmwareAgent(
            config(self.root), data_dir=self.data, sink=self.sink, clock=Clock(),
            running_version=running, accepted=self.accepted, restart=self.restart,
            installer=self.installer,
        )  # fmt: skip


@contextlib.asynccontextmanager
async def running(agent: FirmwareAgent) -> AsyncIterator[FirmwareAgent]:
    await agent.open()
    task = asyncio.get_running_loop().create_task(agent.firmware_loop())
    try:
        yield agent
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await agent.close()


@contextlib.asynccontextmanager
async def serving(bundle: bytes) -> AsyncIterator[str]:
    async def get(request: web.Request) -> web.Response:
        return web.Response(body=bundle)

    app = web.Application()
    app.router.add_get("/b.tar", get)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/b.tar"
    finally:
        await runner.cleanup()


def request(url: str, request_id: str, delay: float = -60) -> UpdateFirmwareRequest:
    return UpdateFirmwareRequest(
        retrieve_date=datetime.now(UTC) + timedelta(seconds=delay),
        location=url,
        request_id=request_id,
    )


async def trigger(agent: FirmwareAgent) -> tuple[str, str | None]:
    [message] = await agent.status_notifications(None)
    assert isinstance(message, FirmwareStatusNotificationRequest)
    return message.status.value, message.request_id


def test_install_switch_restart_then_installed_on_the_new_versions_accepted_boot(
    tmp_path: Path,
) -> None:
    bundle = make_bundle(tmp_path, KEY).read_bytes()
    rig = Rig(tmp_path)

    async def scenario() -> None:
        async with serving(bundle) as url, running(rig.agent()) as agent:
            assert await trigger(agent) == ("None", None)
            await agent.update_firmware(request(url, "r1"), None)
            await eventually(lambda: rig.restarts == 1, what="restart")
            assert os.readlink(rig.root / "current") == "releases/0.2.0"
            assert os.readlink(rig.root / "previous") == "releases/0.1.0"
            assert agent.state.phase is Phase.TRIAL
            assert await trigger(agent) == ("Installing", "r1")
        assert rig.sink.sent == [
            ("Downloading", "r1"), ("Downloaded", "r1"), ("Installing", "r1"),
        ]  # fmt: skip
        # The next start, as the new release: Installed only once Accepted.
        async with running(rig.agent(running="0.2.0")) as agent:
            await asyncio.sleep(0.05)
            assert rig.sink.sent[-1] == ("Installing", "r1")
            rig.accepted.set()
            await eventually(lambda: rig.sink.sent[-1] == ("Installed", "r1"), what="Installed")
            assert await trigger(agent) == ("None", None)

    run(scenario())


def test_a_later_request_replaces_one_that_has_not_started_installing(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path, KEY).read_bytes()
    rig = Rig(tmp_path)

    async def scenario() -> None:
        async with serving(bundle) as url, running(rig.agent()) as agent:
            await agent.update_firmware(request(url, "later", delay=3600), None)
            await asyncio.sleep(0.05)
            assert agent.state.phase is Phase.SCHEDULED
            assert await trigger(agent) == ("None", None)  # scheduled: nothing happened yet
            await agent.update_firmware(request(url, "now"), None)
            await eventually(lambda: rig.restarts == 1, what="restart")
        assert {rid for _, rid in rig.sink.sent} == {"now"}

    run(scenario())


def test_a_request_during_installation_is_refused_and_the_first_one_finishes(
    tmp_path: Path,
) -> None:
    bundle = make_bundle(tmp_path, KEY).read_bytes()
    rig = Rig(tmp_path)
    rig.installer.release.clear()

    async def scenario() -> None:
        async with serving(bundle) as url, running(rig.agent()) as agent:
            await agent.update_firmware(request(url, "first"), None)
            await eventually(lambda: agent.state.phase is Phase.INSTALLING, what="installing")
            await agent.update_firmware(request(url, "second"), None)
            assert rig.sink.sent[-1] == ("DownloadFailed", "second")
            rig.installer.release.set()
            await eventually(lambda: rig.restarts == 1, what="restart")
            assert agent.state.request_id == "first"

    run(scenario())


def test_retrieve_date_in_the_future_is_waited_for(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path, KEY).read_bytes()
    rig = Rig(tmp_path)

    async def scenario() -> None:
        async with serving(bundle) as url, running(rig.agent()) as agent:
            await agent.update_firmware(request(url, "soon", delay=0.5), None)
            await asyncio.sleep(0.2)
            assert rig.sink.sent == []
            await eventually(lambda: rig.restarts == 1, what="restart", timeout=5)

    run(scenario())


def test_a_download_cut_by_a_crash_is_retried_at_the_next_start(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path, KEY).read_bytes()
    rig = Rig(tmp_path)

    async def scenario() -> None:
        async with serving(bundle) as url:
            # What a SIGKILL mid-download leaves behind: DOWNLOADING, attempt 1 of 2.
            store = FirmwareStore.open(rig.data / "firmware.db", now=lambda: datetime.now(UTC))
            crashed = FirmwareState(
                Phase.DOWNLOADING,
                request=Request(url, datetime.now(UTC), retries=1, retry_interval=0,
                                request_id="resumed"),
                attempts=1,
            )  # fmt: skip
            store.apply("DownloadBegan", Outcome(crashed), datetime.now(UTC))
            store.close()
            async with running(rig.agent()):
                await eventually(lambda: rig.restarts == 1, what="restart")
        assert rig.sink.sent == [
            ("Downloading", "resumed"), ("Downloaded", "resumed"), ("Installing", "resumed"),
        ]  # fmt: skip

    run(scenario())


def test_without_the_pre_start_check_the_daemon_rolls_back_a_late_trial(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    (rig.root / "releases" / "0.2.0").mkdir()
    os.replace(rig.root / "current", rig.root / "old")
    os.symlink("releases/0.2.0", rig.root / "current")
    past = datetime.now(UTC) - timedelta(minutes=1)
    store = FirmwareStore.open(rig.data / "firmware.db", now=lambda: past)
    trial = FirmwareState(
        Phase.TRIAL, request=Request("http://x", past, 0, 0, "late"), target="0.2.0",
        previous="0.1.0", deadline=past, max_starts=5,
    )  # fmt: skip
    store.apply("ReleaseReady", Outcome(trial), past)
    store.close()

    async def scenario() -> None:
        async with running(rig.agent(running="0.2.0")) as agent:
            assert agent.state.phase is Phase.ROLLED_BACK
            assert rig.restarts == 1
            assert os.readlink(rig.root / "current") == "releases/0.1.0"
        assert rig.sink.sent == []  # reported by the old release, once it runs
        async with running(rig.agent(running="0.1.0")) as agent:
            assert agent.state.phase is Phase.IDLE
        assert rig.sink.sent == [("InstallationFailed", "late")]
        assert not (rig.root / "releases" / "0.2.0").exists()

    run(scenario())
