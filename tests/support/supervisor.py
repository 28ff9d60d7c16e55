"""A stand-in for systemd running rtu.service: pre-start hook, start, restart on exit.

What is real: the releases root (`releases/<version>/`, the `current` and
`previous` symlinks), the daemon process started through `current/bin/rtu run`,
the pre-start rollback check run as its own process before every start from the
`previous` release (as `ExecStartPre=-/opt/rtu/previous/bin/python -I -m
rtu.firmware.rollback` does), a fresh INVOCATION_ID per start shared by hook
and daemon, sd_notify, and Restart=always with a short RestartSec.

What is simulated: the first release, `releases/0.1.0`, is two wrapper scripts
around this test interpreter (whose editable install is version 0.1.0) instead
of a venv; releases the agent installs use its `overlay` installer (a real pip
install of the bundle's real wheel, dependencies from this interpreter).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

from tests.support.aio import UNIT, eventually

RESTART_SEC = 0.2


def install_initial_release(root: Path, version: str = "0.1.0") -> None:
    release = root / "releases" / version
    (release / "bin").mkdir(parents=True)
    for name, tail in (("rtu", " -m rtu.cli"), ("python", "")):
        script = release / "bin" / name
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}"{tail} "$@"\n')
        script.chmod(0o755)
    os.symlink(Path("releases") / version, root / "current")


class Supervisor:
    def __init__(self, root: Path, config: Path, data_dir: Path, logs: Path) -> None:
        self.root = root
        self.config = config
        self.data_dir = data_dir
        self.logs = logs
        self.process: asyncio.subprocess.Process | None = None
        self.exits: list[int] = []
        self.hook_output: list[str] = []
        self.starts = 0
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify_path = logs / "notify.sock"
        self.notify.bind(str(self.notify_path))
        self.notify.setblocking(False)
        self.notifications: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def _hook(self, invocation: str) -> None:
        previous = self.root / "previous" / "bin" / "python"
        if not previous.exists():
            return  # `-` prefix: a missing previous release is not a failure
        process = await asyncio.create_subprocess_exec(
            str(previous), "-I", "-m", "rtu.firmware.rollback",
            "--state", str(self.data_dir / "firmware.db"), "--root", str(self.root),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env={**os.environ, "INVOCATION_ID": invocation}, cwd="/",
        )  # fmt: skip
        output, _ = await process.communicate()
        self.hook_output.append(output.decode())

    async def start_once(self) -> None:
        self.starts += 1
        invocation = uuid.uuid4().hex
        await self._hook(invocation)
        env = {
            **os.environ,
            "NOTIFY_SOCKET": str(self.notify_path),
            "WATCHDOG_USEC": "5000000",
            "INVOCATION_ID": invocation,
        }
        with (self.logs / f"daemon-{self.starts}.log").open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                str(self.root / "current" / "bin" / "rtu"), "run", "--config", str(self.config),
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd="/",
            )  # fmt: skip

    async def _supervise(self) -> None:
        while not self._stopping:
            await self.start_once()
            assert self.process is not None
            if self._stopping:
                break
            self.exits.append(await self.process.wait())
            await asyncio.sleep(RESTART_SEC)
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._supervise(), name="supervisor")

    async def stop(self) -> None:
        """Stop supervising and kill the daemon; never leaves a process behind (a stray
        station would reconnect to whatever central next binds its port)."""
        self._stopping = True
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
        if self._task is not None:
            async with asyncio.timeout(30 * UNIT):
                await self._task
        self.notify.close()

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()

    def drain_notify(self) -> list[str]:
        with contextlib.suppress(BlockingIOError):
            while True:
                self.notifications.append(self.notify.recv(4096).decode())
        return self.notifications

    async def ready(self, count: int = 1) -> None:
        await eventually(
            lambda: self.drain_notify().count("READY=1") >= count,
            timeout=30 * UNIT,
            what=f"READY=1 x{count}",
        )

    def log(self) -> str:
        return "\n".join(
            f"--- {p.name}\n" + p.read_text(errors="replace")
            for p in sorted(self.logs.glob("daemon-*.log"), key=lambda p: int(p.stem[7:]))
        )

    def current(self) -> str:
        return Path(os.readlink(self.root / "current")).name
