"""Release directories and the atomic `current` switch, on a real file system."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rtu.firmware.releases import Releases


def make(root: Path, *versions: str) -> Releases:
    releases = Releases(root)
    for version in versions:
        (root / "releases" / version / "bin").mkdir(parents=True)
    return releases


def test_switch_is_a_relative_link_replaced_in_one_rename(tmp_path: Path) -> None:
    releases = make(tmp_path, "0.1.0", "0.2.0")
    assert releases.current() is None
    releases.switch("0.1.0")
    assert os.readlink(tmp_path / "current") == "releases/0.1.0"
    inode_before = (tmp_path / "current").lstat().st_ino
    releases.switch("0.2.0")
    assert releases.current() == "0.2.0"
    assert (tmp_path / "current").lstat().st_ino != inode_before  # a new link renamed over
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "releases"]  # no temp left
    assert releases.installed() == ["0.1.0", "0.2.0"]


def test_previous_link_and_discard_never_removes_current(tmp_path: Path) -> None:
    releases = make(tmp_path, "0.1.0", "0.2.0")
    releases.switch("0.2.0")
    releases.set_previous("0.1.0")
    assert releases.previous() == "0.1.0"
    with pytest.raises(ValueError, match="is current"):
        releases.discard("0.2.0")
    releases.discard("0.1.0")
    assert releases.installed() == ["0.2.0"]


def test_switching_to_a_missing_release_or_a_bad_name_fails_and_changes_nothing(
    tmp_path: Path,
) -> None:
    releases = make(tmp_path, "0.1.0")
    releases.switch("0.1.0")
    with pytest.raises(FileNotFoundError):
        releases.switch("0.9.0")
    with pytest.raises(ValueError, match="not a release version"):
        releases.switch("../../etc")
    assert releases.current() == "0.1.0"


def test_a_link_to_something_else_is_not_a_release(tmp_path: Path) -> None:
    os.symlink("/usr", tmp_path / "current")
    assert Releases(tmp_path).current() is None
