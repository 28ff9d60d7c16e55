"""The daemon: restores state, then runs every loop under one TaskGroup until stopped.

Start-up order matters for the lights and for systemd (DESIGN.md "Runtime"):
1. open the state database (a corrupt file is moved aside and reported), note
   whether the previous run ended cleanly, restore the clock offset and the
   configuration values the central changed;
2. open the outbox;
3. only then READY=1 — the daemon is usable from its persisted state alone,
   with no network (the schedule must run without the central);
4. start the loops: link, outbox pump, status writer, watchdog, and the
   subsystems' loops, each supervised (restarted with backoff on failure).

Stopping (SIGTERM, or Reset from the central): cancel the loops, mark a clean
shutdown, close the databases, and for Reset run the configured reboot command
(systemd restarts the daemon otherwise: `Restart=always`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
import os
import signal
import ssl
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from os3p.errors import ErrorCode, HandlerError
from os3p.messages import (
    BootNotificationRequest,
    MessageTrigger,
    StationErrorCode,
    StationStatus,
    StatusNotificationRequest,
    UpdateFirmwareRequest,
)
from os3p.router import Router
from os3p.validation import Validator
from rtu.clock import Clock
from rtu.config import Config
from rtu.configkeys import ConfigurationKeys, standard_keys
from rtu.events import EventSink
from rtu.handlers.core import CoreContext, register_core_handlers
from rtu.link import Link, LinkSettings
from rtu.outbox.pump import Outbox, StorageFault, pump_loop
from rtu.schedule.model import Site
from rtu.schedule.sun import Polar, SunTime, sunrise, sunset
from rtu.state.store import PreviousRun, StateStore
from rtu.status import write_snapshot
from rtu.storage import DatabaseThread
from rtu.subsystems import Built, DeviceConfig, build_subsystems, close_all
from rtu.supervise import Health, supervised
from rtu.systemd import Notifier, watchdog_loop
from rtu.triggers import Triggers

__all__ = ["Daemon", "firmware_version"]

log = logging.getLogger(__name__)

STATUS_PERIOD = 5.0
DATA_DISK = "data disk"  # the FaultBoard source of a storage fault


async def _firmware_not_configured(request: UpdateFirmwareRequest, ctx: object) -> msgspec.Struct:
    # Guide §4.2: implemented, but this station's configuration cannot serve it.
    raise HandlerError(ErrorCode.NOT_SUPPORTED, "no [firmware] section in this station's config")


def firmware_version() -> str:
    """BootNotification.firmwareVersion comes from the installed package (issue 4)."""
    try:
        return importlib.metadata.version("substation-rtu-gateway")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


class StateRecords:
    """The link's view of the state database (runs every call on the DB thread)."""

    def __init__(self, thread: DatabaseThread, store: StateStore, clock: Clock) -> None:
        self._thread = thread
        self._store = store
        self._clock = clock

    async def boot_due(self, fields: Mapping[str, str], endpoint: str) -> bool:
        return await self._thread.run(self._store.boot_due, fields, endpoint)

    async def record_accepted_boot(
        self, fields: Mapping[str, str], endpoint: str, at: datetime
    ) -> None:
        await self._thread.run(self._store.record_boot_accepted, fields, endpoint, at)

    async def save_clock_offset(self, offset: timedelta) -> None:
        await self._thread.run(self._store.save_clock_offset, offset, self._clock.now())


def _ssl_context(config: Config) -> ssl.SSLContext | None:
    if not config.central.url.startswith("wss:"):
        return None
    context = ssl.create_default_context(
        cafile=str(config.central.ca_file) if config.central.ca_file else None
    )
    if config.central.client_cert and config.central.client_key:
        context.load_cert_chain(config.central.client_cert, config.central.client_key)
    return context


class Daemon:
    def __init__(
        self,
        config: Config,
        devices: DeviceConfig,
        *,
        notifier: Notifier,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.devices = devices
        self.notifier = notifier
        self.clock = clock or Clock()
        self.health = Health()
        self.validator = Validator()
        self.triggers = Triggers()
        self.stop_requested = asyncio.Event()
        self.reset_requested = False
        self._background: set[asyncio.Task[None]] = set()
        self.link: Link | None = None
        self.outbox: Outbox | None = None
        self.events: EventSink | None = None
        self.keys: ConfigurationKeys | None = None
        self.built: Built | None = None
        self._status_error: str | None = None  # why status.json could not be written

    def boot_request(self) -> BootNotificationRequest:
        station = self.config.station
        return BootNotificationRequest(
            vendor=station.vendor,
            model=station.model,
            station_number=station.station_number,
            serial_number=station.serial_number,
            firmware_version=firmware_version(),
            iccid=station.iccid,
            imsi=station.imsi,
        )

    # ------------------------------------------------------------------ run
    async def run(self) -> int:
        data_dir = self.config.data.dir
        data_dir.mkdir(parents=True, exist_ok=True)
        state_thread = DatabaseThread("state-db")
        state = await state_thread.run(StateStore.open, data_dir / "state.db", now=self.clock.now)
        try:
            previous = await state_thread.run(state.mark_running, self.clock.now())
            offset = await state_thread.run(state.clock_offset)
            if offset is not None:
                self.clock.set_offset(offset.offset)
                log.info("clock offset restored: %+.3f s", offset.offset.total_seconds())
            settings = await state_thread.run(state.settings)
            outbox = await Outbox.open(
                data_dir / "outbox.db",
                clock=self.clock.now,
                max_entries=self.config.link.outbox_max_entries,
                dead_letter_after=self.config.link.dead_letter_after,
                retry_base=timedelta(seconds=self.config.link.outbox_retry_base),
                retry_cap=timedelta(seconds=self.config.link.outbox_retry_cap),
                memory_max_entries=self.config.link.outbox_memory_max_entries,
                settle=self.config.link.outbox_disk_settle,
            )
            try:
                return await self._run(state_thread, state, outbox, previous, settings)
            finally:
                await outbox.close()
        finally:
            await state_thread.run(state.mark_clean_shutdown, self.clock.now())
            await state_thread.run(state.close)
            state_thread.shutdown()
            if self.reset_requested and self.config.system.reboot_command:
                command = list(self.config.system.reboot_command)
                log.warning("running reboot command %s", command)
                process = await asyncio.create_subprocess_exec(*command)
                await process.wait()

    async def _run(
        self,
        state_thread: DatabaseThread,
        state: StateStore,
        outbox: Outbox,
        previous: PreviousRun,
        settings: Mapping[str, str],
    ) -> int:
        self.outbox = outbox
        self.events = EventSink(outbox, self.validator)
        outbox.on_storage_change(self._on_storage_change)
        keys = self._configuration_keys(state_thread, state, settings)
        self.keys = keys
        router: Router[CoreContext] = Router()
        register_core_handlers(router)
        link_config = self.config.link
        link = Link(
            LinkSettings(
                endpoint=self.config.central.url.rstrip("/"),
                station_id=self.config.station.id,
                boot=self.boot_request(),
                password=self.config.central.password,
                ssl_context=_ssl_context(self.config),
                call_timeout=self.config.central.call_timeout,
                window=link_config.outbox_window,
                backoff_base=link_config.reconnect_backoff_base,
                backoff_cap=link_config.reconnect_backoff_cap,
            ),
            router,
            CoreContext(
                keys=keys,
                persist=lambda name, value: state_thread.run(
                    state.set_setting, name, value, self.clock.now()
                ),
                triggers=self.triggers,
                send_now=self._send_now,
                request_reset=self._reset,
                background=self._spawn,
            ),
            records=StateRecords(state_thread, state, self.clock),
            clock=self.clock,
            validator=self.validator,
            heartbeat_interval=float(keys.value("HeartbeatInterval")),
            ping_interval=float(keys.value("websocketPingInterval")),
        )
        self.link = link
        keys.on_change("HeartbeatInterval", lambda v: link.set_heartbeat_interval(float(v)))
        keys.on_change("websocketPingInterval", lambda v: setattr(link, "ping_interval", float(v)))
        self.triggers.on_trigger(MessageTrigger.BOOT_NOTIFICATION, link.trigger_boot)
        self.triggers.on_trigger(MessageTrigger.HEARTBEAT, link.heartbeat_now)
        built = await build_subsystems(
            self.config,
            self.devices,
            clock=self.clock,
            events=self.events,
            keys=keys,
            running_version=firmware_version(),
            accepted=link.accepted,
            restart=self._restart_for_update,
            status=self.snapshot,
            spawn=self._spawn,
        )
        self.built = built
        for subsystem in built.all:
            subsystem.register(router, self.triggers)
        if built.firmware is None:
            router.add(UpdateFirmwareRequest, _firmware_not_configured)

        await self._report_start(previous, state, outbox)
        self.notifier.ready()
        log.info("station %s ready (firmware %s)", self.config.station.id, firmware_version())

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop_requested.set)
        try:
            async with asyncio.TaskGroup() as tasks:
                loops = [
                    tasks.create_task(supervised("link", link.run_loop, self.health), name="link"),
                    tasks.create_task(
                        supervised(
                            "outbox",
                            lambda: pump_loop(
                                outbox,
                                link.send_raw,
                                window=link_config.outbox_window,
                                wake=link.accepted,
                            ),
                            self.health,
                        ),
                        name="outbox",
                    ),
                    tasks.create_task(
                        supervised("outbox-disk", outbox.recover_loop, self.health),
                        name="outbox-disk",
                    ),
                    tasks.create_task(
                        supervised("status", self._status_loop, self.health), name="status"
                    ),
                    tasks.create_task(
                        watchdog_loop(self.notifier, self.health.healthy), name="watchdog"
                    ),
                ]
                loops += [
                    tasks.create_task(supervised(name, factory, self.health), name=name)
                    for name, factory in built.loops()
                ]
                await self.stop_requested.wait()
                self.notifier.stopping()
                log.info("stopping")
                await link.close()
                for task in [*loops, *self._background]:
                    task.cancel()
            await close_all(built)
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        return 0

    # ------------------------------------------------------------ pieces
    def _configuration_keys(
        self, state_thread: DatabaseThread, state: StateStore, settings: Mapping[str, str]
    ) -> ConfigurationKeys:
        specs = standard_keys()
        defaults: dict[str, Any] = {
            "HeartbeatInterval": self.config.link.heartbeat_interval,
            "websocketPingInterval": self.config.link.websocket_ping_interval,
            "Geolocation": (self.config.site.latitude, self.config.site.longitude),
            # The [lights] section's limit is the default of the OS³P key (§7.1 Table 9).
            "StreetlightProfileMaxStackLevel": (
                self.devices.lights.max_stack_level if self.devices.lights is not None else 10
            ),
            "MeterValueSampleInterval": 0,
            "ClockAlignedDataInterval": 900,
        }
        persisted, rejected = ConfigurationKeys.parse_persisted(specs, settings)
        for name, reason in rejected.items():
            log.warning("persisted setting %s ignored: %s", name, reason)
        return ConfigurationKeys(
            specs,
            {**defaults, **persisted},
            providers={
                "Sunrise": self._sun_provider(sunrise),
                "Sunset": self._sun_provider(sunset),
            },
        )

    def _sun_provider(self, event: Callable[[Site, date], SunTime]) -> Callable[[], str]:
        """§5 Sunrise/Sunset (RO): today's, at the current Geolocation, local time."""

        def provide() -> str:
            assert self.keys is not None
            lat, lng = self.keys.value("Geolocation")
            zone = self.config.site.timezone
            today = self.clock.now().astimezone(zone).date()
            moment = event(Site(lat, lng, zone), today)
            if isinstance(moment, Polar):
                return "none (polar night)" if moment is Polar.NIGHT else "none (polar day)"
            return moment.astimezone(zone).isoformat(timespec="seconds")

        return provide

    async def _send_now(self, request: msgspec.Struct) -> object:
        assert self.link is not None
        return await self.link.call(request)

    def _spawn(self, work: Awaitable[None], name: str) -> None:
        async def run() -> None:
            try:
                await work
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background task %s failed", name)

        task = asyncio.get_running_loop().create_task(run(), name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _reset(self) -> None:
        """OS³P §7.8 Reset: persist, drain in-flight work, stop; systemd starts us again."""
        self.reset_requested = True
        assert self.outbox is not None
        self.stop_requested.set()

    async def _restart_for_update(self) -> None:
        """The firmware agent switched `current`: stop cleanly; systemd starts the new one."""
        self.stop_requested.set()

    async def _report_start(self, previous: PreviousRun, state: StateStore, outbox: Outbox) -> None:
        assert self.events is not None
        now = self.clock.now()
        if previous.unexpected:
            # §3.2: "If the reboot was the result of unexpected behaviour, the Substation
            # must report this ... via a StatusNotification". No errorCode names it (errata
            # §5): NoError with an info text keeps it informational, not an open fault.
            log.warning("previous run did not end cleanly: reporting the unexpected restart")
            await self.events.emit(
                StatusNotificationRequest(
                    status=StationStatus.OK,
                    error_code=StationErrorCode.NO_ERROR,
                    info="Unexpected restart: the previous run did not shut down cleanly",
                    timestamp=now,
                )
            )
        for name, moved in (("state.db", state.moved_aside), ("outbox.db", outbox.moved_aside)):
            if moved is not None:
                log.error("%s was unreadable and was moved aside to %s; started fresh", name, moved)
                await self.events.emit(
                    StatusNotificationRequest(
                        status=StationStatus.OK,
                        error_code=StationErrorCode.OTHER_ERROR,
                        info=f"{name} was corrupt; moved aside to {moved.name}; started afresh"[
                            :128
                        ],
                        vendor_id="org.opengrid.rtu",
                        vendor_error_code="StorageReplaced",
                        timestamp=now,
                    )
                )

    def _on_storage_change(self, fault: StorageFault | None) -> None:
        """The outbox's disk failed or recovered: an open OtherError at the central.

        OS³P 0.4 §6.6 Table 4 has no error code for storage; OtherError is the
        one that fits (docs/faults.md). Raised and resolved through the fault
        board, so the station status stays one computed value; the notification
        itself is held in memory like every event while the disk is unusable.
        """
        if self.built is None:
            return
        board = self.built.supervision.board

        async def report() -> None:
            if fault is not None:
                info = f"data disk unusable: {fault.reason}"[:128]
                await board.raise_fault(StationErrorCode.OTHER_ERROR, DATA_DISK, info=info)
            else:
                await board.resolve_fault(StationErrorCode.OTHER_ERROR, DATA_DISK)

        self._spawn(report(), "storage-fault" if fault is not None else "storage-ok")

    def snapshot(self) -> dict[str, Any]:
        link = self.link
        fault = self.outbox.storage_fault if self.outbox is not None else None
        return {
            "written_at": self.clock.system_now().isoformat(),
            "pid": os.getpid(),
            "version": firmware_version(),
            "station_id": self.config.station.id,
            "endpoint": self.config.central.url,
            "link": {
                "state": link.state.value if link else "offline",
                "last_error": link.last_error if link else None,
            },
            "clock_offset_s": self.clock.offset.total_seconds(),
            "failing_loops": dict(self.health.failing),
            "storage": {
                "fault": fault.reason if fault else None,
                "since": fault.since.isoformat() if fault else None,
                "held": fault.held if fault else 0,
                "status_json": self._status_error,
            },
            **(self.built.snapshot() if self.built is not None else {}),
        }

    async def _status_loop(self) -> None:
        data_dir: Path = self.config.data.dir
        while not self.stop_requested.is_set():
            snapshot = self.snapshot()
            try:
                await asyncio.to_thread(write_snapshot, data_dir, snapshot)
            except OSError as exc:
                # A read-only data disk: the snapshot cannot be written anywhere we own.
                # Said once; STATUS= (systemctl status) and the log carry the fault.
                if self._status_error is None:
                    log.error("cannot write %s: %s", data_dir / "status.json", exc)  # noqa: TRY400
                self._status_error = str(exc)
            else:
                if self._status_error is not None:
                    log.warning("status.json is written again")
                self._status_error = None
            assert self.outbox is not None
            link_state = snapshot["link"]["state"]
            disk = snapshot["storage"]["fault"]
            self.notifier.status(
                f"link {link_state}, outbox {self.outbox.depth()} queued"
                + (f", DATA DISK FAULT: {disk}" if disk else "")
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STATUS_PERIOD):
                    await self.stop_requested.wait()
