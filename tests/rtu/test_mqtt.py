"""The MQTT publisher against a real Mosquitto broker on a free 127.0.0.1 port:
topics and payloads, the retained status with its last will, a broker restart, TLS
with a test CA."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import getpass
import json
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from os3p.messages import (
    Location,
    Measurand,
    MeterValue,
    MeterValuesRequest,
    ReadingContext,
    SampledValue,
    StationErrorCode,
    StationStatus,
    StatusNotificationRequest,
    UnitOfMeasure,
)
from rtu.config import ConfigInvalid, Problems, TableReader
from rtu.mqtt import MqttConfig, MqttPublisher, read_mqtt, topic_segment
from tests.support.aio import UNIT, eventually, run
from tests.support.tls import TestPKI, make_pki

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
pytestmark = pytest.mark.skipif(
    not Path(MOSQUITTO).exists(), reason="mosquitto is not installed (scripts/debian-packages.txt)"
)
T0 = datetime(2026, 5, 4, 10, 15, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Broker:
    def __init__(self, directory: Path, pki: TestPKI | None = None) -> None:
        self.port = free_port()
        self.conf = directory / "mosquitto.conf"
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true"]
        if pki is not None:  # TLS only on this listener, server certificate from the test CA
            # Started as root, mosquitto drops to user `mosquitto` before it reads the
            # certificates, which sit in pytest's private (0700) directory: stay ourselves.
            lines.append(f"user {getpass.getuser()}")
            lines += [
                f"cafile {pki.ca_cert}",
                f"certfile {pki.server_cert}",
                f"keyfile {pki.server_key}",
            ]
        self.conf.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    async def listening(self) -> None:
        async def accepts() -> bool:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                return False
            writer.close()
            await writer.wait_closed()
            return True

        await eventually(accepts, what="mosquitto listening")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.terminate()
            process.wait(timeout=10)


@contextlib.contextmanager
def broker(tmp_path: Path, pki: TestPKI | None = None) -> Iterator[Broker]:
    b = Broker(tmp_path, pki)
    b.start()
    try:
        yield b
    finally:
        b.stop()


class Subscriber:
    """Collects every message under os3p/#, reconnecting across broker restarts."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[tuple[str, bytes, bool]] = []
        self.subscribed = asyncio.Event()
        self.subscriptions = 0

    def latest(self, topic: str) -> bytes | None:
        found = [payload for t, payload, _ in self.messages if t == topic]
        return found[-1] if found else None

    async def run(self) -> None:
        # The connect is bounded by hand: aiomqtt waits for CONNACK without a deadline,
        # and a broker that died mid-handshake would leave the observer deaf.
        while True:
            client = aiomqtt.Client("127.0.0.1", self.port, identifier="test-sub")
            try:
                async with asyncio.timeout(2 * UNIT):
                    await client.__aenter__()
            except (aiomqtt.MqttError, TimeoutError):
                await leave(client)
                # Not faster: paho callbacks of a dead client can still fire on its
                # (reused) socket number and spoil an attempt made right after it.
                await asyncio.sleep(0.2)
                continue
            try:
                async with asyncio.timeout(2 * UNIT):
                    await client.subscribe("os3p/#", qos=1)
                self.subscriptions += 1
                self.subscribed.set()
                async for message in client.messages:
                    payload = message.payload
                    assert isinstance(payload, bytes)
                    self.messages.append((str(message.topic), payload, message.retain))
            except (aiomqtt.MqttError, TimeoutError):
                self.subscribed.clear()
            finally:
                await leave(client)


async def leave(client: aiomqtt.Client) -> None:
    with contextlib.suppress(aiomqtt.MqttError, TimeoutError, OSError):
        async with asyncio.timeout(UNIT):
            await client.__aexit__(None, None, None)


@contextlib.asynccontextmanager
async def publishing(
    port: int, status: dict[str, Any] | None = None
) -> AsyncIterator[tuple[MqttPublisher, Subscriber]]:
    config = MqttConfig(
        host="127.0.0.1", port=port, backoff_base=0.05, backoff_cap=0.2, timeout=2 * UNIT
    )
    publisher = MqttPublisher(config, "SUBS 001/#1", status=(lambda: status) if status else None)
    subscriber = Subscriber(port)
    async with asyncio.TaskGroup() as tasks:
        sub = tasks.create_task(subscriber.run())
        await subscriber.subscribed.wait()
        pub = tasks.create_task(publisher.run_loop())
        try:
            yield publisher, subscriber
        finally:
            pub.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pub
            await eventually(
                lambda: subscriber.latest("os3p/SUBS 001__1/status") == b"offline",
                what="offline on a clean stop",
            )
            sub.cancel()


METER_VALUES = MeterValuesRequest(
    meter_value=(
        MeterValue(
            timestamp=T0,
            sampled_value=(
                SampledValue(
                    value="230.1",
                    context=ReadingContext.SAMPLE_CLOCK,
                    measurand=Measurand.VOLTAGE_L1N,
                    unit=UnitOfMeasure.V,
                ),
                SampledValue(
                    value="1.5",
                    context=ReadingContext.SAMPLE_CLOCK,
                    measurand=Measurand.POWER_ACTIVE_IMPORT,
                    location=Location.P1_METER,
                    unit=UnitOfMeasure.KW,
                ),
            ),
        ),
    )
)
STATUS = StatusNotificationRequest(
    status=StationStatus.FAULTED, error_code=StationErrorCode.POWER_METER_FAILURE, timestamp=T0
)
BASE = "os3p/SUBS 001__1"


def test_topics_payloads_and_status(tmp_path: Path) -> None:
    async def scenario() -> None:
        with broker(tmp_path) as b:
            await b.listening()
            async with publishing(b.port, status={"link": "accepted"}) as (publisher, sub):
                await eventually(lambda: sub.latest(f"{BASE}/status") == b"online", what="online")
                publisher.on_event(METER_VALUES)
                publisher.on_event(STATUS)
                await eventually(
                    lambda: sub.latest(f"{BASE}/event/StatusNotification") is not None,
                    what="event",
                )
                voltage = json.loads(sub.latest(f"{BASE}/meter/Voltage.L1N") or b"null")
                power = json.loads(sub.latest(f"{BASE}/meter/Power.Active.Import/P1Meter") or b"")
                event = json.loads(sub.latest(f"{BASE}/event/StatusNotification") or b"")
                detail = json.loads(sub.latest(f"{BASE}/status/detail") or b"")
                assert voltage == {
                    "timestamp": "2026-05-04T10:15:00+00:00",
                    "value": "230.1",
                    "unit": "V",
                    "context": "Sample.Clock",
                }
                assert power["unit"] == "kW"
                assert event["errorCode"] == "PowerMeterFailure"
                assert detail == {"link": "accepted"}
                assert publisher.snapshot()["published"] == 3

    run(scenario())


PUBLISHER = """
import asyncio
from rtu.mqtt import MqttConfig, MqttPublisher
config = MqttConfig(host="127.0.0.1", port={port}, keepalive=5)
asyncio.run(MqttPublisher(config, "SUBS 001/#1").run_loop())
"""


def test_the_broker_publishes_the_last_will_when_the_station_vanishes(tmp_path: Path) -> None:
    async def scenario() -> None:
        with broker(tmp_path) as b:
            await b.listening()
            subscriber = Subscriber(b.port)
            async with asyncio.TaskGroup() as tasks:
                sub = tasks.create_task(subscriber.run())
                await subscriber.subscribed.wait()
                station = await asyncio.create_subprocess_exec(
                    sys.executable, "-c", PUBLISHER.format(port=b.port)
                )
                try:
                    await eventually(
                        lambda: subscriber.latest(f"{BASE}/status") == b"online",
                        timeout=10 * UNIT,
                        what="online",
                    )
                finally:
                    station.kill()  # no clean disconnect: only the will can say "offline"
                    await station.wait()
                await eventually(
                    lambda: subscriber.latest(f"{BASE}/status") == b"offline", what="the will"
                )
                sub.cancel()
            # Retained: a subscriber arriving later learns it too.
            async with aiomqtt.Client("127.0.0.1", b.port, identifier="late") as late:
                await late.subscribe(f"{BASE}/status", qos=1)
                async with asyncio.timeout(5 * UNIT):
                    message = await anext(aiter(late.messages))
            assert (message.payload, message.retain) == (b"offline", True)

    run(scenario())


def test_a_broker_restart_is_survived(tmp_path: Path) -> None:
    async def scenario() -> None:
        with broker(tmp_path) as b:
            await b.listening()
            async with publishing(b.port) as (publisher, sub):
                await eventually(lambda: sub.latest(f"{BASE}/status") == b"online", what="online")
                connects, published = publisher.connects, publisher.published
                subscriptions = sub.subscriptions
                b.stop()
                publisher.on_event(STATUS)  # queued while the broker is away
                await eventually(lambda: not publisher.connected, what="disconnect noticed")
                assert publisher.snapshot()["queued"] == 1
                b.start()
                await b.listening()
                await eventually(lambda: publisher.connects > connects, what="reconnected")
                # The queued event left the queue only once the new broker acknowledged it.
                await eventually(
                    lambda: (
                        publisher.snapshot()["queued"] == 0 and publisher.published == published + 1
                    ),
                    what="the queued event acknowledged after the restart",
                )
                await eventually(
                    lambda: sub.subscriptions > subscriptions,
                    timeout=10 * UNIT,
                    what="the observer back",
                )
                publisher.on_event(METER_VALUES)
                await eventually(
                    lambda: sub.latest(f"{BASE}/meter/Voltage.L1N") is not None,
                    what="messages flow again",
                )
                assert sub.latest(f"{BASE}/status") == b"online"  # retained, republished

    run(scenario(), timeout=60 * UNIT)


def test_config_section(tmp_path: Path) -> None:
    problems = Problems(tmp_path / "rtu.toml")
    (tmp_path / "pw").write_text("hunter2\n")
    config = read_mqtt(
        TableReader(
            {"host": "broker", "tls": True, "username": "rtu", "password_file": "pw"},
            "mqtt",
            problems,
            tmp_path,
        )
    )
    assert (config.port, config.password, config.tls) == (8883, "hunter2", True)
    bad = TableReader({"port": 0, "client_cert": "c.pem", "qos": 2}, "mqtt", problems, tmp_path)
    read_mqtt(bad)
    bad.done()
    with pytest.raises(ConfigInvalid) as invalid:
        problems.raise_if_any()
    keys = sorted(error.key for error in invalid.value.errors)
    assert keys == ["mqtt.client_cert", "mqtt.client_key", "mqtt.host", "mqtt.port", "mqtt.qos"]


def test_topic_segments() -> None:
    assert topic_segment("SUBS 001/#1+x") == "SUBS 001__1_x"
    assert topic_segment("") == "_"


def test_over_tls_trusting_the_configured_ca(tmp_path: Path) -> None:
    """Mosquitto with a certificate from a test CA: the publisher trusts `ca_file` and
    a subscriber over TLS receives its messages; trusting another CA, it never
    connects and says why."""
    pki = make_pki(tmp_path / "pki")
    other = make_pki(tmp_path / "other", ca_name="Somebody Else's CA")

    async def scenario() -> None:
        with broker(tmp_path, pki) as b:
            await b.listening()
            received: dict[str, bytes] = {}
            async with aiomqtt.Client(
                "127.0.0.1", b.port, identifier="tls-sub", tls_context=pki.client_context()
            ) as subscriber:
                await subscriber.subscribe("os3p/#", qos=1)

                async def collect() -> None:
                    async for message in subscriber.messages:
                        assert isinstance(message.payload, bytes)
                        received[str(message.topic)] = message.payload

                config = MqttConfig(
                    host="127.0.0.1", port=b.port, tls=True, ca_file=pki.ca_cert,
                    backoff_base=0.05, backoff_cap=0.2, timeout=2 * UNIT,
                )  # fmt: skip
                publisher = MqttPublisher(config, "SUBS 001/#1")
                untrusting = MqttPublisher(
                    dataclasses.replace(config, ca_file=other.ca_cert, client_id="untrusting"),
                    "SUBS 002",
                )
                async with asyncio.TaskGroup() as tasks:
                    collector = tasks.create_task(collect())
                    loops = [
                        tasks.create_task(publisher.run_loop()),
                        tasks.create_task(untrusting.run_loop()),
                    ]
                    publisher.on_event(METER_VALUES)
                    await eventually(
                        lambda: f"{BASE}/meter/Voltage.L1N" in received,
                        timeout=10 * UNIT,
                        what="a meter value over TLS",
                    )
                    assert received[f"{BASE}/status"] == b"online"
                    await eventually(
                        lambda: "CERTIFICATE_VERIFY_FAILED" in (untrusting.last_error or ""),
                        timeout=10 * UNIT,
                        what="the untrusting publisher's reason",
                    )
                    assert untrusting.connects == 0
                    assert not any(topic.startswith("os3p/SUBS 002") for topic in received)
                    for loop in loops:
                        loop.cancel()
                    collector.cancel()

    run(scenario(), timeout=60 * UNIT)
