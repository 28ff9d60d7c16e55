"""Uploads to real servers: HTTP(S) PUT to an aiohttp receiver, STOR to a pyftpdlib
server (plain and FTPS), TLS trusting a test CA."""

from __future__ import annotations

from pathlib import Path

import pytest

from rtu.files.upload import UploadError, target_url, tls_context, upload
from tests.rtu.files.servers import free_port, ftp_server, http_receiver
from tests.support.aio import UNIT, run
from tests.support.tls import make_pki


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        pytest.param("http://h/up/", "http://h/up/a%20b.csv", id="directory"),
        pytest.param("ftp://u:p@h:21", "ftp://u:p@h:21/a%20b.csv", id="no-path"),
        pytest.param("https://h/up?sig=1", "https://h/up/a%20b.csv?sig=1", id="query-kept"),
        # §7.5.2's example: a directory without a trailing slash
        pytest.param("ftp://root:root@h/tmp", "ftp://root:root@h/tmp/a%20b.csv", id="spec"),
    ],
)
def test_target_url(location: str, expected: str) -> None:
    assert target_url(location, "a b.csv") == expected


def test_http_put() -> None:
    async def scenario() -> None:
        async with http_receiver() as receiver:
            await upload(receiver.url, "x.csv", b"a,b\r\n", timeout=5 * UNIT)
            assert receiver.files == {"x.csv": b"a,b\r\n"}
            receiver.fail_first = 1
            with pytest.raises(UploadError, match="HTTP 503"):
                await upload(receiver.url, "y.csv", b"", timeout=5 * UNIT)

    run(scenario())


def test_ftp_stor_with_credentials_from_the_url(tmp_path: Path) -> None:
    async def scenario() -> None:
        with ftp_server(tmp_path) as url:
            await upload(url, "log.txt", b"hello\n", timeout=5 * UNIT)
            assert (tmp_path / "log.txt").read_bytes() == b"hello\n"
            wrong = url.replace("s3cret", "wrong")
            with pytest.raises(UploadError) as failure:
                await upload(wrong, "log.txt", b"", timeout=5 * UNIT)
            assert "wrong" not in str(failure.value)  # the password stays out of logs

    run(scenario())


def test_unreachable_and_unsupported_locations() -> None:
    async def scenario() -> None:
        port = free_port()
        with pytest.raises(UploadError):
            await upload(f"http://127.0.0.1:{port}/", "f", b"", timeout=2 * UNIT)
        with pytest.raises(UploadError):
            await upload(f"ftp://127.0.0.1:{port}/", "f", b"", timeout=2 * UNIT)
        with pytest.raises(UploadError, match="unsupported"):
            await upload("gopher://h/", "f", b"", timeout=UNIT)

    run(scenario())


def test_https_put_trusts_the_configured_ca_only(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")

    async def scenario() -> None:
        async with http_receiver(pki.server_context()) as receiver:
            assert receiver.url.startswith("https://")
            trusted = tls_context(pki.ca_cert)
            await upload(receiver.url, "x.csv", b"a\r\n", timeout=5 * UNIT, ssl_context=trusted)
            assert receiver.files == {"x.csv": b"a\r\n"}
            with pytest.raises(UploadError, match="CERTIFICATE_VERIFY_FAILED"):
                await upload(receiver.url, "y.csv", b"", timeout=5 * UNIT)  # system CAs only
            assert "y.csv" not in receiver.files

    run(scenario())


def test_ftps_stor_over_protected_control_and_data_channels(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    served = tmp_path / "served"
    served.mkdir()

    async def scenario() -> None:
        with ftp_server(served, tls=pki) as url:
            assert url.startswith("ftps://")
            trusted = tls_context(pki.ca_cert)
            await upload(url, "log.txt", b"hello\n", timeout=5 * UNIT, ssl_context=trusted)
            assert (served / "log.txt").read_bytes() == b"hello\n"
            with pytest.raises(UploadError, match="CERTIFICATE_VERIFY_FAILED"):
                await upload(url, "other.txt", b"x", timeout=5 * UNIT)
            assert not (served / "other.txt").exists()
            # The server insists on TLS: plain FTP to it is refused, not downgraded.
            with pytest.raises(UploadError):
                await upload(url.replace("ftps://", "ftp://"), "plain.txt", b"x", timeout=5 * UNIT)
            assert not (served / "plain.txt").exists()

    run(scenario())


def test_an_unreadable_ca_file_is_an_upload_error(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate")
    with pytest.raises(UploadError, match="cannot load the CA file"):
        tls_context(bogus)
