"""Telling an organisation its result is ready: POST to its webhook, retried.

When a command of an organisation with a webhook becomes final, the store
queues a delivery in the same transaction (`central.storage.commands`), so a
notification survives a restart as the result does. `Notifier.run_loop` POSTs
`{"correlationId", "status", "station"}` as JSON to the URL; any 2xx is
delivered. Anything else (an error status, a refused connection, no answer
within `timeout`) is retried after `backoff` (exponential, capped) up to
`max_attempts` times, then recorded failed. The result itself stays fetchable
by correlation id whatever happens to its notification (OSGP's pattern: the
notification says "ready", the client fetches).

Deliveries go out one at a time, earliest due first: a receiver that hangs
delays the others by at most `timeout` per attempt.

Signatures. Setting a webhook issues a secret (`new_secret`, shown once in the
API's answer). Every POST then carries

    X-OS3P-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

over the exact body bytes, so a receiver can tell our notifications from anyone
else's and refuse a replayed one by its age (`verify_signature` does both; the
scheme is the common one of payment providers, so receivers have code for it).
A webhook set before signatures existed has no secret and is sent unsigned
until the organisation sets it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp

from central.logs import log_event
from central.queueing import backoff
from central.storage import AsyncStore, StorageError
from central.storage.commands import Delivery

__all__ = [
    "SIGNATURE_HEADER",
    "Notifier",
    "WebhookPolicy",
    "new_secret",
    "sign",
    "verify_signature",
]

log = logging.getLogger(__name__)

# The longest the loop sleeps without looking at the table (a clock step, a missed wake).
_MAX_SLEEP = 60.0


SIGNATURE_HEADER = "X-OS3P-Signature"


def new_secret() -> str:
    """A webhook signing secret: 256 random bits behind a prefix that says what it is."""
    return "whsec_" + secrets.token_urlsafe(32)


def _mac(secret: str, stamp: int, body: bytes) -> bytes:
    return hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).digest()


def sign(secret: str, body: bytes, at: datetime) -> str:
    """The signature header's value for `body` sent at `at`."""
    stamp = int(at.timestamp())
    return f"t={stamp},v1={_mac(secret, stamp, body).hex()}"


def verify_signature(
    secret: str, header: str, body: bytes, now: datetime, *, tolerance: float = 300.0
) -> bool:
    """What a receiver checks: our signature over `body`, made within `tolerance` s of `now`."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        stamp = int(fields["t"])
        given = bytes.fromhex(fields["v1"])
    except (KeyError, ValueError):
        return False
    if abs(now.timestamp() - stamp) > tolerance:
        return False
    return hmac.compare_digest(_mac(secret, stamp, body), given)


@dataclass(frozen=True)
class WebhookPolicy:
    max_attempts: int = 8
    backoff_base: timedelta = timedelta(seconds=5)
    backoff_cap: timedelta = timedelta(minutes=10)
    timeout: float = 10.0


class Notifier:
    def __init__(
        self,
        store: AsyncStore,
        wall: Callable[[], datetime],
        policy: WebhookPolicy = WebhookPolicy(),
    ) -> None:
        self._store = store
        self._wall = wall
        self._policy = policy
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """A delivery may have been queued: look now."""
        self._wake.set()

    async def run_loop(self) -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                self._wake.clear()
                try:
                    next_at = await self._deliver_due(session)
                except StorageError as exc:
                    log_event(log, logging.ERROR, "webhook_store_failed", station=None, error=exc)
                    next_at = self._wall() + timedelta(seconds=1)
                sleep = _MAX_SLEEP
                if next_at is not None:
                    sleep = min(sleep, max(0.0, (next_at - self._wall()).total_seconds()))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(sleep):
                        await self._wake.wait()

    async def _deliver_due(self, session: aiohttp.ClientSession) -> datetime | None:
        """Deliver everything due; return when the next pending delivery is due."""
        while True:
            pending = await self._store.pending_deliveries()
            now = self._wall()
            due = [d for d in pending if d.next_at <= now]
            if not due:
                return min((d.next_at for d in pending), default=None)
            for delivery in due:
                await self._deliver(session, delivery)

    async def _deliver(self, session: aiohttp.ClientSession, delivery: Delivery) -> None:
        error: str | None = None
        body = json.dumps(delivery.body, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if delivery.secret is not None:
            headers[SIGNATURE_HEADER] = sign(delivery.secret, body, self._wall())
        try:
            async with session.post(
                delivery.url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self._policy.timeout),
            ) as response:
                if not 200 <= response.status < 300:
                    error = f"HTTP {response.status}"
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        now = self._wall()
        attempts = delivery.attempts + 1
        next_at: datetime | None = None
        if error is not None and attempts < self._policy.max_attempts:
            next_at = now + backoff(
                attempts, base=self._policy.backoff_base, cap=self._policy.backoff_cap
            )
        await self._store.record_delivery(
            delivery.correlation_id, delivered=error is None, at=now, error=error, next_at=next_at
        )
        log_event(
            log,
            logging.INFO if error is None else logging.WARNING,
            "webhook",
            station=delivery.body.get("station"),
            correlation=delivery.correlation_id,
            organisation=delivery.organisation,
            attempt=attempts,
            outcome="delivered" if error is None else ("retry" if next_at else "gave_up"),
            error=error,
        )
