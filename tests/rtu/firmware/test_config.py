"""The [firmware] section: keys in both spellings, defaults, every problem reported."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware.keys import public_key_base64, public_key_pem
from rtu.config import ConfigInvalid, load_config
from rtu.firmware.config import firmware_config
from rtu.subsystems import check_device_sections

BASE = """
[station]
id = "S1"
vendor = "V"
model = "M"
station_number = "1"
serial_number = "SN"

[central]
url = "ws://central/OS3P"

[site]
latitude = 52.0
longitude = 5.0
timezone = "UTC"
"""
KEY = Ed25519PrivateKey.generate().public_key()


def write(tmp_path: Path, section: str) -> Path:
    path = tmp_path / "rtu.toml"
    path.write_text(BASE + section)
    return path


def test_keys_as_base64_and_pem_file_and_defaults(tmp_path: Path) -> None:
    pem = tmp_path / "signing.pub"
    pem.write_text(public_key_pem(KEY))
    path = write(
        tmp_path,
        f'[firmware]\ntrusted_keys = ["{public_key_base64(KEY)}"]\ntrusted_key_files = ["{pem}"]\n',
    )
    config = load_config(path)
    check_device_sections(config)
    firmware = firmware_config(config)
    assert firmware is not None
    raw = KEY.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert firmware.trusted_keys == (raw, raw)  # both spellings, the same 32 bytes
    assert firmware.releases_root == Path("/opt/rtu")
    assert (firmware.confirm_timeout, firmware.max_crashes) == (600.0, 3)
    assert firmware.installer == "venv"
    assert firmware.python == Path(sys.executable)


def test_no_section_means_no_agent(tmp_path: Path) -> None:
    assert firmware_config(load_config(write(tmp_path, ""))) is None


def test_every_problem_is_reported_with_its_key_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[firmware]\ntrusted_keys = ["AAAA"]\ntrusted_key_files = ["relative.pub"]\n'
        'installer = "docker"\nmax_crashes = -1\ntypo = 1\n',
    )
    with pytest.raises(ConfigInvalid) as caught:
        check_device_sections(load_config(path))
    keys = {error.key for error in caught.value.errors}
    assert keys == {
        "firmware.trusted_keys[0]",
        "firmware.trusted_key_files[0]",
        "firmware.installer",
        "firmware.max_crashes",
        "firmware.typo",
    }


def test_a_station_that_trusts_nobody_is_misconfigured(tmp_path: Path) -> None:
    with pytest.raises(ConfigInvalid, match=r"firmware\.trusted_keys"):
        check_device_sections(load_config(write(tmp_path, "[firmware]\n")))


def test_a_ca_file_for_https_downloads_is_checked_at_start(tmp_path: Path) -> None:
    key = public_key_base64(KEY)
    garbage = tmp_path / "not-a-ca.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    path = write(tmp_path, f'[firmware]\ntrusted_keys = ["{key}"]\nca_file = "not-a-ca.pem"\n')
    with pytest.raises(ConfigInvalid, match=r"firmware\.ca_file") as raised:
        firmware_config(load_config(path))
    assert str(garbage) in str(raised.value)
    missing = write(tmp_path, f'[firmware]\ntrusted_keys = ["{key}"]\nca_file = "nowhere.pem"\n')
    with pytest.raises(ConfigInvalid, match=r"firmware\.ca_file"):
        firmware_config(load_config(missing))
