"""The central's configuration: one TOML file, validated at start.

Every error names the key path (`api.port: expected an integer`), and the CLI
exits with code 2 on it (DESIGN.md "Runtime"). `config/central.example.toml`
documents every key; `tests/central/test_config.py` loads that file, so the
example cannot drift from this module.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from central.queueing import QueuePolicy
from central.webhooks import WebhookPolicy

__all__ = ["ApiConfig", "CentralConfig", "ConfigError", "ListenConfig", "load_config"]


class ConfigError(Exception):
    """The configuration file is unreadable or a value is wrong; `path` names the key."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}" if path else reason)
        self.path = path
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class ListenConfig:
    """The OS³P websocket endpoint: ws(s)://host:port/prefix/<stationId>."""

    host: str = "0.0.0.0"
    port: int = 8180
    prefix: str = "/OS3P"
    # Seconds between our websocket pings (§6 Table 8 websocketPingInterval); 0: none.
    ping_interval: float = 30.0
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # When set, stations may present a client certificate signed by this CA; a station
    # with a cert identity in the registry must, and it must match (server.cert_matches).
    tls_client_ca: Path | None = None


@dataclasses.dataclass(frozen=True)
class ApiConfig:
    """The operator's HTTP API, `/metrics` and the file server share one aiohttp app."""

    host: str = "127.0.0.1"
    port: int = 8181
    token: str = ""
    # The base URL stations use to reach the file server (GetFile upload locations,
    # firmware URLs). Default: http://<host>:<port>.
    public_url: str = ""

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"


@dataclasses.dataclass(frozen=True)
class CentralConfig:
    listen: ListenConfig
    api: ApiConfig
    storage_url: str
    data_dir: Path
    command_timeout: float = 30.0
    log_level: str = "INFO"
    queue: QueuePolicy = dataclasses.field(default_factory=QueuePolicy)
    webhooks: WebhookPolicy = dataclasses.field(default_factory=WebhookPolicy)


def _table(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(key, "expected a table")
    return value


def _check_keys(table: Mapping[str, Any], prefix: str, known: set[str]) -> None:
    for key in table:
        if key not in known:
            raise ConfigError(f"{prefix}.{key}" if prefix else key, "unknown key")


def _get(table: Mapping[str, Any], prefix: str, key: str, kind: type, default: Any) -> Any:
    if key not in table:
        return default
    value = table[key]
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise ConfigError(f"{prefix}.{key}", f"expected {kind.__name__}, got {value!r}")
    return value


def _path(table: Mapping[str, Any], prefix: str, key: str, base: Path) -> Path | None:
    value = _get(table, prefix, key, str, "")
    if not value:
        return None
    path = Path(value)
    return path if path.is_absolute() else base / path


def _at_least_one(table: Mapping[str, Any], prefix: str, key: str, default: int) -> int:
    value: int = _get(table, prefix, key, int, default)
    if value < 1:
        raise ConfigError(f"{prefix}.{key}", f"must be at least 1, got {value}")
    return value


def _retry(
    table: Mapping[str, Any], prefix: str, base: timedelta, cap: timedelta
) -> tuple[timedelta, timedelta]:
    """`retry_base` and `retry_cap` in seconds: the first wait, doubling up to the cap."""
    base_s = _get(table, prefix, "retry_base", float, base.total_seconds())
    cap_s = _get(table, prefix, "retry_cap", float, cap.total_seconds())
    if base_s <= 0:
        raise ConfigError(f"{prefix}.retry_base", "must be positive")
    if cap_s < base_s:
        raise ConfigError(f"{prefix}.retry_cap", f"must be at least retry_base ({base_s:g} s)")
    return timedelta(seconds=base_s), timedelta(seconds=cap_s)


def _queue_policy(table: Mapping[str, Any]) -> QueuePolicy:
    default = QueuePolicy()
    base, cap = _retry(table, "commands", default.backoff_base, default.backoff_cap)
    return QueuePolicy(
        max_in_flight=_at_least_one(table, "commands", "max_in_flight", default.max_in_flight),
        max_attempts=_at_least_one(table, "commands", "max_attempts", default.max_attempts),
        backoff_base=base,
        backoff_cap=cap,
    )


def _webhook_policy(table: Mapping[str, Any]) -> WebhookPolicy:
    _check_keys(table, "webhooks", {"timeout", "max_attempts", "retry_base", "retry_cap"})
    default = WebhookPolicy()
    base, cap = _retry(table, "webhooks", default.backoff_base, default.backoff_cap)
    timeout = _get(table, "webhooks", "timeout", float, default.timeout)
    if timeout <= 0:
        raise ConfigError("webhooks.timeout", "must be positive")
    return WebhookPolicy(
        max_attempts=_at_least_one(table, "webhooks", "max_attempts", default.max_attempts),
        backoff_base=base,
        backoff_cap=cap,
        timeout=timeout,
    )


def load_config(path: Path) -> CentralConfig:
    """Read and validate `path`; relative file paths are relative to the file's directory."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError("", f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"{path} is not valid TOML: {exc}") from None
    base = path.resolve().parent
    _check_keys(doc, "", {"listen", "api", "storage", "files", "commands", "webhooks", "logging"})
    listen_t = _table(doc, "listen")
    _check_keys(
        listen_t,
        "listen",
        {"host", "port", "prefix", "ping_interval", "tls_cert", "tls_key", "tls_client_ca"},
    )
    listen = ListenConfig(
        host=_get(listen_t, "listen", "host", str, ListenConfig.host),
        port=_get(listen_t, "listen", "port", int, ListenConfig.port),
        prefix=_get(listen_t, "listen", "prefix", str, ListenConfig.prefix),
        ping_interval=_get(listen_t, "listen", "ping_interval", float, 30.0),
        tls_cert=_path(listen_t, "listen", "tls_cert", base),
        tls_key=_path(listen_t, "listen", "tls_key", base),
        tls_client_ca=_path(listen_t, "listen", "tls_client_ca", base),
    )
    if not listen.prefix.startswith("/"):
        raise ConfigError("listen.prefix", "must start with '/'")
    if (listen.tls_cert is None) != (listen.tls_key is None):
        raise ConfigError("listen.tls_key", "tls_cert and tls_key go together")
    if listen.tls_client_ca is not None and listen.tls_cert is None:
        raise ConfigError("listen.tls_client_ca", "client certificates need tls_cert/tls_key")
    api_t = _table(doc, "api")
    _check_keys(api_t, "api", {"host", "port", "token", "public_url"})
    api = ApiConfig(
        host=_get(api_t, "api", "host", str, ApiConfig.host),
        port=_get(api_t, "api", "port", int, ApiConfig.port),
        token=_get(api_t, "api", "token", str, ""),
        public_url=_get(api_t, "api", "public_url", str, ""),
    )
    if len(api.token) < 16:
        raise ConfigError("api.token", "required, at least 16 characters")
    storage_t = _table(doc, "storage")
    _check_keys(storage_t, "storage", {"url"})
    storage_url = _get(storage_t, "storage", "url", str, "")
    if not storage_url:
        raise ConfigError("storage.url", "required (sqlite:///path or postgresql://...)")
    if storage_url.startswith("sqlite://") and not storage_url.startswith("sqlite:///"):
        # A relative SQLite path is read relative to the config file, like the others.
        storage_url = f"sqlite://{base / storage_url[len('sqlite://') :]}"
    files_t = _table(doc, "files")
    _check_keys(files_t, "files", {"data_dir"})
    data_dir = _path(files_t, "files", "data_dir", base)
    if data_dir is None:
        raise ConfigError("files.data_dir", "required")
    commands_t = _table(doc, "commands")
    _check_keys(
        commands_t,
        "commands",
        {"timeout", "max_in_flight", "max_attempts", "retry_base", "retry_cap"},
    )
    timeout = _get(commands_t, "commands", "timeout", float, 30.0)
    if timeout <= 0:
        raise ConfigError("commands.timeout", "must be positive")
    queue = _queue_policy(commands_t)
    webhooks = _webhook_policy(_table(doc, "webhooks"))
    logging_t = _table(doc, "logging")
    _check_keys(logging_t, "logging", {"level"})
    level = _get(logging_t, "logging", "level", str, "INFO").upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError("logging.level", "one of DEBUG, INFO, WARNING, ERROR")
    return CentralConfig(
        listen=listen,
        api=api,
        storage_url=storage_url,
        data_dir=data_dir,
        command_timeout=timeout,
        log_level=level,
        queue=queue,
        webhooks=webhooks,
    )
