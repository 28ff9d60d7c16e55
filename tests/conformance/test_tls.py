"""Guide §5.1: both real peers speak OS³P over TLS (`wss`), authenticated by the
operator's CA, and a station refuses a central its CA did not certify."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from central.config import ListenConfig
from tests.central.support import running_central
from tests.rtu.test_daemon import Daemon
from tests.support.aio import UNIT, eventually, run
from tests.support.tls import make_pki


def refused_certificate(daemon: Daemon) -> Callable[[], bool]:
    return lambda: "CERTIFICATE_VERIFY_FAILED" in daemon.log()


def test_daemon_boots_over_wss_and_refuses_an_unknown_ca(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    other = make_pki(tmp_path / "other", ca_name="Some Other CA")
    listen = ListenConfig(
        host="127.0.0.1", port=0, ping_interval=0, tls_cert=pki.server_cert, tls_key=pki.server_key
    )

    (tmp_path / "central").mkdir()

    async def scenario() -> None:
        async with running_central(tmp_path / "central", listen=listen) as (central, api):
            assert central.ws_url.startswith("wss://")
            await api.add_station("SUBS 001")
            for name, ca in (("trusting", pki.ca_cert), ("distrusting", other.ca_cert)):
                home = tmp_path / name
                home.mkdir()
                daemon = Daemon(home, central.ws_url)
                daemon.config.write_text(
                    daemon.config.read_text().replace(
                        "[central]\n", f'[central]\nca_file = "{ca}"\n'
                    )
                )
                await daemon.start()
                try:
                    if ca == pki.ca_cert:

                        async def booted() -> bool:
                            _, body = await api.request("GET", "/api/stations/SUBS%20001")
                            return body["boot"] is not None and body["boot"]["vendor"] == "OpenGrid"

                        await eventually(booted, timeout=15 * UNIT, what="a boot over wss")
                        assert central.server.connected("SUBS 001")
                    else:
                        await eventually(
                            refused_certificate(daemon),
                            timeout=15 * UNIT,
                            what="a refused certificate",
                        )
                        assert not central.server.connected("SUBS 001")
                finally:
                    assert daemon.process is not None
                    daemon.process.kill()
                    await daemon.process.wait()
                    daemon.notify.close()
                await eventually(lambda: not central.server.connected("SUBS 001"))

    run(scenario(), timeout=60 * UNIT)
