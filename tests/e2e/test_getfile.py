"""GetFile end to end: the operator asks the real central for a station's meter history
without naming a location; the central issues a per-request upload URL on its own file
server, the real daemon answers with the file name, uploads the CSV there, and the
central records the file and the GetFileStatusNotifications under the requestId.
A location the central refuses ends in UploadFailed."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path

import pytest

from hil.analyser import AnalyserSimulator
from tests.e2e.support import (
    accepted,
    central_with_station,
    command,
    daemon_for,
    events,
    running_daemon,
    station_path,
    statuses,
)
from tests.support.aio import UNIT, eventually, run

pytestmark = pytest.mark.slow

METERING = """
[metering]
upload_attempts = 2
upload_backoff = 0
upload_timeout = 10

[[meters]]
kind = "analyser"
name = "station"
host = "127.0.0.1"
port = {port}
board_temperature = false
"""


def test_meter_history_uploads_to_the_central_file_server(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with (
            AnalyserSimulator() as simulator,
            central_with_station(tmp_path) as (central, api),
        ):
            daemon = daemon_for(tmp_path, central, METERING.format(port=simulator.port))
            async with running_daemon(daemon):
                await accepted(api)
                change = await command(
                    api, "ChangeConfiguration", {"key": "ClockAlignedDataInterval", "value": "1"}
                )
                assert change == {"status": "Accepted"}

                async def sampled() -> bool:
                    status, body = await api.request(
                        "GET", f"{station_path()}/meter-values", measurand="Frequency"
                    )
                    return status == 200 and len(body["meterValues"]) >= 2

                await eventually(sampled, timeout=20 * UNIT, what="meter values at the central")

                answer = await command(
                    api, "GetFile", {"fileType": "MeterValueHistory", "requestId": "hist-1"}
                )
                assert answer["status"] == "Accepted"
                name = answer["fileName"]
                assert name.startswith("SUBS_001_MeterValueHistory_")
                assert name.endswith(".csv")

                async def uploaded() -> bool:
                    seen = await statuses(api, "GetFileStatusNotification", "hist-1")
                    return seen[-1:] == ["Uploaded"]

                await eventually(uploaded, timeout=20 * UNIT, what="Uploaded at the central")
                assert await statuses(api, "GetFileStatusNotification", "hist-1") == [
                    "Uploading",
                    "Uploaded",
                ]
                status, listing = await api.request(
                    "GET", f"{station_path()}/files", requestId="hist-1"
                )
                assert status == 200, listing
                [record] = listing["files"]
                assert record["fileName"] == name
                [stored] = [
                    e for e in await events(api, "FileUploaded") if e["requestId"] == "hist-1"
                ]
                data = await asyncio.to_thread(Path(stored["storedPath"]).read_bytes)
                assert len(data) == record["size"]
                rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
                frequency = [r for r in rows if r["measurand"] == "Frequency"]
                assert len(frequency) >= 2
                assert {r["value"] for r in frequency} == {"49.98"}  # the simulator's value
                assert {r["unit"] for r in frequency} == {"Hz"}
                assert {r["source"] for r in frequency} == {"station"}

                # A location the central refuses (no such upload token): UploadFailed,
                # after the configured attempts; nothing stored.
                refused = f"{central.api_url}/files/uploads/no-such-token/"
                answer = await command(
                    api,
                    "GetFile",
                    {"fileType": "MeterValueHistory", "location": refused, "requestId": "bad-1"},
                )
                assert answer["status"] == "Accepted"

                async def failed() -> bool:
                    seen = await statuses(api, "GetFileStatusNotification", "bad-1")
                    return seen[-1:] == ["UploadFailed"]

                await eventually(failed, timeout=20 * UNIT, what="UploadFailed at the central")
                assert await statuses(api, "GetFileStatusNotification", "bad-1") == [
                    "Uploading",
                    "UploadFailed",
                ]
                status, listing = await api.request(
                    "GET", f"{station_path()}/files", requestId="bad-1"
                )
                assert listing["files"] == []
                assert daemon.log().count("HTTP 404") == 2  # each refused attempt is logged

    run(scenario(), timeout=90 * UNIT)
