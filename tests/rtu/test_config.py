"""Config loading: the example is valid, and every kind of mistake names its key."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from rtu.config import (
    Config,
    ConfigInvalid,
    Problems,
    TableReader,
    load_config,
)

EXAMPLE = Path(__file__).parents[2] / "config" / "rtu.example.toml"

MINIMAL = """
[station]
id = "SUBS 123"
vendor = "VendorX"
model = "RTU-1"
station_number = "0042"
serial_number = "SN1"

[central]
url = "wss://central.example.com/OS3P"

[site]
latitude = 52.09
longitude = 5.12
timezone = "Europe/Amsterdam"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rtu.toml"
    path.write_text(text, encoding="utf-8")
    return path


def replace(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new)


def test_example_loads() -> None:
    config = load_config(EXAMPLE)
    assert config.station.id == "SUBS001"
    assert config.connection_url == "wss://central.example.com/OS3P/SUBS001"
    assert config.site.timezone.key == "Europe/Amsterdam"
    assert config.link.outbox_window == 1
    assert config.devices == {}


def test_example_documents_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    documented = set(re.findall(r"^#? ?([a-z_]+) = ", text, flags=re.MULTILINE))
    sections = {f.name: f.type for f in dataclasses.fields(Config)}
    del sections["file"], sections["devices"]
    config = load_config(EXAMPLE)
    for name in sections:
        for field in dataclasses.fields(getattr(config, name)):
            assert field.name in documented, f"{name}.{field.name} missing from the example"
    assert "password_file" in documented


def test_minimal_file_gets_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert config.connection_url == "wss://central.example.com/OS3P/SUBS%20123"  # §3.1.1 ex. 2
    assert (config.station.iccid, config.station.imsi) == ("", "")
    assert config.data.dir == Path("/var/lib/rtu")
    assert config.link.heartbeat_interval == 300
    assert config.link.dead_letter_after == 5
    assert (config.link.outbox_memory_max_entries, config.link.outbox_disk_settle) == (10_000, 10.0)
    assert config.system.reboot_command is None
    assert config.central.password is None
    assert config.central.call_timeout == 30.0


def test_boot_fields_follow_the_schema_names(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert config.station.boot_fields("1.2.3") == {
        "vendor": "VendorX",
        "model": "RTU-1",
        "stationNumber": "0042",
        "serialNumber": "SN1",
        "firmwareVersion": "1.2.3",
        "iccid": "",
        "imsi": "",
    }


# (what is broken, old text, new text, key path, reason fragment)
BROKEN = [
    ("latitude range", "latitude = 52.09", "latitude = 95", "site.latitude", "between -90 and 90"),
    ("longitude type", "longitude = 5.12", 'longitude = "5.12"', "site.longitude", "a number"),
    ("bool is no number", "longitude = 5.12", "longitude = true", "site.longitude", "a number"),
    ("bad zone", '"Europe/Amsterdam"', '"Europe/Utrecht"', "site.timezone", "unknown IANA"),
    ("zone path", '"Europe/Amsterdam"', '"../etc/passwd"', "site.timezone", "unknown IANA"),
    ("vendor length", '"VendorX"', '"' + "V" * 21 + '"', "station.vendor", "at most 20"),
    ("model missing", 'model = "RTU-1"\n', "", "station.model", "required"),
    ("no id", 'id = "SUBS 123"', 'id = ""', "station.id", "must not be empty"),
    ("http url", '"wss://central', '"https://central', "central.url", "ws:// or wss://"),
    ("url creds", "wss://central", "wss://u:p@central", "central.url", "credentials"),
    ("url query", '/OS3P"', '/OS3P?x=1"', "central.url", "query"),
    ("typo key", "[site]\n", "[site]\nlatitute = 1\n", "site.latitute", "unknown key"),
    ("typo section", "[site]\n", "[sites]\nx = 1\n[site]\n", "sites", "unknown section"),
    ("missing section", MINIMAL[MINIMAL.index("[site]") :], "", "site", "required"),
    ("ca_file missing", "[site]", "[central.x]\n[site]", "central.x", "unknown section"),
    (
        "ping negative",
        "[site]",
        "[link]\nwebsocket_ping_interval = -1\n[site]",
        "link.websocket_ping_interval",
        "between 0 and 86400",
    ),
    (
        "window float",
        "[site]",
        "[link]\noutbox_window = 1.5\n[site]",
        "link.outbox_window",
        "an integer",
    ),
    (
        "cap below base",
        "[site]",
        "[link]\nreconnect_backoff_base = 10\nreconnect_backoff_cap = 5\n[site]",
        "link.reconnect_backoff_cap",
        "below",
    ),
    (
        "relative reboot",
        "[site]",
        '[system]\nreboot_command = ["reboot"]\n[site]',
        "system.reboot_command",
        "absolute",
    ),
    (
        "empty reboot",
        "[site]",
        "[system]\nreboot_command = []\n[site]",
        "system.reboot_command",
        "at least 1",
    ),
    (
        "clock not bool",
        "[site]",
        '[system]\nset_system_clock = "yes"\n[site]',
        "system.set_system_clock",
        "true or false",
    ),
    (
        "missing ca",
        'OS3P"\n',
        'OS3P"\nca_file = "nope.pem"\n',
        "central.ca_file",
        "no such file",
    ),
    (
        "cert without key",
        'OS3P"\n',
        'OS3P"\nclient_cert = "rtu.toml"\n',
        "central.client_key",
        "both",
    ),
    (
        "tls over ws",
        'url = "wss://central.example.com/OS3P"\n',
        'url = "ws://central.example.com/OS3P"\nca_file = "rtu.toml"\n',
        "central.ca_file",
        "wss://",
    ),
    (
        "control char",
        'serial_number = "SN1"',
        'serial_number = "SN\\u0007"',
        "station.serial_number",
        "control",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "key", "reason"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN]
)
def test_broken_file_names_key_and_reason(
    tmp_path: Path, old: str, new: str, key: str, reason: str
) -> None:
    path = write(tmp_path, replace(MINIMAL, old, new))
    with pytest.raises(ConfigInvalid) as info:
        load_config(path)
    [error] = info.value.errors
    assert (error.key, error.file) == (key, path)
    assert reason in error.reason
    assert key in str(info.value)


def test_all_errors_are_reported_together(tmp_path: Path) -> None:
    text = replace(MINIMAL, "latitude = 52.09", "latitude = -91")
    text = replace(text, '"Europe/Amsterdam"', '"Mars/Olympus"')
    text = replace(text, 'model = "RTU-1"', 'modle = "RTU-1"')
    text += "[link]\noutbox_window = 0\n"
    with pytest.raises(ConfigInvalid) as info:
        load_config(write(tmp_path, text))
    keys = sorted(e.key for e in info.value.errors)
    assert keys == [
        "link.outbox_window",
        "site.latitude",
        "site.timezone",
        "station.model",
        "station.modle",
    ]
    assert str(info.value).startswith(f"{tmp_path / 'rtu.toml'}: 5 errors\n")


@pytest.mark.parametrize(
    ("text", "reason"),
    [("[station\n", "not valid TOML"), ("a = 1\na = 2\n", "not valid TOML")],
    ids=["syntax", "duplicate-key"],
)
def test_unparsable_file(tmp_path: Path, text: str, reason: str) -> None:
    with pytest.raises(ConfigInvalid) as info:
        load_config(write(tmp_path, text))
    [error] = info.value.errors
    assert error.key == ""
    assert reason in error.reason
    assert "line" in error.reason  # tomllib says where


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigInvalid, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def test_password_file_is_read_and_hidden_from_repr(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\n", encoding="utf-8")
    text = replace(MINIMAL, 'OS3P"\n', 'OS3P"\npassword_file = "pw"\n')
    config = load_config(write(tmp_path, text))
    assert config.central.password == "s3cret"
    assert "s3cret" not in repr(config)


def test_password_and_password_file_conflict(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("a", encoding="utf-8")
    text = replace(MINIMAL, 'OS3P"\n', 'OS3P"\npassword = "b"\npassword_file = "pw"\n')
    with pytest.raises(ConfigInvalid) as info:
        load_config(write(tmp_path, text))
    assert [e.key for e in info.value.errors] == ["central.password_file"]


DEVICES = """
[io]
host = "192.0.2.10"
[[meters]]
kind = "dlms"
port = "/dev/ttyUSB0"
[[meters]]
kind = "p1"
port = 7
[mqtt]
host = "localhost"
"""


def test_device_sections_pass_through_raw(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL + DEVICES))
    assert set(config.devices) == {"io", "meters", "mqtt"}
    assert config.devices["meters"][1] == {"kind": "p1", "port": 7}
    with pytest.raises(TypeError):
        config.devices["io"] = {}  # type: ignore[index]


def test_device_owner_validates_with_the_same_reader(tmp_path: Path) -> None:
    # What a meter module does at start with its own [[meters]] tables.
    config = load_config(write(tmp_path, MINIMAL + DEVICES))
    problems = Problems(config.file)
    root = TableReader(config.devices, "", problems, config.file.parent)
    for meter in root.array_of_tables("meters"):
        meter.string("kind", max_len=10)
        meter.string("port", min_len=1)
        meter.number("interval", 60.0, min=1)
        meter.done()
    with pytest.raises(ConfigInvalid) as info:
        problems.raise_if_any()
    [error] = info.value.errors
    assert (error.key, error.reason) == ("meters[1].port", "must be a string, not an integer")


def test_reader_subtable_and_array_errors(tmp_path: Path) -> None:
    problems = Problems(tmp_path / "x.toml")
    reader = TableReader(
        {"a": 1, "b": [1, 2], "c": {"d": True}, "e": ["x", 2]}, "dev", problems, tmp_path
    )
    assert reader.subtable("a").has("anything") is False
    assert reader.array_of_tables("b") == []
    assert reader.subtable("c").boolean("d") is True
    assert reader.string_list("e", ()) == ()
    assert reader.integer("missing", 7) == 7
    assert reader.path("nothing", None) is None
    reader.done()
    assert [(e.key, e.reason) for e in problems.errors] == [
        ("dev.a", "must be a table, not an integer"),
        ("dev.b", "must be an array of tables ([[dev.b]])"),
        ("dev.e", "must be an array of strings, not an array"),
    ]


def test_lights_section_passes_through_raw(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL + "[lights]\nfeedback_timeout = 3\n"))
    assert config.devices["lights"] == {"feedback_timeout": 3}
