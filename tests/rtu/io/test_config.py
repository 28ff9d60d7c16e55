"""The `[io]` section: endpoints, the default map, a custom map, and mistakes by key path."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from rtu.config import ConfigInvalid, Problems, TableReader
from rtu.io.config import IOConfig, read_io_config
from rtu.io.modbus import SerialEndpoint, TcpEndpoint
from rtu.io.model import DEFAULT_IO_MAP, ContactorPoints

FILE = Path("/etc/rtu/rtu.toml")


def read(text: str) -> IOConfig:
    problems = Problems(FILE)
    config = read_io_config(TableReader(tomllib.loads(text)["io"], "io", problems, FILE.parent))
    problems.raise_if_any()
    return config


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigInvalid) as info:
        read(text)
    return [f"{e.key}: {e.reason}" for e in info.value.errors]


def test_tcp_with_the_default_map() -> None:
    config = read('[io]\nhost = "10.0.0.5"\nunit_id = 3\n')
    assert config.endpoint == TcpEndpoint("10.0.0.5", 502, timeout=1.0)
    assert config.iomap.contactors == DEFAULT_IO_MAP.contactors
    assert config.iomap.device_id == 3
    assert (config.poll_period, config.retry) == (0.03, 1.0)


def test_serial_and_a_custom_map() -> None:
    config = read(
        """
        [io]
        transport = "serial"
        device = "/dev/ttyUSB0"
        baudrate = 9600
        parity = "E"
        poll_period = 0.1
        [io.map]
        local_switch = 7
        inverted_inputs = [7]
        [[io.map.contactors]]
        number = 2
        coil = 10
        feedback = 3
        """
    )
    assert config.endpoint == SerialEndpoint("/dev/ttyUSB0", 9600, "E", 1, 8, 1.0)
    assert config.iomap.contactors == (ContactorPoints(2, coil=10, feedback=3),)
    assert config.iomap.inverted_inputs == frozenset({7})
    assert config.iomap.indicators == ()
    assert config.poll_period == 0.1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[io]\ntransport = "udp"\nhost = "h"\n', "io.transport: must be"),
        ("[io]\n", "io.host: required"),
        ('[io]\nhost = "h"\nport = 0\n', "io.port: must be between"),
        ('[io]\nhost = "h"\nspeed = 1\n', "io.speed: unknown key"),
        ('[io]\ntransport = "serial"\ndevice = "d"\nparity = "X"\n', "io.parity: must be"),
        ('[io]\nhost = "h"\n[io.map]\nlocal_switch = 4\n', "io.map.contactors: at least one"),
        (
            '[io]\nhost = "h"\n[io.map]\nlocal_switch = 0\n'
            "[[io.map.contactors]]\nnumber = 1\ncoil = 0\nfeedback = 0\n",
            "io.map: discrete input address 0 is mapped twice",
        ),
        (
            '[io]\nhost = "h"\n[io.map]\nlocal_switch = 4\n'
            "[[io.map.contactors]]\nnumber = 5\ncoil = 0\nfeedback = 0\n",
            "io.map.contactors[0].number: must be between 1 and 4",
        ),
    ],
    ids=["transport", "host", "port", "unknown", "parity", "no-contactors", "clash", "number"],
)
def test_mistakes_name_their_key(text: str, expected: str) -> None:
    assert any(e.startswith(expected) for e in errors(text)), errors(text)
