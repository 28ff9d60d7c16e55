"""Building a release directory from a verified bundle's wheels.

Two installers share one interface (`Installer.install(wheels, version, release)`):

- `VenvInstaller` (production): a fresh venv at `releases/<version>` from the
  configured interpreter, then `pip install --isolated --no-index --find-links
  <wheels>`: nothing is fetched from anywhere but the signed bundle, and no pip
  configuration of the host leaks in. The release is self-contained; the old
  one is untouched.
- `OverlayInstaller`: only the daemon's own wheel, installed with `--target`
  into `releases/<version>/site`, plus `bin/rtu` and `bin/python` wrappers that
  put that directory first on PYTHONPATH of the configured interpreter, whose
  environment supplies the dependencies. For images whose dependencies are
  part of the OS image, and for the end-to-end tests (a real pip install of a
  real wheel in seconds instead of a minute).

The venv is built at its final path, not renamed into place: a venv's scripts
carry its absolute path in their shebang. The state machine knows a release
under construction (INSTALLING) and discards it after a crash.

Both finish with a smoke test: `<release>/bin/rtu --version` must print the
bundle's version. That imports the whole daemon, so a release that cannot even
import is refused before `current` ever points at it.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Protocol

from firmware.bundle import PACKAGE

__all__ = ["InstallError", "Installer", "OverlayInstaller", "VenvInstaller", "smoke_test"]

_OUTPUT_LIMIT = 2000


class InstallError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Installer(Protocol):
    async def install(self, wheels: Path, version: str, release: Path) -> None:
        """Build `release` (absent on entry) from `wheels`; InstallError on failure."""


async def _run(*command: str | Path, timeout: float, env: dict[str, str] | None = None) -> str:
    process = await asyncio.create_subprocess_exec(
        *(str(part) for part in command),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        cwd="/",  # as under systemd; nothing in the caller's directory can shadow the release
    )
    try:
        async with asyncio.timeout(timeout):
            output, _ = await process.communicate()
    except TimeoutError as exc:
        process.kill()
        await process.wait()
        raise InstallError(
            f"{Path(str(command[0])).name} took longer than {timeout:.0f} s"
        ) from exc
    text = output.decode(errors="replace")
    if process.returncode != 0:
        raise InstallError(
            f"{' '.join(str(c) for c in command[:4])} ... exited {process.returncode}: "
            f"{text[-_OUTPUT_LIMIT:]}"
        )
    return text


def _clean_env() -> dict[str, str]:
    # No PYTHONPATH or pip settings of the daemon's environment reach the new release.
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV"))
    }


async def smoke_test(release: Path, version: str, *, timeout: float = 120.0) -> None:
    output = await _run(release / "bin" / "rtu", "--version", timeout=timeout, env=_clean_env())
    if output.strip() != f"rtu {version}":
        raise InstallError(f"the new release reports {output.strip()!r}, not 'rtu {version}'")


class VenvInstaller:
    def __init__(self, python: Path, *, timeout: float = 900.0) -> None:
        self._python = python
        self._timeout = timeout

    async def install(self, wheels: Path, version: str, release: Path) -> None:
        env = _clean_env()
        await _run(self._python, "-m", "venv", release, timeout=self._timeout, env=env)
        await _run(
            release / "bin" / "python", "-m", "pip", "install", "--isolated", "--quiet",
            "--disable-pip-version-check", "--no-index", "--no-cache-dir",
            "--only-binary", ":all:",  # wheels only: nothing from the bundle runs at install
            "--find-links", wheels, f"{PACKAGE}=={version}",
            timeout=self._timeout, env=env,
        )  # fmt: skip
        await smoke_test(release, version, timeout=self._timeout)


class OverlayInstaller:
    def __init__(self, python: Path, *, timeout: float = 300.0) -> None:
        self._python = python
        self._timeout = timeout

    async def install(self, wheels: Path, version: str, release: Path) -> None:
        prefix = PACKAGE.replace("-", "_") + f"-{version}-"
        names = await asyncio.to_thread(os.listdir, wheels)
        ours = [wheels / n for n in names if n.startswith(prefix) and n.endswith(".whl")]
        if len(ours) != 1:
            raise InstallError(f"the bundle holds no single {prefix}*.whl")
        site = release / "site"
        await _run(
            self._python, "-m", "pip", "install", "--isolated", "--quiet",
            "--disable-pip-version-check", "--no-index", "--no-cache-dir", "--no-deps",
            "--only-binary", ":all:", "--target", site, ours[0],
            timeout=self._timeout, env=_clean_env(),
        )  # fmt: skip
        bin_dir = release / "bin"
        bin_dir.mkdir()
        for name, tail in (("rtu", "-m rtu.cli"), ("python", "")):
            script = bin_dir / name
            script.write_text(
                f'#!/bin/sh\nPYTHONPATH="{site}" exec "{self._python}" {tail} "$@"\n'.replace(
                    "  ", " "
                ),
                encoding="utf-8",
            )
            script.chmod(0o755)
        await smoke_test(release, version, timeout=self._timeout)
