"""The central's OS³P endpoint end to end over real sockets: boot policy (§3.1), 404/401,
subprotocols, client certificates, duplicates, replacement, bad frames, restart."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import ssl
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from central.config import ListenConfig
from central.server import cert_matches, cert_names
from central.storage import BackendError
from tests.central.support import (
    BOOT,
    ScriptedStation,
    basic_auth,
    running_central,
    scripted_station,
)
from tests.support.aio import UNIT, eventually, run
from tests.support.tls import make_pki

LIGHT = {"contactorId": 1, "status": "On", "timestamp": "2026-11-23T17:10:00Z"}


def test_boot_accepted_then_messages_are_stored_and_shown(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_central(tmp_path) as (central, api):
            await api.add_station("SUBS001", password="s3cret-pass", heartbeatInterval=120)
            async with scripted_station(central.ws_url, "SUBS001", password="s3cret-pass") as st:
                boot = await st.boot()
                assert boot["status"] == "Accepted"
                assert boot["interval"] == 120
                assert "currentTime" in (await st.result("Heartbeat", {}))
                await st.result("StreetlightStatusNotification", LIGHT)
                await st.result(
                    "StreetlightModeStatusNotification",
                    {"mode": "Schedule", "timestamp": "2026-11-23T17:10:00Z"},
                )
                await st.result(
                    "StatusNotification",
                    {
                        "status": "Faulted",
                        "errorCode": "HighTemperature",
                        "timestamp": "2026-11-23T17:11:00Z",
                    },
                )
                await st.result("FirmwareStatusNotification", {"status": "Downloading"})
                await st.result("GetFileStatusNotification", {"status": "Uploading"})
                await st.result(
                    "MeterValues",
                    {
                        "meterValue": [
                            {
                                "timestamp": "2026-11-23T17:00:00Z",
                                "sampledValue": [
                                    {"value": "231.5", "measurand": "Voltage.L1N", "unit": "V"}
                                ],
                            }
                        ]
                    },
                )
                status, body = await api.request("GET", "/api/stations")
                assert status == 200
                (station,) = body["stations"]
                assert station["connected"] is True
                assert station["lastSeen"] is not None
                assert station["bootStatus"] == "Accepted"
                assert station["firmwareVersion"] == "1.2.3"
                assert station["lights"]["1"]["status"] == "On"
                assert station["modes"]["1"]["mode"] == "Schedule"
                assert [f["errorCode"] for f in station["openFaults"]] == ["HighTemperature"]
                status, body = await api.request(
                    "GET",
                    "/api/stations/SUBS001/meter-values",
                    **{"from": "2026-11-23T00:00:00Z", "to": "2026-11-24T00:00:00Z"},
                )
                assert [(s["measurand"], s["value"]) for s in body["meterValues"]] == [
                    ("Voltage.L1N", "231.5")
                ]
                status, body = await api.request(
                    "GET",
                    "/api/stations/SUBS001/events",
                    **{"from": "2026-11-01T00:00:00Z", "to": "2027-01-01T00:00:00Z"},
                )
                kinds = {e["kind"] for e in body["events"]}
                assert kinds == {
                    "BootNotification",
                    "StreetlightStatusNotification",
                    "StreetlightModeStatusNotification",
                    "StatusNotification",
                    "FirmwareStatusNotification",
                    "GetFileStatusNotification",
                }
            await eventually(lambda: not central.server.connected("SUBS001"))

    run(scenario())


def test_pending_station_is_configured_then_accepted_by_the_operator(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_central(tmp_path) as (central, api):
            await api.add_station("SUBS002", policy="Pending", heartbeatInterval=60)
            async with scripted_station(central.ws_url, "SUBS002") as st:
                assert (await st.boot())["status"] == "Pending"
                frame = await st.call("Heartbeat", {})
                assert frame[:3] == [4, frame[1], "SecurityError"]
                # While Pending the operator may configure the station (§3.1).
                status, body = await api.request(
                    "POST",
                    "/api/stations/SUBS002/commands/ChangeConfiguration",
                    {"key": "HeartbeatInterval", "value": "60"},
                )
                assert (status, body["response"]) == (200, {"status": "Accepted"})

                rebooted: list[dict[str, Any]] = []

                async def boot_when_triggered(action: str, payload: dict[str, Any]) -> None:
                    if action == "TriggerMessage":
                        assert payload == {"requestedMessage": "BootNotification"}
                        rebooted.append(await st.boot())

                st.on_call = boot_when_triggered
                status, body = await api.request("POST", "/api/stations/SUBS002/accept", {})
                assert status == 200
                assert body["trigger"] == {"status": "Accepted"}
                await eventually(lambda: bool(rebooted), what="the triggered boot")
                assert rebooted[0]["status"] == "Accepted"
                assert rebooted[0]["interval"] == 60
                assert (await st.call("Heartbeat", {}))[0] == 3
                # Sent outside the queue, so audited by the route itself.
                status, body = await api.request("GET", "/api/audit", station="SUBS002")
                accepted = [e for e in body["audit"] if "Accept" in e["operations"]]
                assert [(e["operations"], e["outcome"]) for e in accepted] == [
                    (["Accept", "TriggerMessage"], "done")
                ]

    run(scenario())


def test_triggered_message_is_admitted_once_while_pending(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_central(tmp_path) as (central, api):
            await api.add_station("SUBS003", policy="Pending")
            async with scripted_station(central.ws_url, "SUBS003") as st:
                await st.boot()
                status, _ = await api.request(
                    "POST",
                    "/api/stations/SUBS003/commands/TriggerMessage",
                    {"requestedMessage": "Heartbeat"},
                )
                assert status == 200
                assert (await st.call("Heartbeat", {}))[0] == 3
                assert (await st.call("Heartbeat", {}))[2] == "SecurityError"

    run(scenario())


def test_rejected_station_is_answered_then_disconnected(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_central(tmp_path) as (central, api):
            await api.add_station("SUBS004", policy="Rejected", heartbeatInterval=900)
            async with scripted_station(central.ws_url, "SUBS004") as st:
                boot = await st.boot()
                assert (boot["status"], boot["interval"]) == ("Rejected", 900)
                async with asyncio.timeout(5 * UNIT):
                    await st.websocket.wait_closed()
                assert st.websocket.close_code == 1000

    run(scenario())


def test_unknown_station_404_and_wrong_password_401(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with running_central(tmp_path) as (central, api):
            await api.add_station("SUBS005", password="right-password")
            for station_id, headers, expected in [
                ("NOPE", {}, 404),
                ("SUBS005", {}, 401),
                ("SUBS005", basic_auth("SUBS005", "wrong-password"), 401),
            ]:
                with pytest.raises(InvalidStatus) as refused:
                    await connect(
                        f"{central.ws_url}/{station_id}",
                        subprotocols=["OS3P1.0"],  # type: ignore[list-item]
                        additional_headers=headers,
                    )
                assert refused.value.response.status_code == expected
            async with scripted_station(central.ws_url, "SUBS005", password="right-password") as st:
                assert (await st.boot())["status"] == "Accepted"

    with caplog.at_level(logging.INFO, logger="central"):
        run(scenario())
    lines = [r.getMessage() for r in caplog.records]
    assert "event=refused_unknown station=NOPE http=404" in lines
    assert lines.count("event=refused_credentials station=SUBS005 http=401") == 2
    assert any(line.startswith("event=connected station=SUBS005") for line in lines)


def test_subprotocol_mismatch_is_closed(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_central(tmp_path) as (central, api):
            await api.add_station("SUBS006")
            async with connect(
                f"{central.ws_url}/SUBS006",
                subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            ) as websocket:
                assert websocket.subprotocol is None
                await asyncio.wait_for(websocket.wait_closed(), 5 * UNIT)
                assert websocket.close_code == 1002
            assert not central.server.connected("SUBS006")

    run(scenario())


def test_duplicate_streetlight_status_is_stored_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_central(tmp_path) as (central, api):
            await api.add_station("SUBS007")
            async with scripted_station(central.ws_url, "SUBS007") as st:
                await st.boot()
                for _ in range(3):  # the outbox re-sends until it gets the answer
                    assert (await st.call("StreetlightStatusNotification", LIGHT))[0] == 3
            _, body = await api.request(
                "GET",
                "/api/stations/SUBS007/events",
                kind="StreetlightStatusNotification",
                **{"from": "2026-11-23T00:00:00Z", "to": "2026-11-24T00:00:00Z"},
            )
            assert len(body["events"]) == 1

    run(scenario())


def test_a_new_connection_replaces_the_old_one(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_central(tmp_path) as (central, api):
            await api.add_station("SUBS008")
            async with scripted_station(central.ws_url, "SUBS008") as old:
                await old.boot()
                async with scripted_station(central.ws_url, "SUBS008") as new:
                    async with asyncio.timeout(5 * UNIT):
                        await old.websocket.wait_closed()
                    status, body = await api.request(
                        "POST", "/api/stations/SUBS008/commands/Reset", {}
                    )
                    assert (status, body["response"]) == (200, {"status": "Accepted"})
                    assert [a for a, _ in new.calls_received] == ["Reset"]
                    assert old.calls_received == []
                    # No boot needed on reconnect (§3.3).
                    assert (await new.call("Heartbeat", {}))[0] == 3
                    _, listed = await api.request("GET", "/api/stations/SUBS008")
                    assert listed["connected"] is True
            await eventually(lambda: not central.server.connected("SUBS008"))
            _, listed = await api.request("GET", "/api/stations/SUBS008")
            assert listed["connected"] is False

    run(scenario())


@pytest.mark.parametrize(
    ("frame", "answer"),
    [
        ('[2,"m1","Heartbeat",{"bogus":true}]', [4, "m1", "FormationViolation"]),
        ('[2,"m2","StatusNotification",{"status":"Ok"}]', [4, "m2", "ProtocolError"]),
        (
            '[2,"m3","StreetlightStatusNotification",'
            '{"contactorId":"1","status":"On","timestamp":"2026-11-23T17:00:00Z"}]',
            [4, "m3", "TypeConstraintViolation"],
        ),
        (
            '[2,"m4","StreetlightStatusNotification",'
            '{"contactorId":9,"status":"On","timestamp":"2026-11-23T17:00:00Z"}]',
            [4, "m4", "PropertyConstraintViolation"],
        ),
        ('[2,"m5","Reset",{}]', [4, "m5", "NotImplemented"]),
        ('[2,"m6","NoSuchAction",{}]', [4, "m6", "NotImplemented"]),
        ('[2,"m7","Heartbeat"]', [4, "m7", "FormationViolation"]),
    ],
    ids=[
        "extra-field",
        "missing-field",
        "wrong-type",
        "out-of-range",
        "central-action",
        "unknown",
        "short",
    ],
)
def test_malformed_frames_are_answered_per_the_rules(
    tmp_path: Path, frame: str, answer: list[Any]
) -> None:
    async def scenario() -> None:
        async with running_central(tmp_path) as (central, api):
            await api.add_station("SUBS009")
            async with scripted_station(central.ws_url, "SUBS009") as st:
                await st.boot()
                await st.websocket.send("this is not json")  # no id: ignored (§4.4)
                await st.websocket.send('[7,"x","Heartbeat",{}]')  # unknown type: ignored
                await st.websocket.send(frame)
                await eventually(lambda: bool(st.ignored), what="an answer")
                assert st.ignored[0][:3] == answer
                assert len(st.ignored) == 1
                assert (await st.call("Heartbeat", {}))[0] == 3  # the session carries on
            _, metrics = await api.request("GET", "/metrics")
            assert f'os3p_callerrors_sent_total{{code="{answer[2]}"}} 1' in metrics

    run(scenario())


def test_restart_with_stations_connected_loses_nothing(tmp_path: Path) -> None:
    """Stations reconnect by themselves (as the RTU's link does) to the same port."""

    async def station_loop(
        url_of: dict[str, str], station_id: str, stations: list[ScriptedStation]
    ) -> None:
        while True:
            with contextlib.suppress(OSError, InvalidStatus, ConnectionClosed):
                async with scripted_station(
                    url_of["ws"], station_id, password="pw-" + station_id
                ) as st:
                    stations.append(st)
                    await st.websocket.wait_closed()
            await asyncio.sleep(0.05)

    async def scenario() -> None:
        ids = ["R1", "R2", "R3"]
        url_of: dict[str, str] = {}
        sessions: dict[str, list[ScriptedStation]] = {i: [] for i in ids}
        async with running_central(tmp_path) as (central, api):
            ws_port, api_port = central.server.port, central.api_port
            for sid in ids:
                await api.add_station(sid, password="pw-" + sid)
            url_of["ws"] = central.ws_url
            async with asyncio.TaskGroup() as tasks:
                loops = [tasks.create_task(station_loop(url_of, sid, sessions[sid])) for sid in ids]
                await eventually(lambda: all(sessions.values()), what="first connections")
                for sid in ids:
                    st = sessions[sid][0]
                    await st.boot()
                    await st.result("StreetlightStatusNotification", {**LIGHT, "contactorId": 2})
                await central.stop()
                await eventually(
                    lambda: all(s[0].websocket.close_code is not None for s in sessions.values())
                )
                listen = ListenConfig(host="127.0.0.1", port=ws_port, ping_interval=0)
                async with running_central(tmp_path, listen=listen, api_port=api_port) as (
                    again,
                    api2,
                ):
                    await eventually(
                        lambda: all(again.server.connected(sid) for sid in ids),
                        timeout=10 * UNIT,
                        what="all stations reconnected",
                    )
                    for sid in ids:
                        st = sessions[sid][-1]
                        assert len(sessions[sid]) == 2
                        # Accepted before the restart: no new boot needed (§3.3).
                        assert (await st.call("Heartbeat", {}))[0] == 3
                        _, body = await api2.request("GET", f"/api/stations/{sid}")
                        assert body["connected"] is True
                        assert body["lights"]["2"]["status"] == "On"
                        assert body["firmwareVersion"] == BOOT["firmwareVersion"]
                    for loop in loops:
                        loop.cancel()

    run(scenario())


def test_client_certificate_identity(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki", client_cn="SUBS010")
    listen = ListenConfig(
        host="127.0.0.1",
        port=0,
        ping_interval=0,
        tls_cert=pki.server_cert,
        tls_key=pki.server_key,
        tls_client_ca=pki.ca_cert,
    )

    async def scenario() -> None:
        async with running_central(tmp_path, listen=listen) as (central, api):
            der = ssl.PEM_cert_to_DER_cert(pki.client_cert.read_text(encoding="ascii"))
            fingerprint = hashlib.sha256(der).hexdigest()
            await api.add_station("SUBS010", certIdentity="CN=SUBS010")
            await api.add_station("SUBS011", certIdentity="CN=SUBS011")
            await api.add_station("SUBS012", certIdentity=f"sha256:{fingerprint}")
            with_cert = pki.client_context(with_client_cert=True)
            for station_id in ("SUBS010", "SUBS012"):
                async with scripted_station(central.ws_url, station_id, ssl=with_cert) as st:
                    assert (await st.boot())["status"] == "Accepted"
            for station_id, context in [
                ("SUBS010", pki.client_context()),  # no certificate
                ("SUBS011", with_cert),  # somebody else's certificate
            ]:
                async with scripted_station(central.ws_url, station_id, ssl=context) as st:
                    async with asyncio.timeout(5 * UNIT):
                        await st.websocket.wait_closed()
                    assert st.websocket.close_code == 1008

    run(scenario())


@pytest.mark.parametrize(
    ("identity", "matches"),
    [
        ("CN=SUBS001", True),
        ("CN=subs001.grid.example", False),
        ("DNS=subs001.grid.example", True),
        ("DNS=SUBS001", False),
        ("SUBS001", True),
        ("subs001.grid.example", True),
        (f"sha256:{hashlib.sha256(b'der').hexdigest()}", True),
        (f"sha256:{hashlib.sha256(b'der').hexdigest().upper()}", True),
        (f"sha256:{hashlib.sha256(b'other').hexdigest()}", False),
        ("CN=SUBS002", False),
    ],
)
def test_cert_identity_forms(identity: str, matches: bool) -> None:
    peercert = {
        "subject": ((("commonName", "SUBS001"),),),
        "subjectAltName": (("DNS", "subs001.grid.example"),),
    }
    assert cert_matches(identity, peercert, b"der") is matches
    assert cert_matches(identity, {}, None) is False


def test_cert_names_reads_cn_and_dns_names() -> None:
    peercert = {
        "subject": ((("countryName", "NL"),), (("commonName", "SUBS001"),)),
        "subjectAltName": (("DNS", "subs001.grid.example"), ("IP Address", "10.0.0.1")),
    }
    assert cert_names(peercert) == {"SUBS001", "subs001.grid.example"}
    assert cert_names(None) == set()
    assert cert_names({}) == set()


def test_a_failed_commit_is_not_answered_and_the_resend_is_stored_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_central(tmp_path) as (central, api):
            await api.add_station("SUBS012")
            store = central.server.store
            real = store.record_streetlight_status
            calls = 0

            async def failing(*args: Any, **kwargs: Any) -> bool:
                nonlocal calls
                calls += 1
                if calls == 1:
                    raise BackendError("record_streetlight_status", "disk full")
                return await real(*args, **kwargs)

            store.record_streetlight_status = failing  # type: ignore[method-assign]
            async with scripted_station(central.ws_url, "SUBS012") as st:
                await st.boot()
                frame = await st.call("StreetlightStatusNotification", LIGHT)
                assert frame[2] == "InternalError"  # not stored: the outbox keeps it
                assert (await st.call("StreetlightStatusNotification", LIGHT))[0] == 3
                assert (await st.call("StreetlightStatusNotification", LIGHT))[0] == 3
            _, body = await api.request(
                "GET",
                "/api/stations/SUBS012/events",
                kind="StreetlightStatusNotification",
                **{"from": "2026-11-23T00:00:00Z", "to": "2026-11-24T00:00:00Z"},
            )
            assert len(body["events"]) == 1

    run(scenario())


def test_heartbeats_move_last_seen_and_are_flushed_at_stop(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_central(tmp_path) as (central, api):
            await api.add_station("SUBS013")
            async with scripted_station(central.ws_url, "SUBS013") as st:
                await st.boot()
                _, before = await api.request("GET", "/api/stations/SUBS013")
                await asyncio.sleep(0.01)
                await st.result("Heartbeat", {})
                _, after = await api.request("GET", "/api/stations/SUBS013")
                assert after["lastSeen"] > before["lastSeen"]
            seen = after["lastSeen"]
        async with running_central(tmp_path) as (_, api):
            _, again = await api.request("GET", "/api/stations/SUBS013")
            assert again["lastSeen"] == seen
            assert again["connected"] is False

    run(scenario())


def test_a_half_open_old_connection_does_not_delay_the_new_one(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_central(tmp_path) as (central, api):
            await api.add_station("SUBS014")
            async with scripted_station(central.ws_url, "SUBS014") as old:
                await old.boot()
                # The old socket stops reading: it will never answer the close frame.
                old.websocket.transport.pause_reading()
                async with scripted_station(central.ws_url, "SUBS014") as new:
                    async with asyncio.timeout(2 * UNIT):  # well under the close timeout
                        assert (await new.call("Heartbeat", {}))[0] == 3
                        status, _ = await api.request(
                            "POST", "/api/stations/SUBS014/commands/Reset", {}
                        )
                    assert status == 200
                    assert [a for a, _ in new.calls_received] == ["Reset"]
                old.websocket.transport.resume_reading()

    run(scenario())
