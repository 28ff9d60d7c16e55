"""Shipments and meter-read services over real sockets: the operator API over HTTP, a
scripted station over a real websocket that uploads its MeterValueHistory file with the
RTU's own writer and transport (`rtu.files.content.history_csv`, `rtu.files.upload`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from central.service import CentralService
from rtu.files.content import history_csv
from rtu.files.upload import upload
from rtu.metering.history import HistoryRow
from tests.central.support import Api, ScriptedStation, running_central, scripted_station
from tests.support.aio import UNIT, run

HEADER = "station_id,meter_id,kind,protocol,channel,password,cert_identity,timezone"
# Local midnights in Amsterdam (winter, UTC+1) of 2026-01-15, -16 and -17.
MIDNIGHTS = [datetime(2026, 1, d, 23, tzinfo=UTC) for d in (14, 15, 16)]
PERIOD = {"from": "2026-01-15T00:00:00+01:00", "to": "2026-01-18T00:00:00+01:00"}


def _z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _energy(moment: datetime, consumed: str, delivered: str) -> dict[str, Any]:
    return {
        "timestamp": _z(moment),
        "sampledValue": [
            {"value": consumed, "measurand": "RealEnergyConsumed.Sum", "unit": "Wh",
             "context": "Sample.Clock"},
            {"value": delivered, "measurand": "RealEnergyDelivered.Sum", "unit": "Wh",
             "context": "Sample.Clock"},
        ],
    }  # fmt: skip


async def _post_shipment(central: CentralService, body: bytes, media_type: str) -> tuple[int, Any]:
    import aiohttp

    from tests.central.support import TOKEN

    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": media_type}
    async with (
        aiohttp.ClientSession() as http,
        http.post(central.api_url + "/api/shipments", data=body, headers=headers) as response,
    ):
        return response.status, await response.json()


async def _service(api: Api, station: str, name: str, params: dict[str, Any]) -> tuple[int, Any]:
    return await api.request("POST", f"/api/stations/{station}/services/{name}", params)


# ----------------------------------------------------------------------- shipments
def test_a_shipment_with_one_bad_line_is_rejected_whole_and_that_line_is_reported(
    tmp_path: Path,
) -> None:
    good = [
        "SUBS201,E201,E,DLMS,0,,,Europe/Amsterdam",
        "SUBS201,G201,G,DLMS,1,,,",
        "SUBS202,E202,E,P1,0,s3cret-pass,,",
    ]
    bad = "SUBS203,E203,E,MODBUS,0,,,"  # line 5: no such protocol

    async def scenario() -> None:
        async with running_central(tmp_path) as (central, api):
            data = "\r\n".join([HEADER, *good, bad]).encode()
            status, body = await _post_shipment(central, data, "text/csv")
            assert status == 422, body
            assert body["error"] == "invalid_shipment"
            assert body["problems"] == [
                {"line": 5, "path": None, "field": "protocol", "reason": "DLMS or P1"}
            ]
            # nothing stored: no station, no meter, the gate does not know them
            status, listed = await api.request("GET", "/api/stations")
            assert listed["stations"] == []
            status, _ = await api.request("GET", "/api/stations/SUBS201/meters")
            assert status == 404

            status, body = await _post_shipment(
                central, "\r\n".join([HEADER, *good]).encode(), "text/csv; charset=utf-8"
            )
            assert status == 201, body
            assert (body["stations"], body["meters"]) == (
                ["SUBS201", "SUBS202"],
                ["E201", "G201", "E202"],
            )
            generated = body["generatedPasswords"]
            assert list(generated) == ["SUBS201"]  # SUBS202 brought its own
            # Both passwords are remembered at import: not even the first connection
            # costs a scrypt check (central/storage/passwords.py, the credential cache).
            remembered = await central.server.store.remembered_credentials()
            assert set(remembered) == {"SUBS201", "SUBS202"}

            # the same file again: every id collides, each reported with its line
            status, again = await _post_shipment(
                central, "\r\n".join([HEADER, *good]).encode(), "text/csv"
            )
            assert status == 422
            assert [(p["line"], p["field"]) for p in again["problems"]] == [
                (2, "station_id"),
                (2, "meter_id"),
                (3, "meter_id"),
                (4, "station_id"),
                (4, "meter_id"),
            ]

            # the new stations can connect with their credentials at once
            async with scripted_station(
                central.ws_url, "SUBS201", password=generated["SUBS201"]
            ) as st:
                assert (await st.boot())["status"] == "Accepted"
            status, meters = await api.request("GET", "/api/stations/SUBS201/meters")
            assert [(m["meterId"], m["channel"], m["status"]) for m in meters["meters"]] == [
                ("E201", 0, "NEW_IN_INVENTORY"),
                ("G201", 1, "NEW_IN_INVENTORY"),
            ]

    run(scenario())


def test_shipment_json_problems_and_conflicts_come_in_one_answer(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_central(tmp_path) as (central, api):
            await api.add_station("SUBS301")
            document = {
                "stations": [
                    {"stationId": "SUBS301", "meters": [{"meterId": "E1", "kind": "E",
                                                         "protocol": "DLMS"}]},
                    {"stationId": "SUBS302", "meters": [{"meterId": "G1", "kind": "G",
                                                         "protocol": "DLMS"}]},
                ]
            }  # fmt: skip
            status, body = await _post_shipment(
                central, json.dumps(document).encode(), "application/json"
            )
            assert status == 422
            assert [(p["path"], p["field"]) for p in body["problems"]] == [
                ("/stations/1/meters/0", "channel"),
                ("/stations/0", "stationId"),
            ]
            status, body = await _post_shipment(central, b"<xml/>", "application/xml")
            assert status == 415

    run(scenario())


def test_meters_by_api_and_their_lifecycle(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_central(tmp_path) as (_, api):
            await api.add_station("SUBS401")
            path = "/api/stations/SUBS401/meters"
            status, meter = await api.request(
                "POST", path, {"meterId": "G1", "kind": "G", "protocol": "P1", "channel": 2}
            )
            assert (status, meter["status"], meter["channel"]) == (201, "NEW_IN_INVENTORY", 2)
            status, body = await api.request(
                "POST", path, {"meterId": "G2", "kind": "G", "protocol": "P1", "channel": 2}
            )
            assert (status, body["error"]) == (409, "channel_taken")
            status, body = await api.request("POST", path, {"meterId": "G3", "kind": "G"})
            assert status == 422
            assert {p["field"] for p in body["problems"]} == {"protocol", "channel"}
            for wanted in ("READY_FOR_USE", "IN_USE", "DESTROYED"):
                status, meter = await api.request("PUT", f"{path}/G1/status", {"status": wanted})
                assert (status, meter["status"]) == (200, wanted)
            status, body = await api.request("PUT", f"{path}/G1/status", {"status": "IN_USE"})
            assert (status, body["error"], body["current"]) == (
                409,
                "illegal_transition",
                "DESTROYED",
            )
            status, body = await api.request("PUT", f"{path}/nope/status", {"status": "IN_USE"})
            assert (status, body["error"]) == (404, "unknown_meter")
            status, body = await api.request("PUT", f"{path}/G1/status", {"status": "broken"})
            assert status == 400
            # the destroyed meter gave its channel back
            status, _ = await api.request(
                "POST", path, {"meterId": "G2", "kind": "G", "protocol": "P1", "channel": 2}
            )
            assert status == 201

    run(scenario())


# ----------------------------------------------------------------------- periodic reads
def _history_rows() -> list[HistoryRow]:
    """What the station's metering.db holds for the three days: the middle midnight too."""
    rows = []
    for moment, consumed, delivered in zip(
        MIDNIGHTS, ("1000", "1240", "1500"), ("50", "55", "61"), strict=True
    ):
        rows.append(HistoryRow(moment, "transformer", "RealEnergyConsumed.Sum", consumed, "Wh",
                               None, "Sample.Clock"))  # fmt: skip
        rows.append(HistoryRow(moment, "transformer", "RealEnergyDelivered.Sum", delivered, "Wh",
                               None, "Sample.Clock"))  # fmt: skip
        rows.append(HistoryRow(moment, "transformer", "Voltage.L1N", "230.1", "V", None,
                               "Sample.Clock"))  # fmt: skip
    return rows


def _serve_history(st: ScriptedStation, outcome: str = "Uploaded") -> list[dict[str, Any]]:
    """Answer GetFile like the RTU: Accepted, then Uploading, the upload, Uploaded.
    Or fail: `UploadFailed`, `garbage` (a file that is not the history), `silent`."""
    requests: list[dict[str, Any]] = []
    name = "SUBS501_MeterValueHistory.csv"
    st.answers["GetFile"] = lambda payload: {"status": "Accepted", "fileName": name}

    async def on_call(action: str, payload: dict[str, Any]) -> None:
        if action != "GetFile":
            return
        requests.append(payload)
        request_id = payload["requestId"]
        if outcome == "silent":
            return
        uploading = {"status": "Uploading", "requestId": request_id}
        await st.result("GetFileStatusNotification", uploading)
        if outcome in ("Uploaded", "garbage"):
            content = history_csv(_history_rows()) if outcome == "Uploaded" else b"no,csv\r\n"
            await upload(payload["location"], name, content, timeout=10 * UNIT)
        status = "UploadFailed" if outcome == "UploadFailed" else "Uploaded"
        await st.result("GetFileStatusNotification", {"status": status, "requestId": request_id})

    st.on_call = on_call
    return requests


async def _station_with_gap(api: Api, central: CentralService) -> None:
    status, body = await _post_shipment(
        central,
        json.dumps(
            {
                "stations": [
                    {
                        "stationId": "SUBS501",
                        "password": "s3cret-pass",
                        "timeZone": "Europe/Amsterdam",
                        "meters": [{"meterId": "E501", "kind": "E", "protocol": "DLMS"}],
                    }
                ]
            }
        ).encode(),
        "application/json",
    )
    assert status == 201, body


def test_periodic_reads_come_from_stored_values_with_the_gap_filled_through_get_file(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with running_central(tmp_path) as (central, api):
            await _station_with_gap(api, central)
            async with scripted_station(central.ws_url, "SUBS501", password="s3cret-pass") as st:
                await st.boot()
                # live: the first and the last midnight, and a quarter past the middle one
                await st.result(
                    "MeterValues",
                    {
                        "meterValue": [
                            _energy(MIDNIGHTS[0], "1000", "50"),
                            _energy(MIDNIGHTS[1] + timedelta(minutes=15), "1243", "55"),
                            _energy(MIDNIGHTS[2], "1500", "61"),
                        ]
                    },
                )
                requests = _serve_history(st)
                status, body = await _service(
                    api, "SUBS501", "PeriodicMeterReads", {**PERIOD, "kind": "DAILY"}
                )
                assert status == 200, body
                result = body["result"]
                assert result["timeZone"] == "Europe/Amsterdam"
                assert [r["logTime"] for r in result["reads"]] == [_z(m) for m in MIDNIGHTS]
                assert [
                    {v["measurand"]: v["value"] for v in r["values"]} for r in result["reads"]
                ] == [
                    {"RealEnergyConsumed.Sum": "1000", "RealEnergyDelivered.Sum": "50"},
                    {"RealEnergyConsumed.Sum": "1240", "RealEnergyDelivered.Sum": "55"},
                    {"RealEnergyConsumed.Sum": "1500", "RealEnergyDelivered.Sum": "61"},
                ]
                assert result["gaps"] == []
                fill = result["gapFill"]
                # the whole file imported, once: the two midnights sent live were known
                assert (fill["outcome"], fill["imported"]) == ("imported", 5)
                (request,) = requests
                assert request["fileType"] == "MeterValueHistory"
                assert request["startTime"] == request["stopTime"] == _z(MIDNIGHTS[1])
                assert request["location"].endswith("/")

                # asked again: everything is stored, no GetFile
                status, body = await _service(
                    api, "SUBS501", "PeriodicMeterReads", {**PERIOD, "meterId": "E501"}
                )
                assert (status, body["result"]["gapFill"], len(requests)) == (200, None, 1)
                assert len(body["result"]["reads"]) == 3

                # INTERVAL over the day: 96 quarters, the stored ones read
                status, body = await _service(
                    api,
                    "SUBS501",
                    "PeriodicMeterReads",
                    {"from": _z(MIDNIGHTS[1]), "to": _z(MIDNIGHTS[2]), "kind": "INTERVAL",
                     "fillGaps": False},
                )  # fmt: skip
                assert status == 200
                result = body["result"]
                assert [r["logTime"] for r in result["reads"]] == [
                    _z(MIDNIGHTS[1]),
                    _z(MIDNIGHTS[1] + timedelta(minutes=15)),
                ]
                assert len(result["gaps"]) == 94

    run(scenario())


def test_a_failed_upload_leaves_the_gaps_listed_and_says_why(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_central(tmp_path) as (central, api):
            await _station_with_gap(api, central)
            async with scripted_station(central.ws_url, "SUBS501", password="s3cret-pass") as st:
                await st.boot()
                await st.result("MeterValues", {"meterValue": [_energy(MIDNIGHTS[0], "1", "2")]})
                for outcome, reported in (
                    ("UploadFailed", "upload_failed"),
                    ("garbage", "bad_file"),
                    ("silent", "timeout"),
                ):
                    _serve_history(st, outcome=outcome)
                    status, body = await _service(
                        api, "SUBS501", "PeriodicMeterReads", {**PERIOD, "timeout": 1 * UNIT}
                    )
                    assert status == 200, body
                    result = body["result"]
                    assert result["gapFill"]["outcome"] == reported, result["gapFill"]
                    assert [g["logTime"] for g in result["gaps"]] == [_z(m) for m in MIDNIGHTS[1:]]
                    assert len(result["reads"]) == 1
            # offline: the stored reads, and why nothing was fetched
            status, body = await _service(api, "SUBS501", "PeriodicMeterReads", PERIOD)
            assert (status, body["result"]["gapFill"]["outcome"]) == (200, "offline")
            status, body = await _service(
                api, "SUBS501", "PeriodicMeterReads", {**PERIOD, "kind": "WEEKLY"}
            )
            assert (status, body["error"]) == (400, "bad_params")
            status, body = await _service(
                api, "SUBS501", "PeriodicMeterReads", {**PERIOD, "meterId": "nope"}
            )
            assert (status, body["error"]) == (404, "unknown_meter")

    run(scenario())


# ----------------------------------------------------------------------- other services
def test_actual_meter_reads_return_the_values_sent_after_the_trigger(tmp_path: Path) -> None:
    now = datetime(2026, 11, 23, 17, 0, 7, tzinfo=UTC)

    async def scenario() -> None:
        async with running_central(tmp_path) as (central, api):
            await api.add_station("SUBS601")
            async with scripted_station(central.ws_url, "SUBS601") as st:
                await st.boot()

                async def on_call(action: str, payload: dict[str, Any]) -> None:
                    if payload.get("requestedMessage") != "MeterValues":
                        return
                    for measurand, value in (("Voltage.L1N", "231.0"), ("Current.L1", "4.2")):
                        sample = {"value": value, "measurand": measurand, "context": "Trigger"}
                        await st.result(
                            "MeterValues",
                            {"meterValue": [{"timestamp": _z(now), "sampledValue": [sample]}]},
                        )

                st.on_call = on_call
                status, body = await _service(
                    api, "SUBS601", "ActualMeterReads", {"settle": 0.5 * UNIT}
                )
                assert status == 200, body
                assert [
                    (v["measurand"], v["value"], v["context"]) for v in body["result"]["values"]
                ] == [("Voltage.L1N", "231.0", "Trigger"), ("Current.L1", "4.2", "Trigger")]

                st.on_call = None
                status, body = await _service(
                    api, "SUBS601", "ActualMeterReads", {"timeout": 0.5 * UNIT}
                )
                assert (status, body["error"]) == (504, "no_answer")
                st.answers["TriggerMessage"] = lambda payload: {"status": "Rejected"}
                status, body = await _service(api, "SUBS601", "ActualMeterReads", {})
                assert (status, body["error"]) == (502, "station_refused")
            status, body = await _service(api, "SUBS601", "ActualMeterReads", {})
            assert (status, body["error"]) == (409, "station_offline")

    run(scenario())


def test_synchronize_time_firmware_version_and_find_events(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_central(tmp_path) as (central, api):
            await api.add_station("SUBS701")
            status, body = await _service(api, "SUBS701", "GetFirmwareVersion", {})
            assert (status, body["result"]["firmwareVersion"]) == (200, None)
            async with scripted_station(central.ws_url, "SUBS701") as st:
                await st.boot()
                heartbeats: list[dict[str, Any]] = []

                async def on_call(action: str, payload: dict[str, Any]) -> None:
                    if payload.get("requestedMessage") == "Heartbeat":
                        heartbeats.append(await st.result("Heartbeat", {}))

                st.on_call = on_call
                status, body = await _service(api, "SUBS701", "SynchronizeTime", {})
                assert (status, body["result"]["trigger"]) == (200, "Accepted")
                await st.followups[-1]
                (answer,) = heartbeats
                assert "currentTime" in answer

                status, body = await _service(api, "SUBS701", "GetFirmwareVersion", {})
                assert body["result"]["firmwareVersion"] == "1.2.3"
                # Run directly, not queued: still in the audit trail, outcome included.
                _, audit = await api.request("GET", "/api/audit", station="SUBS701")
                trail = [(e["actor"], e["operations"], e["outcome"]) for e in audit["audit"]]
                assert ("admin", ["SynchronizeTime"], "done") in trail
                assert trail.count(("admin", ["GetFirmwareVersion"], "done")) == 2

                base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
                for minutes, state, code in (
                    (1, "Faulted", "PowerMeterFailure"),
                    (2, "Ok", "NoError"),  # closes it
                    (3, "Faulted", "HighTemperature"),  # stays open
                ):
                    await st.result(
                        "StatusNotification",
                        {"status": state, "errorCode": code,
                         "timestamp": _z(base + timedelta(minutes=minutes))},
                    )  # fmt: skip
                status, body = await _service(
                    api,
                    "SUBS701",
                    "FindEvents",
                    {"categories": ["FaultsOpen", "FaultsClosed", "BootNotification"]},
                )
                assert status == 200, body
                result = body["result"]
                assert [f["errorCode"] for f in result["faults"]["open"]] == ["HighTemperature"]
                assert [f["errorCode"] for f in result["faults"]["closed"]] == ["PowerMeterFailure"]
                assert [e["kind"] for e in result["events"]] == ["BootNotification"]
                status, body = await _service(
                    api, "SUBS701", "FindEvents", {"categories": ["Nonsense"]}
                )
                assert (status, body["error"]) == (400, "bad_params")
            status, body = await _service(api, "SUBS701", "NoSuchService", {})
            assert (status, body["error"]) == (404, "unknown_service")
            status, body = await _service(api, "NOBODY", "FindEvents", {})
            assert status == 404

    run(scenario())


# ----------------------------------------------------------------------- rights
def test_organisations_need_the_rights_the_routes_name(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_central(tmp_path) as (central, admin):
            await admin.add_station("SUBS901")
            status, _ = await admin.request(
                "POST", "/api/stations/SUBS901/meters",
                {"meterId": "E901", "kind": "E", "protocol": "DLMS"},
            )  # fmt: skip
            assert status == 201
            status, _ = await admin.request("POST", "/api/organisations", {"name": "reader"})
            status, body = await admin.request("POST", "/api/organisations/reader/tokens")
            async with Api(central.api_url, token=body["token"]) as reader:
                status, body = await reader.request("GET", "/api/stations/SUBS901/meters")
                assert (status, body["error"]) == (403, "forbidden")
                status, body = await reader.request("POST", "/api/shipments", {"stations": []})
                assert status == 403
                await admin.request("PUT", "/api/organisations/reader/grants/SUBS901/read")
                status, body = await reader.request("GET", "/api/stations/SUBS901/meters")
                assert (status, [m["meterId"] for m in body["meters"]]) == (200, ["E901"])
                status, body = await _service(reader, "SUBS901", "GetFirmwareVersion", {})
                assert status == 200
                status, body = await _service(reader, "SUBS901", "SynchronizeTime", {})
                assert (status, body["missing"]) == (403, ["configure"])
                status, body = await reader.request(
                    "PUT", "/api/stations/SUBS901/meters/E901/status", {"status": "IN_USE"}
                )
                assert (status, body["missing"]) == (403, ["configure"])

    run(scenario())


# ----------------------------------------------------------------------- the queue
def test_the_queue_runs_the_services_when_registered(tmp_path: Path) -> None:
    from central.meterreads import service_registry
    from tests.central.support import make_config
    from tests.central.test_command_service import submit, until_status

    async def scenario() -> None:
        config = make_config(tmp_path)
        async with (
            CentralService(config, services=service_registry()) as central,
            Api(central.api_url) as api,
        ):
            await api.add_station("SUBS951")
            status, body = await api.request(
                "POST",
                "/api/stations/SUBS951/requests",
                {"action": "PeriodicMeterReads", "payload": {"kind": "WEEKLY"}},
            )
            assert (status, body["error"]) == (400, "invalid_payload")  # checked at submission
            async with scripted_station(central.ws_url, "SUBS951") as st:
                await st.boot()
                await st.result("MeterValues", {"meterValue": [_energy(MIDNIGHTS[0], "7", "1")]})
                cid = await submit(
                    api,
                    "SUBS951",
                    {
                        "operations": [
                            {"action": "GetFirmwareVersion", "payload": {}},
                            {"action": "PeriodicMeterReads",
                             "payload": {**PERIOD, "timeZone": "Europe/Amsterdam",
                                         "fillGaps": False}},
                        ]
                    },
                )  # fmt: skip
                done = await until_status(api, cid, "done")
            firmware, periodic = (op["result"] for op in done["operations"])
            assert firmware["firmwareVersion"] == "1.2.3"
            assert [r["logTime"] for r in periodic["reads"]] == [_z(MIDNIGHTS[0])]

    run(scenario(), timeout=60 * UNIT)
