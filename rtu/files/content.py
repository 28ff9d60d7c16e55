"""What GetFile uploads: the three file types of §7.5, built as bytes.

- `MeterValueHistory`: CSV (RFC 4180, UTF-8, `\\r\\n` line ends) with a header
  row `timestamp,measurand,value,unit,location,context,source`; timestamps
  UTC ISO 8601 with `Z`; empty fields where a sample has no unit or
  location; rows oldest first. `source` is the `[[meters]]` name.
- `Syslog`: the daemon's own log for [startTime, stopTime]. When
  `[metering] log_file` is set the daemon writes a rotating log file there
  (`configure_log_file`) and the file and its rotations are filtered by the
  timestamp that starts every record (continuation lines such as tracebacks
  follow their record). Without it, `journalctl -u rtu` is used when present
  (systemd installs log to the journal). Neither: GetFile Syslog is Rejected.
- `VendorSpecific`: a diagnostics zip: `status.json` (the `rtu status`
  snapshot), `config.json` (the config file with every secret removed:
  keys named password, password_file, or ending in key / key_file, secret,
  token), `databases.json` (size, tables and row counts of each database in
  the data directory).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import logging.handlers
import re
import shutil
import sqlite3
import subprocess
import tomllib
import zipfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from rtu.metering.history import HistoryRow
from rtu.storage import StorageUnavailable, open_readonly

__all__ = [
    "CSV_HEADER",
    "LOG_FORMAT",
    "configure_log_file",
    "diagnostics_zip",
    "history_csv",
    "journal_available",
    "journal_text",
    "log_file_text",
    "sanitized",
]

CSV_HEADER: Final = ("timestamp", "measurand", "value", "unit", "location", "context", "source")
LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_LOG_TIME: Final = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z) ")
_SECRET_KEY: Final = re.compile(r"(password|password_file|secret|token|key|key_file)$", re.I)


def history_csv(rows: Iterable[HistoryRow]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for row in rows:
        writer.writerow(
            (
                row.timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                row.measurand,
                row.value,
                row.unit or "",
                row.location or "",
                row.context,
                row.source,
            )
        )
    return buffer.getvalue().encode("utf-8")


class _UtcFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        moment = datetime.fromtimestamp(record.created, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def configure_log_file(path: Path, *, max_bytes: int, backups: int) -> logging.Handler:
    """Add a rotating file handler on the root logger (UTC timestamps GetFile can filter)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
    )
    handler.setFormatter(_UtcFormatter(LOG_FORMAT))
    logging.getLogger().addHandler(handler)
    return handler


def _log_files(path: Path) -> list[Path]:
    """Oldest first: rtu.log.N ... rtu.log.1, rtu.log."""
    rotated = []
    for candidate in path.parent.glob(path.name + ".*"):
        suffix = candidate.name[len(path.name) + 1 :]
        if suffix.isdigit():
            rotated.append((int(suffix), candidate))
    return [p for _, p in sorted(rotated, reverse=True)] + ([path] if path.exists() else [])


def log_file_text(path: Path, start: datetime, stop: datetime) -> bytes:
    """Records of the log file (and its rotations) stamped within [start, stop]."""
    out = io.BytesIO()
    keep = False
    for file in _log_files(path):
        with file.open("rb") as stream:
            for line in stream:
                match = _LOG_TIME.match(line.decode("utf-8", "replace"))
                if match is not None:
                    stamp = datetime.fromisoformat(match.group(1).replace("Z", "+00:00"))
                    keep = start <= stamp <= stop
                if keep:
                    out.write(line)
    return out.getvalue()


def journal_available() -> bool:
    return shutil.which("journalctl") is not None


def journal_text(unit: str, start: datetime, stop: datetime, *, timeout: float = 60) -> bytes:
    """The unit's journal for [start, stop] (blocking: run it in a thread)."""
    fmt = "%Y-%m-%d %H:%M:%S"
    result = subprocess.run(
        [
            "journalctl",
            "--unit",
            unit,
            "--utc",
            "--no-pager",
            "--output",
            "short-iso-precise",
            "--since",
            start.astimezone(UTC).strftime(fmt),
            "--until",
            stop.astimezone(UTC).strftime(fmt),
        ],
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise OSError(f"journalctl failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def sanitized(document: Mapping[str, Any]) -> dict[str, Any]:
    """`document` without secrets (recursively, also inside arrays of tables)."""

    def clean(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: clean(v) for k, v in value.items() if not _SECRET_KEY.search(k)}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, datetime):
            return value.isoformat()
        return value

    result: dict[str, Any] = clean(document)
    return result


def _database_stats(path: Path) -> dict[str, Any]:
    stats: dict[str, Any] = {"bytes": path.stat().st_size}
    try:
        connection = open_readonly(path)
    except StorageUnavailable as exc:
        return {**stats, "error": str(exc)}
    try:
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        stats["user_version"] = connection.execute("PRAGMA user_version").fetchone()[0]
        stats["tables"] = {
            name: connection.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0]
            for name in tables
        }
    except sqlite3.Error as exc:
        stats["error"] = str(exc)
    finally:
        connection.close()
    return stats


def diagnostics_zip(
    *, status: Mapping[str, Any], config_file: Path | None, data_dir: Path | None
) -> bytes:
    """The VendorSpecific bundle (blocking: run it in a thread)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("status.json", json.dumps(status, indent=2, default=str))
        if config_file is not None:
            try:
                with config_file.open("rb") as stream:
                    config = sanitized(tomllib.load(stream))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                config = {"error": f"cannot read {config_file}: {exc}"}
            bundle.writestr("config.json", json.dumps(config, indent=2, default=str))
        databases = {}
        if data_dir is not None and data_dir.is_dir():
            databases = {db.name: _database_stats(db) for db in sorted(data_dir.glob("*.db"))}
        bundle.writestr("databases.json", json.dumps(databases, indent=2))
    return buffer.getvalue()
