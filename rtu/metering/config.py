"""The `[[meters]]` and `[metering]` sections, validated with `rtu.config.TableReader`.

Every problem is reported with its key path (`meters[1].port`,
`meters[0].points[3].type`), all at once, like the rest of the config file.
See docs/metering.md for every key with its default.

    [metering]
    retention_days = 90        # history kept for GetFile MeterValueHistory
    log_file = "/var/log/rtu/rtu.log"   # the daemon's rotating log (GetFile Syslog)

    [[meters]]
    kind = "dlms"              # "dlms" | "p1" | "analyser"
    name = "transformer"
    host = "10.0.0.20"
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final, cast, get_args

from rtu.config import Config, Problems, TableReader
from rtu.metering.analyser import THERMAL_GLOB, AnalyserConfig
from rtu.metering.dlms import DEFAULT_REGISTERS, LOAD_PROFILE_OBIS, MEASURANDS, DlmsConfig
from rtu.metering.dsmr import DsmrVersion
from rtu.metering.p1 import P1Settings
from rtu.metering.registers import DEFAULT_POINTS, DataType, Point, Table, WordOrder

__all__ = [
    "KINDS",
    "MeterConfig",
    "MeteringConfig",
    "MeteringSettings",
    "load_metering",
    "read_meter",
    "read_metering",
    "read_metering_config",
]

KINDS: Final = ("dlms", "p1", "analyser")
_NAME_MAX: Final = 40


@dataclasses.dataclass(frozen=True, slots=True)
class MeterConfig:
    """One `[[meters]]` entry."""

    name: str
    kind: str
    dlms: DlmsConfig | None = None
    p1: P1Settings | None = None
    analyser: AnalyserConfig | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class MeteringSettings:
    """The `[metering]` section."""

    retention_days: int = 90
    retry_interval: float = 30.0  # seconds between reads of a failing meter
    max_gap_days: int = 7  # how far back a gap is filled from a load profile
    log_file: Path | None = None  # GetFile Syslog; None: journald when present
    log_backups: int = 5
    log_max_bytes: int = 10 * 1024 * 1024
    upload_attempts: int = 3
    upload_backoff: float = 5.0  # seconds, doubled after each failed attempt
    upload_timeout: float = 120.0
    upload_ca_file: Path | None = None  # trusted for https/ftps uploads, besides the system's


@dataclasses.dataclass(frozen=True, slots=True)
class MeteringConfig:
    meters: tuple[MeterConfig, ...] = ()
    settings: MeteringSettings = MeteringSettings()


def _hex(reader: TableReader, key: str, length: int) -> bytes:
    text = reader.string(key, "")
    if not text:
        return b""
    try:
        value = bytes.fromhex(text)
    except ValueError:
        reader.error(key, "must be hexadecimal")
        return b""
    if len(value) != length:
        reader.error(key, f"must be {length} bytes ({2 * length} hex digits)")
    return value


def _secret(reader: TableReader, key: str) -> str:
    """`key` inline or `key_file` (a file holding it, trailing newline ignored)."""
    inline = reader.string(key, "")
    file = reader.path(f"{key}_file", None)
    if inline and file is not None:
        reader.error(f"{key}_file", f"give either {key} or {key}_file, not both")
    if file is not None:
        try:
            return file.read_text(encoding="utf-8").rstrip("\n")
        except OSError as exc:
            reader.error(f"{key}_file", f"cannot read: {exc.strerror or exc}")
    return inline


def _dlms(reader: TableReader) -> DlmsConfig | None:
    transport = reader.string("transport", "wrapper")
    if transport not in ("wrapper", "hdlc", "serial"):
        reader.error("transport", 'must be "wrapper", "hdlc" or "serial"')
    authentication = reader.string("authentication", "none")
    if authentication not in ("none", "low", "hls-gmac"):
        reader.error("authentication", 'must be "none", "low" or "hls-gmac"')
    registers = reader.string_list("registers", DEFAULT_REGISTERS, min_items=1)
    unknown = [obis for obis in registers if obis not in MEASURANDS]
    if unknown:
        reader.error("registers", f"no OS³P measurand for OBIS {', '.join(unknown)}")
        registers = tuple(obis for obis in registers if obis in MEASURANDS) or DEFAULT_REGISTERS
    title = reader.string("system_title", "RTU00001")
    values: dict[str, Any] = {
        "host": reader.string("host", "127.0.0.1", min_len=1),
        "port": reader.integer("port", 4059, min=1, max=65535),
        "transport": transport,
        "serial_port": reader.string("serial_port", ""),
        "baud_rate": reader.integer("baud_rate", 9600, min=300, max=115200),
        "authentication": authentication,
        "password": _secret(reader, "password"),
        "system_title": title.encode("ascii", "replace"),
        "block_cipher_key": _hex(reader, "block_cipher_key", 16),
        "authentication_key": _hex(reader, "authentication_key", 16),
        "client_address": reader.integer("client_address", 16, min=1, max=0x7F),
        "server_logical_address": reader.integer("server_logical_address", 1, min=0, max=0x3FFF),
        "server_physical_address": reader.integer("server_physical_address", 17, min=0, max=0x3FFF),
        "timeout": reader.number("timeout", 5.0, min=0.1, max=120),
        "registers": tuple(registers),
        "profile_obis": reader.string("profile_obis", LOAD_PROFILE_OBIS),
    }
    if transport == "serial" and not values["serial_port"]:
        reader.error("serial_port", 'required with transport = "serial"')
        return None
    if authentication == "hls-gmac" and not (
        values["block_cipher_key"] and values["authentication_key"] and len(title) == 8
    ):
        reader.error(
            "authentication",
            "hls-gmac needs block_cipher_key, authentication_key and an 8-character system_title",
        )
        return None
    try:
        return DlmsConfig(**values)
    except ValueError as exc:  # a rule DlmsConfig has that the checks above missed
        reader.error("kind", str(exc))
        return None


def _p1(reader: TableReader, name: str) -> P1Settings | None:
    device = reader.string("device", min_len=1)
    version = reader.string("version", "5")
    if version not in [v.value for v in DsmrVersion]:
        reader.error("version", 'must be "2.2", "3", "4" or "5"')
        return None
    max_age = reader.number("max_age", None, min=0.1, max=3600)
    return P1Settings(device=device, version=DsmrVersion(version), max_age=max_age, name=name)


def _choice(reader: TableReader, key: str, default: str, allowed: tuple[str, ...]) -> str:
    value = reader.string(key, default)
    if value not in allowed:
        reader.error(key, "must be one of " + ", ".join(f'"{a}"' for a in allowed))
        return default
    return value


def _scale(reader: TableReader, raw: object) -> Decimal:
    if raw is None:
        return Decimal(1)
    scale = None
    if isinstance(raw, int | float | str) and not isinstance(raw, bool):
        try:
            scale = Decimal(str(raw))
        except InvalidOperation:
            scale = None
    if scale is None or not scale.is_finite() or scale == 0:
        reader.error("scale", 'must be a non-zero number (a string such as "0.1" is exact)')
        return Decimal(1)
    return scale


def _point(reader: TableReader) -> Point | None:
    measurand = reader.string("measurand", min_len=1)
    address = reader.integer("address", min=0, max=0xFFFF)
    type_ = _choice(reader, "type", "uint16", get_args(DataType))
    table = _choice(reader, "table", "holding", get_args(Table))
    word_order = _choice(reader, "word_order", "big", get_args(WordOrder))
    unit = reader.string("unit", None)
    location = reader.string("location", None)
    scale = _scale(reader, reader.raw("scale"))
    try:
        return Point(
            measurand,
            address,
            cast(DataType, type_),
            unit,
            scale,
            cast(Table, table),
            cast(WordOrder, word_order),
            location,
        )
    except ValueError as exc:
        reader.error("measurand", str(exc))
        return None


def _analyser(reader: TableReader) -> AnalyserConfig | None:
    host = reader.string("host", min_len=1)
    port = reader.integer("port", 502, min=1, max=65535)
    unit_id = reader.integer("unit_id", 1, min=0, max=247)
    timeout = reader.number("timeout", 1.0, min=0.05, max=60)
    board = reader.boolean("board_temperature", True)
    thermal_glob = reader.string("thermal_glob", THERMAL_GLOB)
    if reader.has("points"):
        points = tuple(p for p in map(_point, reader.array_of_tables("points")) if p)
    else:
        reader.raw("points")
        points = DEFAULT_POINTS
    try:
        return AnalyserConfig(
            host=host,
            port=port,
            unit_id=unit_id,
            timeout=timeout,
            points=points,
            board_temperature=board,
            thermal_glob=thermal_glob,
        )
    except ValueError as exc:
        reader.error("points", str(exc))
        return None


def read_meter(reader: TableReader) -> MeterConfig | None:
    """One `[[meters]]` entry; None (with problems recorded) when it is unusable."""
    kind = reader.string("kind")
    name = reader.string("name", min_len=1, max_len=_NAME_MAX)
    if kind == "dlms":
        dlms = _dlms(reader)
        return MeterConfig(name, kind, dlms=dlms) if dlms else None
    if kind == "p1":
        p1 = _p1(reader, name)
        return MeterConfig(name, kind, p1=p1) if p1 else None
    if kind == "analyser":
        analyser = _analyser(reader)
        return MeterConfig(name, kind, analyser=analyser) if analyser else None
    if kind:
        reader.error("kind", "must be one of " + ", ".join(f'"{k}"' for k in KINDS))
    for key in _ANY_KIND_KEYS:
        reader.raw(key)  # the kind is wrong: do not also report its keys as unknown
    return None


_ANY_KIND_KEYS: Final = (
    *("host", "port", "transport", "serial_port", "baud_rate", "authentication", "password"),
    *("password_file", "system_title", "block_cipher_key", "authentication_key"),
    *("client_address", "server_logical_address", "server_physical_address", "timeout"),
    *("registers", "profile_obis", "device", "version", "max_age", "unit_id"),
    *("board_temperature", "thermal_glob", "points"),
)


def read_metering(reader: TableReader) -> MeteringSettings:
    log_file = reader.path("log_file", None, must_exist=False)
    return MeteringSettings(
        retention_days=reader.integer("retention_days", 90, min=1, max=3660),
        retry_interval=reader.number("retry_interval", 30.0, min=0.1, max=3600),
        max_gap_days=reader.integer("max_gap_days", 7, min=0, max=366),
        log_file=log_file,
        log_backups=reader.integer("log_backups", 5, min=0, max=100),
        log_max_bytes=reader.integer("log_max_bytes", 10 * 1024 * 1024, min=4096),
        upload_attempts=reader.integer("upload_attempts", 3, min=1, max=20),
        upload_backoff=reader.number("upload_backoff", 5.0, min=0.0, max=3600),
        upload_timeout=reader.number("upload_timeout", 120.0, min=1, max=3600),
        upload_ca_file=reader.path("upload_ca_file", None),
    )


def load_metering(config: Config) -> MeteringConfig:
    """Both sections of a loaded config; raises ConfigInvalid listing every problem."""
    problems = Problems(config.file)
    metering = read_metering_config(config, problems)
    problems.raise_if_any()
    return metering


def read_metering_config(config: Config, problems: Problems) -> MeteringConfig:
    """`[[meters]]` and `[metering]`; problems are collected (the caller raises)."""
    base = config.file.parent
    root = TableReader(config.devices, "", problems, base)
    meters: list[MeterConfig] = []
    seen: dict[str, str] = {}
    for entry in root.array_of_tables("meters"):
        name = entry.raw("name")
        meter = read_meter(entry)
        entry.done()
        if isinstance(name, str) and name:
            if name in seen:
                entry.error("name", f"{name!r} is already the name of {seen[name]}")
            seen.setdefault(name, entry.key_path("")[:-1])
        if meter is not None:
            meters.append(meter)
    section = root.subtable("metering")
    settings = read_metering(section)
    section.done()
    return MeteringConfig(tuple(meters), settings)
