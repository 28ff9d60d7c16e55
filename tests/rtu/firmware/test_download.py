"""Downloads from real servers: aiohttp over HTTP, pyftpdlib over FTP."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from rtu.firmware.config import FirmwareConfig
from rtu.firmware.download import DownloadError, download, redact
from tests.support.aio import run
from tests.support.ftp import ftp_server
from tests.support.tls import TestPKI, make_pki

DATA = bytes(range(256)) * 400  # 100 KiB


@contextlib.asynccontextmanager
async def http_server() -> AsyncIterator[str]:
    async def bundle(request: web.Request) -> web.Response:
        return web.Response(body=DATA)

    app = web.Application()
    app.router.add_get("/bundle.tar", bundle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def cut_short_server() -> AsyncIterator[str]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(DATA))
        writer.write(DATA[:1000])
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/bundle.tar"
    finally:
        server.close()
        await server.wait_closed()


def test_http_download(tmp_path: Path) -> None:
    async def scenario() -> int:
        async with http_server() as base:
            return await download(
                f"{base}/bundle.tar", tmp_path / "b.tar", timeout=10, max_size=1 << 20
            )

    assert run(scenario()) == len(DATA)
    assert (tmp_path / "b.tar").read_bytes() == DATA


@pytest.mark.parametrize(
    ("path", "max_size", "reason"),
    [("/missing.tar", 1 << 20, "HTTP 404"), ("/bundle.tar", 1000, "too large")],
    ids=["not-found", "too-large"],
)
def test_http_failures(tmp_path: Path, path: str, max_size: int, reason: str) -> None:
    async def scenario() -> None:
        async with http_server() as base:
            await download(f"{base}{path}", tmp_path / "b.tar", timeout=10, max_size=max_size)

    with pytest.raises(DownloadError, match=reason):
        run(scenario())
    assert list(tmp_path.iterdir()) == []  # no partial file left


def test_a_transfer_cut_short_is_a_failure_not_a_short_file(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with cut_short_server() as url:
            await download(url, tmp_path / "b.tar", timeout=10, max_size=1 << 20)

    with pytest.raises(DownloadError, match="HTTP"):
        run(scenario())
    assert list(tmp_path.iterdir()) == []


def test_unreachable_and_unsupported_locations(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="HTTP"):
        run(download("http://127.0.0.1:9/b.tar", tmp_path / "b", timeout=5, max_size=100))
    with pytest.raises(DownloadError, match="unsupported location scheme 'file'"):
        run(download("file:///etc/passwd", tmp_path / "b", timeout=5, max_size=100))


def test_ftp_download_with_credentials_as_in_the_spec_example(tmp_path: Path) -> None:
    served = tmp_path / "served"
    (served / "tmp").mkdir(parents=True)
    (served / "tmp" / "kvcbx-updt.amx").write_bytes(DATA)
    with ftp_server(served) as port:
        url = f"ftp://root:root@127.0.0.1:{port}/tmp/kvcbx-updt.amx"  # §7.13.2, but local
        size = run(download(url, tmp_path / "b.tar", timeout=10, max_size=1 << 20))
        assert size == len(DATA)
        assert (tmp_path / "b.tar").read_bytes() == DATA
        for bad, reason in [
            (f"ftp://root:wrong@127.0.0.1:{port}/tmp/kvcbx-updt.amx", "FTP"),
            (f"ftp://root:root@127.0.0.1:{port}/tmp/missing", "FTP"),
        ]:
            with pytest.raises(DownloadError, match=reason):
                run(download(bad, tmp_path / "c.tar", timeout=10, max_size=1 << 20))
    assert not (tmp_path / "c.tar").exists()


def test_passwords_never_reach_the_log() -> None:
    assert redact("ftp://root:secret@host:2121/x") == "ftp://root:***@host:2121/x"
    assert redact("http://host/x") == "http://host/x"


@contextlib.asynccontextmanager
async def https_server(pki: TestPKI) -> AsyncIterator[str]:
    async def bundle(request: web.Request) -> web.Response:
        return web.Response(body=DATA)

    app = web.Application()
    app.router.add_get("/bundle.tar", bundle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=pki.server_context())
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"https://localhost:{port}/bundle.tar"
    finally:
        await runner.cleanup()


def test_https_download_trusts_the_configured_ca_and_only_then(tmp_path: Path) -> None:
    """`[firmware] ca_file`: a grid operator's file server with its own CA."""
    pki = make_pki(tmp_path / "pki")
    config = FirmwareConfig(
        trusted_keys=(bytes(32),),
        releases_root=tmp_path,
        confirm_timeout=600,
        max_crashes=3,
        installer="venv",
        python=Path("/usr/bin/python3"),
        default_retries=3,
        default_retry_interval=60,
        download_timeout=10,
        max_bundle_size=1 << 20,
        ca_file=pki.ca_cert,
    )

    async def scenario() -> None:
        async with https_server(pki) as url:
            size = await download(
                url, tmp_path / "b.tar", timeout=10, max_size=1 << 20,
                ssl_context=config.ssl_context(),
            )  # fmt: skip
            assert size == len(DATA)
            assert (tmp_path / "b.tar").read_bytes() == DATA
            with pytest.raises(DownloadError, match="certificate"):
                await download(url, tmp_path / "c.tar", timeout=10, max_size=1 << 20)
            assert not (tmp_path / "c.tar").exists()

    run(scenario())
