"""A DLMS meter that goes dark and comes back, seen by the real central: the real
daemon polls the DLMS simulator (hil/dlms_meter.py) over TCP; the simulator stops as
a power cut would (connections dropped, port closed) → StatusNotification
PowerMeterFailure; it starts again on the same port → the fault is resolved
(`NoError`, docs/supervision.md) and MeterValues resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hil.dlms_meter import DlmsMeterSimulator
from tests.central.support import Api
from tests.e2e.support import (
    accepted,
    central_with_station,
    command,
    daemon_for,
    events,
    running_daemon,
    station_path,
)
from tests.support.aio import UNIT, eventually, run

pytestmark = pytest.mark.slow

DEVICES = """
[alarms]
meter_errors = 2
board_temperature_period = 0

[metering]
retry_interval = 0.2

[[meters]]
kind = "dlms"
name = "trafo"
host = "127.0.0.1"
port = {port}
authentication = "low"
password = "12345678"
client_address = 17
timeout = 1.0
"""


async def meter_failures(api: Api) -> list[dict[str, Any]]:
    return [e for e in await events(api, "StatusNotification") if "PowerMeterFailure" in str(e)]


async def voltage_samples(api: Api) -> int:
    status, body = await api.request(
        "GET", f"{station_path()}/meter-values", measurand="Voltage.L1N"
    )
    assert status == 200, body
    return len(body["meterValues"])


def test_a_meter_that_disconnects_raises_power_meter_failure_and_recovers(
    tmp_path: Path,
) -> None:
    meter = DlmsMeterSimulator()  # its default password is the one configured above

    async def scenario() -> None:
        async with central_with_station(tmp_path) as (central, api):
            daemon = daemon_for(tmp_path, central, DEVICES.format(port=meter.port))
            async with running_daemon(daemon):
                await accepted(api)
                change = await command(
                    api, "ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "1"}
                )
                assert change == {"status": "Accepted"}

                async def sampling(at_least: int) -> bool:
                    return await voltage_samples(api) >= at_least

                await eventually(lambda: sampling(2), timeout=20 * UNIT, what="meter values")
                assert await meter_failures(api) == []

                meter.stop()  # the meter goes dark

                async def failure_raised() -> bool:
                    return len(await meter_failures(api)) >= 1

                await eventually(failure_raised, timeout=20 * UNIT, what="PowerMeterFailure")
                [raised] = await meter_failures(api)
                assert raised["errorCode"] == "PowerMeterFailure"
                assert raised["status"] == "Faulted"
                assert raised["info"].startswith("trafo: 2 reads failed")
                status, station = await api.request("GET", station_path())
                assert status == 200
                assert [f["errorCode"] for f in station["openFaults"]] == ["PowerMeterFailure"]
                before = await voltage_samples(api)

                meter.start()  # back on the same port

                async def resolved() -> bool:
                    return len(await meter_failures(api)) >= 2

                await eventually(resolved, timeout=20 * UNIT, what="PowerMeterFailure resolved")
                cleared = (await meter_failures(api))[1]
                assert cleared["errorCode"] == "NoError"
                assert cleared["info"] == "PowerMeterFailure resolved: trafo"
                assert cleared["status"] == "Ok"  # no other fault open
                await eventually(
                    lambda: sampling(before + 2), timeout=20 * UNIT, what="meter values resume"
                )
                status, station = await api.request("GET", station_path())
                assert status == 200
                assert station["openFaults"] == []
                assert len(await meter_failures(api)) == 2  # raised once, resolved once

    with meter:
        run(scenario(), timeout=120 * UNIT)
