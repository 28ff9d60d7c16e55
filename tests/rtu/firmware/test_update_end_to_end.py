"""Firmware updates end to end: the real daemon under a systemd-like supervisor
(tests/support/supervisor.py says what is real and what is simulated), a scripted
central over real websockets, bundles served by a real HTTP server in this process.

Bundles that must install are built from this tree with `build_wheels` (a real pip
wheel at the bundle's version); bundles that must be refused are fake wheels.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware.build import build_wheels
from firmware.bundle import inspect_bundle, write_bundle
from firmware.keys import public_key_base64
from os3p.messages import (
    BootNotificationRequest,
    BootNotificationResponse,
    MessageTrigger,
    RegistrationStatus,
    TriggerMessageRequest,
    UpdateFirmwareRequest,
    UpdateFirmwareResponse,
)
from tests.firmware.support import make_bundle, rewrite_member
from tests.support.aio import UNIT, eventually, run
from tests.support.central import ScriptedCentral, scripted_central
from tests.support.ftp import ftp_server
from tests.support.supervisor import Supervisor, install_initial_release

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[3]
KEY = Ed25519PrivateKey.generate()
OTHER_KEY = Ed25519PrivateKey.generate()

STATION_ID = "SUBS-FW"


class OurCentral(ScriptedCentral):
    """Knows only our station: a stray daemon of another test (or of another checkout on
    this machine) reconnecting to a port this central happens to reuse is turned away."""

    def is_known(self, station_id: str) -> bool:
        return station_id == STATION_ID


CONFIG = """\
[station]
id = "SUBS-FW"
vendor = "OpenGrid"
model = "RTU-TEST"
station_number = "0001"
serial_number = "SN-FW-1"

[central]
url = "{url}"
call_timeout = 5

[data]
dir = "{data}"

[site]
latitude = 51.98
longitude = 5.91
timezone = "Europe/Amsterdam"

[link]
heartbeat_interval = 3600
reconnect_backoff_base = 0.05
reconnect_backoff_cap = 0.3

[firmware]
trusted_keys = ["{key}"]
releases_root = "{root}"
confirm_timeout = {confirm}
max_crashes = 1
installer = "overlay"
python = "{python}"
default_retries = 0
default_retry_interval = 0
"""


@pytest.fixture(scope="module")
def good_bundle(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """0.2.0 built from this tree: installs, imports, connects."""
    work = tmp_path_factory.mktemp("good")
    wheels = build_wheels(ROOT, "0.2.0", work / "wheels")
    out = work / "bundle-0.2.0.tar"
    write_bundle(out, wheels, version="0.2.0", min_version="0.1.0", key=KEY)
    return out.read_bytes()


@pytest.fixture(scope="module")
def crashing_bundle(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """0.3.0 from a copy of this tree whose `rtu run` dies at once (`--version` still works)."""
    work = tmp_path_factory.mktemp("crashing")
    tree = work / "tree"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(".git", ".venv", "*cache*"))
    cli = tree / "rtu" / "cli.py"
    text = cli.read_text()
    signature = "def cmd_run(args: argparse.Namespace) -> int:\n"
    assert signature in text
    cli.write_text(text.replace(signature, signature + '    raise SystemExit("broken")\n'))
    wheels = build_wheels(tree, "0.3.0", work / "wheels")
    out = work / "bundle-0.3.0.tar"
    write_bundle(out, wheels, version="0.3.0", key=KEY)
    return out.read_bytes()


class Files:
    """HTTP server for bundles, plus a raw endpoint that cuts a transfer short."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.base = ""
        self.truncating = ""

    async def serve(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self.files:
            raise web.HTTPNotFound
        return web.Response(body=self.files[name], content_type="application/x-tar")

    async def cut_short(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        data = self.files["tampered.tar"]
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(data))
        writer.write(data[: len(data) // 2])
        await writer.drain()
        writer.close()

    def url(self, name: str) -> str:
        return f"{self.base}/files/{name}"


@contextlib.asynccontextmanager
async def file_server() -> AsyncIterator[Files]:
    files = Files()
    app = web.Application()
    app.router.add_get("/files/{name}", files.serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = runner.server
    assert server is not None
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    files.base = f"http://127.0.0.1:{port}"
    raw = await asyncio.start_server(files.cut_short, "127.0.0.1", 0)
    files.truncating = f"http://127.0.0.1:{raw.sockets[0].getsockname()[1]}/files/bundle.tar"
    try:
        yield files
    finally:
        raw.close()
        await raw.wait_closed()
        await runner.cleanup()


class Station:
    def __init__(self, tmp_path: Path, central: ScriptedCentral, *, confirm: float) -> None:
        self.root = tmp_path / "opt-rtu"
        self.root.mkdir()
        install_initial_release(self.root)
        self.data = tmp_path / "data"
        config = tmp_path / "rtu.toml"
        config.write_text(
            CONFIG.format(
                url=central.endpoint, data=self.data, key=public_key_base64(KEY.public_key()),
                root=self.root, confirm=confirm, python=sys.executable,
            )
        )  # fmt: skip
        logs = tmp_path / "logs"
        logs.mkdir()
        self.supervisor = Supervisor(self.root, config, self.data, logs)


@contextlib.asynccontextmanager
async def station(
    tmp_path: Path, central: ScriptedCentral, *, confirm: float = 30
) -> AsyncIterator[Station]:
    ours = Station(tmp_path, central, confirm=confirm)
    ours.supervisor.start()
    try:
        yield ours
    except BaseException:
        print(ours.supervisor.log())
        print("\n".join(ours.supervisor.hook_output))
        raise
    finally:
        await ours.supervisor.stop()


def rtu_status(ours: Station) -> str:
    return subprocess.run(
        [sys.executable, "-m", "rtu.cli", "status", "--data-dir", str(ours.data)],
        capture_output=True, text=True, check=True, cwd="/",
    ).stdout  # fmt: skip


def statuses(central: ScriptedCentral) -> list[tuple[str, str | None]]:
    return [(p["status"], p.get("requestId")) for p in central.of("FirmwareStatusNotification")]


async def connected(central: ScriptedCentral, count: int) -> None:
    await eventually(
        lambda: len(central.connections) >= count and central.current is not None,
        timeout=30 * UNIT,
        what=f"connection {count}",
    )


async def update(central: ScriptedCentral, location: str, request_id: str, **extra: Any) -> None:
    link = central.current
    assert link is not None
    answer = await link.call(
        UpdateFirmwareRequest(
            retrieve_date=datetime(2020, 1, 1, tzinfo=UTC),  # past: now (§7.13)
            location=location,
            request_id=request_id,
            **extra,
        )
    )
    assert answer == UpdateFirmwareResponse()


async def wait_status(central: ScriptedCentral, status: str, request_id: str) -> None:
    await eventually(
        lambda: (status, request_id) in statuses(central),
        timeout=40 * UNIT,
        what=f"{status} for {request_id}",
    )


def versions_booted(central: ScriptedCentral) -> list[str]:
    return [p["firmwareVersion"] for p in central.of("BootNotification")]


def test_a_good_bundle_installs_and_the_station_boots_the_new_version(
    tmp_path: Path, good_bundle: bytes
) -> None:
    async def scenario() -> None:
        async with (
            scripted_central(OurCentral()) as central,
            file_server() as files,
            station(tmp_path, central) as ours,
        ):
            files.files["bundle.tar"] = good_bundle
            await connected(central, 1)
            link = central.current
            assert link is not None
            await link.call(
                TriggerMessageRequest(requested_message=MessageTrigger.FIRMWARE_STATUS_NOTIFICATION)
            )
            await eventually(lambda: statuses(central) == [("None", None)], what="idle status")

            await update(central, files.url("bundle.tar"), "up-1")
            await wait_status(central, "Installed", "up-1")
            assert statuses(central)[1:] == [
                (status, "up-1")
                for status in ("Downloading", "Downloaded", "Installing", "Installed")
            ]
            assert versions_booted(central) == ["0.1.0", "0.2.0"]  # §3.2: new firmwareVersion
            assert ours.supervisor.current() == "0.2.0"
            assert ours.supervisor.exits == [0]  # the clean path, like Reset
            assert central.count("StatusNotification") == 0  # not an unexpected restart
            assert (ours.root / "releases" / "0.1.0").is_dir()  # kept for a manual rollback
            await eventually(
                lambda: "firmware:     idle (status None)" in rtu_status(ours),
                timeout=15 * UNIT,
                what="rtu status shows the firmware agent",
            )

    run(scenario(), timeout=100 * UNIT)


def test_bad_bundles_fail_with_the_right_status_and_change_nothing(tmp_path: Path) -> None:
    work = tmp_path / "bundles"
    work.mkdir()
    tampered = make_bundle(work, KEY, name="tampered.tar")
    wheel = next(iter(inspect_bundle(tampered).files))
    rewrite_member(tampered, wheel, b"evil" * 100)
    wrong_key = make_bundle(work, OTHER_KEY, name="wrong-key.tar").read_bytes()
    tampered_bytes = tampered.read_bytes()
    served = tmp_path / "ftp"
    served.mkdir()
    (served / "tampered.tar").write_bytes(tampered_bytes)

    async def scenario() -> None:
        async with (
            scripted_central(OurCentral()) as central,
            file_server() as files,
            station(tmp_path, central) as ours,
        ):
            ftp = f"ftp://root:root@127.0.0.1:{ftp_port}"
            files.files["tampered.tar"] = tampered_bytes
            files.files["wrong-key.tar"] = wrong_key
            await connected(central, 1)
            cases = [
                (files.url("tampered.tar"), "tampered", "InstallationFailed"),
                (files.url("wrong-key.tar"), "wrong-key", "InstallationFailed"),
                (files.truncating, "truncated", "DownloadFailed"),
                ("http://127.0.0.1:9/nowhere.tar", "unreachable", "DownloadFailed"),
                (files.url("missing.tar"), "not-found", "DownloadFailed"),
                (f"{ftp}/tampered.tar", "ftp-tampered", "InstallationFailed"),
                (f"{ftp}/missing.tar", "ftp-missing", "DownloadFailed"),
            ]
            for location, request_id, final in cases:
                await update(central, location, request_id, retries=1, retry_interval=0)
                await wait_status(central, final, request_id)
            mine = {rid: [s for s, r in statuses(central) if r == rid] for _, rid, _ in cases}
            verified_but_refused = ["Downloading", "Downloaded", "Installing", "InstallationFailed"]
            for rid in ("tampered", "wrong-key", "ftp-tampered"):
                assert mine[rid] == verified_but_refused
            for rid in (
                "truncated",
                "unreachable",
                "not-found",
                "ftp-missing",
            ):  # first try + one retry
                assert mine[rid] == ["Downloading", "Downloading", "DownloadFailed"]
            assert ours.supervisor.current() == "0.1.0"
            assert ours.supervisor.exits == []  # never restarted
            assert sorted(p.name for p in (ours.root / "releases").iterdir()) == ["0.1.0"]
            assert versions_booted(central) == ["0.1.0"]

    with ftp_server(served) as ftp_port:
        run(scenario(), timeout=100 * UNIT)


def test_sigkill_during_installation_leaves_the_old_version_running(
    tmp_path: Path, good_bundle: bytes
) -> None:
    async def scenario() -> None:
        async with (
            scripted_central(OurCentral()) as central,
            file_server() as files,
            station(tmp_path, central) as ours,
        ):
            files.files["bundle.tar"] = good_bundle
            await connected(central, 1)
            await update(central, files.url("bundle.tar"), "killed")
            await wait_status(central, "Installing", "killed")
            ours.supervisor.kill()
            await wait_status(central, "InstallationFailed", "killed")
            assert ours.supervisor.current() == "0.1.0"
            assert ours.supervisor.exits == [-9]
            assert versions_booted(central) == ["0.1.0"]
            assert not (ours.root / "releases" / "0.2.0").exists()  # half-built, discarded

    run(scenario(), timeout=100 * UNIT)


def test_a_crash_looping_release_is_rolled_back_before_it_even_starts(
    tmp_path: Path, crashing_bundle: bytes
) -> None:
    async def scenario() -> None:
        async with (
            scripted_central(OurCentral()) as central,
            file_server() as files,
            station(tmp_path, central) as ours,
        ):
            files.files["bundle.tar"] = crashing_bundle
            await connected(central, 1)
            await update(central, files.url("bundle.tar"), "crashy")
            await wait_status(central, "InstallationFailed", "crashy")
            assert [s for s, _ in statuses(central)] == [
                "Downloading", "Downloaded", "Installing", "InstallationFailed",
            ]  # fmt: skip
            assert ours.supervisor.current() == "0.1.0"
            # Clean exit for the switch, then two crashes of 0.3.0 (max_crashes = 1); the
            # pre-start check switched back before a third.
            assert ours.supervisor.exits[:3] == [0, 1, 1]
            assert any("rolled back" in out for out in ours.supervisor.hook_output)
            assert versions_booted(central) == ["0.1.0"]
            assert not (ours.root / "releases" / "0.3.0").exists()

    run(scenario(), timeout=100 * UNIT)


def test_a_release_that_is_never_accepted_is_rolled_back_at_the_deadline(
    tmp_path: Path, good_bundle: bytes
) -> None:
    class RejectsNewFirmware(OurCentral):
        async def boot(
            self, request: BootNotificationRequest, station: str
        ) -> BootNotificationResponse:
            if request.firmware_version == "0.2.0":
                self._note("BootNotification", request)
                return BootNotificationResponse(
                    status=RegistrationStatus.PENDING, current_time=self.now(), interval=60
                )
            return await super().boot(request, station)

    async def scenario() -> None:
        async with (
            scripted_central(RejectsNewFirmware()) as central,
            file_server() as files,
            station(tmp_path, central, confirm=3) as ours,
        ):
            files.files["bundle.tar"] = good_bundle
            await connected(central, 1)
            await update(central, files.url("bundle.tar"), "never-ok")
            await wait_status(central, "InstallationFailed", "never-ok")
            assert versions_booted(central) == ["0.1.0", "0.2.0"]
            assert ours.supervisor.current() == "0.1.0"
            assert ours.supervisor.exits == [0, 0]  # switch, then roll back: both clean
            assert "Installed" not in [s for s, _ in statuses(central)]

    run(scenario(), timeout=100 * UNIT)
