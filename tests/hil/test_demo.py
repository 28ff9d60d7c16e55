"""The README's main command, for real: `python -m hil.demo` runs the central, a station
daemon and its simulator as processes, installs the demo schedule and shows the lights
switching, read back from the central."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_demo_switches_lights_on_a_real_rig(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hil.demo", "--stations", "1", "--duration", "24",
         "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("SUBS001")]
    assert rows, result.stdout[-3000:]
    assert all("online" in row and "Accepted" in row for row in rows[-5:])
    # Contactor 2 is scheduled on from +20 s: by +24 s the central has seen it switch on.
    contactor_2 = slice(53, 75)  # the fixed-width column of the demo's table
    assert any(row[contactor_2].split()[:1] == ["On"] for row in rows), "\n".join(rows[-5:])
    # Both meters of the station (DLMS and P1) are read and their values shown.
    meters = [line for line in result.stdout.splitlines() if line.strip().startswith("meters:")]
    assert any("U1 " in line and "P(P1) " in line for line in meters), "\n".join(meters[-3:])
    assert result.stdout.rstrip().endswith("stopped")
