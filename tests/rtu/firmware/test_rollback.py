"""The pre-start rollback check against a real firmware.db and releases root."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rtu.firmware.releases import Releases
from rtu.firmware.rollback import check
from rtu.firmware.state import BootInstant, FirmwareState, Outcome, Phase, Request, Status
from rtu.firmware.store import FirmwareStore

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SWITCH = BootInstant("boot-1", 1000.0)  # the switch to 0.2.0 on the boot clock
WINDOW = 600.0


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
        deadline=BootInstant("boot-1", SWITCH.seconds + WINDOW),
        window=WINDOW,
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
    assert "start 1" in check(state_path, releases.root, invocation="a", boot=SWITCH, now=T0)
    # the same start again (ExecStartPre, then the daemon before READY)
    assert "start 1" in check(state_path, releases.root, invocation="a", boot=SWITCH, now=T0)
    assert "start 2" in check(state_path, releases.root, invocation="b", boot=SWITCH, now=T0)
    assert releases.current() == "0.2.0"
    done = check(state_path, releases.root, invocation="c", boot=SWITCH, now=T0)
    assert "rolled back: current -> 0.1.0" in done
    assert releases.current() == "0.1.0"
    assert phase(state_path).phase is Phase.ROLLED_BACK
    assert "nothing to do" in check(state_path, releases.root, invocation="d", boot=SWITCH, now=T0)


def test_a_start_after_the_deadline_rolls_back(tmp_path: Path) -> None:
    state_path, releases = on_trial(tmp_path)
    late = BootInstant("boot-1", SWITCH.seconds + WINDOW + 1)  # same boot: a daemon restart
    assert "rolled back" in check(state_path, releases.root, invocation="a", boot=late, now=T0)
    assert releases.current() == "0.1.0"


def test_the_wall_clock_neither_triggers_nor_postpones_the_rollback(tmp_path: Path) -> None:
    """The central corrected the clock by a day (or the RTC was reset to 2000): the
    trial's time is the boot clock's, so only that decides."""
    state_path, releases = on_trial(tmp_path)
    soon = BootInstant("boot-1", SWITCH.seconds + 10)
    a_day_ahead = T0 + timedelta(days=1)
    assert "start 1" in check(state_path, releases.root, invocation="a", boot=soon, now=a_day_ahead)
    assert releases.current() == "0.2.0"
    late = BootInstant("boot-1", SWITCH.seconds + WINDOW)
    rtc_reset = datetime(2000, 1, 1, tzinfo=UTC)
    assert "rolled back" in check(
        state_path, releases.root, invocation="b", boot=late, now=rtc_reset
    )
    assert releases.current() == "0.1.0"


def test_a_reboot_gives_the_trial_a_fresh_window(tmp_path: Path) -> None:
    state_path, releases = on_trial(tmp_path)
    after_power_cut = BootInstant("boot-2", 20.0)  # boot clock restarted near 0
    assert "start 1" in check(
        state_path, releases.root, invocation="a", boot=after_power_cut, now=T0
    )
    assert phase(state_path).deadline == BootInstant("boot-2", 20.0 + WINDOW)
    late = BootInstant("boot-2", 20.0 + WINDOW)
    assert "rolled back" in check(state_path, releases.root, invocation="b", boot=late, now=T0)


def test_a_deleted_previous_release_keeps_the_new_one_and_fails_the_trial(
    tmp_path: Path,
) -> None:
    state_path, releases = on_trial(tmp_path)
    releases.set_previous("0.1.0")
    shutil.rmtree(releases.root / "releases" / "0.1.0")  # `previous` now dangles
    late = BootInstant("boot-1", SWITCH.seconds + WINDOW)
    done = check(state_path, releases.root, invocation="a", boot=late, now=T0)
    assert "trial of 0.2.0 failed" in done
    assert "cannot roll back: release 0.1.0 is not installed" in done
    assert releases.current() == "0.2.0"  # nothing to switch to: keep what runs
    assert phase(state_path).phase is Phase.IDLE
    store = FirmwareStore.open(state_path, now=lambda: T0)
    try:
        assert [(s, r) for _, s, r in store.owed()] == [(Status.INSTALLATION_FAILED, "r")]
    finally:
        store.close()


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
