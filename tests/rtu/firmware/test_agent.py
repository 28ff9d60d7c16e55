"""The agent in-process: real firmware.db, releases root and HTTP server; the sink and
the installer are fakes, the restart is a flag. What the daemon adds is covered by
test_update_end_to_end.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
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
from rtu.firmware.state import BootInstant, FirmwareState, Outcome, Phase, Request
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
        self.clock = Clock()
        # The machine's boot clock, driven by the test: (boot id, seconds since boot).
        self.boot = BootInstant("boot-1", 1000.0)

    async def restart(self) -> None:
        self.restarts += 1

    def agent(self, running: str = "0.1.0") -> FirmwareAgent:
        return FirmwareAgent(
            config(self.root), data_dir=self.data, sink=self.sink, clock=self.clock,
            running_version=running, accepted=self.accepted, restart=self.restart,
            installer=self.installer, boot_clock=lambda: self.boot,
        )  # fmt: skip

    def on_trial(self, *, window: float = 60.0, deadline: float | None = None) -> None:
        """0.2.0 installed, `current` → 0.2.0, `previous` → 0.1.0, the trial persisted
        with a deadline `window` s after the switch at `self.boot`."""
        (self.root / "releases" / "0.2.0").mkdir()
        os.replace(self.root / "current", self.root / "old")
        os.symlink("releases/0.2.0", self.root / "current")
        os.symlink("releases/0.1.0", self.root / "previous")
        now = datetime.now(UTC)
        store = FirmwareStore.open(self.data / "firmware.db", now=lambda: now)
        at = self.boot.seconds + window if deadline is None else deadline
        trial = FirmwareState(
            Phase.TRIAL, request=Request("http://x", now, 0, 0, "t"), target="0.2.0",
            previous="0.1.0", deadline=BootInstant(self.boot.boot_id, at), window=window,
            max_starts=5,
        )  # fmt: skip
        store.apply("ReleaseReady", Outcome(trial), now)
        store.close()


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
    rig.on_trial(window=60.0)
    rig.boot = BootInstant("boot-1", rig.boot.seconds + 61)  # restarted after the deadline

    async def scenario() -> None:
        async with running(rig.agent(running="0.2.0")) as agent:
            assert agent.state.phase is Phase.ROLLED_BACK
            assert rig.restarts == 1
            assert os.readlink(rig.root / "current") == "releases/0.1.0"
        assert rig.sink.sent == []  # reported by the old release, once it runs
        async with running(rig.agent(running="0.1.0")) as agent:
            assert agent.state.phase is Phase.IDLE
        assert rig.sink.sent == [("InstallationFailed", "t")]
        assert not (rig.root / "releases" / "0.2.0").exists()

    run(scenario())


def test_a_restart_in_the_same_boot_keeps_the_deadline_it_had(tmp_path: Path) -> None:
    """A crash and restart of the new release half-way: the rest of the window, not a
    new one. The deadline is 0.3 s away on the (fake) boot clock when it restarts."""
    rig = Rig(tmp_path)
    rig.on_trial(window=60.0, deadline=rig.boot.seconds + 0.3)

    async def scenario() -> None:
        async with running(rig.agent(running="0.2.0")) as agent:
            assert agent.state.phase is Phase.TRIAL
            rig.boot = BootInstant("boot-1", rig.boot.seconds + 0.3)  # the boot clock moves on
            await eventually(lambda: rig.restarts == 1, what="rolled back at the deadline")
            assert agent.state.phase is Phase.ROLLED_BACK
            assert os.readlink(rig.root / "current") == "releases/0.1.0"

    run(scenario())


def test_a_clock_correction_from_the_central_neither_triggers_nor_postpones(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path)
    rig.on_trial(window=60.0)

    async def scenario() -> None:
        async with running(rig.agent(running="0.2.0")) as agent:
            # The central says it is a day later (a station whose RTC lags): on wall
            # time the deadline would be long past.
            rig.clock.set_offset(timedelta(days=1))
            await asyncio.sleep(0.2)
            assert agent.state.phase is Phase.TRIAL
            assert rig.restarts == 0
            rig.accepted.set()
            await eventually(lambda: rig.sink.sent == [("Installed", "t")], what="Installed")
        # And the other way: a clock set back a day does not give a late trial more time.
        rig2 = Rig(tmp_path / "second")
        rig2.clock.set_offset(timedelta(days=-1))
        rig2.on_trial(window=60.0)
        rig2.boot = BootInstant("boot-1", rig2.boot.seconds + 60)
        async with running(rig2.agent(running="0.2.0")) as agent:
            assert agent.state.phase is Phase.ROLLED_BACK

    run(scenario())


def test_a_deleted_previous_release_does_not_stop_the_daemon(tmp_path: Path) -> None:
    """The rollback is due but the release to go back to was deleted (and the pre-start
    check, which runs from it, could not run): the daemon keeps the new release,
    reports InstallationFailed and carries on."""
    rig = Rig(tmp_path)
    rig.on_trial(window=60.0)
    shutil.rmtree(rig.root / "releases" / "0.1.0")  # `previous` now dangles
    rig.boot = BootInstant("boot-1", rig.boot.seconds + 61)

    async def scenario() -> None:
        async with running(rig.agent(running="0.2.0")) as agent:
            assert agent.state.phase is Phase.IDLE
            assert rig.restarts == 0
            assert os.readlink(rig.root / "current") == "releases/0.2.0"
            assert rig.sink.sent == [("InstallationFailed", "t")]
            assert "cannot roll back" in (agent.state.reason or "")
            assert await trigger(agent) == ("None", None)

    run(scenario())


def test_a_deadline_due_while_running_with_the_previous_release_gone(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.on_trial(window=60.0, deadline=rig.boot.seconds + 0.2)
    shutil.rmtree(rig.root / "releases" / "0.1.0")

    async def scenario() -> None:
        async with running(rig.agent(running="0.2.0")) as agent:
            assert agent.state.phase is Phase.TRIAL
            rig.boot = BootInstant("boot-1", rig.boot.seconds + 0.2)
            await eventually(lambda: agent.state.phase is Phase.IDLE, what="trial ended")
            assert rig.sink.sent == [("InstallationFailed", "t")]
            assert rig.restarts == 0
            assert os.readlink(rig.root / "current") == "releases/0.2.0"

    run(scenario())
