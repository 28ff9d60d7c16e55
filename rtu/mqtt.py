"""The optional MQTT telemetry publisher (`[mqtt]`), over aiomqtt.

Topic scheme (`<prefix>` is `topic_prefix`, default "os3p"; `<station>` the
station id with MQTT's special characters `/ + #` replaced by `_`):

    <prefix>/<station>/status                  "online" | "offline", retained; the
                                               broker publishes "offline" (last
                                               will) when we vanish
    <prefix>/<station>/status/detail           JSON status snapshot, retained,
                                               refreshed every `status_interval` s
    <prefix>/<station>/meter/<measurand>[/<location>]
                                               one JSON object per sampled value:
                                               {"timestamp", "value", "unit", "context"}
    <prefix>/<station>/event/<Action>          every other station-initiated
                                               message, its OS³P payload as JSON

QoS 1 for everything. Messages are taken from `on_event`, the hook the daemon
calls after each `EventSink.emit` (so MQTT sees exactly what the outbox
committed): it never blocks and never fails; it queues (bounded: the oldest
message is dropped and counted when the broker is away long enough to fill
the queue). A message leaves the queue only once the broker acknowledged it,
so a broker restart loses nothing that fits in the queue.

`run_loop` owns the connection: connect, publish "online", drain the queue,
refresh the status; on any MQTT error it reconnects with capped, jittered
exponential backoff, by itself, forever. On a clean stop it publishes
"offline" itself (a last will is only sent for an unclean disconnect).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import logging
import math
import re
import ssl
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import msgspec

from os3p.backoff import Backoff
from os3p.messages import ACTION_OF, MeterValuesRequest, to_payload
from rtu.config import Config, Problems, TableReader

__all__ = [
    "MqttConfig",
    "MqttPublisher",
    "load_mqtt",
    "read_mqtt",
    "read_mqtt_config",
    "topic_segment",
]

log = logging.getLogger(__name__)

_SPECIAL: Final = re.compile(r"[/+#\x00]")
_STOP_TIMEOUT: Final = 2.0


@dataclasses.dataclass(frozen=True, slots=True)
class MqttConfig:
    host: str
    port: int = 1883
    tls: bool = False
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    client_id: str | None = None
    topic_prefix: str = "os3p"
    keepalive: int = 60
    status_interval: float = 60.0
    queue_size: int = 10_000
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    timeout: float = 10.0


def read_mqtt(reader: TableReader) -> MqttConfig:
    """The `[mqtt]` section; problems go to the reader's Problems with their key path."""
    tls = reader.boolean("tls", False)
    password = reader.string("password", None)
    password_file = reader.path("password_file", None)
    if password is not None and password_file is not None:
        reader.error("password_file", "give either password or password_file, not both")
    if password_file is not None and password_file.is_file():
        password = password_file.read_text(encoding="utf-8").rstrip("\n")
    cert = reader.path("client_cert", None)
    key = reader.path("client_key", None)
    if (cert is None) != (key is None):
        reader.error("client_key" if key is None else "client_cert", "give both or neither")
    prefix = reader.string("topic_prefix", "os3p", min_len=1, max_len=100)
    if _SPECIAL.search(prefix.replace("/", "")):
        reader.error("topic_prefix", "must not contain + or #")
    return MqttConfig(
        host=reader.string("host", min_len=1, max_len=253),
        port=reader.integer("port", 8883 if tls else 1883, min=1, max=65535),
        tls=tls,
        ca_file=reader.path("ca_file", None),
        client_cert=cert,
        client_key=key,
        username=reader.string("username", None),
        password=password,
        client_id=reader.string("client_id", None, max_len=64),
        topic_prefix=prefix.strip("/"),
        keepalive=reader.integer("keepalive", 60, min=5, max=3600),
        status_interval=reader.number("status_interval", 60.0, min=0.1, max=86400),
        queue_size=reader.integer("queue_size", 10_000, min=1, max=1_000_000),
        backoff_base=reader.number("backoff_base", 1.0, min=0.01, max=600),
        backoff_cap=reader.number("backoff_cap", 60.0, min=0.01, max=3600),
        timeout=reader.number("timeout", 10.0, min=0.1, max=600),
    )


def load_mqtt(config: Config) -> MqttConfig | None:
    """The `[mqtt]` section of a loaded config, None when absent; raises ConfigInvalid."""
    problems = Problems(config.file)
    mqtt = read_mqtt_config(config, problems)
    problems.raise_if_any()
    return mqtt


def read_mqtt_config(config: Config, problems: Problems) -> MqttConfig | None:
    """`[mqtt]`, None when absent; problems are collected (the caller raises)."""
    if "mqtt" not in config.devices:
        return None
    root = TableReader(config.devices, "", problems, config.file.parent)
    reader = root.subtable("mqtt")
    mqtt = read_mqtt(reader)
    reader.done()
    return mqtt


def topic_segment(text: str) -> str:
    """`text` usable as one topic level."""
    return _SPECIAL.sub("_", text) or "_"


@dataclasses.dataclass(frozen=True, slots=True)
class _Message:
    topic: str
    payload: bytes
    retain: bool = False


class MqttPublisher:
    def __init__(
        self,
        config: MqttConfig,
        station_id: str,
        *,
        status: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        self._config = config
        self._base = f"{config.topic_prefix}/{topic_segment(station_id)}"
        self._client_id = config.client_id or f"rtu-{topic_segment(station_id)}"[:64]
        self._status = status
        self._queue: collections.deque[_Message] = collections.deque()
        self._queued = asyncio.Event()
        self._backoff = Backoff(base=config.backoff_base, cap=config.backoff_cap)
        self.connected = False
        self.published = 0
        self.dropped = 0
        self.connects = 0
        self.last_error: str | None = None

    @property
    def status_topic(self) -> str:
        return f"{self._base}/status"

    def meter_topic(self, measurand: str, location: str | None = None) -> str:
        topic = f"{self._base}/meter/{topic_segment(measurand)}"
        return f"{topic}/{topic_segment(location)}" if location else topic

    def event_topic(self, action: str) -> str:
        return f"{self._base}/event/{topic_segment(action)}"

    # -- the hook ---------------------------------------------------------------

    def on_event(self, message: msgspec.Struct) -> None:
        """Queue `message` (as committed to the outbox) for the broker; never blocks."""
        if isinstance(message, MeterValuesRequest):
            for meter_value in message.meter_value:
                timestamp = meter_value.timestamp.isoformat()
                for sampled in meter_value.sampled_value:
                    body = {
                        "timestamp": timestamp,
                        "value": sampled.value,
                        "unit": sampled.unit.value if sampled.unit else None,
                        "context": sampled.context.value if sampled.context else None,
                    }
                    location = sampled.location.value if sampled.location else None
                    self._put(
                        _Message(self.meter_topic(sampled.measurand.value, location), _json(body))
                    )
            return
        action = ACTION_OF.get(type(message))
        if action is None:
            raise TypeError(f"{type(message).__name__} is not an OS³P request")
        self._put(_Message(self.event_topic(action.value), _json(to_payload(message))))

    def _put(self, message: _Message) -> None:
        if len(self._queue) >= self._config.queue_size:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(message)
        self._queued.set()

    # -- the connection -----------------------------------------------------------

    def _tls_context(self) -> ssl.SSLContext | None:
        config = self._config
        if not config.tls:
            return None
        context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
        context.sslsocket_class = _ClosingSSLSocket
        if config.client_cert and config.client_key:
            context.load_cert_chain(config.client_cert, config.client_key)
        return context

    async def run_loop(self) -> None:
        import aiomqtt

        config = self._config
        backoff = self._backoff
        while True:
            client = aiomqtt.Client(
                config.host,
                config.port,
                username=config.username,
                password=config.password,
                identifier=self._client_id,
                will=aiomqtt.Will(self.status_topic, b"offline", qos=1, retain=True),
                keepalive=config.keepalive,
                # No deadline inside aiomqtt: it waits with asyncio.wait_for, which in
                # Python 3.11 can swallow a cancellation (the daemon would not stop).
                # Every wait is bounded here instead, with asyncio.timeout.
                timeout=math.inf,
                tls_context=self._tls_context(),
            )
            try:
                await self._session(client)
            except (aiomqtt.MqttError, TimeoutError) as exc:
                self.connected = False
                self.last_error = str(exc) or type(exc).__name__
                delay = backoff.next_delay()
                log.warning(
                    "MQTT %s:%d: %s; retrying in %.1f s",
                    config.host,
                    config.port,
                    self.last_error,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _session(self, client: Any) -> None:
        """One connection, from CONNECT to its end; every wait on the broker is bounded.

        aiomqtt waits for CONNACK and for the disconnect without a deadline (2.5),
        and a socket that paho lost mid-handshake leaves that wait hanging, so the
        client's context is entered and left by hand, each under a timeout.
        """
        import aiomqtt

        config = self._config
        try:
            async with asyncio.timeout(config.timeout):
                await client.__aenter__()
        except BaseException:
            await _leave(client)
            raise
        self.connected = True
        self.connects += 1
        self._backoff.reset()
        log.info("MQTT connected to %s:%d", config.host, config.port)
        try:
            await self._serve(client)
        finally:
            self.connected = False
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await self._publish(client, self.status_topic, b"offline", True, _STOP_TIMEOUT)
            await _leave(client)

    async def _publish(
        self, client: Any, topic: str, payload: bytes, retain: bool, timeout: float | None = None
    ) -> None:
        """QoS 1: returns once the broker acknowledged (PUBACK), or raises TimeoutError."""
        async with asyncio.timeout(timeout or self._config.timeout):
            await client.publish(topic, payload, qos=1, retain=retain)

    async def _serve(self, client: Any) -> None:
        loop = asyncio.get_running_loop()
        await self._publish(client, self.status_topic, b"online", True)
        next_status = loop.time()
        while True:
            if self._status is not None and loop.time() >= next_status:
                detail = _json(dict(self._status()))
                await self._publish(client, f"{self.status_topic}/detail", detail, True)
                next_status = loop.time() + self._config.status_interval
            while self._queue:
                message = self._queue[0]
                await self._publish(client, message.topic, message.payload, message.retain)
                if self._queue and self._queue[0] is message:
                    self._queue.popleft()  # acknowledged: it may go
                self.published += 1
            self._queued.clear()
            wait = self._config.status_interval if self._status is not None else None
            if wait is not None:
                wait = max(0.0, next_status - loop.time())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._queued.wait()

    def snapshot(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "queued": len(self._queue),
            "published": self.published,
            "dropped": self.dropped,
            "connects": self.connects,
            "last_error": self.last_error,
        }


class _ClosingSSLSocket(ssl.SSLSocket):
    """paho-mqtt 2.2 (`_ssl_wrap_socket`) leaves the socket open when the TLS handshake
    fails: one leaked descriptor per reconnect attempt, for as long as the broker's
    certificate is not trusted. Closing it here is the one place we can reach it."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


async def _leave(client: Any) -> None:
    """Disconnect, bounded; a client that cannot even do that is dropped anyway."""
    import aiomqtt

    with contextlib.suppress(aiomqtt.MqttError, TimeoutError, OSError):
        async with asyncio.timeout(_STOP_TIMEOUT):
            await client.__aexit__(None, None, None)


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=str).encode("utf-8")
