"""status.json and `rtu status` on a full data disk (issue 4: reported, not crashed on)."""

from __future__ import annotations

import errno
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rtu.status import format_status, read_snapshot, write_snapshot
from tests.support.disk import fill, small_tmpfs


def snapshot(**extra: object) -> dict[str, object]:
    return {
        "written_at": datetime.now(UTC).isoformat(),
        "pid": os.getpid(),
        "version": "1.0",
        "station_id": "SUBS001",
        "endpoint": "ws://central/OS3P",
        "link": {"state": "accepted", "last_error": None},
        "clock_offset_s": 0.0,
        **extra,
    }


def test_a_full_disk_still_gets_the_latest_status(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk", "256k") as mount:
        if mount is None:
            pytest.skip("mount -t tmpfs is not permitted here (reason printed above)")
        write_snapshot(mount, snapshot())
        fill(mount)
        with pytest.raises(OSError, match="No space left") as full:  # really full
            (mount / "probe").write_bytes(b"x" * 8192)
        assert full.value.errno == errno.ENOSPC
        fault = {"fault": "disk full: database or disk is full", "since": "now", "held": 3}
        write_snapshot(mount, snapshot(storage=fault))
        data = read_snapshot(mount)
        assert data is not None
        assert data["storage"]["held"] == 3
        assert "DATA DISK:    disk full" in format_status(mount)


def test_status_shows_the_data_disk_fault_and_the_lights_db_error(tmp_path: Path) -> None:
    fault = {"fault": "read-only (file system or permissions)", "since": "t", "held": 2}
    write_snapshot(tmp_path, snapshot(storage=fault, lights_db_error="read-only"))
    text = format_status(tmp_path)
    assert "DATA DISK:    read-only (file system or permissions) (since t; 2 event(s)" in text
    assert "lights.db:    cannot be written: read-only" in text
    write_snapshot(tmp_path, snapshot(storage={"fault": None, "since": None, "held": 0}))
    assert "DATA DISK" not in format_status(tmp_path)
