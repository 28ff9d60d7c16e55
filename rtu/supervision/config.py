"""The `[mv]` and `[alarms]` sections, validated with `rtu.config.TableReader`.

Both sections are optional; every key has a default. Documented with examples
in `config/rtu.supervision.example.toml`. Which indicator groups exist is the
`[io]` section's business (its `IOMap`); `[mv] groups` only chooses among
them, so the daemon passes their names in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rtu.config import Problems, TableReader
from rtu.supervision.alarms import AlarmSettings
from rtu.supervision.mv import MVSettings

__all__ = ["SupervisionConfig", "load_supervision_config", "read_supervision_config"]


@dataclasses.dataclass(frozen=True, slots=True)
class SupervisionConfig:
    groups: tuple[str, ...]  # the indicator groups to supervise, in I/O map order
    mv: MVSettings = dataclasses.field(default_factory=MVSettings)
    alarms: AlarmSettings = dataclasses.field(default_factory=AlarmSettings)
    board_temperature_period: float = 30.0  # seconds; 0: do not read the host's sensors
    signal_file: Path | None = None  # the modem's signal level in dBm, kept by its manager
    signal_period: float = 60.0


def read_supervision_config(
    devices: Mapping[str, Any],
    problems: Problems,
    base_dir: Path,
    *,
    indicator_groups: Sequence[str],
) -> SupervisionConfig:
    """Read `[mv]` and `[alarms]` from the raw device sections; problems are collected."""
    mv = TableReader(_table(devices, "mv", problems), "mv", problems, base_dir)
    groups = mv.string_list("groups", tuple(indicator_groups))
    for name in groups:
        if name not in indicator_groups:
            known = ", ".join(indicator_groups) or "none"
            mv.error("groups", f"{name!r} is not an indicator group of [io] (known: {known})")
    if len(set(groups)) != len(groups):
        mv.error("groups", "lists a group twice")
    debounce = mv.number("debounce", 0.2, min=0, max=60)
    debounce_polls = mv.integer("debounce_polls", 2, min=1, max=100)
    settle = mv.number("settle", 1.0, min=0.01, max=600)
    reset_timeout = mv.number("reset_timeout", 5.0, min=0.1, max=3600)
    if settle <= debounce:
        mv.error("settle", f"must be longer than debounce ({debounce:g} s)")
    if reset_timeout <= settle:
        mv.error("reset_timeout", f"must be longer than settle ({settle:g} s)")
    mv.done()

    a = TableReader(_table(devices, "alarms", problems), "alarms", problems, base_dir)
    defaults = AlarmSettings()
    values = {
        "oil_temperature_high": a.number(
            "oil_temperature_high", defaults.oil_temperature_high, min=-50, max=250
        ),
        "ambient_temperature_high": a.number(
            "ambient_temperature_high", defaults.ambient_temperature_high, min=-50, max=150
        ),
        "board_temperature_high": a.number(
            "board_temperature_high", defaults.board_temperature_high, min=-50, max=150
        ),
        "temperature_hysteresis": a.number(
            "temperature_hysteresis", defaults.temperature_hysteresis, min=0, max=50
        ),
        "voltage_nominal": a.number("voltage_nominal", defaults.voltage_nominal, min=1, max=1000),
        "voltage_band": a.number("voltage_band", defaults.voltage_band, min=0.1, max=50),
        "voltage_hysteresis": a.number(
            "voltage_hysteresis", defaults.voltage_hysteresis, min=0, max=50
        ),
        "signal_weak_below": a.number(
            "signal_weak_below", defaults.signal_weak_below, min=-150, max=0
        ),
        "signal_hysteresis": a.number(
            "signal_hysteresis", defaults.signal_hysteresis, min=0, max=50
        ),
    }
    meter_errors = a.integer("meter_errors", defaults.meter_errors, min=1, max=1000)
    if values["voltage_hysteresis"] >= values["voltage_band"]:
        a.error("voltage_hysteresis", "must be smaller than voltage_band")
    board_period = a.number("board_temperature_period", 30.0, min=0, max=86_400)
    signal_file = a.path("signal_file", None, must_exist=False)
    signal_period = a.number("signal_period", 60.0, min=1, max=86_400)
    a.done()

    if problems.errors:
        # Placeholders may be inconsistent; the caller raises before using them.
        return SupervisionConfig(groups=())
    return SupervisionConfig(
        groups=tuple(g for g in indicator_groups if g in groups),
        mv=MVSettings(debounce, debounce_polls, settle, reset_timeout),
        alarms=AlarmSettings(**values, meter_errors=meter_errors),
        board_temperature_period=board_period,
        signal_file=signal_file,
        signal_period=signal_period,
    )


def load_supervision_config(
    devices: Mapping[str, Any], file: Path, *, indicator_groups: Sequence[str]
) -> SupervisionConfig:
    """As `read_supervision_config`, raising `ConfigInvalid` listing every problem."""
    problems = Problems(file)
    config = read_supervision_config(
        devices, problems, file.parent, indicator_groups=indicator_groups
    )
    problems.raise_if_any()
    return config


def _table(devices: Mapping[str, Any], name: str, problems: Problems) -> Mapping[str, Any]:
    value = devices.get(name, {})
    if not isinstance(value, dict):
        problems.add(name, f"must be a table ([{name}])")
        return {}
    return value
