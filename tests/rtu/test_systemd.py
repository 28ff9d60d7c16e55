"""sd_notify against real datagram sockets, the watchdog loop, and the unit file."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rtu.systemd import Notifier, environ_notifier, watchdog_loop

UNIT = 0.01
SERVICE = Path(__file__).parents[2] / "systemd" / "rtu.service"
PRE_START = next(
    line.removeprefix("ExecStartPre=")
    for line in SERVICE.read_text(encoding="utf-8").splitlines()
    if line.startswith("ExecStartPre=")
)


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    sock.bind(str(path))
    sock.settimeout(5)
    yield str(path), sock
    sock.close()


@pytest.fixture
def abstract_listener() -> Iterator[tuple[str, socket.socket]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"rtu-test-{os.getpid()}-{id(sock)}"
    sock.bind("\0" + name)
    sock.settimeout(5)
    yield "@" + name, sock
    sock.close()


@pytest.mark.parametrize("which", ["listener", "abstract_listener"], ids=["path", "abstract"])
def test_messages_arrive_as_datagrams(which: str, request: pytest.FixtureRequest) -> None:
    address, sock = request.getfixturevalue(which)
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": address}, pid=os.getpid())
    assert notifier.enabled
    assert notifier.ready()
    assert notifier.status("link: up\noutbox: 3 queued")
    assert notifier.watchdog()
    assert notifier.stopping()
    received = [sock.recv(4096) for _ in range(4)]
    assert received == [
        b"READY=1",
        b"STATUS=link: up outbox: 3 queued",
        b"WATCHDOG=1",
        b"STOPPING=1",
    ]


def test_without_notify_socket_everything_is_a_no_op() -> None:
    notifier = Notifier.from_environ({}, pid=1)
    assert not notifier.enabled
    assert notifier.ready()
    assert notifier.watchdog_interval is None


def test_a_vanished_socket_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier(str(tmp_path / "gone.sock"))
    assert notifier.ready() is False
    assert "sd_notify 'READY=1' failed" in caplog.text


def test_a_receiver_that_stops_reading_never_blocks_the_daemon(
    listener: tuple[str, socket.socket], caplog: pytest.LogCaptureFixture
) -> None:
    """The bench's notify socket is read only until READY=1: once its queue is full a
    blocking send would freeze the daemon's event loop (and the lights) for good."""
    address, sock = listener
    caplog.set_level(logging.INFO, logger="rtu.systemd")
    notifier = Notifier(address)
    results = [notifier.status(f"link: up, outbox {n} queued") for n in range(5000)]
    assert results[0] is True
    assert False in results  # the queue filled up: dropped, not waited for
    assert caplog.text.count("sd_notify") == 1  # said once, not 5000 times
    sock.setblocking(False)
    while True:  # the manager reads again
        try:
            sock.recv(4096)
        except BlockingIOError:
            break
    assert notifier.watchdog() is True
    assert "sd_notify works again" in caplog.text


def test_relative_socket_name_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    assert not Notifier("relative.sock").enabled
    assert "ignoring NOTIFY_SOCKET" in caplog.text


@pytest.mark.parametrize(
    ("environ", "interval"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4242"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),  # someone else's
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
    ids=["ours", "our-pid", "other-pid", "zero", "garbage", "unset"],
)
def test_watchdog_interval_is_half_the_period(
    environ: dict[str, str], interval: float | None
) -> None:
    assert Notifier.from_environ(environ, pid=4242).watchdog_interval == interval


def test_environ_notifier_reads_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "@x")
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert environ_notifier().watchdog_interval == 1.0


def test_watchdog_pings_only_while_healthy(listener: tuple[str, socket.socket]) -> None:
    address, sock = listener
    sock.setblocking(False)
    usec = int(4 * UNIT * 1_000_000)  # pings every 2 units
    notifier = Notifier(address, usec)
    health = {"ok": True}

    def pings() -> int:
        count = 0
        while True:
            try:
                assert sock.recv(64) == b"WATCHDOG=1"
            except BlockingIOError:
                return count
            count += 1

    async def main() -> tuple[int, int, int]:
        async with asyncio.TaskGroup() as tasks:
            loop = tasks.create_task(watchdog_loop(notifier, lambda: health["ok"]))
            await asyncio.sleep(10 * UNIT)
            healthy = pings()
            health["ok"] = False
            await asyncio.sleep(3 * UNIT)
            pings()  # at most one ping that was already on its way
            await asyncio.sleep(10 * UNIT)
            sick = pings()
            health["ok"] = True
            await asyncio.sleep(5 * UNIT)
            recovered = pings()
            loop.cancel()
        return healthy, sick, recovered

    healthy, sick, recovered = asyncio.run(main())
    assert healthy >= 3
    assert sick == 0
    assert recovered >= 1


def test_watchdog_loop_returns_when_disabled() -> None:
    asyncio.run(asyncio.wait_for(watchdog_loop(Notifier(None), lambda: True), 1))


def _verify(unit_text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    unit = tmp_path / "rtu.service"
    unit.write_text(unit_text, encoding="utf-8")
    return subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
    )


def _with_existing_binary(text: str) -> str:
    # systemd-analyze verify rightly fails on an ExecStart binary that does not
    # exist; /opt/rtu/current/bin/rtu exists only on an installed station. Point
    # it at this interpreter (same arguments) so every other check still runs.
    exec_line = "ExecStart=/opt/rtu/current/bin/rtu run --config /etc/rtu/rtu.toml\n"
    assert exec_line in text
    assert PRE_START.startswith("-/opt/rtu/previous/bin/python ")
    text = text.replace(
        f"ExecStartPre={PRE_START}", f"ExecStartPre=-{sys.executable} " + PRE_START.split(" ", 1)[1]
    )
    return text.replace(exec_line, f"ExecStart={sys.executable} run --config /etc/rtu/rtu.toml\n")


# No skip when systemd-analyze is missing: `make unit` installs it
# (scripts/debian-packages.txt), and a silently skipped verification proves nothing.
def test_unit_file_verifies_without_any_warning(tmp_path: Path) -> None:
    result = _verify(_with_existing_binary(SERVICE.read_text(encoding="utf-8")), tmp_path)
    # verify exits 0 even on unknown keys (it only warns): any output is a failure.
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_verification_catches_a_typo(tmp_path: Path) -> None:
    # The control for the test above: proves that the check can fail.
    text = _with_existing_binary(SERVICE.read_text(encoding="utf-8"))
    result = _verify(text.replace("ProtectHome=yes", "ProtectHome=yes\nProtectHom=yes"), tmp_path)
    assert "Unknown key" in result.stderr


def test_unit_has_the_required_settings() -> None:
    lines = set(SERVICE.read_text(encoding="utf-8").splitlines())
    for required in [
        "Type=notify",
        "NotifyAccess=main",
        "WatchdogSec=30",
        "Restart=always",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/rtu",
        "StateDirectory=rtu",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "ProtectKernelTunables=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "SupplementaryGroups=dialout",
        # Firmware updates: releases are built in /opt/rtu, started through `current`.
        "ReadWritePaths=/opt/rtu",
        "ExecStart=/opt/rtu/current/bin/rtu run --config /etc/rtu/rtu.toml",
    ]:
        assert required in lines


def test_the_pre_start_rollback_check_runs_as_the_unit_spells_it(tmp_path: Path) -> None:
    # The command line exactly as in the unit, with this interpreter for the previous
    # release's and temporary directories for /var/lib/rtu and /opt/rtu.
    command = PRE_START.removeprefix("-").split()
    assert command[1:4] == ["-I", "-m", "rtu.firmware.rollback"]
    command[0] = sys.executable
    command = [
        part.replace("/var/lib/rtu", str(tmp_path / "data")).replace("/opt/rtu", str(tmp_path))
        for part in command
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd="/")
    assert result.returncode == 0
    assert "rtu rollback check: no firmware state" in result.stderr
