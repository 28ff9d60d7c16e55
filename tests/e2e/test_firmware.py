"""Firmware updates end to end with the real central: bundles served by its file
server (`/files/firmware/<name>`, from `<data_dir>/firmware/`), UpdateFirmware sent
through the operator API, the FirmwareStatusNotifications and the new boot recorded
by the central; the real daemon runs under the systemd-like supervisor of
tests/support/supervisor.py (which says what is real and what is simulated)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from central.service import CentralService
from firmware.build import build_wheels
from firmware.bundle import inspect_bundle, write_bundle
from firmware.keys import public_key_base64
from tests.central.support import Api
from tests.e2e.support import PASSWORD, accepted, central_with_station
from tests.e2e.support import station_path as path_of
from tests.firmware.support import make_bundle, rewrite_member
from tests.rtu.firmware.test_update_end_to_end import CONFIG, KEY, ROOT, STATION_ID
from tests.support.aio import UNIT, eventually, run
from tests.support.supervisor import Supervisor, install_initial_release

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def good_bundle(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """0.2.0 built from this tree: installs, imports, connects."""
    work = tmp_path_factory.mktemp("good")
    wheels = build_wheels(ROOT, "0.2.0", work / "wheels")
    out = work / "bundle-0.2.0.tar"
    write_bundle(out, wheels, version="0.2.0", min_version="0.1.0", key=KEY)
    return out.read_bytes()


@contextlib.asynccontextmanager
async def supervised_station(tmp_path: Path, central: CentralService) -> AsyncIterator[Supervisor]:
    root = tmp_path / "opt-rtu"
    root.mkdir()
    install_initial_release(root)
    data = tmp_path / "data"
    text = CONFIG.format(
        url=central.ws_url, data=data, key=public_key_base64(KEY.public_key()),
        root=root, confirm=60, python=sys.executable,
    )  # fmt: skip
    marker = "call_timeout = 5\n"
    assert marker in text
    config = tmp_path / "rtu.toml"
    config.write_text(text.replace(marker, f'{marker}password = "{PASSWORD}"\n'))
    logs = tmp_path / "logs"
    logs.mkdir()
    supervisor = Supervisor(root, config, data, logs)
    supervisor.start()
    try:
        yield supervisor
    except BaseException:
        print(supervisor.log())
        print("\n".join(supervisor.hook_output))
        raise
    finally:
        await supervisor.stop()


def station_path() -> str:
    return path_of(STATION_ID)


async def firmware_statuses(api: Api, request_id: str) -> list[str]:
    status, body = await api.request(
        "GET", f"{station_path()}/events", kind="FirmwareStatusNotification"
    )
    assert status == 200, body
    return [
        e["details"]["status"]
        for e in body["events"]
        if e["details"].get("requestId") == request_id
    ]


async def update(api: Api, location: str, request_id: str, **extra: Any) -> None:
    status, body = await api.request(
        "POST",
        f"{station_path()}/commands/UpdateFirmware",
        {"retrieveDate": "2020-01-01T00:00:00Z", "location": location, "requestId": request_id}
        | extra,
    )
    assert status == 200, body
    assert body["response"] == {}


async def final(api: Api, request_id: str, status: str) -> list[str]:
    async def reached() -> bool:
        return status in await firmware_statuses(api, request_id)

    await eventually(reached, timeout=60 * UNIT, what=f"{status} for {request_id}")
    return await firmware_statuses(api, request_id)


async def booted_versions(api: Api) -> list[str]:
    status, body = await api.request("GET", f"{station_path()}/events", kind="BootNotification")
    assert status == 200, body
    return [e["details"]["firmwareVersion"] for e in body["events"]]


def test_a_good_bundle_from_the_central_installs_and_the_station_reboots(
    tmp_path: Path, good_bundle: bytes
) -> None:
    async def scenario() -> None:
        async with central_with_station(tmp_path, station_id=STATION_ID) as (central, api):
            files = central.server.files
            (files.firmware_dir / "rtu-0.2.0.tar").write_bytes(good_bundle)
            async with supervised_station(tmp_path, central) as supervisor:
                await accepted(api, STATION_ID)
                await update(api, files.firmware_url("rtu-0.2.0.tar"), "up-1")
                seen = await final(api, "up-1", "Installed")
                assert seen == ["Downloading", "Downloaded", "Installing", "Installed"]
                assert await booted_versions(api) == ["0.1.0", "0.2.0"]
                status, station = await api.request("GET", station_path())
                assert status == 200
                assert station["firmwareVersion"] == "0.2.0"
                assert supervisor.current() == "0.2.0"
                assert supervisor.exits == [0]  # the clean restart of the switch

    run(scenario(), timeout=150 * UNIT)


def test_bad_bundles_from_the_central_fail_and_change_nothing(tmp_path: Path) -> None:
    work = tmp_path / "bundles"
    work.mkdir()
    tampered = make_bundle(work, KEY, name="tampered.tar")
    rewrite_member(tampered, next(iter(inspect_bundle(tampered).files)), b"evil" * 100)

    async def scenario() -> None:
        async with central_with_station(tmp_path, station_id=STATION_ID) as (central, api):
            files = central.server.files
            (files.firmware_dir / "tampered.tar").write_bytes(tampered.read_bytes())
            async with supervised_station(tmp_path, central) as supervisor:
                await accepted(api, STATION_ID)
                await update(api, files.firmware_url("tampered.tar"), "tampered")
                assert await final(api, "tampered", "InstallationFailed") == [
                    "Downloading", "Downloaded", "Installing", "InstallationFailed",
                ]  # fmt: skip
                await update(
                    api, files.firmware_url("missing.tar"), "missing", retries=1, retryInterval=0
                )
                assert await final(api, "missing", "DownloadFailed") == [
                    "Downloading", "Downloading", "DownloadFailed",
                ]  # fmt: skip
                assert await booted_versions(api) == ["0.1.0"]
                assert supervisor.current() == "0.1.0"
                assert supervisor.exits == []

    run(scenario(), timeout=100 * UNIT)
