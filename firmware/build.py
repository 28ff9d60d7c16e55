"""Build the daemon's wheels from a source tree, with the bundle's version.

The tree is copied to a scratch directory first: the version is written into
the copy's pyproject.toml (the installed package's metadata is what the daemon
reports as firmwareVersion, so the wheel must carry the bundle's version), and
pip's in-tree build leaves `build/` and `*.egg-info` in the copy, not in the
operator's checkout.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from firmware.bundle import PACKAGE, parse_version
from firmware.errors import FirmwareError

__all__ = ["build_wheels"]

_SKIP = shutil.ignore_patterns(
    ".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", ".mypy_cache",
    ".ruff_cache", ".pytest_cache", ".hypothesis", "*.tar", "*.whl",
)  # fmt: skip
_PROJECT_VERSION = re.compile(r'^version\s*=\s*"[^"]*"\s*$', re.MULTILINE)


def _pip(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise FirmwareError(f"pip {args[0]} failed:\n{result.stdout}{result.stderr}")


def build_wheels(tree: Path, version: str, out_dir: Path, *, with_deps: bool = False) -> list[Path]:
    """The project's wheel at `version` (plus its dependencies' wheels) in `out_dir`."""
    parse_version(version)
    pyproject = tree / "pyproject.toml"
    if not pyproject.is_file():
        raise FirmwareError(f"{tree} has no pyproject.toml")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rtu-build-") as scratch:
        copy = Path(scratch) / "tree"
        shutil.copytree(tree, copy, ignore=_SKIP, symlinks=True)
        text = (copy / "pyproject.toml").read_text(encoding="utf-8")
        patched, count = _PROJECT_VERSION.subn(f'version = "{version}"', text, count=1)
        if count != 1:
            raise FirmwareError(f'{pyproject}: no `version = "..."` line to set')
        (copy / "pyproject.toml").write_text(patched, encoding="utf-8")
        _pip("wheel", "--no-deps", "--quiet", "--wheel-dir", str(out_dir), str(copy))
    prefix = PACKAGE.replace("-", "_") + f"-{version}-"
    ours = [p for p in out_dir.glob("*.whl") if p.name.startswith(prefix)]
    if len(ours) != 1:
        raise FirmwareError(f"expected one {prefix}*.whl in {out_dir}, found {ours}")
    if with_deps:
        # Resolved from pip's configured index / find-links, as the operator's pip does.
        _pip("wheel", "--quiet", "--wheel-dir", str(out_dir), str(ours[0]))
    return sorted(out_dir.glob("*.whl"))
