"""firmware.db: state, owed statuses and history survive reopening."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from rtu.firmware.state import FirmwareState, Outcome, Phase, Request, Status
from rtu.firmware.store import FirmwareStore

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_outcome_is_committed_with_its_statuses_and_settled_one_by_one(tmp_path: Path) -> None:
    path = tmp_path / "firmware.db"
    store = FirmwareStore.open(path, now=lambda: T0)
    assert store.state() == FirmwareState()
    request = Request("http://x/b.tar", T0, 1, 5, "r1")
    state = FirmwareState(Phase.DOWNLOADING, request=request, attempts=1)
    store.apply("DownloadBegan", Outcome(state, emit=((Status.DOWNLOADING, "r1"),)), T0)
    store.close()

    store = FirmwareStore.open(path, now=lambda: T0)
    assert store.state() == state
    [(seq, status, request_id)] = store.owed()
    assert (status, request_id) == (Status.DOWNLOADING, "r1")
    store.settle(seq)
    assert store.owed() == []
    [(at, event, phase, detail)] = store.history()
    assert (event, phase, detail) == ("DownloadBegan", "downloading", None)
    assert at.startswith("2026-11-23T12:00:00")
    store.close()


def test_a_corrupt_file_is_moved_aside_and_the_agent_starts_idle(tmp_path: Path) -> None:
    path = tmp_path / "firmware.db"
    path.write_bytes(b"garbage" * 1000)
    store = FirmwareStore.open(path, now=lambda: T0)
    assert store.moved_aside is not None
    assert store.state() == FirmwareState()
    store.close()
