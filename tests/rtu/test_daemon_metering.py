"""The real daemon (`rtu run` subprocess) with metering and MQTT configured: an
analyser simulator, a Mosquitto broker and a scripted central. MeterValues reach the
central and the broker, `rtu status` lists the meter, GetFile is implemented."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from hil.analyser import AnalyserSimulator
from os3p.messages import (
    ChangeConfigurationRequest,
    ChangeConfigurationResponse,
    ConfigurationStatus,
    FileType,
    GetFileRequest,
    GetFileResponse,
    GetFileStatus,
)
from tests.rtu.files.servers import http_receiver
from tests.rtu.test_daemon import Daemon, accepted, status_text
from tests.rtu.test_mqtt import MOSQUITTO, broker
from tests.support.aio import UNIT, eventually, run
from tests.support.central import ScriptedCentral, scripted_central

pytestmark = pytest.mark.skipif(not Path(MOSQUITTO).exists(), reason="mosquitto not installed")

DEVICES = """
[metering]
retention_days = 30
log_file = "{log}"

[[meters]]
kind = "analyser"
name = "station"
host = "127.0.0.1"
port = {analyser}
board_temperature = false

[mqtt]
host = "127.0.0.1"
port = {mqtt}
backoff_base = 0.05
backoff_cap = 0.5
"""


def test_meter_values_reach_the_central_and_the_broker(tmp_path: Path) -> None:
    async def scenario() -> None:
        meter_topics: dict[str, bytes] = {}
        subscribed = asyncio.Event()

        async def subscribe(port: int) -> None:
            async with aiomqtt.Client("127.0.0.1", port, identifier="observer") as client:
                await client.subscribe("os3p/#", qos=1)
                subscribed.set()
                async for message in client.messages:
                    assert isinstance(message.payload, bytes)
                    meter_topics[str(message.topic)] = message.payload

        with broker(tmp_path) as mqtt:
            await mqtt.listening()
            async with (
                AnalyserSimulator() as simulator,
                scripted_central(ScriptedCentral()) as central,
                http_receiver() as receiver,
                asyncio.TaskGroup() as tasks,
            ):
                observer = tasks.create_task(subscribe(mqtt.port))
                await subscribed.wait()
                daemon = Daemon(tmp_path, central.endpoint)
                with daemon.config.open("a") as config:
                    config.write(
                        DEVICES.format(
                            log=tmp_path / "rtu.log", analyser=simulator.port, mqtt=mqtt.port
                        )
                    )
                await daemon.start()
                try:
                    await daemon.ready()
                    await accepted(central)
                    link = central.current
                    assert link is not None
                    change = await link.call(
                        ChangeConfigurationRequest(key="ClockAlignedDataInterval", value="1")
                    )
                    assert change == ChangeConfigurationResponse(
                        status=ConfigurationStatus.ACCEPTED
                    )
                    await eventually(
                        lambda: central.count("MeterValues") >= 1,
                        timeout=15 * UNIT,
                        what="MeterValues at the central",
                    )
                    values: dict[str, Any] = {
                        sv["measurand"]: sv["value"]
                        for sv in central.of("MeterValues")[0]["meterValue"][0]["sampledValue"]
                    }
                    assert values["Frequency"] == "49.98"
                    assert values["DayMax.Voltage.L1"] == "230.4"
                    await eventually(
                        lambda: "os3p/SUBS 001/meter/Frequency" in meter_topics,
                        timeout=10 * UNIT,
                        what="MQTT meter topic",
                    )
                    assert meter_topics.get("os3p/SUBS 001/status") == b"online"
                    await eventually(
                        lambda: "meter station: ok" in status_text(daemon),
                        timeout=15 * UNIT,
                        what="rtu status lists the meter",
                    )
                    response = await link.call(
                        GetFileRequest(file_type=FileType.SYSLOG, location=receiver.url)
                    )
                    assert isinstance(response, GetFileResponse)
                    assert response.status is GetFileStatus.ACCEPTED
                    await eventually(
                        lambda: response.file_name in receiver.files,
                        timeout=10 * UNIT,
                        what="the log uploaded",
                    )
                    assert b"station SUBS 001 ready" in receiver.files[response.file_name]
                    assert await daemon.stop() == 0
                    await eventually(
                        lambda: meter_topics.get("os3p/SUBS 001/status") == b"offline",
                        what="offline after the stop",
                    )
                except BaseException:
                    print(daemon.log())  # the daemon's own account, for the failure report
                    raise
                finally:
                    if daemon.process is not None and daemon.process.returncode is None:
                        daemon.process.kill()
                        await daemon.process.wait()
                    daemon.notify.close()
                    observer.cancel()

    run(scenario(), timeout=90 * UNIT)
