"""Fetching a bundle from an UpdateFirmware `location` (§7.13): HTTP(S) or FTP.

HTTP(S) goes through aiohttp, streamed to disk; FTP through ftplib in a worker
thread (blocking library, DESIGN.md "Runtime"). Every failure, whatever the
library, leaves here as `DownloadError` with a reason for the log: this is the
one boundary where third-party exceptions are translated. A response shorter
than its Content-Length (a connection cut mid-transfer) is a failure, never a
short file: aiohttp raises on it, and the FTP path compares with SIZE.

Credentials in the URL (`ftp://user:pass@host/...`, as in the §7.13.2 example)
are used and never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import ftplib
import ssl
import urllib.parse
from pathlib import Path

__all__ = ["DownloadError", "download", "redact"]

_CHUNK = 1 << 16


class DownloadError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def redact(location: str) -> str:
    """The URL without its password, for logs."""
    parts = urllib.parse.urlsplit(location)
    if parts.password is None:
        return location
    netloc = f"{parts.username}:***@{parts.hostname}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


async def download(
    location: str,
    dest: Path,
    *,
    timeout: float,
    max_size: int,
    ssl_context: ssl.SSLContext | None = None,
) -> int:
    """Fetch `location` into `dest` (replaced atomically); returns its size.

    `ssl_context` verifies https servers (`[firmware] ca_file`); None: the system's CAs.
    """
    parts = urllib.parse.urlsplit(location)
    if parts.scheme not in ("http", "https", "ftp"):
        raise DownloadError(f"unsupported location scheme {parts.scheme!r}")
    partial = dest.with_name(dest.name + ".part")
    try:
        async with asyncio.timeout(timeout):
            if parts.scheme == "ftp":
                size = await asyncio.to_thread(_ftp, parts, partial, max_size, timeout)
            else:
                size = await _http(location, partial, max_size, ssl_context)
    except TimeoutError as exc:
        raise DownloadError(f"no complete download within {timeout:.0f} s") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    partial.replace(dest)
    return size


async def _http(
    location: str, partial: Path, max_size: int, ssl_context: ssl.SSLContext | None
) -> int:
    # Imported here: aiohttp is a fifth of an idle daemon's memory, needed only
    # while a transfer runs (bench/rtu.py, idle RSS).
    import aiohttp

    size = 0
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(location, ssl=ssl_context or True) as response,
        ):
            if response.status != 200:
                raise DownloadError(f"HTTP {response.status} {response.reason or ''}".strip())
            if response.content_length is not None and response.content_length > max_size:
                raise DownloadError(f"bundle of {response.content_length} bytes is too large")
            with partial.open("wb") as sink:
                async for chunk in response.content.iter_chunked(_CHUNK):
                    size += len(chunk)
                    if size > max_size:
                        raise DownloadError(f"bundle larger than {max_size} bytes")
                    sink.write(chunk)
            if response.content_length is not None and size != response.content_length:
                raise DownloadError(f"got {size} of {response.content_length} bytes")
    except aiohttp.ClientError as exc:
        raise DownloadError(f"HTTP: {type(exc).__name__}: {exc}") from exc
    except OSError as exc:
        raise DownloadError(f"cannot write {partial}: {exc}") from exc
    return size


def _ftp(parts: urllib.parse.SplitResult, partial: Path, max_size: int, timeout: float) -> int:
    if not parts.hostname or not parts.path:
        raise DownloadError("FTP location needs a host and a path")
    user = urllib.parse.unquote(parts.username) if parts.username else "anonymous"
    password = urllib.parse.unquote(parts.password) if parts.password else "anonymous@"
    path = urllib.parse.unquote(parts.path)
    received = 0
    try:
        with ftplib.FTP(timeout=timeout) as ftp, partial.open("wb") as sink:
            ftp.connect(parts.hostname, parts.port or 21)
            ftp.login(user, password)
            ftp.voidcmd("TYPE I")
            expected = ftp.size(path)
            if expected is not None and expected > max_size:
                raise DownloadError(f"bundle of {expected} bytes is too large")

            def write(chunk: bytes) -> None:
                nonlocal received
                received += len(chunk)
                if received > max_size:
                    raise DownloadError(f"bundle larger than {max_size} bytes")
                sink.write(chunk)

            ftp.retrbinary(f"RETR {path}", write)
    except ftplib.all_errors as exc:
        raise DownloadError(f"FTP: {type(exc).__name__}: {exc}") from exc
    if expected is not None and received != expected:
        raise DownloadError(f"got {received} of {expected} bytes")
    return received
