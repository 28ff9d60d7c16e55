"""Structured log lines: `key=value` pairs, the station id in every line about a station.

Our own lines are written with `log_event(logger, level, event, station=..., **fields)`;
lines from `os3p` (which start with the station id, "SUBS001: bad frame ...") and from
libraries go through the same formatter, their text as `msg="..."`.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

__all__ = ["KeyValueFormatter", "configure_logging", "log_event"]


def _quote(value: object) -> str:
    text = str(value)
    if text and not any(c in text for c in ' "=\n\t'):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def log_event(
    logger: logging.Logger, level: int, event: str, *, station: str | None, **fields: Any
) -> None:
    """Log one event; `station` is always written (`-` for lines about no station)."""
    if not logger.isEnabledFor(level):
        return
    pairs = " ".join(f"{key}={_quote(value)}" for key, value in fields.items() if value is not None)
    logger.log(
        level,
        "event=%s station=%s%s",
        event,
        _quote(station if station is not None else "-"),
        f" {pairs}" if pairs else "",
        extra={"kv": True},
    )


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        head = f"ts={ts.replace('+00:00', 'Z')} level={record.levelname} logger={record.name}"
        message = record.getMessage()
        line = (
            f"{head} {message}" if getattr(record, "kv", False) else f"{head} msg={_quote(message)}"
        )
        if record.exc_info:
            line += f" exc={_quote(self.formatException(record.exc_info))}"
        return line


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # websockets logs each handshake without the station id; ours say the same with it
    # (event=connected, refused_unknown, refused_credentials, disconnected).
    logging.getLogger("websockets").setLevel(max(logging.WARNING, root.level))
