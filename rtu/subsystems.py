"""Which device sections this build can drive, and their validation at start.

`rtu.config` leaves `[io]`, `[[meters]]`, `[mqtt]` to their owners; this module
is the composition point that knows the owners. A section present in the file
with no driver in this build is an error, not ignored: a technician who
configured MV indicators must not believe they are supervised.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from rtu.config import Config, Problems, TableReader
from rtu.metering.config import read_meter, read_metering
from rtu.mqtt import read_mqtt

__all__ = ["SECTION_CHECKS", "check_device_sections"]

# section name → validator reading the section with the shared TableReader
SECTION_CHECKS: Mapping[str, Callable[[TableReader], object]] = {
    "meters": read_meter,
    "metering": read_metering,
    "mqtt": read_mqtt,
}


def check_device_sections(config: Config) -> None:
    """Validate every device section; raises ConfigInvalid listing all problems."""
    problems = Problems(config.file)
    for name, raw in config.devices.items():
        check = SECTION_CHECKS.get(name)
        if check is None:
            problems.add(name, "this build has no driver for this section yet")
            continue
        tables = list(enumerate(raw)) if isinstance(raw, list) else [(None, raw)]
        for index, table in tables:
            prefix = name if index is None else f"{name}[{index}]"
            if not isinstance(table, dict):
                problems.add(prefix, "must be a table")
                continue
            reader = TableReader(table, prefix, problems, config.file.parent)
            check(reader)
            reader.done()
    problems.raise_if_any()
