"""Real upload targets for the GetFile tests: an aiohttp file receiver (HTTP or HTTPS)
and an FTP server (plain, or FTPS: explicit TLS with pyftpdlib's TLS_FTPHandler, which
needs pyOpenSSL)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from aiohttp import web

# pyftpdlib 2.x on Python 3.11 imports the stdlib's asynchat/asyncore, which warn
# that they go away in 3.12 (pyftpdlib carries its own copies there). Not ours to fix.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
    from pyftpdlib.servers import FTPServer

from tests.support.tls import TestPKI


class Receiver:
    """Accepts PUT /upload/<name> (stores the body) and answers `status` otherwise."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.attempts = 0
        self.fail_first = 0  # answer this many PUTs with 503 first
        self.url = ""

    async def put(self, request: web.Request) -> web.Response:
        self.attempts += 1
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=503)
        self.files[request.match_info["name"]] = await request.read()
        return web.Response(status=201)


@contextlib.asynccontextmanager
async def http_receiver(tls: ssl.SSLContext | None = None) -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_put("/upload/{name}", receiver.put)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    port = runner.addresses[0][1]
    scheme = "https" if tls is not None else "http"
    receiver.url = f"{scheme}://127.0.0.1:{port}/upload/"
    try:
        yield receiver
    finally:
        await runner.cleanup()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def ftp_server(
    root: Path, user: str = "rtu", password: str = "s3cret", *, tls: TestPKI | None = None
) -> Iterator[str]:
    """An FTP server on 127.0.0.1 writing into `root`; yields ftp://user:password@host:port/.
    With `tls`: FTPS that refuses plain control and data channels; yields ftps://..."""
    authorizer = DummyAuthorizer()
    authorizer.add_user(user, password, str(root), perm="elradfmw")
    attributes: dict[str, object] = {"authorizer": authorizer, "banner": "test"}
    base: type[FTPHandler] = FTPHandler
    if tls is not None:
        base = TLS_FTPHandler
        attributes |= {
            "certfile": str(tls.server_cert),
            "keyfile": str(tls.server_key),
            "tls_control_required": True,
            "tls_data_required": True,
        }
    handler = type("Handler", (base,), attributes)
    server = FTPServer(("127.0.0.1", 0), handler)
    port = server.socket.getsockname()[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.05}, daemon=True)
    thread.start()
    try:
        scheme = "ftps" if tls is not None else "ftp"
        yield f"{scheme}://{user}:{password}@127.0.0.1:{port}/"
    finally:
        server.close_all()
        thread.join(timeout=5)
