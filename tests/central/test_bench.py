"""bench/central.py stays runnable: a tiny run of every part, figures printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_runs_end_to_end_at_a_tiny_scale() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "central.py"),
            *("--stations", "3", "--seconds", "0.2", "--rounds", "1", "--idle", "20"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    out = result.stdout
    for figure in [
        "Heartbeat round trips/s",
        "central / ocpp",
        "MeterValues (10 samples) stored",
        "memory per connection",
        "restart: 20/20 reconnected",
        "refused: 0",
    ]:
        assert figure in out, out
    assert "(CALLERRORs 0)" in out
