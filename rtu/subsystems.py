"""The daemon's composition root for the device subsystems.

`rtu.config` leaves the device sections (`[io]`, `[lights]`, `[mv]`, `[alarms]`,
`[[meters]]`, `[mqtt]`) to their owners; this module knows the owners. It reads
every section at start through the shared `TableReader` — all problems of all
sections reported together, before anything runs — and builds the subsystems.
A section present in the file with no driver in this build is an error, not
ignored: a technician who configured a device must not believe it is in use.

Every subsystem offers the same small surface to the daemon:

    register(router, triggers)   its OS³P handlers and TriggerMessage providers
    loops()                      named long-running coroutines (run supervised)
    snapshot()                   what `rtu status` shows of it
    close()                      release devices at stop

The I/O module is shared: one `IOPoller` reads it for the lights controller
(feedback, local switch) and the MV monitor (indicator contacts).
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from rtu.clock import Clock
from rtu.config import Config, Problems, TableReader
from rtu.configkeys import ConfigurationKeys
from rtu.events import EventSink
from rtu.firmware.agent import FirmwareAgent
from rtu.firmware.config import FirmwareConfig, read_firmware
from rtu.io.config import IOConfig, read_io_config
from rtu.io.modbus import ModbusIOModule
from rtu.io.poller import IOPoller
from rtu.lights.config import LightsConfig, read_lights_config
from rtu.lights.subsystem import LightsSubsystem
from rtu.metering.config import MeteringConfig, read_metering_config
from rtu.metering.model import Sample
from rtu.metering.subsystem import MeteringSubsystem
from rtu.mqtt import MqttConfig, MqttPublisher, read_mqtt_config
from rtu.supervision.config import SupervisionConfig, read_supervision_config
from rtu.supervision.subsystem import SupervisionSubsystem
from rtu.triggers import Triggers

__all__ = [
    "Built",
    "DeviceConfig",
    "Subsystem",
    "build_subsystems",
    "check_device_sections",
    "close_all",
    "read_device_config",
]

# Sections this build reads; every other one in the file is reported.
_KNOWN_SECTIONS = frozenset(
    {"io", "lights", "mv", "alarms", "firmware", "meters", "metering", "mqtt"}
)


class Subsystem(Protocol):
    def register(self, router: Any, triggers: Triggers) -> None: ...

    def loops(self) -> Sequence[tuple[str, Callable[[], Awaitable[object]]]]: ...

    def snapshot(self) -> Mapping[str, Any]: ...

    def close(self) -> object: ...


@dataclasses.dataclass(frozen=True)
class DeviceConfig:
    io: IOConfig | None
    lights: LightsConfig | None
    supervision: SupervisionConfig
    firmware: FirmwareConfig | None  # None: UpdateFirmware is answered NotSupported
    metering: MeteringConfig
    mqtt: MqttConfig | None


def _section(config: Config, name: str, problems: Problems) -> TableReader | None:
    if name not in config.devices:
        return None
    raw = config.devices[name]
    if not isinstance(raw, dict):
        problems.add(name, f"must be a table ([{name}])")
        return None
    return TableReader(raw, name, problems, config.file.parent)


def read_device_config(config: Config) -> DeviceConfig:
    """Validate every device section; raises ConfigInvalid listing all problems."""
    problems = Problems(config.file)
    for name in sorted(set(config.devices) - _KNOWN_SECTIONS):
        problems.add(name, "this build has no driver for this section yet")
    io_section = _section(config, "io", problems)
    io = read_io_config(io_section) if io_section is not None else None
    lights_section = _section(config, "lights", problems)
    lights: LightsConfig | None = None
    if io is not None:
        empty = TableReader({}, "lights", problems, config.file.parent)
        lights = read_lights_config(lights_section if lights_section is not None else empty)
    elif lights_section is not None:
        problems.add("lights", "needs an [io] section: the contactors are driven through it")
    groups = [group.name for group in io.iomap.indicators] if io is not None else []
    supervision = read_supervision_config(
        config.devices, problems, config.file.parent, indicator_groups=groups
    )
    firmware_section = _section(config, "firmware", problems)
    firmware = None
    if firmware_section is not None:
        firmware = read_firmware(firmware_section)
        firmware_section.done()
    metering = read_metering_config(config, problems)
    mqtt = read_mqtt_config(config, problems)
    problems.raise_if_any()
    return DeviceConfig(
        io=io,
        lights=lights,
        supervision=supervision,
        firmware=firmware,
        metering=metering,
        mqtt=mqtt,
    )


def check_device_sections(config: Config) -> None:
    """`rtu check-config`'s view: raises ConfigInvalid listing every problem."""
    read_device_config(config)


@dataclasses.dataclass
class Built:
    poller: IOPoller | None
    lights: LightsSubsystem | None
    supervision: SupervisionSubsystem
    firmware: FirmwareAgent | None
    metering: MeteringSubsystem
    mqtt: MqttPublisher | None

    @property
    def all(self) -> list[Subsystem]:
        return [
            s
            for s in (self.lights, self.supervision, self.firmware, self.metering)
            if s is not None
        ]

    def snapshot(self) -> dict[str, Any]:
        """For `rtu status`: lights and supervision at the top level, firmware nested."""
        merged: dict[str, Any] = {}
        for subsystem in (self.lights, self.supervision):
            if subsystem is not None:
                merged.update(subsystem.snapshot())
        if self.firmware is not None:
            merged["firmware"] = self.firmware.snapshot()
        merged["meters"] = self.metering.meter_lines()
        merged["metering"] = self.metering.snapshot()
        merged["mqtt"] = self.mqtt.snapshot() if self.mqtt is not None else None
        return merged

    def loops(self) -> list[tuple[str, Callable[[], Awaitable[object]]]]:
        own: list[tuple[str, Callable[[], Awaitable[object]]]] = []
        if self.poller is not None:
            own.append(("io-poller", self.poller.poll_loop))
        if self.mqtt is not None:
            own.append(("mqtt", self.mqtt.run_loop))
        return own + [loop for subsystem in self.all for loop in subsystem.loops()]


async def build_subsystems(
    config: Config,
    devices: DeviceConfig,
    *,
    clock: Clock,
    events: EventSink,
    keys: ConfigurationKeys,
    running_version: str,
    accepted: asyncio.Event,
    restart: Callable[[], Awaitable[None]],
    status: Callable[[], Mapping[str, Any]],
    spawn: Callable[[Awaitable[None], str], None],
) -> Built:
    poller: IOPoller | None = None
    lights: LightsSubsystem | None = None
    if devices.io is not None:
        module = ModbusIOModule(devices.io.iomap, devices.io.endpoint)
        poller = IOPoller(module, period=devices.io.poll_period, retry=devices.io.retry)
    supervision = SupervisionSubsystem(
        devices.supervision,
        sink=events,
        clock=clock,
        poller=poller,
        indicators=devices.io.iomap.indicators if devices.io is not None else (),
    )
    if devices.io is not None and poller is not None and devices.lights is not None:
        lights = await LightsSubsystem.open(
            data_dir=config.data.dir,
            contactors=[c.number for c in devices.io.iomap.contactors],
            poller=poller,
            sink=events,
            clock=clock,
            keys=keys,
            zone=config.site.timezone,
            config=devices.lights,
            faults=supervision.board,  # one station status for every fault
        )
    firmware: FirmwareAgent | None = None
    if devices.firmware is not None:
        firmware = FirmwareAgent(
            devices.firmware,
            data_dir=config.data.dir,
            sink=events,
            clock=clock,
            running_version=running_version,
            accepted=accepted,
            restart=restart,
        )
        await firmware.open()  # before READY: resolves an interrupted update, counts the start
    mqtt: MqttPublisher | None = None
    if devices.mqtt is not None:
        mqtt = MqttPublisher(devices.mqtt, config.station.id, status=status)
        events.on_emitted(mqtt.on_event)
    metering = await MeteringSubsystem.build(
        devices.metering,
        station_id=config.station.id,
        data_dir=config.data.dir,
        zone=config.site.timezone,
        clock=clock,
        keys=keys,
        emit=events.emit,
        health=_MeterHealth(supervision, spawn),
        status=status,
        config_file=config.file,
    )
    return Built(
        poller=poller,
        lights=lights,
        supervision=supervision,
        firmware=firmware,
        metering=metering,
        mqtt=mqtt,
    )


class _MeterHealth:
    """Metering reports a meter's failures, recoveries and readings synchronously;
    supervision raises and resolves PowerMeterFailure and the measured-value alarms
    through the outbox, so each call becomes a task (owned by the daemon)."""

    def __init__(
        self, supervision: SupervisionSubsystem, spawn: Callable[[Awaitable[None], str], None]
    ) -> None:
        self._alarms = supervision.alarms
        self._spawn = spawn

    def on_source_error(self, name: str, reason: str) -> None:
        self._spawn(self._alarms.on_source_error(name, reason), f"meter-failure-{name}")

    def on_source_ok(self, name: str) -> None:
        self._spawn(self._alarms.on_source_ok(name), f"meter-ok-{name}")

    def on_samples(self, name: str, samples: Sequence[Sample]) -> None:
        # HighTemperature, Under/OverVoltage from the measured values (issue "supervision").
        self._spawn(self._alarms.on_samples(samples), f"meter-alarms-{name}")


async def close_all(built: Built) -> None:
    for subsystem in built.all:
        result = subsystem.close()
        if inspect.isawaitable(result):
            await result
    if built.poller is not None:
        await built.poller.module.close()
