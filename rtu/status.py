"""The technician's view (`rtu status`): a snapshot the daemon writes, read without it.

The daemon rewrites `status.json` in its data directory whenever something a
technician cares about changes (and at least every few seconds), atomically
(write + rename), so `rtu status` works with no IPC, no privileges beyond
reading the data directory, and shows the last known state even when the
daemon is down — with the age of the snapshot and whether its pid is alive.
Outbox depth and dead letters are read from the outbox database itself.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rtu.outbox.store import read_status

__all__ = ["STATUS_FILE", "format_status", "read_snapshot", "write_snapshot"]

STATUS_FILE = "status.json"


# status.json is padded with spaces to a multiple of this (JSON ignores trailing
# whitespace), so the file always has room to be rewritten in place.
_PAGE = 4096
_HEADROOM = 2 * _PAGE


def write_snapshot(data_dir: Path, snapshot: Mapping[str, Any]) -> None:
    """Write status.json atomically; on a full disk, rewrite it in place.

    A full data disk is exactly when the technician needs `rtu status`, and
    exactly when a new file cannot be created. So every snapshot is padded to
    leave `_HEADROOM` bytes, and when the atomic write fails with ENOSPC the
    existing file's already-allocated blocks are overwritten instead (not
    atomic: a reader may rarely see a torn file and retries). A read-only disk
    leaves no way at all: the OSError propagates and the daemon reports the
    fault elsewhere (log, STATUS=, StatusNotification).
    """
    target = data_dir / STATUS_FILE
    text = json.dumps(snapshot, indent=2, sort_keys=True, default=str).encode()
    size = -(-(len(text) + _HEADROOM) // _PAGE) * _PAGE
    padded = text + b" " * (size - len(text) - 1) + b"\n"
    fd, tmp = -1, ""
    try:
        fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=".status-", suffix=".json")
        with os.fdopen(fd, "wb") as stream:
            fd = -1
            stream.write(padded)
        os.replace(tmp, target)
    except OSError as exc:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        if exc.errno != errno.ENOSPC:
            raise
        _overwrite_in_place(target, text, exc)
    except BaseException:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        if fd >= 0:
            os.close(fd)


def _overwrite_in_place(target: Path, text: bytes, cause: OSError) -> None:
    try:
        with target.open("r+b") as stream:
            room = os.fstat(stream.fileno()).st_size
            if len(text) + 1 > room:
                raise cause
            stream.write(text + b" " * (room - len(text) - 1) + b"\n")
    except FileNotFoundError:
        raise cause from None


def read_snapshot(data_dir: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((data_dir / STATUS_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    return data


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def format_status(data_dir: Path, now: datetime | None = None) -> str:
    """Readable report for a technician standing next to the RTU."""
    now = now or datetime.now(UTC)
    lines: list[str] = []
    snapshot = read_snapshot(data_dir)
    if snapshot is None:
        lines.append(f"daemon:       no status in {data_dir} (never started here?)")
    else:
        written = datetime.fromisoformat(snapshot["written_at"])
        alive = _pid_alive(int(snapshot["pid"]))
        age = (now - written).total_seconds()
        lines.append(
            f"daemon:       {'running' if alive else 'NOT RUNNING'} (pid {snapshot['pid']}, "
            f"version {snapshot['version']}, snapshot {age:.0f} s old)"
        )
        lines.append(f"station:      {snapshot['station_id']} → {snapshot['endpoint']}")
        link = snapshot["link"]
        lines.append(
            f"link:         {link['state']}"
            + (f" (last error: {link['last_error']})" if link.get("last_error") else "")
        )
        lines.append(
            f"clock offset: {snapshot['clock_offset_s']:+.3f} s (central minus system clock)"
        )
        for name, reason in sorted(snapshot.get("failing_loops", {}).items()):
            lines.append(f"FAILING loop: {name}: {reason}")
        contactors = snapshot.get("contactors") or {}
        for contactor, state in sorted(contactors.items()):
            lines.append(f"contactor {contactor}:  {state}")
        storage = snapshot.get("storage") or {}
        if storage.get("fault"):
            lines.append(
                f"DATA DISK:    {storage['fault']} (since {storage['since']};"
                f" {storage['held']} event(s) held in memory)"
            )
        if snapshot.get("lights_db_error"):
            lines.append(f"lights.db:    cannot be written: {snapshot['lights_db_error']}")
        faults = snapshot.get("open_faults") or []
        lines.append(f"open faults:  {', '.join(faults) if faults else 'none'}")
        for meter, reading in sorted((snapshot.get("meters") or {}).items()):
            lines.append(f"meter {meter}: {reading}")
        firmware = snapshot.get("firmware")
        if firmware:
            detail = ", ".join(
                f"{key} {firmware[key]}"
                for key in ("request_id", "target", "previous", "reason")
                if firmware.get(key)
            )
            lines.append(
                f"firmware:     {firmware['phase']} (status {firmware['status']})"
                + (f": {detail}" if detail else "")
            )
    outbox_path = data_dir / "outbox.db"
    if outbox_path.exists():
        status, dead = read_status(outbox_path)
        oldest = f", oldest {status.oldest.isoformat()}" if status.oldest else ""
        lines.append(f"outbox:       {status.depth} queued{oldest}")
        lines.append(f"dead letters: {len(dead)}")
        lines.extend(f"  #{d.seq} {d.action}: {d.code} {d.description}" for d in dead[-5:])
        if status.evicted_meter_values:
            lines.append(f"evicted:      {status.evicted_meter_values} MeterValues (storage bound)")
    return "\n".join(lines)
