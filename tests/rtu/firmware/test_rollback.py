"""The pre-start rollback check against a real firmware.db and releases root."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rtu.firmware.releases import Releases
from rtu.firmware.rollback import check
from rtu.firmware.state import FirmwareState, Outcome, Phase, Request
from rtu.firmware.store import FirmwareStore

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def on_trial(tmp_path: Path, *, max_starts: int = 2) -> tuple[Path, Releases]:
    root = tmp_path / "opt"
    releases = Releases(root)
    for version in ("0.1.0", "0.2.0"):
        (root / "releases" / version).mkdir(parents=True)
    releases.switch("0.2.0")
    state_path = tmp_path / "firmware.db"
    store = FirmwareStore.open(state_path, now=lambda: T0)
    trial = FirmwareState(
        Phase.TRIAL,
        request=Request("http://x", T0, 0, 0, "r"),
        target="0.2.0",
        previous="0.1.0",
        deadline=T0 + timedelta(minutes=10),
        max_starts=max_starts,
    )
    store.apply("ReleaseReady", Outcome(trial), T0)
    store.close()
    return state_path, releases


def phase(state_path: Path) -> FirmwareState:
    store = FirmwareStore.open(state_path, now=lambda: T0)
    try:
        return store.state()
    finally:
        store.close()


def test_starts_are_counted_once_per_invocation_and_too_many_roll_back(tmp_path: Path) -> None:
    state_path, releases = on_trial(tmp_path)
    assert "start 1" in check(state_path, releases.root, invocation="a", now=T0)
    assert "start 1" in check(state_path, releases.root, invocation="a", now=T0)  # same start
    assert "start 2" in check(state_path, releases.root, invocation="b", now=T0)
    assert releases.current() == "0.2.0"
    done = check(state_path, releases.root, invocation="c", now=T0)
    assert "rolled back: current -> 0.1.0" in done
    assert releases.current() == "0.1.0"
    assert phase(state_path).phase is Phase.ROLLED_BACK
    assert "nothing to do" in check(state_path, releases.root, invocation="d", now=T0)


def test_a_start_after_the_deadline_rolls_back(tmp_path: Path) -> None:
    state_path, releases = on_trial(tmp_path)
    late = T0 + timedelta(hours=1)
    assert "rolled back" in check(state_path, releases.root, invocation="a", now=late)
    assert releases.current() == "0.1.0"


def test_runs_as_a_module_with_only_the_stdlib_and_always_exits_0(tmp_path: Path) -> None:
    state_path, releases = on_trial(tmp_path, max_starts=0)
    result = subprocess.run(
        [sys.executable, "-I", "-m", "rtu.firmware.rollback",
         "--state", str(state_path), "--root", str(releases.root)],
        capture_output=True, text=True, check=False, cwd="/",
        env={**os.environ, "INVOCATION_ID": "x"},
    )  # fmt: skip
    assert result.returncode == 0
    assert "rolled back" in result.stderr
    probe = subprocess.run(
        [sys.executable, "-I", "-c",
         "import sys, rtu.firmware.rollback; "
         "print(sorted(m for m in sys.modules if m.split('.')[0] in "
         "('aiohttp', 'msgspec', 'cryptography', 'websockets', 'firmware', 'os3p')))"],
        capture_output=True, text=True, check=True, cwd="/",
    )  # fmt: skip
    assert probe.stdout.strip() == "[]"
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"not sqlite" * 100)
    result = subprocess.run(
        [sys.executable, "-I", "-m", "rtu.firmware.rollback",
         "--state", str(broken), "--root", str(releases.root)],
        capture_output=True, text=True, check=False, cwd="/",
    )  # fmt: skip
    assert result.returncode == 0
    assert "check failed" in result.stderr
