"""The station side of the websocket: connection URL, subprotocol, TLS, credentials."""

from __future__ import annotations

import base64
import ssl
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from os3p.errors import OS3PError

__all__ = [
    "SUBPROTOCOL",
    "ConnectRefused",
    "SubprotocolRefused",
    "connection_url",
    "open_connection",
    "pong_timeout",
]

SUBPROTOCOL = "OS3P1.0"  # implementation guide §3.1.2 Table 1


class ConnectRefused(OS3PError):
    """The central answered the handshake with an HTTP error (404 unknown station, 401, ...)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"HTTP {status}: {reason}")
        self.status = status


class SubprotocolRefused(OS3PError):
    """The central agreed to none of our subprotocols (§3.2: it then closes at once)."""


def connection_url(endpoint: str, station_id: str) -> str:
    """§3.1.1: the endpoint URL, then '/', then the percent-encoded station identity.

    Every character outside RFC 3986 "unreserved" is encoded, '/' included, so an
    identity can never change the path's structure.
    """
    return f"{endpoint}/{quote(station_id, safe='')}"


def pong_timeout(ping_interval: float | None) -> float | None:
    """How long a ping waits for its pong before the link counts as dead.

    A half-open link (the central vanished without a FIN: NAT timeout, mobile
    handover) is noticed only by a missing pong. The library's fixed 20 s added
    to a short ping interval (a test rig, a station whose central asks for quick
    liveness) makes detection slow; a pong is owed within one ping interval,
    bounded to [5 s, 20 s] so a loaded cellular link is not cut for latency.
    """
    if not ping_interval:
        return None
    return max(5.0, min(ping_interval, 20.0))


async def open_connection(
    endpoint: str,
    station_id: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    password: str | None = None,
    ping_interval: float | None = None,
    open_timeout: float = 10.0,
    max_size: int | None = 1 << 20,
    subprotocols: tuple[str, ...] = (SUBPROTOCOL,),
) -> ClientConnection:
    """Open the websocket; `ping_interval` None or 0 disables our pings (§6 Table 8)."""
    headers = {}
    if password is not None:
        # HTTP Basic with the station identity as user name (OCPP-J security profile 1).
        token = base64.b64encode(f"{station_id}:{password}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {token}"
    url = connection_url(endpoint, station_id)
    try:
        websocket = await connect(
            url,
            subprotocols=list(subprotocols),  # type: ignore[arg-type]
            additional_headers=headers,
            ssl=ssl_context if url.startswith("wss:") else None,
            ping_interval=ping_interval or None,
            ping_timeout=pong_timeout(ping_interval),
            # A dead link does not answer the closing handshake either: wait for it
            # no longer than for a pong before the socket is dropped.
            close_timeout=pong_timeout(ping_interval) or 10.0,
            open_timeout=open_timeout,
            max_size=max_size,
            compression=None,  # §5.2: no compression beyond RFC 6455; keeps frames cheap
        )
    except InvalidStatus as exc:
        response = exc.response
        raise ConnectRefused(response.status_code, response.reason_phrase) from None
    if websocket.subprotocol is None:
        await websocket.close(1002, "no common subprotocol")
        raise SubprotocolRefused(f"central accepted none of {', '.join(subprotocols)}")
    return websocket
