"""`os3p-central` as a real subprocess against a running central: registry commands,
every central-initiated command, history, profiles; and `serve` from a config file."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from central.cli import main, table
from tests.central.support import (
    COMMAND_EXAMPLES,
    TOKEN,
    running_central,
    scripted_station,
)
from tests.support.aio import UNIT, eventually, run

ROOT = Path(__file__).resolve().parents[2]


async def cli(api_url: str, *args: str, token: str = TOKEN) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "central.cli",
        "--api",
        api_url,
        "--token",
        token,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def test_cli_drives_a_running_central(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_central(tmp_path) as (central, _):
            url = central.api_url
            code, out, _ = await cli(url, "add-station", "SUBS200", "--policy", "Pending")
            assert (code, out.strip()) == (0, "added SUBS200 (policy Pending)")
            async with scripted_station(central.ws_url, "SUBS200") as st:
                assert (await st.boot())["status"] == "Pending"

                async def boot_when_triggered(action: str, payload: dict[str, Any]) -> None:
                    if (
                        action == "TriggerMessage"
                        and payload["requestedMessage"] == "BootNotification"
                    ):
                        await st.boot()

                st.on_call = boot_when_triggered
                code, out, _ = await cli(url, "accept", "SUBS200")
                assert code == 0
                assert "TriggerMessage BootNotification Accepted" in out
                await eventually(lambda: central.server.registry.is_accepted("SUBS200"))
                await st.result(
                    "StreetlightStatusNotification",
                    {"contactorId": 3, "status": "On", "timestamp": "2026-11-23T17:00:00Z"},
                )
                await st.result(
                    "MeterValues",
                    {
                        "meterValue": [
                            {
                                "timestamp": "2026-11-23T17:00:00Z",
                                "sampledValue": [{"value": "50.01", "measurand": "Frequency"}],
                            }
                        ]
                    },
                )

                # Every central-initiated command, from concurrent CLI processes.
                results = await asyncio.gather(
                    *(
                        cli(url, "call", "SUBS200", action, json.dumps(request))
                        for action, (request, _) in COMMAND_EXAMPLES.items()
                    )
                )
                for (action, (_, answer)), (code, out, err) in zip(
                    COMMAND_EXAMPLES.items(), results, strict=True
                ):
                    assert code == 0, (action, err)
                    assert json.loads(out) == answer, action
                assert sorted(a for a, _ in st.calls_received) == sorted(
                    ["TriggerMessage", *COMMAND_EXAMPLES]
                )

                code, out, _ = await cli(
                    url,
                    "profile",
                    "SUBS200",
                    "--contactor",
                    "2",
                    "--schedule",
                    "on at sunset+10min, off at 23:00, on at 05:30, off at sunrise",
                )
                assert (code, out.strip()) == (0, "SUBS200: SetStreetlightProfile Accepted")
                action, payload = st.calls_received[-1]
                assert action == "SetStreetlightProfile"
                assert payload["contactorId"] == 2
                assert len(payload["streetlightProfiles"][0]["daySchedule"]) == 2

                st.answers["Reset"] = lambda payload: ("error", "NotSupported")
                code, _, err = await cli(url, "call", "SUBS200", "Reset", "{}")
                assert code == 1
                assert "HTTP 502 callerror (NotSupported)" in err

                code, out, _ = await cli(url, "stations")
                header, row = out.strip().splitlines()
                assert header.split() == [
                    "STATION",
                    "CONN",
                    "LAST",
                    "SEEN",
                    "POLICY",
                    "BOOT",
                    "HB",
                    "FIRMWARE",
                    "LIGHTS",
                    "FAULTS",
                ]
                assert row.split()[:2] == ["SUBS200", "yes"]
                assert "3:On" in row
                assert header.index("POLICY") == row.index("Accepted")  # aligned

            window = ["--from", "2026-11-23T00:00:00Z", "--to", "2026-11-24T00:00:00Z"]
            code, out, _ = await cli(url, "events", "SUBS200", *window)
            assert code == 0
            assert "StreetlightStatusNotification" in out
            code, out, _ = await cli(url, "meter-values", "SUBS200", *window)
            lines = out.strip().splitlines()
            assert lines[1].split()[1:3] == ["Frequency", "50.01"]

            code, _, err = await cli(url, "call", "SUBS200", "Reset", "{}")
            assert (code, "HTTP 409 station_offline" in err) == (1, True)
            code, _, err = await cli(url, "stations", token="not-the-token-at-all")
            assert (code, "HTTP 401" in err) == (1, True)
            code, out, _ = await cli(url, "remove-station", "SUBS200")
            assert (code, out.strip()) == (0, "removed SUBS200")

    run(scenario(), timeout=60 * UNIT)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_serve_runs_from_a_config_file_and_stops_on_sigterm(tmp_path: Path) -> None:
    ws_port, api_port = _free_port(), _free_port()
    config = tmp_path / "central.toml"
    config.write_text(
        f"""
[listen]
host = "127.0.0.1"
port = {ws_port}
[api]
port = {api_port}
token = "{TOKEN}"
[storage]
url = "sqlite://central.db"
[files]
data_dir = "files"
""",
        encoding="utf-8",
    )

    async def scenario() -> None:
        server = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "central.cli",
            "--config",
            str(config),
            "serve",
            stderr=asyncio.subprocess.PIPE,
            cwd=ROOT,
            env={**os.environ, "PYTHONASYNCIODEBUG": "0"},
        )
        assert server.stderr is not None
        try:
            async with asyncio.timeout(20 * UNIT):
                while b"event=api_listening" not in await server.stderr.readline():
                    pass
            code, _out, _ = await cli(
                f"http://127.0.0.1:{api_port}", "add-station", "SUBS201", "--password", "pw"
            )
            assert code == 0
            async with scripted_station(
                f"ws://127.0.0.1:{ws_port}/OS3P", "SUBS201", password="pw"
            ) as st:
                assert (await st.boot())["status"] == "Accepted"
        finally:
            server.terminate()
            rest = await server.stderr.read()
            assert await server.wait() == 0
        assert b"event=stopping" in rest
        assert (tmp_path / "central.db").exists()

    run(scenario())


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["stations"], 2),  # no --api/--token/--config
        (["--config", "/nonexistent.toml", "stations"], 2),
        (["serve"], 2),
    ],
    ids=["no-api", "bad-config", "serve-without-config"],
)
def test_usage_errors_exit_2(
    argv: list[str], code: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OS3P_CENTRAL_API", raising=False)
    monkeypatch.delenv("OS3P_CENTRAL_TOKEN", raising=False)
    assert main(argv) == code
    assert "os3p-central: configuration" in capsys.readouterr().err


def test_cli_profile_dry_run_prints_the_payload(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--api", "http://unused", "--token", "t", "profile", "S", "--contactor", "1"]
    assert main([*argv, "--schedule", "on at 18:00, off at 06:00", "--dry-run"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["streetlightProfiles"][0]["daySchedule"] == [
        {
            "start": {"kind": "Absolute", "time": "18:00:00"},
            "end": {"kind": "Absolute", "time": "06:00:00"},
        }
    ]
    with pytest.raises(SystemExit, match="'off' without an 'on'"):
        main([*argv, "--schedule", "off at 06:00", "--dry-run"])


def test_table_aligns_columns() -> None:
    assert table(["A", "LONGER"], [["xyz", None], ["1", "2"]]).splitlines() == [
        "A    LONGER",
        "xyz  -",
        "1    2",
    ]
