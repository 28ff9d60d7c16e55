"""The central side of the websocket: path → station id, 404/401 before the upgrade,
subprotocol selection, TLS.

§3.2: an unknown station identity gets HTTP 404 *before* the upgrade; a client
offering none of our subprotocols gets a completed handshake without
Sec-WebSocket-Protocol and is closed at once. Credentials are checked in the
same pre-upgrade hook (401 with a Basic challenge), so a refused station never
costs a websocket.
"""

from __future__ import annotations

import base64
import binascii
import http
import inspect
import ssl
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol
from urllib.parse import unquote

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from os3p.client import SUBPROTOCOL

__all__ = ["StationGate", "open_server", "station_id_from_path"]


class StationGate(Protocol):
    """Who may connect: the central's registry answers these before the upgrade."""

    def is_known(self, station_id: str) -> bool | Awaitable[bool]:
        """False → 404 (§3.2)."""
        ...

    def check_password(self, station_id: str, password: str | None) -> bool | Awaitable[bool]:
        """False → 401. `password` is None when the station sent no Basic credentials."""
        ...


def station_id_from_path(path: str, prefix: str) -> str | None:
    """The percent-decoded identity after `prefix/`, or None if the path is not ours.

    The inverse of `os3p.client.connection_url` (§3.1.1): one path segment, so
    an encoded '/' (%2F) inside an identity survives while a raw '/' does not.
    """
    path = path.split("?", 1)[0]
    base = prefix.rstrip("/") + "/"
    if not path.startswith(base):
        return None
    segment = path[len(base) :]
    if not segment or "/" in segment:
        return None
    return unquote(segment, errors="strict")


def _basic_password(headers: Headers, station_id: str) -> str | None:
    value = headers.get("Authorization")
    if not value or not value.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(value[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return password if user == station_id else None


async def _resolve(value: bool | Awaitable[bool]) -> bool:
    return await value if inspect.isawaitable(value) else bool(value)


def _refuse(status: http.HTTPStatus, text: str, *, challenge: bool = False) -> Response:
    headers = Headers([("Content-Type", "text/plain; charset=utf-8")])
    if challenge:
        headers["WWW-Authenticate"] = 'Basic realm="OS3P", charset="UTF-8"'
    body = (text + "\n").encode()
    headers["Content-Length"] = str(len(body))
    return Response(status.value, status.phrase, headers, body)


async def open_server(
    handler: Callable[[ServerConnection, str], Awaitable[None]],
    gate: StationGate,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    prefix: str = "/OS3P",
    ssl_context: ssl.SSLContext | None = None,
    ping_interval: float | None = None,
    max_size: int | None = 1 << 20,
    subprotocols: Sequence[str] = (SUBPROTOCOL,),
) -> Server:
    """Start serving; `handler(websocket, station_id)` runs once per accepted station."""
    ours = [Subprotocol(name) for name in subprotocols]

    async def process_request(connection: ServerConnection, request: Request) -> Response | None:
        try:
            station_id = station_id_from_path(request.path, prefix)
        except UnicodeDecodeError:
            station_id = None
        if station_id is None or not await _resolve(gate.is_known(station_id)):
            return _refuse(http.HTTPStatus.NOT_FOUND, "unknown station")
        password = _basic_password(request.headers, station_id)
        if not await _resolve(gate.check_password(station_id, password)):
            return _refuse(http.HTTPStatus.UNAUTHORIZED, "bad credentials", challenge=True)
        return None

    def select_subprotocol(
        connection: ServerConnection, offered: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        # The client lists preferences left to right (§3.1.3); the first we speak wins.
        # None completes the handshake without the header; `serve_one` then closes (§3.2).
        return next((p for p in offered if p in ours), None)

    async def serve_one(connection: ServerConnection) -> None:
        if connection.subprotocol is None:
            await connection.close(1002, "no common subprotocol")
            return
        station_id = (
            station_id_from_path(connection.request.path, prefix) if connection.request else None
        )
        if station_id is None:  # process_request already refused these
            await connection.close(1011)
            return
        await handler(connection, station_id)

    return await serve(
        serve_one,
        host,
        port,
        process_request=process_request,
        select_subprotocol=select_subprotocol,
        ssl=ssl_context,
        ping_interval=ping_interval or None,
        max_size=max_size,
        compression=None,
    )
