"""The firmware agent: UpdateFirmware (§7.13) in, FirmwareStatusNotification (§6.3) out.

The daemon builds one when rtu.toml has a `[firmware]` section and plugs it in
like every subsystem: `register(router, triggers)`, `loops()`, `snapshot()`,
`close()`; `open()` runs before READY.

Everything that happens goes through `_apply(event)`: the pure state machine
(`rtu.firmware.state`) computes the next state, the statuses to emit and the
actions; the state and the owed statuses are committed to `firmware.db` in one
transaction; the statuses are then committed to the daemon's outbox
(EventSink, guaranteed delivery); only then are the actions carried out
(switch `current`, discard a release, restart). A crash between any two of
these steps leaves a state that `Started` resolves at the next start.

`firmware_loop` does the slow work one step at a time: wait for
`retrieveDate` (or the retry interval), download, check the archive, verify
and install, then wait for the new release's Accepted boot. A second
UpdateFirmware that replaces a running one cancels the step in progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any, Protocol

import msgspec

from firmware.bundle import inspect_bundle, verify_bundle
from firmware.errors import BundleMalformed, FirmwareError
from os3p.messages import (
    FirmwareStatus,
    FirmwareStatusNotificationRequest,
    MessageTrigger,
    UpdateFirmwareRequest,
    UpdateFirmwareResponse,
)
from os3p.router import Router
from rtu.clock import Clock
from rtu.firmware.bootclock import boot_instant
from rtu.firmware.config import FirmwareConfig
from rtu.firmware.download import DownloadError, download, redact
from rtu.firmware.install import Installer, InstallError, OverlayInstaller, VenvInstaller
from rtu.firmware.releases import Releases
from rtu.firmware.rollback import invocation_id
from rtu.firmware.state import (
    Accepted,
    BootInstant,
    DeadlineExpired,
    DiscardDownload,
    DiscardRelease,
    DownloadAttemptFailed,
    DownloadBegan,
    Downloaded,
    Event,
    FirmwareState,
    InstallBegan,
    InstallFailed,
    Phase,
    ReleaseReady,
    Request,
    Requested,
    Restart,
    StartAttempt,
    Started,
    Status,
    SwitchCurrent,
    reported_status,
    step,
)
from rtu.firmware.store import FirmwareStore
from rtu.storage import DatabaseThread
from rtu.triggers import Triggers

__all__ = ["FirmwareAgent", "LoopFactory", "Sink"]

log = logging.getLogger(__name__)

LoopFactory = Callable[[], Coroutine[Any, Any, object]]


class Sink(Protocol):
    """The daemon's EventSink: validates and commits a message to the outbox."""

    async def emit(self, message: msgspec.Struct) -> int: ...


def _installer(config: FirmwareConfig) -> Installer:
    if config.installer == "overlay":
        return OverlayInstaller(config.python)
    return VenvInstaller(config.python)


class FirmwareAgent:
    def __init__(
        self,
        config: FirmwareConfig,
        *,
        data_dir: Path,
        sink: Sink,
        clock: Clock,
        running_version: str,
        accepted: asyncio.Event,
        restart: Callable[[], Awaitable[None]],
        installer: Installer | None = None,
        boot_clock: Callable[[], BootInstant] = boot_instant,
    ) -> None:
        self._config = config
        self._data_dir = data_dir
        self._downloads = data_dir / "firmware"
        self._sink = sink
        self._clock = clock
        self._running = running_version
        self._accepted = accepted
        self._restart = restart
        self._installer = installer or _installer(config)
        self._boot_clock = boot_clock  # the trial deadline's ruler (rtu.firmware.bootclock)
        self._releases = Releases(config.releases_root)
        self._thread = DatabaseThread("firmware-db")
        self._store: FirmwareStore | None = None
        self._state = FirmwareState()
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._work: asyncio.Task[None] | None = None
        self._generation = 0

    # ------------------------------------------------------------ daemon plumbing
    async def open(self) -> None:
        """Before READY: count this start, resolve an interrupted update, pay owed statuses."""
        self._store = await self._thread.run(
            FirmwareStore.open, self._data_dir / "firmware.db", now=self._clock.now
        )
        if self._store.moved_aside is not None:
            log.error("firmware.db was unreadable; moved aside to %s", self._store.moved_aside)
        self._state = await self._thread.run(self._store.state)
        current = await asyncio.to_thread(self._releases.current)
        installed = await self._installed()
        await self._apply(StartAttempt(current, invocation_id(), self._boot_clock(), installed))
        current = await asyncio.to_thread(self._releases.current)  # a rollback may have moved it
        installed = await self._installed()
        await self._apply(Started(self._running, current, self._clock.now(), installed))
        await self._pay_owed()

    def register(self, router: Router[Any], triggers: Triggers) -> None:
        router.add(UpdateFirmwareRequest, self.update_firmware)
        triggers.provide(MessageTrigger.FIRMWARE_STATUS_NOTIFICATION, self.status_notifications)

    def loops(self) -> list[tuple[str, LoopFactory]]:
        return [("firmware", self.firmware_loop)]

    def snapshot(self) -> dict[str, Any]:
        state = self._state
        return {
            "phase": state.phase.value,
            "status": reported_status(state).value,
            "request_id": state.request_id,
            "target": state.target,
            "previous": state.previous,
            "attempts": state.attempts,
            "starts": state.starts,
            "reason": state.reason,
        }

    async def close(self) -> None:
        if self._store is not None:
            await self._thread.run(self._store.close)
            self._store = None
        self._thread.shutdown()

    @property
    def state(self) -> FirmwareState:
        return self._state

    # ------------------------------------------------------------ OS³P
    async def update_firmware(
        self, request: UpdateFirmwareRequest, ctx: object
    ) -> UpdateFirmwareResponse:
        """§7.13: answered at once (empty response); the work happens in firmware_loop."""
        config = self._config
        wanted = Request(
            location=request.location,
            retrieve_at=request.retrieve_date.astimezone(UTC)
            if request.retrieve_date.tzinfo
            else request.retrieve_date.replace(tzinfo=UTC),  # errata S20: no offset is UTC
            retries=config.default_retries if request.retries is None else request.retries,
            retry_interval=config.default_retry_interval
            if request.retry_interval is None
            else request.retry_interval,
            request_id=request.request_id,
        )
        log.info(
            "UpdateFirmware %s from %s at %s",
            request.request_id or "(no requestId)",
            redact(request.location),
            wanted.retrieve_at.isoformat(),
        )
        await self._apply(Requested(wanted))
        if self._state.phase is Phase.SCHEDULED and self._state.request == wanted:
            # Taken (replacing any request not yet installing): the step in progress
            # belongs to the old request. Decided after the transition, under which a
            # step that meanwhile began installing is never cancelled.
            self._generation += 1
            if self._work is not None:
                self._work.cancel()
        else:
            log.warning("UpdateFirmware refused: an installation is in progress")
        self._wake.set()
        return UpdateFirmwareResponse()

    async def status_notifications(self, contactor: int | None) -> Sequence[msgspec.Struct]:
        """TriggerMessage FirmwareStatusNotification (§4.1): the current state, None if idle."""
        status = reported_status(self._state)
        return [
            FirmwareStatusNotificationRequest(
                status=FirmwareStatus(status.value),
                request_id=None if status.value == "None" else self._state.request_id,
            )
        ]

    # ------------------------------------------------------------ the loop
    async def firmware_loop(self) -> None:
        while True:
            self._wake.clear()
            work = asyncio.get_running_loop().create_task(
                self._next_step(self._generation), name="firmware-step"
            )
            self._work = work
            try:
                await work
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # the daemon stops
                log.debug("firmware step interrupted by a new UpdateFirmware")
            finally:
                self._work = None

    async def _next_step(self, generation: int) -> None:
        state = self._state
        match state.phase:
            case Phase.SCHEDULED:
                assert state.not_before is not None
                delay = (state.not_before - self._clock.now()).total_seconds()
                if delay > 0:
                    await self._sleep_or_wake(delay)
                    return
                await self._download(generation)
            case Phase.DOWNLOADED:
                await self._install(generation)
            case Phase.TRIAL if state.target == self._running:
                await self._confirm(state)
            case _:
                await self._wake.wait()

    async def _sleep_or_wake(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    def _bundle_path(self) -> Path:
        return self._downloads / "bundle.tar"

    async def _download(self, generation: int) -> None:
        request = self._state.request
        assert request is not None
        await self._apply(DownloadBegan(), generation)
        self._downloads.mkdir(parents=True, exist_ok=True)
        try:
            await download(
                request.location,
                self._bundle_path(),
                timeout=self._config.download_timeout,
                max_size=self._config.max_bundle_size,
                ssl_context=self._config.ssl_context() if self._config.ca_file else None,
            )
            manifest = await asyncio.to_thread(inspect_bundle, self._bundle_path())
        except (DownloadError, BundleMalformed) as exc:
            log.warning("firmware download attempt %d failed: %s", self._state.attempts, exc)
            await self._apply(DownloadAttemptFailed(str(exc), self._clock.now()), generation)
            return
        log.info("firmware bundle %s downloaded", manifest.version)
        await self._apply(Downloaded(manifest.version), generation)

    async def _install(self, generation: int) -> None:
        await self._apply(InstallBegan(), generation)
        try:
            previous = await self._build_release()
        except (FirmwareError, InstallError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or str(exc)
            log.error("firmware installation failed: %s", reason)  # noqa: TRY400 - reason is the news
            await self._apply(InstallFailed(reason))
            return
        log.warning("release %s installed; switching current and restarting", self._state.target)
        await self._apply(
            ReleaseReady(
                previous,
                self._boot_clock(),
                float(self._config.confirm_timeout),
                self._config.max_crashes + 1,
            )
        )

    async def _build_release(self) -> str:
        """Verify the bundle and build its release; returns the release it will replace."""
        target = self._state.target
        assert target is not None
        previous = await asyncio.to_thread(self._releases.current)
        if previous is None:
            raise InstallError(
                f"{self._releases.root}/current is not a release link: cannot install beside it"
            )
        with tempfile.TemporaryDirectory(prefix="wheels-", dir=self._downloads) as scratch:
            wheels = Path(scratch)
            manifest = await asyncio.to_thread(
                verify_bundle,
                self._bundle_path(),
                self._config.trusted_keys,
                running_version=self._running,
                extract_to=wheels,
            )
            if manifest.version != target:
                raise InstallError(f"bundle changed under us: {manifest.version} != {target}")
            if target == previous:
                raise InstallError(f"release {target} is already current")
            release = self._releases.path(target)
            await asyncio.to_thread(shutil.rmtree, release, True)
            release.parent.mkdir(parents=True, exist_ok=True)
            await self._installer.install(wheels, target, release)
        await asyncio.to_thread(self._releases.set_previous, previous)
        return previous

    async def _confirm(self, state: FirmwareState) -> None:
        """TRIAL in the new release: Installed on Accepted, rollback at the deadline."""
        assert state.deadline is not None
        now = self._boot_clock()
        # Same boot: open() re-based a deadline of an earlier boot. The clamp only
        # guards against a state written by hand.
        remaining = state.deadline.seconds - now.seconds
        if state.deadline.boot_id != now.boot_id:
            remaining = state.window
        try:
            async with asyncio.timeout(min(max(0.0, remaining), state.window)):
                await self._accepted.wait()
        except TimeoutError:
            outcome_before = self._state
            await self._apply(
                DeadlineExpired(self._running, self._boot_clock(), await self._installed())
            )
            if self._state.phase is Phase.ROLLED_BACK:
                log.error(  # noqa: TRY400 - a deadline, not an error with a useful traceback
                    "release %s not Accepted before the deadline: rolled back", state.target
                )
                await self._wake.wait()  # the restart is under way
            elif self._state is outcome_before:
                await asyncio.sleep(1.0)  # not yet due on the boot clock: look again
            return
        await self._apply(Accepted(self._running))

    # ------------------------------------------------------------ the one way state changes
    async def _apply(self, event: Event, generation: int | None = None) -> None:
        async with self._lock:
            if generation is not None and generation != self._generation:
                return  # a step of a request that has been replaced
            outcome = step(self._state, event)
            if outcome.state == self._state and not outcome.emit and not outcome.actions:
                return
            assert self._store is not None
            name = type(event).__name__
            await self._thread.run(self._store.apply, name, outcome, self._clock.now())
            if outcome.state.phase is not self._state.phase:
                log.info(
                    "firmware %s: %s → %s", name, self._state.phase.value, outcome.state.phase.value
                )
            self._state = outcome.state
            if any(status is Status.INSTALLATION_FAILED for status, _ in outcome.emit):
                log.error("firmware update failed: %s", outcome.state.reason)
            await self._pay_owed()
            for action in outcome.actions:
                await self._act(action)

    async def _installed(self) -> frozenset[str]:
        return frozenset(await asyncio.to_thread(self._releases.installed))

    async def _pay_owed(self) -> None:
        assert self._store is not None
        for seq, status, request_id in await self._thread.run(self._store.owed):
            await self._sink.emit(
                FirmwareStatusNotificationRequest(
                    status=FirmwareStatus(status.value), request_id=request_id
                )
            )
            await self._thread.run(self._store.settle, seq)

    async def _act(
        self, action: SwitchCurrent | Restart | DiscardRelease | DiscardDownload
    ) -> None:
        match action:
            case SwitchCurrent(version):
                await asyncio.to_thread(self._releases.switch, version)
                log.warning("current → release %s", version)
            case DiscardRelease(version):
                if version != await asyncio.to_thread(self._releases.current):
                    await asyncio.to_thread(self._releases.discard, version)
            case DiscardDownload():
                await asyncio.to_thread(shutil.rmtree, self._downloads, True)
            case Restart():
                log.warning("restarting the daemon for the firmware update")
                await self._restart()
