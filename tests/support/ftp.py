"""A real FTP server (pyftpdlib) on localhost, serving one directory, in a thread."""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

# pyftpdlib 2.x still imports asynchat/asyncore, deprecated in 3.11; the test server
# is the only user, so the warning is silenced here and stays an error everywhere else.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "The asyn(core|chat) module", DeprecationWarning)
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import FTPServer


@contextlib.contextmanager
def ftp_server(directory: Path, user: str = "root", password: str = "root") -> Iterator[int]:
    """Yields the port; `user`/`password` may read `directory` (the §7.13.2 example's form)."""
    logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
    authorizer = DummyAuthorizer()
    authorizer.add_user(user, password, str(directory), perm="elr")
    handler = type("Handler", (FTPHandler,), {"authorizer": authorizer})
    server = FTPServer(("127.0.0.1", 0), handler)
    port: int = server.socket.getsockname()[1]
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"timeout": 0.05}, name="ftp", daemon=True
    )
    thread.start()
    try:
        yield port
    finally:
        server.close_all()
        thread.join(5)
