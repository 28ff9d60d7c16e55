"""The `[firmware]` section of rtu.toml (read with the shared TableReader).

    [firmware]
    trusted_keys = ["MCowBQYDK2VwAyEA..."]    # PEM blocks or raw 32-byte keys in base64
    trusted_key_files = ["/etc/rtu/firmware-signing.pub"]   # and/or files holding them
    releases_root = "/opt/rtu"               # releases/<version>/, current, previous
    confirm_timeout = 600                    # s for a new release to reach Accepted
    max_crashes = 3                          # starts beyond the first without Accepted
    installer = "venv"                       # "venv" | "overlay" (see rtu.firmware.install)
    python = "/usr/bin/python3"              # interpreter the installer uses
    default_retries = 3                      # UpdateFirmware without `retries`
    default_retry_interval = 60              # UpdateFirmware without `retryInterval` (s)
    download_timeout = 900                   # s for one download attempt
    max_bundle_size = 268435456              # bytes
    ca_file = "/etc/rtu/firmware-ca.pem"     # trusted for https downloads, besides the system's

At least one trusted key is required: a station that trusts nobody would
refuse every bundle, which is a configuration error, not a runtime surprise.
"""

from __future__ import annotations

import dataclasses
import ssl
import sys
from pathlib import Path

from firmware.errors import KeyInvalid
from firmware.keys import public_key_bytes
from rtu.config import Config, Problems, TableReader

__all__ = ["FirmwareConfig", "firmware_config", "read_firmware"]


@dataclasses.dataclass(frozen=True, slots=True)
class FirmwareConfig:
    trusted_keys: tuple[bytes, ...]  # raw Ed25519 public keys (see firmware/keys.py)
    releases_root: Path
    confirm_timeout: float
    max_crashes: int
    installer: str
    python: Path
    default_retries: int
    default_retry_interval: int
    download_timeout: float
    max_bundle_size: int
    ca_file: Path | None = None

    def ssl_context(self) -> ssl.SSLContext:
        """The system's CAs, plus `ca_file` (a grid operator's own CA for its file server)."""
        return ssl.create_default_context(
            cafile=None if self.ca_file is None else str(self.ca_file)
        )


def read_firmware(t: TableReader) -> FirmwareConfig:
    keys: list[bytes] = []
    for index, text in enumerate(t.string_list("trusted_keys", ())):
        try:
            keys.append(public_key_bytes(text))
        except KeyInvalid as exc:
            t.error(f"trusted_keys[{index}]", exc.reason)
    for index, name in enumerate(t.string_list("trusted_key_files", ())):
        path = Path(name)
        if not path.is_absolute():
            t.error(f"trusted_key_files[{index}]", "must be an absolute path")
            continue
        try:
            keys.append(public_key_bytes(path.read_text(encoding="ascii")))
        except (OSError, UnicodeDecodeError) as exc:
            t.error(f"trusted_key_files[{index}]", f"cannot read {path}: {exc}")
        except KeyInvalid as exc:
            t.error(f"trusted_key_files[{index}]", f"{path}: {exc.reason}")
    if not keys and not t.has("trusted_keys") and not t.has("trusted_key_files"):
        t.error("trusted_keys", "required: at least one public key that signs bundles")
    installer = t.string("installer", "venv")
    if installer not in ("venv", "overlay"):
        t.error("installer", f"must be 'venv' or 'overlay' (got {installer!r})")
    config = FirmwareConfig(
        trusted_keys=tuple(keys),
        releases_root=t.path("releases_root", Path("/opt/rtu"), must_exist=False),
        confirm_timeout=t.number("confirm_timeout", 600.0, min=1, max=86_400),
        max_crashes=t.integer("max_crashes", 3, min=0, max=100),
        installer=installer,
        python=t.path("python", Path(sys.executable), must_exist=True),
        default_retries=t.integer("default_retries", 3, min=0, max=100),
        default_retry_interval=t.integer("default_retry_interval", 60, min=0, max=86_400),
        download_timeout=t.number("download_timeout", 900.0, min=1, max=86_400),
        max_bundle_size=t.integer("max_bundle_size", 256 << 20, min=1024, max=8 << 30),
        ca_file=t.path("ca_file", None),
    )
    if config.ca_file is not None and config.ca_file.is_file():
        try:
            config.ssl_context()
        except (OSError, ssl.SSLError) as exc:
            t.error("ca_file", f"{config.ca_file} holds no usable CA certificate: {exc}")
    return config


def firmware_config(config: Config) -> FirmwareConfig | None:
    """The parsed section, or None when the file has none (no update support)."""
    raw = config.devices.get("firmware")
    if raw is None:
        return None
    problems = Problems(config.file)
    reader = TableReader(raw, "firmware", problems, config.file.parent)
    result = read_firmware(reader)
    reader.done()
    problems.raise_if_any()
    return result
