"""The real central (`CentralService`: store, OS³P endpoint, operator API, file server)
and the real daemon (`rtu run` subprocess) on loopback, as an operator sees them.

The daemon authenticates with a password the operator set through the API; every
question the tests ask goes through the operator API over real HTTP, as the CLI
would, so what these tests see is what an operator sees.
"""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from central.service import CentralService
from tests.central.support import Api, running_central
from tests.rtu.test_daemon import Daemon
from tests.support.aio import UNIT, eventually

STATION_ID = "SUBS 001"  # as in tests/rtu/test_daemon.py's config
PASSWORD = "e2e-station-password"


def station_path(station_id: str = STATION_ID) -> str:
    return f"/api/stations/{urllib.parse.quote(station_id, safe='')}"


def daemon_for(directory: Path, central: CentralService, extra: str = "") -> Daemon:
    """A daemon configured for `central` (with the station's password), plus `extra` TOML."""
    daemon = Daemon(directory, central.ws_url)
    text = daemon.config.read_text()
    marker = "call_timeout = 5\n"
    assert marker in text
    text = text.replace(marker, f'{marker}password = "{PASSWORD}"\n')
    daemon.config.write_text(text + extra)
    return daemon


@contextlib.asynccontextmanager
async def central_with_station(
    tmp_path: Path, station_id: str = STATION_ID, **overrides: Any
) -> AsyncIterator[tuple[CentralService, Api]]:
    """A running central that knows our station (Accepted policy, password set)."""
    directory = tmp_path / "central"
    directory.mkdir()
    async with running_central(directory, **overrides) as (central, api):
        await api.add_station(station_id, password=PASSWORD)
        yield central, api


@contextlib.asynccontextmanager
async def running_daemon(daemon: Daemon) -> AsyncIterator[Daemon]:
    await daemon.start()
    try:
        yield daemon
    except BaseException:
        print(daemon.log())  # the daemon's own account, for the failure report
        raise
    finally:
        if daemon.process is not None and daemon.process.returncode is None:
            daemon.process.kill()
            await daemon.process.wait()
        daemon.notify.close()


async def accepted(api: Api, station_id: str = STATION_ID) -> None:
    async def check() -> bool:
        status, body = await api.request("GET", station_path(station_id))
        return status == 200 and body["connected"] and body["accepted"]

    await eventually(check, timeout=20 * UNIT, what="station connected and Accepted")


async def command(api: Api, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    status, body = await api.request("POST", f"{station_path()}/commands/{action}", payload)
    assert status == 200, body
    response: dict[str, Any] = body["response"]
    return response


async def events(api: Api, kind: str) -> list[dict[str, Any]]:
    status, body = await api.request("GET", f"{station_path()}/events", kind=kind)
    assert status == 200, body
    return [event["details"] for event in body["events"]]


async def statuses(api: Api, kind: str, request_id: str) -> list[str]:
    return [e["status"] for e in await events(api, kind) if e.get("requestId") == request_id]
