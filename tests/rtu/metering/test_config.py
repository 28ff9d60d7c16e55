"""`[[meters]]` and `[metering]`: every kind read, every problem with its key path."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from rtu.config import ConfigInvalid, load_config
from rtu.metering.config import load_metering
from rtu.metering.dsmr import DsmrVersion
from rtu.subsystems import check_device_sections

BASE = """\
[station]
id = "SUBS001"
vendor = "OpenGrid"
model = "RTU"
station_number = "1"
serial_number = "SN1"
iccid = "89310000000000000001"
imsi = "204080000000001"

[central]
url = "ws://127.0.0.1:9/OS3P"

[data]
dir = "data"

[site]
latitude = 51.98
longitude = 5.91
timezone = "Europe/Amsterdam"
"""

GOOD = """
[metering]
retention_days = 30
log_file = "log/rtu.log"

[[meters]]
kind = "dlms"
name = "trafo"
host = "10.0.0.20"
authentication = "low"
password_file = "meter.pw"
client_address = 17
registers = ["1.0.32.7.0.255", "1.0.1.8.0.255"]

[[meters]]
kind = "p1"
name = "streetlights"
device = "/dev/ttyUSB0"
version = "4"

[[meters]]
kind = "analyser"
name = "station"
host = "10.0.0.30"
board_temperature = false

[[meters.points]]
measurand = "Voltage.L1N"
address = 4000
type = "float32"
word_order = "little"
unit = "V"

[[meters.points]]
measurand = "OilTemperature"
address = 10
type = "int16"
scale = "0.1"
unit = "C"
table = "input"
"""


def write(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "rtu.toml"
    path.write_text(BASE + extra)
    (tmp_path / "meter.pw").write_text("12345678\n")
    return path


def test_a_complete_configuration(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    check_device_sections(config)
    metering = load_metering(config)
    trafo, p1, station = metering.meters
    assert trafo.dlms is not None
    assert (trafo.dlms.host, trafo.dlms.password, trafo.dlms.client_address) == (
        "10.0.0.20", "12345678", 17,
    )  # fmt: skip
    assert trafo.dlms.registers == ("1.0.32.7.0.255", "1.0.1.8.0.255")
    assert p1.p1 is not None
    assert (p1.p1.name, p1.p1.version) == ("streetlights", DsmrVersion.V4)
    assert station.analyser is not None
    voltage, oil = station.analyser.points
    assert (voltage.type, voltage.word_order, voltage.table) == ("float32", "little", "holding")
    assert (oil.scale, oil.table) == (Decimal("0.1"), "input")
    assert metering.settings.retention_days == 30
    assert metering.settings.log_file == tmp_path / "log" / "rtu.log"


def test_defaults_without_sections(tmp_path: Path) -> None:
    metering = load_metering(load_config(write(tmp_path, "")))
    assert metering.meters == ()
    assert metering.settings.retention_days == 90


BAD = """
[metering]
retention_days = 0
colour = "blue"

[[meters]]
kind = "dlms"
name = "trafo"
port = 70000
registers = ["1.0.99.99.0.255"]

[[meters]]
kind = "dlsm"
name = "typo"
host = "x"

[[meters]]
kind = "analyser"
name = "trafo"
host = "h"

[[meters.points]]
measurand = "Voltage.L4N"
address = 1
type = "int64"
scale = "zero"

[[meters]]
kind = "p1"
name = "p1"
version = "6"
"""


def test_every_problem_is_reported_with_its_key_path(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BAD))
    with pytest.raises(ConfigInvalid) as invalid:
        load_metering(config)
    problems = {(e.key, e.reason) for e in invalid.value.errors}
    keys = sorted(key for key, _ in problems)
    assert keys == [
        "metering.colour",
        "metering.retention_days",
        "meters[0].port",
        "meters[0].registers",
        "meters[1].kind",
        "meters[2].name",
        "meters[2].points[0].measurand",
        "meters[2].points[0].scale",
        "meters[2].points[0].type",
        "meters[3].device",
        "meters[3].version",
    ]
    assert ("meters[2].name", "'trafo' is already the name of meters[0]") in problems
    # The same checks run at `rtu check-config` through the section table.
    with pytest.raises(ConfigInvalid):
        check_device_sections(config)


def test_the_documented_example_is_valid(tmp_path: Path) -> None:
    example = Path(__file__).parents[3] / "config" / "metering.example.toml"
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "meter.pw").write_text("12345678\n")
    (tmp_path / "secrets" / "mqtt.pw").write_text("pw\n")
    (tmp_path / "ca.pem").write_text("")
    config = load_config(write(tmp_path, "\n" + example.read_text(encoding="utf-8")))
    check_device_sections(config)
    metering = load_metering(config)
    assert [meter.kind for meter in metering.meters] == ["dlms", "p1", "analyser"]
    assert metering.meters[0].dlms is not None
    assert metering.meters[0].dlms.password == "12345678"


def test_the_upload_ca_file_is_read_and_must_exist(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    metering = load_metering(
        load_config(write(tmp_path, '[metering]\nupload_ca_file = "ca.pem"\n'))
    )
    assert metering.settings.upload_ca_file == tmp_path / "ca.pem"
    missing = load_config(write(tmp_path, '[metering]\nupload_ca_file = "nowhere.pem"\n'))
    with pytest.raises(ConfigInvalid) as invalid:
        load_metering(missing)
    assert [e.key for e in invalid.value.errors] == ["metering.upload_ca_file"]
