"""The daemon's composition root for the device subsystems.

`rtu.config` leaves the device sections (`[io]`, `[[meters]]`, `[mqtt]`, `[mv]`,
`[alarms]`, ...) to their owners; this module knows the owners. It reads every
section at start through the shared `TableReader` — all problems of all
sections reported together, before anything runs — and builds the subsystems.
A section present in the file with no driver in this build is an error, not
ignored: a technician who configured a device must not believe it is in use.

Every subsystem offers the same small surface to the daemon:

    register(router, triggers)   its OS³P handlers and TriggerMessage providers
    loops()                      named long-running coroutines (run supervised)
    snapshot()                   what `rtu status` shows of it
    close()                      release devices at stop
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from rtu.clock import Clock
from rtu.config import Config, Problems
from rtu.events import EventSink
from rtu.supervision.config import SupervisionConfig, read_supervision_config
from rtu.supervision.subsystem import SupervisionSubsystem
from rtu.triggers import Triggers

__all__ = ["DeviceConfig", "Subsystem", "build_subsystems", "close_all", "read_device_config"]

# Sections this build reads; every other one in the file is reported.
_KNOWN_SECTIONS = frozenset({"mv", "alarms"})


class Subsystem(Protocol):
    def register(self, router: Any, triggers: Triggers) -> None: ...

    def loops(self) -> Sequence[tuple[str, Callable[[], Awaitable[object]]]]: ...

    def snapshot(self) -> Mapping[str, Any]: ...

    def close(self) -> object: ...


@dataclasses.dataclass(frozen=True)
class DeviceConfig:
    supervision: SupervisionConfig


def read_device_config(config: Config) -> DeviceConfig:
    """Validate every device section; raises ConfigInvalid listing all problems."""
    problems = Problems(config.file)
    for name in sorted(set(config.devices) - _KNOWN_SECTIONS):
        problems.add(name, "this build has no driver for this section yet")
    supervision = read_supervision_config(
        config.devices, problems, config.file.parent, indicator_groups=()
    )
    problems.raise_if_any()
    return DeviceConfig(supervision=supervision)


@dataclasses.dataclass
class Built:
    supervision: SupervisionSubsystem

    @property
    def all(self) -> list[Subsystem]:
        return [self.supervision]


def build_subsystems(devices: DeviceConfig, *, clock: Clock, events: EventSink) -> Built:
    supervision = SupervisionSubsystem(
        devices.supervision, sink=events, clock=clock, poller=None, indicators=()
    )
    return Built(supervision=supervision)


async def close_all(subsystems: Sequence[Subsystem]) -> None:
    for subsystem in subsystems:
        result = subsystem.close()
        if inspect.isawaitable(result):
            await result
