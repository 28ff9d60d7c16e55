"""A data disk that fills up for real: a small tmpfs, and ballast to fill it.

Shared by the fault suite (tests/faults) and the daemon's status tests: the kernel
says ENOSPC and SQLite says SQLITE_FULL, exactly as on a full SD card.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

__all__ = ["fill", "small_tmpfs"]


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[Path | None]:
    """A tmpfs of `size` mounted at `where`, or None (with the reason printed) if we may not.

    The honest way to fill a data disk: the kernel says ENOSPC, SQLite says
    SQLITE_FULL, exactly as on a full SD card.
    """
    where.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        print(f"cannot mount a tmpfs at {where}: {result.stderr.strip() or result.returncode}")
        yield None
        return
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(directory: Path, name: str = "ballast") -> Path:
    """Write zeros into `directory` until the disk is full; returns the ballast file."""
    ballast = directory / name
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        # Big chunks first, then the odd bytes left over, so not even a WAL frame fits.
        for size in (65536, 4096, 512, 1):
            chunk = b"\0" * size
            with contextlib.suppress(OSError):
                while os.write(fd, chunk) == size:
                    pass
    finally:
        os.close(fd)
    return ballast
