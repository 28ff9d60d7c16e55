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
