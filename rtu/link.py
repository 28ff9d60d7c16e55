"""The station's link to the central system: connect, boot, heartbeat, reconnect.

Theory of operation (OS³P §3, implementation guide §5.4–5.5)
-----------------------------------------------------------
`run_loop` connects (capped exponential backoff with full jitter between
attempts), then decides whether a BootNotification is due: on first boot, after
a firmware change, a changed boot field or a changed endpoint URL, compared with
the persisted record of the last *Accepted* boot. If none is due the link is
Accepted at once (§3.3: "a BootNotification is not required").

    connected ──boot due──▶ BOOTING ──Accepted──▶ ACCEPTED ──(heartbeats)──┐
        │                     │  ▲                  ▲                      │
        │                     │  └─ interval / ─────┼── PENDING ◀─Pending─┤
        │                     │     TriggerMessage  │                      │
        └──no boot due────────┼─────────────────────┘                      │
                              └─Rejected─▶ REJECTED: close, wait `interval`, reconnect

While PENDING the station answers the central's calls but initiates nothing
except what TriggerMessage asks (the trigger handler uses `call` directly; the
outbox waits for `accepted`). Heartbeats run every `interval` seconds while
ACCEPTED, and at least once a day even when websocket pings keep the link
alive (§5.4: Heartbeat carries the time). Every answer carrying `currentTime`
corrects the clock.

The link is the one path for the station's CALLs: `call()` raises
`ConnectionLost` when there is no connection, which callers (the outbox) treat
as "retry when the link is back", never as a failure of the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import ssl
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

import msgspec
from websockets.exceptions import InvalidHandshake, InvalidURI

from os3p.actions import Action
from os3p.backoff import Backoff
from os3p.client import ConnectRefused, SubprotocolRefused, open_connection
from os3p.connection import Connection
from os3p.errors import CallFailed, ConnectionLost
from os3p.messages import (
    BootNotificationRequest,
    BootNotificationResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    RegistrationStatus,
)
from os3p.router import Router
from os3p.session import Role, Session
from os3p.validation import Validator
from rtu.clock import Clock

__all__ = ["BootRecords", "Link", "LinkSettings", "LinkState"]

log = logging.getLogger(__name__)

Ctx = TypeVar("Ctx")
Resp = TypeVar("Resp", bound=msgspec.Struct)

ONE_DAY = 86_400.0


class LinkState(enum.StrEnum):
    OFFLINE = "offline"
    CONNECTING = "connecting"
    BOOTING = "booting"
    PENDING = "pending"
    REJECTED = "rejected"
    ACCEPTED = "accepted"


class BootRecords(Protocol):
    """What the link needs from the state database."""

    async def boot_due(self, fields: Mapping[str, str], endpoint: str) -> bool: ...

    async def record_accepted_boot(
        self, fields: Mapping[str, str], endpoint: str, at: datetime
    ) -> None: ...

    async def save_clock_offset(self, offset: timedelta) -> None: ...


@dataclasses.dataclass(frozen=True)
class LinkSettings:
    endpoint: str
    station_id: str
    boot: BootNotificationRequest
    password: str | None = None
    ssl_context: ssl.SSLContext | None = None
    call_timeout: float = 30.0
    window: int = 1
    backoff_base: float = 1.0
    backoff_cap: float = 300.0
    retry_interval: float = 60.0  # Pending/Rejected with interval 0: when to try again
    open_timeout: float = 10.0


def boot_fields(request: BootNotificationRequest) -> dict[str, str]:
    """The wire fields of a BootNotification: what decides whether a new one is due."""
    return {k: str(v) for k, v in msgspec.to_builtins(request).items()}


class Link:
    """Keeps the station connected, booted and heartbeating."""

    def __init__(
        self,
        settings: LinkSettings,
        router: Router[Ctx],
        ctx: Ctx,
        *,
        records: BootRecords,
        clock: Clock,
        validator: Validator,
        heartbeat_interval: float = 300.0,
        ping_interval: float = 0.0,
        backoff: Backoff | None = None,
    ) -> None:
        self.settings = settings
        self._router: Router[object] = router  # type: ignore[assignment]
        self._ctx: object = ctx
        self._records = records
        self._clock = clock
        self._validator = validator
        self._backoff = backoff or Backoff(base=settings.backoff_base, cap=settings.backoff_cap)
        self.heartbeat_interval = heartbeat_interval
        self.ping_interval = ping_interval
        self.state = LinkState.OFFLINE
        self.accepted = asyncio.Event()  # set exactly while ACCEPTED
        self.connected = asyncio.Event()
        self.connection: Connection[object] | None = None
        self.last_error: str | None = None
        self._wake_heartbeat = asyncio.Event()
        self._boot_now = asyncio.Event()
        self._reconnect_not_before = 0.0

    # ------------------------------------------------------------ public API
    async def call(
        self, request: msgspec.Struct, *, timeout: float | None = None
    ) -> msgspec.Struct:
        connection = self.connection
        if connection is None or connection.closed:
            raise ConnectionLost("no connection to the central system")
        return await connection.call(request, timeout=timeout)

    async def send_raw(self, action: str, payload_json: str) -> None:
        """Deliver one outbox entry (the pump's `send`): returns on CALLRESULT, raises a
        CallFailed subclass otherwise. Only while Accepted: in any other state the entry
        waits (ConnectionLost), as §3.1 forbids initiating messages before acceptance."""
        connection = self.connection
        if connection is None or connection.closed or not self.accepted.is_set():
            raise ConnectionLost("not connected and Accepted")
        await connection.call_raw(Action(action), payload_json)

    async def call_typed(
        self, request: msgspec.Struct, response_type: type[Resp], *, timeout: float | None = None
    ) -> Resp:
        response = await self.call(request, timeout=timeout)
        if not isinstance(response, response_type):
            raise TypeError(f"expected {response_type.__name__}, got {type(response).__name__}")
        return response

    def set_heartbeat_interval(self, seconds: float) -> None:
        """ChangeConfiguration HeartbeatInterval: applied to the running loop at once."""
        self.heartbeat_interval = seconds
        self._wake_heartbeat.set()

    def request_boot(self) -> None:
        """TriggerMessage BootNotification: send one now (also the way out of Pending)."""
        self._boot_now.set()

    async def trigger_boot(self) -> None:
        self.request_boot()

    async def heartbeat_now(self) -> None:
        """TriggerMessage Heartbeat (allowed while Pending, §3.1): one now, clock corrected."""
        connection = self.connection
        if connection is None or connection.closed:
            raise ConnectionLost("no connection to the central system")
        response, sent, received = await self._timed_call(
            connection, HeartbeatRequest(), HeartbeatResponse
        )
        await self._correct_clock(response.current_time, sent, received)

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()

    # ------------------------------------------------------------ the loops
    async def run_loop(self) -> None:
        """Forever: connect, serve, and reconnect with backoff when the link drops."""
        while True:
            wait = max(0.0, self._reconnect_not_before - self._clock.monotonic())
            if wait:
                await asyncio.sleep(wait)
            self._set_state(LinkState.CONNECTING)
            try:
                websocket = await open_connection(
                    self.settings.endpoint,
                    self.settings.station_id,
                    ssl_context=self.settings.ssl_context,
                    password=self.settings.password,
                    ping_interval=self.ping_interval,
                    open_timeout=self.settings.open_timeout,
                )
            except (
                OSError,
                TimeoutError,
                InvalidHandshake,
                InvalidURI,
                ConnectRefused,
                SubprotocolRefused,
            ) as exc:
                self.last_error = f"connect: {exc}"
                delay = self._backoff.next_delay()
                log.warning(
                    "connecting to %s failed (%s); retry in %.1f s",
                    self.settings.endpoint,
                    exc,
                    delay,
                )
                self._set_state(LinkState.OFFLINE)
                await asyncio.sleep(delay)
                continue
            session = Session(
                Role.STATION,
                self._validator,
                implemented=self._router.actions,
                window=self.settings.window,
                call_timeout=self.settings.call_timeout,
            )
            connection: Connection[object] = Connection(
                websocket,
                session,
                self._router,
                self._ctx,
                peer=self.settings.station_id,
                clock=self._clock.monotonic,
            )
            self.connection = connection
            self.connected.set()
            log.info("connected to %s", self.settings.endpoint)
            try:
                async with asyncio.TaskGroup() as tasks:
                    runner = tasks.create_task(connection.run(), name="link-connection")
                    session_task = tasks.create_task(
                        self._serve(connection), name="link-boot-heartbeat"
                    )
                    await runner
                    session_task.cancel()
            finally:
                self.connection = None
                self.connected.clear()
                self._set_state(LinkState.OFFLINE)
            log.warning("disconnected from %s", self.settings.endpoint)
            if self._reconnect_not_before <= self._clock.monotonic():
                await asyncio.sleep(self._backoff.next_delay())

    async def _serve(self, connection: Connection[object]) -> None:
        fields = boot_fields(self.settings.boot)
        if await self._records.boot_due(fields, self.settings.endpoint):
            if not await self._boot(connection, fields):
                return
        else:
            log.info("boot record current: no BootNotification needed (§3.3)")
            self._set_state(LinkState.ACCEPTED)
        self._backoff.reset()
        await self._heartbeat_loop(connection, fields)

    async def _boot(self, connection: Connection[object], fields: dict[str, str]) -> bool:
        """Boot until Accepted (True) or Rejected / connection lost (False)."""
        while True:
            self._set_state(LinkState.BOOTING)
            self._boot_now.clear()
            try:
                response, sent, received = await self._timed_call(
                    connection, self.settings.boot, BootNotificationResponse
                )
            except ConnectionLost:
                return False
            except CallFailed as exc:
                delay = self._backoff.next_delay()
                log.warning("BootNotification failed (%s); again in %.1f s", exc, delay)
                await self._sleep_or_boot_request(delay)
                continue
            await self._correct_clock(response.current_time, sent, received)
            match response.status:
                case RegistrationStatus.ACCEPTED:
                    if response.interval > 0:
                        self.heartbeat_interval = float(response.interval)
                    await self._records.record_accepted_boot(
                        fields, self.settings.endpoint, self._clock.now()
                    )
                    self._set_state(LinkState.ACCEPTED)
                    return True
                case RegistrationStatus.PENDING:
                    self._set_state(LinkState.PENDING)
                    wait = float(response.interval) or self.settings.retry_interval
                    log.info("boot Pending: waiting %.0f s or a TriggerMessage", wait)
                    await self._sleep_or_boot_request(wait)
                case RegistrationStatus.REJECTED:
                    self._set_state(LinkState.REJECTED)
                    wait = float(response.interval) or self.settings.retry_interval
                    log.warning("boot Rejected: reconnecting in %.0f s", wait)
                    # §3.1: the central MAY refuse connections during `interval`; honour it.
                    self._reconnect_not_before = self._clock.monotonic() + wait
                    await connection.close(1000, "boot rejected")
                    return False

    async def _heartbeat_loop(self, connection: Connection[object], fields: dict[str, str]) -> None:
        while True:
            interval = self.heartbeat_interval
            period = ONE_DAY if interval <= 0 else min(interval, ONE_DAY)
            self._wake_heartbeat.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(period):
                    await self._wait_any(self._wake_heartbeat, self._boot_now)
            if self._boot_now.is_set():
                if not await self._boot(connection, fields):
                    return
                continue
            if self._wake_heartbeat.is_set():
                continue  # the interval changed: start a new period with it
            try:
                response, sent, received = await self._timed_call(
                    connection, HeartbeatRequest(), HeartbeatResponse
                )
            except ConnectionLost:
                return
            except CallFailed as exc:
                log.warning("Heartbeat failed: %s", exc)
                continue
            await self._correct_clock(response.current_time, sent, received)

    # ------------------------------------------------------------ helpers
    async def _timed_call(
        self, connection: Connection[object], request: msgspec.Struct, response_type: type[Resp]
    ) -> tuple[Resp, float, float]:
        sent = self._clock.monotonic()
        response = await connection.call_typed(request, response_type)
        return response, sent, self._clock.monotonic()

    async def _correct_clock(self, central_time: datetime, sent: float, received: float) -> None:
        change = self._clock.correct(central_time, sent_at=sent, received_at=received)
        if change:
            log.info(
                "clock corrected by %+.3f s (offset now %+.3f s)",
                change.total_seconds(),
                self._clock.offset.total_seconds(),
            )
            await self._records.save_clock_offset(self._clock.offset)

    async def _sleep_or_boot_request(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._boot_now.wait()

    @staticmethod
    async def _wait_any(*events: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(e.wait()) for e in events]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    def _set_state(self, state: LinkState) -> None:
        if state is not self.state:
            log.info("link %s → %s", self.state, state)
        self.state = state
        if state is LinkState.ACCEPTED:
            self.accepted.set()
        else:
            self.accepted.clear()
