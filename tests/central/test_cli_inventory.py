"""`os3p-central import-shipment`, `meters`, `add-meter`, `meter-status`, `read` as real
subprocesses against a running central."""

from __future__ import annotations

from pathlib import Path

from tests.central.support import running_central, scripted_station
from tests.central.test_cli import cli
from tests.support.aio import run

HEADER = "station_id,meter_id,kind,protocol,channel,password,cert_identity,timezone"


def test_cli_imports_a_shipment_and_reads_meters(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(f"{HEADER}\nSUBS801,E801,E,DLMS,0,,,\nSUBS801,G801,X,DLMS,1,,,\n")
    good = tmp_path / "delivery.txt"
    good.write_text(f"{HEADER}\nSUBS801,E801,E,DLMS,0,s3cret-pass,,\nSUBS802,E802,E,P1,0,,,\n")

    async def scenario() -> None:
        async with running_central(tmp_path) as (central, _):
            url = central.api_url
            code, _, err = await cli(url, "import-shipment", str(bad))
            assert code == 1
            assert "line 3: kind: E or G" in err
            code, _, err = await cli(url, "import-shipment", str(good))
            assert code == 1
            assert "--type" in err
            code, out, _ = await cli(url, "import-shipment", str(good), "--type", "csv")
            assert code == 0, out
            assert "2 stations, 2 meters" in out
            assert "SUBS802: generated password " in out

            code, out, _ = await cli(url, "add-meter", "SUBS801", "G801", "--kind", "G",
                                     "--protocol", "DLMS", "--channel", "1")  # fmt: skip
            assert (code, out.strip()) == (0, "added meter G801 to SUBS801 (NEW_IN_INVENTORY)")
            code, out, _ = await cli(url, "meter-status", "SUBS801", "G801", "READY_FOR_USE")
            assert (code, out.strip()) == (0, "G801: READY_FOR_USE")
            code, out, _ = await cli(url, "meters", "SUBS801")
            lines = out.splitlines()
            assert lines[0].split() == ["METER", "KIND", "PROTOCOL", "CHANNEL", "STATUS", "SINCE"]
            assert [line.split()[:5] for line in lines[1:]] == [
                ["E801", "E", "DLMS", "0", "NEW_IN_INVENTORY"],
                ["G801", "G", "DLMS", "1", "READY_FOR_USE"],
            ]

            async with scripted_station(central.ws_url, "SUBS801", password="s3cret-pass") as st:
                await st.boot()
                await st.result(
                    "MeterValues",
                    {
                        "meterValue": [
                            {
                                "timestamp": "2026-11-02T00:00:00Z",
                                "sampledValue": [
                                    {"value": "4711", "measurand": "RealEnergyConsumed.Sum",
                                     "unit": "Wh", "context": "Sample.Clock"},
                                ],
                            }
                        ]
                    },
                )  # fmt: skip
                code, out, err = await cli(url, "read", "SUBS801", "periodic",
                                           "--from", "2026-11-01T00:00:00Z",
                                           "--to", "2026-11-03T00:00:00Z", "--no-fill")  # fmt: skip
                assert code == 0, err
                assert "2026-11-02T00:00:00Z  RealEnergyConsumed.Sum  -         4711   Wh" in out
                assert "time zone UTC; 2 gap(s) left" in out
                code, out, _ = await cli(url, "read", "SUBS801", "firmware")
                assert '"firmwareVersion": "1.2.3"' in out

    run(scenario())
