"""The daemon's configuration: one TOML file, validated completely at start.

A station is configured once, by a technician on site, and then runs for
years; a typo must stop it at start with a message that names the key, not
surface months later as a silently ignored setting. So:

- every key is checked (type, range, length, existence of files) and unknown
  keys are errors;
- all problems are collected and reported together (`ConfigInvalid`, a list of
  `ConfigError`, each with the file, the key path such as `site.latitude`, and
  the reason), so one round trip fixes them all;
- the result is frozen dataclasses: nothing changes a loaded config. Values that
  OS³P ChangeConfiguration may change live in the state database
  (`rtu.state.StateStore.settings`) and override these at start.

Device sections (`[io]`, `[lights]`, `[[meters]]`, `[metering]`, `[mqtt]`, `[mv]`, `[alarms]`,
`[firmware]`) are owned by their modules.
They arrive as raw tables in `Config.devices`; each owner validates its own at
start with the same `TableReader`, so their errors look the same:

    problems = Problems(config.file)
    reader = TableReader(config.devices.get("mqtt", {}), "mqtt", problems, config.file.parent)
    host = reader.string("host", max_len=253)
    port = reader.integer("port", 1883, min=1, max=65535)
    reader.done()
    problems.raise_if_any()

Relative paths in the file are relative to the file's own directory.

Errors (kept here rather than in an errors.py: this module is their only source):

    ConfigInvalid    the file cannot be used; `.errors` lists every ConfigError found
    ConfigError      one problem: `.file`, `.key` ("" for the file as a whole), `.reason`
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import urllib.parse
import zoneinfo
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal, TypeVar, overload

__all__ = [
    "DEVICE_SECTIONS",
    "CentralConfig",
    "Config",
    "ConfigError",
    "ConfigInvalid",
    "DataConfig",
    "LinkConfig",
    "Problems",
    "SiteConfig",
    "StationConfig",
    "SystemConfig",
    "TableReader",
    "load_config",
]

# Sections validated by their owners (see module docstring), accepted raw here.
DEVICE_SECTIONS: Final = frozenset(
    {"alarms", "firmware", "io", "lights", "meters", "metering", "mqtt", "mv"}
)

D = TypeVar("D")
_PathKind = Literal["file", "dir"]


class _Required:
    """Marker default: the key must be present."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Final = _Required()


class ConfigError(Exception):
    """One problem in the configuration file."""

    def __init__(self, file: Path, key: str, reason: str) -> None:
        super().__init__(f"{file}: {key}: {reason}" if key else f"{file}: {reason}")
        self.file = file
        self.key = key
        self.reason = reason


class ConfigInvalid(Exception):
    """The configuration cannot be used; every problem found is in `errors`."""

    def __init__(self, file: Path, errors: Sequence[ConfigError]) -> None:
        lines = "\n".join(f"  {e.key}: {e.reason}" if e.key else f"  {e.reason}" for e in errors)
        count = f"{len(errors)} error" + ("s" if len(errors) != 1 else "")
        super().__init__(f"{file}: {count}\n{lines}")
        self.file = file
        self.errors = tuple(errors)


class Problems:
    """Collects ConfigErrors for one file; `raise_if_any` reports them together."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.errors: list[ConfigError] = []

    def add(self, key: str, reason: str) -> None:
        self.errors.append(ConfigError(self.file, key, reason))

    def raise_if_any(self) -> None:
        if self.errors:
            raise ConfigInvalid(self.file, self.errors)


def _kind(value: object) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


class TableReader:
    """Typed, validating access to one TOML table; records problems instead of raising.

    Each getter marks its key as known; `done()` reports the keys nobody asked
    for. On a problem a getter returns a placeholder of the right type (or the
    default): the caller carries on so that every problem is found, and
    `Problems.raise_if_any()` stops before the placeholders are used.
    """

    def __init__(
        self,
        table: Mapping[str, Any],
        prefix: str,
        problems: Problems,
        base_dir: Path,
        *,
        absent: bool = False,
    ) -> None:
        self._table = table
        # A required section that is missing was reported once; its keys are not.
        self._absent = absent
        self._prefix = prefix
        self._problems = problems
        self._base_dir = base_dir
        self._seen: set[str] = set()

    def key_path(self, key: str) -> str:
        return f"{self._prefix}.{key}" if self._prefix else key

    def error(self, key: str, reason: str) -> None:
        """Report a problem found by the caller's own check (cross-key rules)."""
        self._problems.add(self.key_path(key), reason)

    def has(self, key: str) -> bool:
        return key in self._table

    def raw(self, key: str) -> Any:
        """The value as parsed, unchecked (None if absent): for sections owned elsewhere."""
        self._seen.add(key)
        return self._table.get(key)

    def _get(self, key: str, default: object, expected: str) -> tuple[bool, Any]:
        """(found and worth checking, value). Reports a missing required key."""
        self._seen.add(key)
        if key in self._table:
            return True, self._table[key]
        if default is REQUIRED and not self._absent:
            self.error(key, f"required ({expected})")
        return False, None

    def _wrong_type(self, key: str, expected: str, value: object) -> None:
        self.error(key, f"must be {expected}, not {_kind(value)}")

    @overload
    def string(self, key: str, *, max_len: int | None = None, min_len: int = 0) -> str: ...
    @overload
    def string(
        self, key: str, default: D, *, max_len: int | None = None, min_len: int = 0
    ) -> str | D: ...
    def string(
        self, key: str, default: object = REQUIRED, *, max_len: int | None = None, min_len: int = 0
    ) -> object:
        found, value = self._get(key, default, "a string")
        if not found:
            return "" if default is REQUIRED else default
        if not isinstance(value, str):
            self._wrong_type(key, "a string", value)
            return ""
        if max_len is not None and len(value) > max_len:
            self.error(key, f"at most {max_len} characters (got {len(value)})")
        elif len(value) < min_len:
            self.error(key, "must not be empty" if min_len == 1 else f"at least {min_len} chars")
        elif any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            self.error(key, "must not contain control characters")
        return value

    @overload
    def number(self, key: str, *, min: float | None = None, max: float | None = None) -> float: ...
    @overload
    def number(
        self, key: str, default: D, *, min: float | None = None, max: float | None = None
    ) -> float | D: ...
    def number(
        self,
        key: str,
        default: object = REQUIRED,
        *,
        min: float | None = None,
        max: float | None = None,
    ) -> object:
        """An integer or float (TOML `1` and `1.0` both mean one), within [min, max]."""
        found, value = self._get(key, default, "a number")
        if not found:
            return 0.0 if default is REQUIRED else default
        # bool is an int in Python; `true` is not a number in a config file.
        if isinstance(value, bool) or not isinstance(value, int | float):
            self._wrong_type(key, "a number", value)
            return 0.0
        if not math.isfinite(value):
            self.error(key, "must be a finite number")
            return 0.0
        self._check_range(key, value, min, max)
        return float(value)

    @overload
    def integer(self, key: str, *, min: int | None = None, max: int | None = None) -> int: ...
    @overload
    def integer(
        self, key: str, default: D, *, min: int | None = None, max: int | None = None
    ) -> int | D: ...
    def integer(
        self,
        key: str,
        default: object = REQUIRED,
        *,
        min: int | None = None,
        max: int | None = None,
    ) -> object:
        found, value = self._get(key, default, "an integer")
        if not found:
            return 0 if default is REQUIRED else default
        if isinstance(value, bool) or not isinstance(value, int):
            self._wrong_type(key, "an integer", value)
            return 0
        self._check_range(key, value, min, max)
        return value

    def _check_range(self, key: str, value: float, low: float | None, high: float | None) -> None:
        if low is not None and high is not None and not low <= value <= high:
            self.error(key, f"must be between {low} and {high} (got {value})")
        elif low is not None and value < low:
            self.error(key, f"must be at least {low} (got {value})")
        elif high is not None and value > high:
            self.error(key, f"must be at most {high} (got {value})")

    @overload
    def boolean(self, key: str) -> bool: ...
    @overload
    def boolean(self, key: str, default: D) -> bool | D: ...
    def boolean(self, key: str, default: object = REQUIRED) -> object:
        found, value = self._get(key, default, "true or false")
        if not found:
            return False if default is REQUIRED else default
        if not isinstance(value, bool):
            self._wrong_type(key, "true or false", value)
            return False
        return value

    @overload
    def path(
        self, key: str, *, must_exist: bool = True, kind: Literal["file", "dir"] = "file"
    ) -> Path: ...
    @overload
    def path(
        self,
        key: str,
        default: D,
        *,
        must_exist: bool = True,
        kind: _PathKind = "file",
    ) -> Path | D: ...
    def path(
        self,
        key: str,
        default: object = REQUIRED,
        *,
        must_exist: bool = True,
        kind: _PathKind = "file",
    ) -> object:
        """A path, relative ones resolved against the config file's directory."""
        found, value = self._get(key, default, "a path")
        if not found:
            return Path() if default is REQUIRED else default
        if not isinstance(value, str):
            self._wrong_type(key, "a path", value)
            return Path()
        if not value:
            self.error(key, "must not be empty")
            return Path()
        path = self._base_dir / value
        if must_exist:
            if kind == "file" and not path.is_file():
                self.error(key, f"no such file: {path}")
            elif kind == "dir" and not path.is_dir():
                self.error(key, f"no such directory: {path}")
        return path

    @overload
    def string_list(self, key: str, *, min_items: int = 0) -> tuple[str, ...]: ...
    @overload
    def string_list(self, key: str, default: D, *, min_items: int = 0) -> tuple[str, ...] | D: ...
    def string_list(self, key: str, default: object = REQUIRED, *, min_items: int = 0) -> object:
        found, value = self._get(key, default, "an array of strings")
        if not found:
            return () if default is REQUIRED else default
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.error(key, f"must be an array of strings, not {_kind(value)}")
            return ()
        if len(value) < min_items:
            self.error(key, f"must have at least {min_items} item(s)")
        return tuple(value)

    def subtable(self, key: str, *, required: bool = False) -> TableReader:
        """The table `[prefix.key]`; an empty one (all defaults) if absent and not required."""
        found, value = self._get(key, REQUIRED if required else None, "a table")
        if found and not isinstance(value, dict):
            self._wrong_type(key, "a table", value)
            found = False
        return TableReader(
            value if found else {},
            self.key_path(key),
            self._problems,
            self._base_dir,
            absent=not found and (required or key in self._table),
        )

    def array_of_tables(self, key: str) -> list[TableReader]:
        """`[[prefix.key]]` entries; their key paths read `key[0].field`."""
        found, value = self._get(key, None, "an array of tables")
        if not found:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.error(key, f"must be an array of tables ([[{self.key_path(key)}]])")
            return []
        return [
            TableReader(v, f"{self.key_path(key)}[{i}]", self._problems, self._base_dir)
            for i, v in enumerate(value)
        ]

    def done(self) -> None:
        """Report every key that no getter asked for: a typo must not pass silently."""
        for key in self._table:
            if key not in self._seen:
                what = "section" if isinstance(self._table[key], dict) else "key"
                self.error(key, f"unknown {what}")


@dataclasses.dataclass(frozen=True, slots=True)
class StationConfig:
    """Who we are. Lengths are those of the BootNotification request schema (§6.1.1)."""

    id: str  # the OS³P identity, last segment of the connection URL (§3.1.1)
    vendor: str
    model: str
    station_number: str
    serial_number: str
    iccid: str
    imsi: str

    def boot_fields(self, firmware_version: str) -> dict[str, str]:
        """The BootNotification payload (§6.1.1: every field is required)."""
        return {
            "vendor": self.vendor,
            "model": self.model,
            "stationNumber": self.station_number,
            "serialNumber": self.serial_number,
            "firmwareVersion": firmware_version,
            "iccid": self.iccid,
            "imsi": self.imsi,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class CentralConfig:
    url: str  # the OS³P endpoint URL; the station id is appended (§3.1.1)
    password: str | None = dataclasses.field(repr=False)  # never in a log line
    ca_file: Path | None
    client_cert: Path | None
    client_key: Path | None
    call_timeout: float


@dataclasses.dataclass(frozen=True, slots=True)
class DataConfig:
    dir: Path


@dataclasses.dataclass(frozen=True, slots=True)
class SiteConfig:
    latitude: float
    longitude: float
    timezone: zoneinfo.ZoneInfo


@dataclasses.dataclass(frozen=True, slots=True)
class LinkConfig:
    heartbeat_interval: int  # until BootNotification's `interval` says otherwise
    websocket_ping_interval: int  # OS³P §6 websocketPingInterval; 0 disables our pings
    reconnect_backoff_base: float
    reconnect_backoff_cap: float
    outbox_window: int
    outbox_max_entries: int
    dead_letter_after: int
    outbox_retry_base: float
    outbox_retry_cap: float
    outbox_memory_max_entries: int  # held in memory while the data disk refuses writes
    outbox_disk_settle: float  # s the disk must take every write before the fault ends


@dataclasses.dataclass(frozen=True, slots=True)
class SystemConfig:
    reboot_command: tuple[str, ...] | None  # None: Reset restarts the daemon only
    set_system_clock: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Config:
    file: Path
    station: StationConfig
    central: CentralConfig
    data: DataConfig
    site: SiteConfig
    link: LinkConfig
    system: SystemConfig
    devices: Mapping[str, Any]  # raw [io], [[meters]], [mqtt]: validated by their owners

    @property
    def connection_url(self) -> str:
        """§3.1.1: the endpoint URL, '/', then the percent-encoded station identity."""
        return self.central.url.rstrip("/") + "/" + urllib.parse.quote(self.station.id, safe="")


def load_config(path: Path) -> Config:
    """Read and validate `path`; raises ConfigInvalid listing every problem."""
    try:
        with path.open("rb") as stream:
            document = tomllib.load(stream)
    except OSError as exc:
        reason = f"cannot read: {exc.strerror or exc}"
        raise ConfigInvalid(path, [ConfigError(path, "", reason)]) from exc
    except tomllib.TOMLDecodeError as exc:
        reason = f"not valid TOML: {exc}"
        raise ConfigInvalid(path, [ConfigError(path, "", reason)]) from exc
    problems = Problems(path)
    root = TableReader(document, "", problems, path.parent)
    config = Config(
        file=path,
        station=_station(root.subtable("station", required=True)),
        central=_central(root.subtable("central", required=True)),
        data=_data(root.subtable("data")),
        site=_site(root.subtable("site", required=True)),
        link=_link(root.subtable("link")),
        system=_system(root.subtable("system")),
        devices=types.MappingProxyType(
            {key: root.raw(key) for key in sorted(DEVICE_SECTIONS) if root.has(key)}
        ),
    )
    root.done()
    problems.raise_if_any()
    return config


def _station(t: TableReader) -> StationConfig:
    station = StationConfig(
        # 48 as OCPP 1.6's chargeBoxIdentity, from which OS³P's station identity derives.
        id=t.string("id", max_len=48, min_len=1),
        vendor=t.string("vendor", max_len=20, min_len=1),
        model=t.string("model", max_len=20, min_len=1),
        station_number=t.string("station_number", max_len=10),
        serial_number=t.string("serial_number", max_len=25),
        iccid=t.string("iccid", "", max_len=20),
        imsi=t.string("imsi", "", max_len=20),
    )
    t.done()
    return station


def _central(t: TableReader) -> CentralConfig:
    url = t.string("url", min_len=1)
    if url:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("ws", "wss"):
            t.error("url", f"must start with ws:// or wss:// (got {parts.scheme or 'no'} scheme)")
        elif not parts.hostname:
            t.error("url", "has no host")
        elif parts.username is not None or parts.password is not None:
            t.error("url", "must not contain credentials: use central.password")
        elif parts.query or parts.fragment:
            t.error("url", "must not have a query or fragment: the station id is appended")
    password = t.string("password", None, min_len=1)
    password_file = t.path("password_file", None)
    if password is not None and password_file is not None:
        t.error("password_file", "give either central.password or central.password_file")
    elif password_file is not None and password_file.is_file():
        password = _read_secret(t, "password_file", password_file)
    ca_file = t.path("ca_file", None)
    client_cert = t.path("client_cert", None)
    client_key = t.path("client_key", None)
    if (client_cert is None) != (client_key is None):
        t.error(
            "client_key" if client_key is None else "client_cert",
            "give both client_cert and client_key",
        )
    if url.startswith("ws://"):
        for key, value in (("ca_file", ca_file), ("client_cert", client_cert)):
            if value is not None:
                t.error(key, "TLS settings need a wss:// url")
    central = CentralConfig(
        url=url,
        password=password,
        ca_file=ca_file,
        client_cert=client_cert,
        client_key=client_key,
        call_timeout=t.number("call_timeout", 30.0, min=1, max=3600),
    )
    t.done()
    return central


def _read_secret(t: TableReader, key: str, path: Path) -> str | None:
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        t.error(key, f"cannot read {path}: {exc}")
        return None
    if not secret:
        t.error(key, f"{path} is empty")
    return secret


def _data(t: TableReader) -> DataConfig:
    # Need not exist yet: systemd's StateDirectory= (or the daemon) creates it.
    directory = t.path("dir", Path("/var/lib/rtu"), must_exist=False)
    t.done()
    return DataConfig(directory)


def _site(t: TableReader) -> SiteConfig:
    latitude = t.number("latitude", min=-90, max=90)
    longitude = t.number("longitude", min=-180, max=180)
    name = t.string("timezone", min_len=1)
    zone = zoneinfo.ZoneInfo("UTC")
    if name:
        try:
            zone = zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            t.error("timezone", f"unknown IANA time zone {name!r} (e.g. Europe/Amsterdam)")
    t.done()
    return SiteConfig(latitude, longitude, zone)


def _link(t: TableReader) -> LinkConfig:
    link = LinkConfig(
        heartbeat_interval=t.integer("heartbeat_interval", 300, min=1, max=86_400),
        websocket_ping_interval=t.integer("websocket_ping_interval", 0, min=0, max=86_400),
        reconnect_backoff_base=t.number("reconnect_backoff_base", 1.0, min=0.01, max=3600),
        reconnect_backoff_cap=t.number("reconnect_backoff_cap", 300.0, min=0.01, max=86_400),
        outbox_window=t.integer("outbox_window", 1, min=1, max=1000),
        outbox_max_entries=t.integer("outbox_max_entries", 100_000, min=100, max=10_000_000),
        dead_letter_after=t.integer("dead_letter_after", 5, min=1, max=1000),
        outbox_retry_base=t.number("outbox_retry_base", 5.0, min=0.01, max=3600),
        outbox_retry_cap=t.number("outbox_retry_cap", 300.0, min=0.01, max=86_400),
        outbox_memory_max_entries=t.integer(
            "outbox_memory_max_entries", 10_000, min=100, max=1_000_000
        ),
        outbox_disk_settle=t.number("outbox_disk_settle", 10.0, min=0.1, max=3600),
    )
    if link.reconnect_backoff_cap < link.reconnect_backoff_base:
        t.error("reconnect_backoff_cap", "must not be below reconnect_backoff_base")
    if link.outbox_retry_cap < link.outbox_retry_base:
        t.error("outbox_retry_cap", "must not be below outbox_retry_base")
    t.done()
    return link


def _system(t: TableReader) -> SystemConfig:
    command = t.string_list("reboot_command", None, min_items=1)
    if command and not command[0].startswith("/"):
        t.error(
            "reboot_command", "the program must be an absolute path (systemd's PATH is minimal)"
        )
    system = SystemConfig(command, t.boolean("set_system_clock", False))
    t.done()
    return system
