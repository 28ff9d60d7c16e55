"""Reads are grouped into as few requests as the map allows, never bridging a gap."""

from __future__ import annotations

import pytest

from rtu.io.modbus import contiguous_runs
from rtu.io.model import DEFAULT_IO_MAP


@pytest.mark.parametrize(
    ("addresses", "max_count", "runs"),
    [
        pytest.param([], 2000, (), id="empty"),
        pytest.param([3], 2000, ((3, 1),), id="one"),
        pytest.param([2, 0, 1], 2000, ((0, 3),), id="unsorted"),
        pytest.param([0, 1, 5, 6, 9], 2000, ((0, 2), (5, 2), (9, 1)), id="gaps"),
        pytest.param([0, 1, 2, 3, 4], 2, ((0, 2), (2, 2), (4, 1)), id="split-at-max"),
        pytest.param([4, 4, 5], 2000, ((4, 2),), id="duplicates"),
    ],
)
def test_contiguous_runs(addresses: list[int], max_count: int, runs: tuple[object, ...]) -> None:
    assert contiguous_runs(addresses, max_count) == runs


def test_default_map_reads_in_one_request_per_table() -> None:
    assert len(contiguous_runs(DEFAULT_IO_MAP.coil_addresses())) == 1
    assert len(contiguous_runs(DEFAULT_IO_MAP.input_addresses())) == 1
