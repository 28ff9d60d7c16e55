"""The `[lights]` section: the streetlight controller's own settings.

    [lights]
    feedback_timeout = 2.0    # s a contactor's feedback may lag its coil before
                              # StatusNotification PowerSwitchFailure (§6.6)
    max_stack_level = 10      # StreetlightProfileMaxStackLevel until the central
                              # changes it (ChangeConfiguration persists over this)
    max_sleep = 30.0          # s the controller sleeps at most before it recomputes

How the I/O module is reached and wired is `[io]` (`rtu.io.config`), shared
with the MV fault monitor.
"""

from __future__ import annotations

import dataclasses

from rtu.config import TableReader

__all__ = ["LightsConfig", "read_lights_config"]


@dataclasses.dataclass(frozen=True, slots=True)
class LightsConfig:
    # A contactor pulls in within ~50 ms; 2 s leaves room for a slow poll and a
    # Modbus retry without crying wolf, and is far below anyone noticing dark streets.
    feedback_timeout: float = 2.0
    max_stack_level: int = 10
    max_sleep: float = 30.0


def read_lights_config(t: TableReader) -> LightsConfig:
    defaults = LightsConfig()
    config = LightsConfig(
        feedback_timeout=t.number("feedback_timeout", defaults.feedback_timeout, min=0.1, max=600),
        max_stack_level=t.integer("max_stack_level", defaults.max_stack_level, min=0, max=10_000),
        max_sleep=t.number("max_sleep", defaults.max_sleep, min=0.1, max=3600),
    )
    t.done()
    return config
