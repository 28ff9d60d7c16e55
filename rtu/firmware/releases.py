"""The release directories under the releases root, and the atomic `current` switch.

    <root>/releases/<version>/          one venv per installed version (bin/rtu, bin/python)
    <root>/releases/.<version>.partial  a release being built; never started
    <root>/current  -> releases/<version>   what systemd starts (ExecStart)
    <root>/previous -> releases/<version>   the release before the one on trial; the
                                            pre-start rollback check runs from it

Links are relative, so the root can be moved or mounted elsewhere. A switch is a
new symlink under a temporary name renamed over the old one (rename(2) is atomic:
at every instant `current` names one release), followed by an fsync of the
directory so the switch survives a power cut.

Stdlib only: the pre-start rollback check imports this.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

__all__ = ["Releases"]

_VERSION = re.compile(r"\d+(?:\.\d+){0,5}")


class Releases:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / "releases"

    def path(self, version: str) -> Path:
        if not _VERSION.fullmatch(version):
            raise ValueError(f"not a release version: {version!r}")
        return self.dir / version

    def staging(self, version: str) -> Path:
        self.path(version)
        return self.dir / f".{version}.partial"

    def _target(self, link: str) -> str | None:
        try:
            target = os.readlink(self.root / link)
        except OSError:
            return None
        name = Path(target).name
        return name if _VERSION.fullmatch(name) else None

    def current(self) -> str | None:
        """The version `current` points at (None: no link, or not a release)."""
        return self._target("current")

    def previous(self) -> str | None:
        return self._target("previous")

    def installed(self) -> list[str]:
        if not self.dir.is_dir():
            return []
        return sorted(p.name for p in self.dir.iterdir() if _VERSION.fullmatch(p.name))

    def _point(self, link: str, version: str) -> None:
        release = self.path(version)
        if not release.is_dir():
            raise FileNotFoundError(f"release {version} is not installed ({release})")
        temporary = self.root / f".{link}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        os.symlink(Path("releases") / version, temporary)
        os.replace(temporary, self.root / link)
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def switch(self, version: str) -> None:
        """Point `current` at `version` atomically."""
        self._point("current", version)

    def set_previous(self, version: str) -> None:
        self._point("previous", version)

    def publish(self, version: str) -> Path:
        """Rename a finished staging directory to its release name."""
        final = self.path(version)
        os.replace(self.staging(version), final)
        return final

    def discard(self, version: str) -> None:
        """Remove a release (and its staging directory); never the one `current` names."""
        if version == self.current():
            raise ValueError(f"release {version} is current: not removed")
        shutil.rmtree(self.staging(version), ignore_errors=True)
        shutil.rmtree(self.path(version), ignore_errors=True)
