"""The [mv] and [alarms] sections: defaults, values, errors with key paths, the example."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from rtu.config import ConfigInvalid
from rtu.supervision.alarms import AlarmSettings
from rtu.supervision.config import load_supervision_config
from rtu.supervision.mv import MVSettings

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "rtu.supervision.example.toml"
GROUPS = ("MV1", "MV2")
FILE = Path("/etc/rtu/rtu.toml")


def test_absent_sections_mean_every_group_and_the_defaults() -> None:
    config = load_supervision_config({}, FILE, indicator_groups=GROUPS)
    assert config.groups == GROUPS
    assert config.mv == MVSettings()
    assert config.alarms == AlarmSettings()
    assert config.signal_file is None


def test_the_documented_example_is_the_defaults() -> None:
    document = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    config = load_supervision_config(document, EXAMPLE, indicator_groups=GROUPS)
    defaults = load_supervision_config({}, EXAMPLE, indicator_groups=GROUPS)
    assert config == defaults


def test_values_are_read() -> None:
    devices = {
        "mv": {"groups": ["MV2"], "debounce": 0.5, "debounce_polls": 3, "settle": 2},
        "alarms": {
            "voltage_nominal": 120,
            "voltage_band": 5,
            "voltage_hysteresis": 1,
            "signal_file": "signal",
            "meter_errors": 1,
        },
    }
    config = load_supervision_config(devices, FILE, indicator_groups=GROUPS)
    assert config.groups == ("MV2",)
    assert config.mv == MVSettings(debounce=0.5, debounce_polls=3, settle=2.0, reset_timeout=5.0)
    assert config.alarms.voltage_nominal == 120
    assert config.alarms.meter_errors == 1
    assert config.signal_file == Path("/etc/rtu/signal")


def test_groups_may_be_none() -> None:
    config = load_supervision_config({"mv": {"groups": []}}, FILE, indicator_groups=GROUPS)
    assert config.groups == ()


def test_every_problem_is_reported_with_its_key_path() -> None:
    devices = {
        "mv": {"groups": ["MV3", "MV1", "MV1"], "debounce": 2.0, "settle": 1.0, "typo": 1},
        "alarms": {"voltage_band": 2, "voltage_hysteresis": 3, "meter_errors": 0},
    }
    with pytest.raises(ConfigInvalid) as caught:
        load_supervision_config(devices, FILE, indicator_groups=GROUPS)
    keys = sorted(e.key for e in caught.value.errors)
    assert keys == [
        "alarms.meter_errors",
        "alarms.voltage_hysteresis",
        "mv.groups",
        "mv.groups",
        "mv.settle",
        "mv.typo",
    ]
    reasons = " / ".join(e.reason for e in caught.value.errors)
    assert "'MV3' is not an indicator group of [io] (known: MV1, MV2)" in reasons


def test_a_section_that_is_not_a_table() -> None:
    with pytest.raises(ConfigInvalid, match="must be a table"):
        load_supervision_config({"mv": 3}, FILE, indicator_groups=GROUPS)


def test_the_daemon_config_accepts_both_sections(tmp_path: Path) -> None:
    from rtu.config import load_config

    base = (EXAMPLE.parent / "rtu.example.toml").read_text(encoding="utf-8")
    path = tmp_path / "rtu.toml"
    path.write_text(base + "\n" + EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    config = load_config(path)
    assert set(config.devices) == {"mv", "alarms"}
