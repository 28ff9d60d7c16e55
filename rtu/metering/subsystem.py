"""The metering subsystem as the daemon sees it: built from config, wired in one call.

    subsystem = await MeteringSubsystem.build(load_metering(config), ...)
    subsystem.register(router, triggers)     # GetFile; MeterValues, GetFileStatus triggers
    for name, loop in subsystem.loops():     # meter-<name> per source, getfile, metering-retention
        tasks.create_task(supervised(name, loop, health), name=name)
    ...
    subsystem.snapshot()                     # for `rtu status`
    await subsystem.close()

MeterValues and GetFileStatusNotification leave through `emit` (the daemon's
`EventSink.emit`, followed by its MQTT hook). TriggerMessage MeterValues is
Rejected by the core handler when no meter is configured: the provider is
only registered when there is a source.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, Final

import msgspec

from os3p.messages import GetFileRequest, MessageTrigger, MeterValuesRequest
from os3p.router import Router
from rtu.configkeys import ConfigurationKeys
from rtu.files.content import configure_log_file
from rtu.files.getfile import FileSettings, GetFileService, Upload
from rtu.metering.analyser import ModbusAnalyser
from rtu.metering.config import MeterConfig, MeteringConfig
from rtu.metering.dlms import DlmsMeter
from rtu.metering.history import History
from rtu.metering.model import MeterSource
from rtu.metering.p1 import P1Port
from rtu.metering.sampler import Sampler, SamplerClock, SourceHealth
from rtu.triggers import Triggers

__all__ = ["MeteringSubsystem", "build_source"]

log = logging.getLogger(__name__)

_RETENTION_PERIOD: Final = 3600.0  # seconds between history purges
Loop = Callable[[], Awaitable[None]]
Emit = Callable[[msgspec.Struct], Awaitable[object]]


def build_source(meter: MeterConfig, clock: SamplerClock) -> MeterSource:
    if meter.dlms is not None:
        return DlmsMeter(meter.name, meter.dlms)
    if meter.p1 is not None:
        return P1Port(meter.p1, clock=clock)
    if meter.analyser is not None:
        return ModbusAnalyser(meter.name, meter.analyser, now=clock.now)
    raise ValueError(f"meter {meter.name!r} has no settings")


class MeteringSubsystem:
    def __init__(
        self,
        *,
        sampler: Sampler,
        history: History,
        files: GetFileService,
        retention: timedelta,
        now: Callable[[], datetime],
        log_handler: logging.Handler | None = None,
    ) -> None:
        self.sampler = sampler
        self.history = history
        self.files = files
        self._retention = retention
        self._now = now
        self._log_handler = log_handler

    @classmethod
    async def build(
        cls,
        config: MeteringConfig,
        *,
        station_id: str,
        data_dir: Path,
        zone: tzinfo,
        clock: SamplerClock,
        keys: ConfigurationKeys,
        emit: Emit,
        health: SourceHealth | None = None,
        status: Callable[[], Mapping[str, Any]] = dict,
        config_file: Path | None = None,
        sources: list[MeterSource] | None = None,
        upload: Upload | None = None,
        upload_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> MeteringSubsystem:
        """`sources` replaces the configured meters (tests, benchmarks)."""
        settings = config.settings
        history = await History.open(data_dir / "metering.db", now=clock.now)
        if history.moved_aside is not None:
            log.error("metering.db was unreadable; moved aside to %s", history.moved_aside)
        meters = sources if sources is not None else [build_source(m, clock) for m in config.meters]

        async def emit_meter_values(message: MeterValuesRequest) -> object:
            return await emit(message)

        sampler = Sampler(
            meters,
            emit=emit_meter_values,
            history=history,
            clock=clock,
            zone=zone,
            sample_interval=int(keys.value("MeterValueSampleInterval")),
            clock_interval=int(keys.value("ClockAlignedDataInterval")),
            health=health,
            retry_interval=settings.retry_interval,
            max_gap=timedelta(days=settings.max_gap_days),
        )
        keys.on_change("MeterValueSampleInterval", sampler.set_sample_interval)
        keys.on_change("ClockAlignedDataInterval", sampler.set_clock_interval)
        handler = None
        if settings.log_file is not None:
            handler = configure_log_file(
                settings.log_file, max_bytes=settings.log_max_bytes, backups=settings.log_backups
            )
        files = GetFileService(
            station_id=station_id,
            emit=emit,
            now=clock.now,
            history=history,
            settings=FileSettings(
                log_file=settings.log_file,
                attempts=settings.upload_attempts,
                backoff=settings.upload_backoff,
                timeout=settings.upload_timeout,
                ca_file=settings.upload_ca_file,
            ),
            status=status,
            config_file=config_file,
            data_dir=data_dir,
            upload=upload,
            sleep=upload_sleep,
        )
        return cls(
            sampler=sampler,
            history=history,
            files=files,
            retention=timedelta(days=settings.retention_days),
            now=clock.now,
            log_handler=handler,
        )

    def register(self, router: Router[Any], triggers: Triggers) -> None:
        router.add(GetFileRequest, self.files.get_file)
        triggers.provide(MessageTrigger.GET_FILE_STATUS_NOTIFICATION, self.files.current_status)
        if self.sampler.sources:
            triggers.provide(MessageTrigger.METER_VALUES, self._trigger_meter_values)

    async def _trigger_meter_values(self, contactor: int | None) -> list[msgspec.Struct]:
        return list(await self.sampler.trigger(contactor))

    def loops(self) -> list[tuple[str, Loop]]:
        loops: list[tuple[str, Loop]] = [
            (f"meter-{source.name}", self._loop_of(source)) for source in self.sampler.sources
        ]
        loops.append(("getfile", self.files.upload_loop))
        loops.append(("metering-retention", self.retention_loop))
        return loops

    def _loop_of(self, source: MeterSource) -> Loop:
        async def loop() -> None:
            try:
                await self.sampler.source_loop(source)
            finally:
                # A restarted loop starts from a fresh connection.
                try:
                    await source.close()
                except Exception:
                    log.exception("closing meter %s failed", source.name)

        return loop

    async def retention_loop(self) -> None:
        while True:
            removed = await self.history.purge(self._now() - self._retention)
            if removed:
                log.info(
                    "metering history: %d rows older than %s removed", removed, self._retention
                )
            await asyncio.sleep(_RETENTION_PERIOD)

    def snapshot(self) -> dict[str, Any]:
        meters = self.sampler.snapshot()
        for source in self.sampler.sources:
            if isinstance(source, P1Port):
                counters = source.counters
                meters[source.name]["p1"] = {
                    "telegrams": counters.telegrams,
                    "crc_errors": counters.crc_errors,
                    "parse_errors": counters.parse_errors,
                }
        return {"meters": meters, "files": self.files.snapshot()}

    def meter_lines(self) -> dict[str, str]:
        """One line per meter for `rtu status` (its `meters` section)."""
        lines: dict[str, str] = {}
        for name, meter in self.snapshot()["meters"].items():
            if meter["failing"]:
                text = f"FAILING ({meter['last_error']}), {meter['failures']} failed reads"
            else:
                text = f"ok, {meter['reads']} reads, last {meter['last_read'] or 'never'}"
            if "p1" in meter:
                p1 = meter["p1"]
                text += (
                    f"; telegrams {p1['telegrams']}, CRC errors {p1['crc_errors']},"
                    f" parse errors {p1['parse_errors']}"
                )
            if meter["filled_from_profile"]:
                text += f"; {meter['filled_from_profile']} intervals filled from the profile"
            values = ", ".join(f"{k}={v}" for k, v in list(meter["last_values"].items())[:4])
            lines[name] = text + (f"; {values}" if values else "")
        return lines

    async def close(self) -> None:
        for source in self.sampler.sources:
            try:
                await source.close()
            except Exception:
                log.exception("closing meter %s failed", source.name)
        await self.history.close()
        if self._log_handler is not None:
            logging.getLogger().removeHandler(self._log_handler)
            self._log_handler.close()
