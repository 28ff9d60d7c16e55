"""The file builders: secrets removed, rotated logs read oldest first and filtered."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from rtu.files.content import log_file_text, sanitized


def test_sanitized_removes_every_secret_at_any_depth() -> None:
    document = {
        "central": {"url": "wss://c/OS3P", "password": "p", "client_key": "/k.pem"},
        "meters": [{"name": "m", "password_file": "/pw", "block_cipher_key": "00", "port": 1}],
        "mqtt": {"username": "u", "token": "t", "api_secret": "s"},
    }
    assert sanitized(document) == {
        "central": {"url": "wss://c/OS3P"},
        "meters": [{"name": "m", "port": 1}],
        "mqtt": {"username": "u"},
    }


def test_rotated_log_files_are_read_oldest_first(tmp_path: Path) -> None:
    log = tmp_path / "rtu.log"
    (tmp_path / "rtu.log.2").write_text("2026-05-04T08:00:00.000Z INFO a: oldest\n")
    (tmp_path / "rtu.log.1").write_text("2026-05-04T09:00:00.000Z INFO a: older\n  detail\n")
    log.write_text("2026-05-04T10:00:00.000Z INFO a: newest\n")
    (tmp_path / "rtu.log.bak").write_text("2026-05-04T09:30:00.000Z INFO a: not a rotation\n")
    text = log_file_text(
        log, datetime(2026, 5, 4, 8, 30, tzinfo=UTC), datetime(2026, 5, 4, 11, tzinfo=UTC)
    )
    assert text.decode().splitlines() == [
        "2026-05-04T09:00:00.000Z INFO a: older",
        "  detail",
        "2026-05-04T10:00:00.000Z INFO a: newest",
    ]
