"""The OS³P endpoint of the central: `ws(s)://host:port/<prefix>/<stationId>`.

Theory of operation
-------------------
`os3p.server.open_server` refuses unknown stations (404) and wrong credentials
(401) before the upgrade, asking the in-memory `Registry`. For each accepted
websocket `_serve` then:

1. checks the client certificate when the station has a cert identity (the
   gate only sees the path and the password, so this happens right after the
   upgrade: close code 1008);
2. replaces the station's previous connection, if any: the old one is closed
   (a half-open socket of a station that has reconnected would otherwise hold
   its commands hostage), and the store records the new connection id, so the
   old one closing late does not mark the station disconnected;
3. runs the `os3p.connection.Connection` with the router of `central.handlers`
   until the socket closes, and a closer task that ends the connection after a
   BootNotification answered Rejected (§3.1: "the Central System will
   terminate the connection").

All CALLs the central receives and all CALLERRORs it sends pass `_CountedSession`,
which counts them for `/metrics`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from websockets.asyncio.server import Server, ServerConnection

from central.commands import Commander
from central.config import CentralConfig
from central.files import FileService
from central.handlers import Services, StationContext, build_router
from central.liveness import LivenessWriter
from central.logs import log_event
from central.metrics import Metrics
from central.registry import Registry
from central.storage import AsyncStore, BootPolicy, Station, StorageError, passwords
from os3p.connection import Connection
from os3p.errors import ErrorCode
from os3p.messages import MessageTrigger, TriggerMessageRequest, TriggerMessageResponse
from os3p.server import open_server
from os3p.session import CallReceived, Event, PeerViolation, Role, Session
from os3p.validation import Validator

__all__ = ["CentralServer", "StationLink", "cert_matches", "cert_names", "server_ssl_context"]

log = logging.getLogger(__name__)

# In the data directory: the key of the credential cache (central/storage/passwords.py).
CREDENTIAL_KEY_FILE = "credential-cache.key"

# How long a Rejected station's answer may take to leave before we close anyway.
_REJECT_FLUSH_TIMEOUT = 5.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _CountedSession(Session):
    """A `Session` that counts received CALLs per action and CALLERRORs sent per code."""

    def __init__(self, metrics: Metrics, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._metrics = metrics

    def receive(self, data: str | bytes, now: float) -> list[Event]:
        events = super().receive(data, now)
        for event in events:
            match event:
                case CallReceived(action=action):
                    self._metrics.received[action.value] += 1
                case PeerViolation(answered=code) if code is not None:
                    self._metrics.callerrors_sent[code.value] += 1
        return events

    def reply_error(
        self,
        message_id: str,
        code: ErrorCode,
        description: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        super().reply_error(message_id, code, description, details)
        self._metrics.callerrors_sent[code.value] += 1


class StationLink:
    """A station's live connection, as commands see it."""

    def __init__(self, connection: Connection[StationContext], ctx: StationContext) -> None:
        self.connection = connection
        self._ctx = ctx

    @property
    def ctx(self) -> StationContext:
        return self._ctx

    async def call(
        self, request: msgspec.Struct, *, timeout: float | None = None
    ) -> msgspec.Struct:
        return await self.connection.call(request, timeout=timeout)


def server_ssl_context(cert: Path, key: Path, client_ca: Path | None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if client_ca is not None:
        # Optional at the TLS layer: stations registered with a password only still
        # connect; those with a cert identity are checked in `_serve`.
        context.verify_mode = ssl.CERT_OPTIONAL
        context.load_verify_locations(client_ca)
    return context


def cert_names(peercert: Any) -> set[str]:
    """The subject common names and DNS subject-alternative names of a verified peer cert."""
    return _common_names(peercert) | _dns_names(peercert)


def _common_names(peercert: Any) -> set[str]:
    if not isinstance(peercert, dict):
        return set()
    return {v for rdn in peercert.get("subject", ()) for k, v in rdn if k == "commonName"}


def _dns_names(peercert: Any) -> set[str]:
    if not isinstance(peercert, dict):
        return set()
    return {v for k, v in peercert.get("subjectAltName", ()) if k == "DNS"}


def cert_matches(identity: str, peercert: Any, der: bytes | None) -> bool:
    """Does the verified client certificate match the station's cert identity?

    The registry writes it as `sha256:<hex fingerprint of the DER certificate>` or
    `CN=<subject common name>` (central.storage.model.Station); we also accept
    `DNS=<subject alternative name>`. Without a prefix the value is compared with the
    common name and the DNS names.
    """
    kind, _, value = identity.partition(":") if identity.startswith("sha256:") else ("", "", "")
    if kind == "sha256":
        if der is None:
            return False
        wanted = value.replace(":", "").lower()
        return hmac.compare_digest(hashlib.sha256(der).hexdigest(), wanted)
    if identity.startswith("CN="):
        return identity[3:] in _common_names(peercert)
    if identity.startswith("DNS="):
        return identity[4:] in _dns_names(peercert)
    return identity in cert_names(peercert)


class CentralServer:
    """Connections, handlers and commands; the websocket listener itself."""

    def __init__(
        self,
        config: CentralConfig,
        store: AsyncStore,
        *,
        verifier: AsyncStore | None = None,
        wall: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.config = config
        self.store = store
        self.wall = wall
        self.registry = Registry(
            store,
            wall,
            verifier=verifier,
            credential_key=passwords.load_or_create_key(config.data_dir / CREDENTIAL_KEY_FILE),
        )
        self.links: dict[str, StationLink] = {}
        self.metrics = Metrics(lambda: len(self.links))
        self.validator = Validator()
        self.router = build_router()
        self.liveness = LivenessWriter(store.record_heartbeats)
        self.services = Services(store, self.registry, wall, self.liveness.note)
        self.files = FileService(config.data_dir, config.api.base_url, store, wall)
        self.commander = Commander(
            self.links, self.validator, self.metrics, self.files, timeout=config.command_timeout
        )
        self._server: Server | None = None
        # Called with the station id when a connection is accepted (the command queue
        # dispatches what waited for the station); must not block or raise.
        self.connect_listeners: list[Callable[[str], None]] = []

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        await self.registry.load()
        # No connection of an earlier process is alive any more.
        await self.store.mark_all_disconnected(at=self.wall())
        listen = self.config.listen
        context = None
        if listen.tls_cert is not None and listen.tls_key is not None:
            context = server_ssl_context(listen.tls_cert, listen.tls_key, listen.tls_client_ca)
        self._server = await open_server(
            self._serve,
            self.registry,
            host=listen.host,
            port=listen.port,
            prefix=listen.prefix,
            ssl_context=context,
            ping_interval=listen.ping_interval,
        )
        log_event(
            log,
            logging.INFO,
            "listening",
            station=None,
            port=self.port,
            prefix=listen.prefix,
            tls=context is not None,
            stations=len(self.registry.all()),
        )

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        """Stop listening and close every connection (1001 going away)."""
        if self._server is None:
            return
        self._server.close()
        await self._server.wait_closed()
        self._server = None
        await self.liveness.close()

    # ----------------------------------------------------------------- operator
    async def add_station(
        self,
        station_id: str,
        *,
        password: str | None,
        policy: BootPolicy,
        heartbeat_interval: int,
        cert_identity: str | None = None,
    ) -> Station:
        station = await self.registry.add(
            station_id,
            password=password,
            policy=policy,
            heartbeat_interval=heartbeat_interval,
            cert_identity=cert_identity,
        )
        log_event(log, logging.INFO, "station_added", station=station_id, policy=policy.value)
        return station

    async def remove_station(self, station_id: str) -> None:
        await self.registry.remove(station_id)
        link = self.links.get(station_id)
        if link is not None:
            await link.connection.close(1008, "station removed")
        log_event(log, logging.INFO, "station_removed", station=station_id)

    async def set_policy(
        self, station_id: str, policy: BootPolicy, heartbeat_interval: int | None = None
    ) -> Station:
        station = await self.registry.set_policy(
            station_id, policy, heartbeat_interval=heartbeat_interval
        )
        log_event(log, logging.INFO, "policy", station=station_id, policy=policy.value)
        return station

    async def accept(
        self, station_id: str, heartbeat_interval: int | None = None
    ) -> tuple[Station, TriggerMessageResponse | None]:
        """Set the policy to Accepted and, when connected, make the station boot again
        (TriggerMessage BootNotification, §4.1) so that its next boot is Accepted."""
        station = await self.set_policy(station_id, BootPolicy.ACCEPTED, heartbeat_interval)
        # Also when this process has not seen the station boot (answered None): an
        # extra boot of a station that was Accepted before a restart is harmless.
        if (
            station_id not in self.links
            or self.registry.answered(station_id) is BootPolicy.ACCEPTED
        ):
            return station, None
        response = await self.commander.send_request(
            station_id, TriggerMessageRequest(requested_message=MessageTrigger.BOOT_NOTIFICATION)
        )
        assert isinstance(response, TriggerMessageResponse)  # the session typed it
        return station, response

    # ----------------------------------------------------------------- connections
    async def _serve(self, websocket: ServerConnection, station_id: str) -> None:
        station = self.registry.get(station_id)
        if station is None:  # removed between the handshake and now
            await websocket.close(1008, "unknown station")
            return
        if station.cert_identity is not None:
            peercert = websocket.transport.get_extra_info("peercert")
            ssl_object = websocket.transport.get_extra_info("ssl_object")
            der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
            names = cert_names(peercert)
            if not cert_matches(station.cert_identity, peercert, der):
                log_event(
                    log,
                    logging.WARNING,
                    "refused_certificate",
                    station=station_id,
                    expected=station.cert_identity,
                    presented=",".join(sorted(names)) or "none",
                )
                await websocket.close(1008, "client certificate does not match the station")
                return
        connection_id = uuid.uuid4().hex
        ctx = StationContext(station_id, connection_id, self.services)
        session = _CountedSession(
            self.metrics,
            Role.CENTRAL,
            self.validator,
            implemented=self.router.actions,
            call_timeout=self.config.command_timeout,
        )
        connection = Connection(websocket, session, self.router, ctx, peer=station_id)
        link = StationLink(connection, ctx)
        old = self.links.get(station_id)
        self.links[station_id] = link
        for listener in self.connect_listeners:
            listener(station_id)
        remote = websocket.remote_address
        log_event(
            log,
            logging.INFO,
            "connected",
            station=station_id,
            connection=connection_id,
            remote=f"{remote[0]}:{remote[1]}" if remote else None,
            replaces=old.ctx.connection_id if old else None,
        )
        try:
            async with asyncio.TaskGroup() as tasks:
                # Both run beside the connection: closing a half-open socket waits for
                # its close timeout, and the store may be busy (a reconnect storm);
                # neither may delay the station's first answer.
                if old is not None:
                    tasks.create_task(
                        old.connection.close(1000, "replaced by a new connection"),
                        name=f"central-replace-{station_id}",
                    )
                tasks.create_task(
                    self._record(self.store.record_connected, station_id, connection_id),
                    name=f"central-connected-{station_id}",
                )
                closer = tasks.create_task(
                    self._close_when_rejected(link), name=f"central-reject-{station_id}"
                )
                try:
                    await connection.run()
                finally:
                    closer.cancel()
        finally:
            if self.links.get(station_id) is link:
                del self.links[station_id]
            await self._record(self.store.record_disconnected, station_id, connection_id)
            log_event(
                log,
                logging.INFO,
                "disconnected",
                station=station_id,
                connection=connection_id,
                code=websocket.close_code,
                violations=connection.violations or None,
            )

    async def _record(
        self,
        write: Callable[..., Awaitable[object]],
        station_id: str,
        connection_id: str,
    ) -> None:
        """Connection state is for the operator's view: a failed write is logged, and
        never takes the station's connection down with it."""
        try:
            await write(station_id, connection_id, at=self.wall())
        except StorageError as exc:
            log_event(
                log, logging.ERROR, "connection_state_write_failed", station=station_id, error=exc
            )

    async def _close_when_rejected(self, link: StationLink) -> None:
        await link.ctx.rejected.wait()
        session = link.connection.session
        # The answer leaves in the same step as the session drops the call from
        # `handling` (Connection._handle replies, then flushes), so once no call is
        # being handled the Rejected answer is on the wire ahead of our close frame.
        deadline = time.monotonic() + _REJECT_FLUSH_TIMEOUT
        # The shell offers no "answer sent" event to wait on, hence the short poll.
        while session.handling and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        log_event(log, logging.INFO, "closing_rejected", station=link.ctx.station_id)
        await link.connection.close(1000, "boot rejected")

    def connected(self, station_id: str) -> bool:
        return station_id in self.links
