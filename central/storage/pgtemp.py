"""A throwaway PostgreSQL cluster for tests, benchmarks and the demo.

Runs the server binaries found on this machine (PATH, then
/usr/lib/postgresql/*/bin, newest first): initdb into a fresh temporary
directory, `pg_ctl start` listening on 127.0.0.1 at a free port with its unix
socket in that directory, `pg_ctl stop -m fast` and removal at the end.

initdb and postgres refuse to run as root. When we are root, the cluster runs as
an unprivileged account (`postgres` if it exists, else `nobody`): the temporary
directory is created under /tmp (whose parents that account can traverse) and
chowned to it, and the binaries are started with `subprocess.run(user=...)`.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from central.storage.errors import TemporaryServerError

__all__ = ["TemporaryPostgres", "find_postgres_bin"]

_SUPERUSER = "os3p"
_PG_DIRS = Path("/usr/lib/postgresql")


def find_postgres_bin() -> Path | None:
    """The directory holding initdb and pg_ctl, or None when PostgreSQL is absent."""
    on_path = shutil.which("initdb")
    if on_path is not None and shutil.which("pg_ctl") is not None:
        return Path(on_path).resolve().parent

    def major(path: Path) -> int:
        return int(path.name) if re.fullmatch(r"\d+", path.name) else -1

    if _PG_DIRS.is_dir():
        for version in sorted(_PG_DIRS.iterdir(), key=major, reverse=True):
            bin_dir = version / "bin"
            if (bin_dir / "initdb").is_file() and (bin_dir / "pg_ctl").is_file():
                return bin_dir
    return None


def _unprivileged_account() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise TemporaryServerError("initdb", "running as root and no postgres/nobody account")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class TemporaryPostgres:
    """`with TemporaryPostgres() as pg: url = pg.create_database("x")`.

    `fsync=False` (`postgres -F`) trades crash safety for speed: fine for tests,
    wrong for a benchmark meant to show what production gets.
    """

    def __init__(self, bin_dir: Path | None = None, *, fsync: bool = True) -> None:
        found = bin_dir or find_postgres_bin()
        if found is None:
            raise TemporaryServerError("find", "no initdb/pg_ctl on PATH or in /usr/lib/postgresql")
        self._bin = found
        self._fsync = fsync
        self._account = _unprivileged_account()
        self._dir: Path | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"postgresql://{_SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://{_SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _run(self, step: str, *args: str) -> None:
        user = None if self._account is None else self._account.pw_uid
        group = None if self._account is None else self._account.pw_gid
        done = subprocess.run(
            [str(self._bin / args[0]), *args[1:]],
            user=user,
            group=group,
            extra_groups=None if self._account is None else [],
            cwd=self._dir,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if done.returncode != 0:
            log = self._dir / "server.log" if self._dir else None
            tail = log.read_text()[-2000:] if log is not None and log.exists() else ""
            raise TemporaryServerError(step, f"{done.stderr.strip()} {tail}".strip())

    def start(self) -> str:
        """Start the cluster; the URL of its `postgres` database."""
        self._dir = Path(tempfile.mkdtemp(prefix="os3p-pg-", dir="/tmp"))
        if self._account is not None:
            os.chown(self._dir, self._account.pw_uid, self._account.pw_gid)
        data = str(self._dir / "data")
        self._run(
            "initdb",
            "initdb",
            "-D",
            data,
            "-U",
            _SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        # A free port can be taken between probing and binding: try a few.
        for attempt in range(3):
            self.port = _free_port()
            options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self._dir}"
            if not self._fsync:
                options += " -F"
            try:
                self._run(
                    "start",
                    "pg_ctl",
                    "start",
                    "-D",
                    data,
                    "-w",
                    "-t",
                    "60",
                    "-l",
                    str(self._dir / "server.log"),
                    "-o",
                    options,
                )
                break
            except TemporaryServerError:
                if attempt == 2:
                    self._remove()
                    raise
        return self.base_url

    def create_database(self, name: str) -> str:
        """Create database `name` (an identifier: letters, digits, _) and return its URL."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"not a plain database name: {name!r}")
        import psycopg

        with psycopg.connect(self.base_url, autocommit=True) as db:
            db.execute(f"CREATE DATABASE {name}".encode())
        return self.url(name)

    def stop(self, *, mode: str = "fast") -> None:
        """Stop the server and delete the cluster. `mode="immediate"` skips the
        shutdown checkpoint (seconds with fsync on): fine since the data is deleted."""
        if self._dir is None:
            return
        try:
            self._run("stop", "pg_ctl", "stop", "-D", str(self._dir / "data"), "-m", mode, "-w")
        finally:
            self._remove()

    def _remove(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> TemporaryPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
