"""Building the daemon's wheel from this very tree, at the bundle's version."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

from firmware.build import build_wheels
from firmware.errors import FirmwareError, VersionRefused

ROOT = Path(__file__).parents[2]


def _git_status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--ignored"], cwd=ROOT, capture_output=True,
        text=True, check=True,
    ).stdout  # fmt: skip


def test_the_wheel_carries_the_bundle_version_and_the_tree_is_left_alone(tmp_path: Path) -> None:
    before = _git_status()
    [wheel] = build_wheels(ROOT, "7.3.1", tmp_path)
    assert wheel.name == "substation_rtu_gateway-7.3.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read("substation_rtu_gateway-7.3.1.dist-info/METADATA").decode()
        names = archive.namelist()
    assert "Version: 7.3.1" in metadata.splitlines()
    assert "rtu/firmware/rollback.py" in names
    assert "firmware/cli.py" in names
    assert _git_status() == before  # no build/ or *.egg-info left in the checkout


def test_bad_versions_and_trees_are_refused(tmp_path: Path) -> None:
    with pytest.raises(VersionRefused):
        build_wheels(ROOT, "1.0-beta", tmp_path)
    with pytest.raises(FirmwareError, match=r"no pyproject\.toml"):
        build_wheels(tmp_path, "1.0.0", tmp_path / "out")
