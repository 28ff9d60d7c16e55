"""Putting a file where GetFile's `location` says: HTTP(S) PUT or FTP/FTPS STOR.

One boundary (httpx's idea): `upload` takes a URL, a name and the bytes, and
raises only `UploadError`; aiohttp's and ftplib's exceptions are translated
here and nowhere else. The location is a directory and the file goes into it
under the name the station announced in its GetFile answer: OS³P §7.5.2's
example location is `ftp://root:root@sftp.oursystem.foo/tmp` (a directory
without a trailing "/"), and the central's file server issues
`.../files/uploads/<token>` the same way. A query string (a signed URL's
credentials) stays on the URL.

- `http://`, `https://`: one PUT with the bytes as body; any 2xx is success.
  Credentials in the URL become Basic authentication (aiohttp does this).
- `ftp://`, `ftps://`: ftplib on a worker thread (it blocks); user and
  password from the URL (anonymous without), passive mode, binary STOR to the
  URL's path. `ftps` is explicit TLS (AUTH TLS, then a protected data
  channel), the common FTPS flavour.

TLS (https, ftps) verifies the server's certificate and host name against the
system's CAs plus `[metering] upload_ca_file` (`tls_context`): a grid operator's
file server usually has a certificate from its own CA.
"""

from __future__ import annotations

import asyncio
import ftplib
import io
import ssl
import urllib.parse
from pathlib import Path
from typing import Final

__all__ = ["SCHEMES", "UploadError", "target_url", "tls_context", "upload"]

SCHEMES: Final = frozenset({"http", "https", "ftp", "ftps"})


class UploadError(Exception):
    """The file did not arrive; `reason` says why (logged, counted as a failed attempt)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{_redacted(url)}: {reason}")
        self.reason = reason


def _redacted(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def target_url(location: str, file_name: str) -> str:
    """Where the file goes: `file_name` in the directory `location`."""
    parts = urllib.parse.urlsplit(location)
    path = parts.path.rstrip("/") + "/" + urllib.parse.quote(file_name)
    return urllib.parse.urlunsplit(parts._replace(path=path))


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """The system's CAs, plus `ca_file` when given (raises UploadError if unreadable)."""
    context = ssl.create_default_context()
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise UploadError(str(ca_file), f"cannot load the CA file: {exc}") from exc
    return context


async def upload(
    location: str,
    file_name: str,
    content: bytes,
    *,
    timeout: float,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """`ssl_context` for https and ftps; the system's CAs when None."""
    url = target_url(location, file_name)
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    context = ssl_context or ssl.create_default_context()
    if scheme in ("http", "https"):
        await _put(url, content, timeout, context)
    elif scheme in ("ftp", "ftps"):
        await asyncio.to_thread(_stor, url, content, timeout, context)
    else:
        raise UploadError(url, f"unsupported scheme {scheme!r}")


async def _put(url: str, content: bytes, timeout: float, context: ssl.SSLContext) -> None:
    # Imported here: aiohttp is a fifth of an idle daemon's memory, needed only
    # while a transfer runs (bench/rtu.py, idle RSS).
    import aiohttp

    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.put(url, data=content, ssl=context) as response,
        ):
            if not 200 <= response.status < 300:
                raise UploadError(url, f"HTTP {response.status} {response.reason or ''}".strip())
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
        raise UploadError(url, f"{type(exc).__name__}: {exc}") from exc


def _stor(url: str, content: bytes, timeout: float, context: ssl.SSLContext) -> None:
    parts = urllib.parse.urlsplit(url)
    secure = parts.scheme.lower() == "ftps"
    ftp: ftplib.FTP = (
        ftplib.FTP_TLS(context=context, timeout=timeout) if secure else ftplib.FTP(timeout=timeout)
    )
    try:
        ftp.connect(parts.hostname or "", parts.port or 21)
        user = urllib.parse.unquote(parts.username) if parts.username else "anonymous"
        password = urllib.parse.unquote(parts.password) if parts.password else ""
        ftp.login(user, password)
        if isinstance(ftp, ftplib.FTP_TLS):
            ftp.prot_p()
        ftp.set_pasv(True)
        ftp.storbinary(f"STOR {urllib.parse.unquote(parts.path)}", io.BytesIO(content))
    except (ftplib.Error, OSError, EOFError) as exc:
        raise UploadError(url, f"{type(exc).__name__}: {exc}") from exc
    finally:
        try:
            ftp.quit()
        except (ftplib.Error, OSError, EOFError, AttributeError):
            ftp.close()
