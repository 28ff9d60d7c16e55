"""The pre-start rollback check: systemd runs it before every start of the daemon.

    python -I -m rtu.firmware.rollback --state /var/lib/rtu/firmware.db --root /opt/rtu

A new release that crashes at import never reaches the daemon's own checks, so
this runs first (`ExecStartPre=` in rtu.service, from the `previous` release:
the one known to work). It counts the start of a release on trial and, when
there were more starts than the trial's `max_starts` without an Accepted boot,
or the confirmation deadline passed (on the boot clock, `rtu.firmware.bootclock`),
switches `current` back to the previous release and records ROLLED_BACK; the old
daemon that then starts reports InstallationFailed. When the previous release is
not installed any more (its directory deleted) it leaves `current` alone and
records the trial as failed (`rtu.firmware.state`); the daemon reports it. The
count is keyed by systemd's INVOCATION_ID, so the daemon's own count of the same
start (before READY) does not count it twice.

Exit status is 0 whatever happens (it must never stop the daemon from
starting); what it did goes to stderr, i.e. the journal. Stdlib only.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from rtu.firmware.bootclock import boot_instant
from rtu.firmware.releases import Releases
from rtu.firmware.state import BootInstant, StartAttempt, SwitchCurrent, step
from rtu.firmware.store import load_state, save_outcome

__all__ = ["check", "invocation_id", "main"]


def invocation_id() -> str:
    """systemd's id of this start (shared by ExecStartPre and ExecStart), or a fresh one."""
    return os.environ.get("INVOCATION_ID") or uuid.uuid4().hex


def check(
    state_path: Path, root: Path, *, invocation: str, boot: BootInstant, now: datetime
) -> str:
    """Count this start; roll back if the trial failed. Returns what was done.
    `now` (wall time) only dates the history line."""
    if not state_path.is_file():
        return "no firmware state: nothing to check"
    connection = sqlite3.connect(state_path, timeout=10, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        known = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'agent'"
        ).fetchone()
        if known is None:
            return "firmware state has no agent table yet: nothing to check"
        releases = Releases(root)
        connection.execute("BEGIN IMMEDIATE")
        try:
            state = load_state(connection)
            attempt = StartAttempt(
                releases.current(), invocation, boot, frozenset(releases.installed())
            )
            outcome = step(state, attempt)
            if outcome.state != state:
                save_outcome(connection, "StartAttempt(pre-start)", outcome, now)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
    finally:
        connection.close()
    done = []
    for action in outcome.actions:
        if isinstance(action, SwitchCurrent):
            releases.switch(action.version)
            done.append(f"rolled back: current -> {action.version} ({outcome.state.reason})")
    if done:
        return "; ".join(done)
    if outcome.emit:
        return f"trial of {state.target} failed: {outcome.state.reason}"
    if outcome.state.phase.value == "trial":
        return f"release {outcome.state.target} on trial: start {outcome.state.starts}"
    return f"firmware phase {outcome.state.phase.value}: nothing to do"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="rtu-firmware check-rollback", description="pre-start rollback check"
    )
    parser.add_argument("--state", type=Path, default=Path("/var/lib/rtu/firmware.db"))
    parser.add_argument("--root", type=Path, default=Path("/opt/rtu"))
    args = parser.parse_args(argv)
    try:
        message = check(
            args.state,
            args.root,
            invocation=invocation_id(),
            boot=boot_instant(),
            now=datetime.now(UTC),
        )
    except Exception as exc:  # never block the start: the daemon's own checks still run
        print(f"rtu rollback check failed: {exc!r}", file=sys.stderr)
        return 0
    print(f"rtu rollback check: {message}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
