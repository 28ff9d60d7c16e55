"""`os3p-central` queue and organisation commands as a real subprocess against a running
central and a scripted station."""

from __future__ import annotations

import json
from pathlib import Path

from tests.central.support import running_central, scripted_station
from tests.central.test_cli import cli
from tests.support.aio import UNIT, eventually, run


def test_cli_manages_organisations_and_queues_requests(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_central(tmp_path) as (central, api):
            url = central.api_url
            await api.add_station("SUBS300")
            await api.add_station("SUBS301")
            assert (await cli(url, "org", "add", "acme"))[:2] == (0, "added organisation acme\n")
            code, token, _ = await cli(url, "org", "token", "acme")
            assert code == 0
            token = token.strip()
            assert (await cli(url, "org", "own", "acme", "SUBS300"))[0] == 0
            assert (await cli(url, "org", "grant", "acme", "SUBS301", "read"))[0] == 0
            code, out, _ = await cli(url, "org", "list")
            assert code == 0
            assert "acme" in out
            assert "SUBS300" in out
            assert "SUBS301:read" in out

            async with scripted_station(central.ws_url, "SUBS300") as st:
                await st.boot()
                code, out, err = await cli(url, "submit", "SUBS300", "Reset", token=token)
                assert code == 0, err
                cid = out.strip()
                await eventually(lambda: [a for a, _ in st.calls_received] == ["Reset"])
            code, out, _ = await cli(url, "request", cid, token=token)
            assert code == 0
            assert json.loads(out)["operations"][0]["result"] == {"status": "Accepted"}
            code, out, _ = await cli(url, "requests", "--station", "SUBS300")
            assert code == 0
            assert cid in out
            assert "acme" in out
            assert "Reset" in out

            # Granted read only on SUBS301: configure is refused, exit code 1.
            code, _, err = await cli(url, "submit", "SUBS301", "Reset", token=token)
            assert code == 1
            assert "HTTP 403 forbidden" in err
            code, _, err = await cli(url, "org", "add", "evil", token=token)
            assert (code, "HTTP 403" in err) == (1, True)
            code, out, _ = await cli(url, "audit", "--station", "SUBS301")
            assert code == 0
            assert "forbidden" in out
            assert "missing configure" in out

    run(scenario(), timeout=60 * UNIT)
