"""StateStore on real files: every value survives closing and reopening the file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rtu.state import StateStore

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
FIELDS = {
    "vendor": "Acme",
    "model": "RTU-1",
    "stationNumber": "0042",
    "serialNumber": "SN123",
    "firmwareVersion": "0.1.0",
    "iccid": "",
    "imsi": "",
}
ENDPOINT = "wss://central.example.com/OS3P"


def reopen(store: StateStore, path: Path) -> StateStore:
    store.close()
    return StateStore.open(path, now=lambda: T0)


def test_settings_persist_and_override(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = StateStore.open(path, now=lambda: T0)
    assert store.settings() == {}
    store.set_setting("websocketPingInterval", "30", T0)
    store.set_setting("Geolocation", "52.1,5.1", T0)
    store.set_setting("websocketPingInterval", "0", T0)
    store = reopen(store, path)
    assert store.settings() == {"Geolocation": "52.1,5.1", "websocketPingInterval": "0"}
    assert store.setting("websocketPingInterval") == "0"
    assert store.setting("missing") is None
    assert store.delete_setting("Geolocation") is True
    assert store.delete_setting("Geolocation") is False
    assert store.settings() == {"websocketPingInterval": "0"}
    store.close()


# (what changed since the last Accepted boot) -> BootNotification due?
BOOT_CASES = [
    ("nothing", FIELDS, ENDPOINT, False),
    ("key order only", dict(reversed(FIELDS.items())), ENDPOINT, False),
    ("firmware updated", {**FIELDS, "firmwareVersion": "0.2.0"}, ENDPOINT, True),
    ("modem swapped", {**FIELDS, "iccid": "8931000000000000001"}, ENDPOINT, True),
    ("endpoint moved", FIELDS, "wss://other.example.com/OS3P", True),
    ("field removed", {k: v for k, v in FIELDS.items() if k != "imsi"}, ENDPOINT, True),
]


@pytest.mark.parametrize(
    ("fields", "endpoint", "due"), [c[1:] for c in BOOT_CASES], ids=[c[0] for c in BOOT_CASES]
)
def test_boot_due(tmp_path: Path, fields: dict[str, str], endpoint: str, due: bool) -> None:
    path = tmp_path / "state.db"
    store = StateStore.open(path, now=lambda: T0)
    assert store.boot_due(FIELDS, ENDPOINT) is True  # §3.1: first boot
    store.record_boot_accepted(FIELDS, ENDPOINT, T0)
    store = reopen(store, path)
    assert store.boot_due(fields, endpoint) is due
    record = store.boot_record()
    assert record is not None
    assert (dict(record.fields), record.endpoint, record.accepted_at) == (FIELDS, ENDPOINT, T0)
    store.close()


def test_clock_offset(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = StateStore.open(path, now=lambda: T0)
    assert store.clock_offset() is None
    store.save_clock_offset(timedelta(seconds=-2.25), T0)
    store.save_clock_offset(timedelta(seconds=1.5), T0 + timedelta(hours=1))
    store = reopen(store, path)
    offset = store.clock_offset()
    assert offset is not None
    assert (offset.offset, offset.measured_at) == (timedelta(seconds=1.5), T0 + timedelta(hours=1))
    store.close()


def test_run_state_clean_unclean_and_reset(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = StateStore.open(path, now=lambda: T0)
    first = store.mark_running(T0)
    assert (first.first_run, first.unexpected) == (True, False)

    store.mark_clean_shutdown(T0 + timedelta(minutes=1))  # systemctl stop
    store = reopen(store, path)
    clean = store.mark_running(T0 + timedelta(minutes=2))
    assert (clean.first_run, clean.clean, clean.unexpected) == (False, True, False)
    assert clean.started_at == T0

    store = reopen(store, path)  # killed: no clean shutdown recorded
    crashed = store.mark_running(T0 + timedelta(minutes=3))
    assert (crashed.clean, crashed.reset_requested, crashed.unexpected) == (False, False, True)

    store.mark_reset_requested(T0 + timedelta(minutes=4))  # Reset, then a hard reboot
    store = reopen(store, path)
    reset = store.mark_running(T0 + timedelta(minutes=5))
    assert (reset.clean, reset.reset_requested, reset.unexpected) == (False, True, False)

    store = reopen(store, path)  # the reset flag applies to one restart only
    assert store.mark_running(T0 + timedelta(minutes=6)).unexpected is True
    store.close()


def test_naive_datetimes_are_refused(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "state.db", now=lambda: T0)
    with pytest.raises(ValueError, match="naive"):
        store.set_setting("k", "v", datetime(2026, 1, 1))
    store.close()


def test_corrupt_state_file_is_replaced_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"\x00garbage" * 1000)
    store = StateStore.open(path, now=lambda: T0)
    assert store.moved_aside is not None
    assert store.moved_aside.name.startswith("state.db.corrupt-")
    assert store.mark_running(T0).first_run is True
    store.close()
