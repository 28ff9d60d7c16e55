"""This machine's boot clock: what the trial deadline of a new release is measured on.

A release on trial must reach Accepted within `confirm_timeout` seconds. The wall
clock is the wrong ruler for that: the central corrects it (an offset of hours on a
station whose RTC drifted or was reset), NTP or `set_system_clock` may step it, and
the pre-start check (another process, no central) sees the system time while the
daemon sees the corrected time. A monotonic clock is the right ruler but each
process has its own origin unless it is the kernel's: CLOCK_BOOTTIME (seconds since
boot, counting suspend) is shared by every process of one boot and never steps.
It restarts at every boot, so an instant carries the boot's id
(/proc/sys/kernel/random/boot_id) and is only compared with instants of the same
boot; what a reboot means for the trial is decided in `rtu.firmware.state`.

Stdlib only: the pre-start rollback check imports this.
"""

from __future__ import annotations

import time
from pathlib import Path

from rtu.firmware.state import BootInstant

__all__ = ["BOOT_ID", "boot_instant"]

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def boot_instant() -> BootInstant:
    """Now on the boot clock. Off Linux: the monotonic clock under a fixed id (a reboot
    then goes unnoticed; the start counter still bounds the trial)."""
    try:
        boot_id = BOOT_ID.read_text(encoding="ascii").strip()
        return BootInstant(boot_id, time.clock_gettime(time.CLOCK_BOOTTIME))
    except (OSError, AttributeError):
        return BootInstant("no-boot-id", time.monotonic())
