"""The command queue end to end: real central, real HTTP, scripted stations on real
websockets, a real webhook receiver, the database reopened across a restart."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from central.operations import Right, ServiceOperation
from central.queueing import QueuePolicy
from central.service import CentralService
from central.webhooks import WebhookPolicy, verify_signature
from tests.central.support import BOOT, Api, make_config, running_central, scripted_station
from tests.support.aio import UNIT, eventually, run

# Retries only when the test says so: a long backoff, waived when the station connects.
PATIENT = QueuePolicy(backoff_base=timedelta(hours=1))


@contextlib.asynccontextmanager
async def central_with(
    tmp_path: Path,
    *,
    queue: QueuePolicy = PATIENT,
    webhooks: WebhookPolicy = WebhookPolicy(),  # noqa: B008
    **overrides: Any,
) -> AsyncIterator[tuple[CentralService, Api]]:
    config = make_config(tmp_path, **overrides)
    async with CentralService(config, queue=queue, webhooks=webhooks) as central:
        async with Api(central.api_url) as api:
            yield central, api


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def submit(api: Api, station: str, body: dict[str, Any]) -> str:
    status, answer = await api.request("POST", f"/api/stations/{station}/requests", body)
    assert status == 202, answer
    assert answer["status"] == "queued"
    cid: str = answer["correlationId"]
    return cid


async def fetch(api: Api, cid: str) -> dict[str, Any]:
    status, body = await api.request("GET", f"/api/requests/{cid}")
    assert status == 200, body
    result: dict[str, Any] = body
    return result


async def until_status(api: Api, cid: str, *statuses: str) -> dict[str, Any]:
    async def reached() -> bool:
        return (await fetch(api, cid))["status"] in statuses

    await eventually(reached, timeout=10 * UNIT, what=f"{cid} {statuses}")
    return await fetch(api, cid)


async def organisation(api: Api, name: str) -> str:
    status, body = await api.request("POST", "/api/organisations", {"name": name})
    assert status == 201, body
    status, body = await api.request("POST", f"/api/organisations/{name}/tokens")
    assert status == 201, body
    token: str = body["token"]
    return token


def test_priority_order_when_an_offline_station_with_20_commands_connects(
    tmp_path: Path,
) -> None:
    priorities = [4, 9, 0, 4, 7, 7, 2, 9, 4, 1, 0, 5, 9, 3, 4, 6, 8, 2, 7, 4]

    async def scenario() -> None:
        async with central_with(tmp_path) as (central, api):
            await api.add_station("SUBS200")
            cids = []
            for seq, priority in enumerate(priorities):
                body = {
                    "action": "ChangeConfiguration",
                    "payload": {"key": "HeartbeatInterval", "value": str(seq)},
                    "priority": priority,
                }
                cids.append(await submit(api, "SUBS200", body))
            # Each is tried once against the offline station and waits for its retry.
            for cid in cids:
                command = await until_status(api, cid, "queued")
                await eventually(
                    lambda cid=cid: _attempted(api, cid), timeout=10 * UNIT, what="an attempt"
                )
            assert command["operations"][0]["error"]["error"] == "station_offline"
            async with scripted_station(central.ws_url, "SUBS200") as st:
                await st.boot()
                await eventually(lambda: len(st.calls_received) == 20, timeout=10 * UNIT)
                for cid in cids:
                    assert (await until_status(api, cid, "done"))["attempts"] == 2
            received = [int(payload["value"]) for _, payload in st.calls_received]
            expected = sorted(range(20), key=lambda seq: (-priorities[seq], seq))
            assert received == expected
            status, listing = await api.request("GET", "/api/requests", station="SUBS200")
            assert status == 200
            assert [r["correlationId"] for r in listing["requests"]] == cids[::-1]

    run(scenario(), timeout=60 * UNIT)


async def _attempted(api: Api, cid: str) -> bool:
    command = await fetch(api, cid)
    return bool(command["attempts"] == 1 and command["retryAt"] is not None)


def test_a_station_away_longer_than_every_backoff_still_gets_its_command(
    tmp_path: Path,
) -> None:
    """Attempts after the first wait for the station: absence spends none of them."""
    eager = QueuePolicy(max_attempts=2, backoff_base=timedelta(seconds=0.05 * UNIT))

    async def scenario() -> None:
        async with central_with(tmp_path, queue=eager) as (central, api):
            await api.add_station("SUBS209")
            cid = await submit(api, "SUBS209", {"action": "Reset", "payload": {}})
            await eventually(lambda: _attempted(api, cid), timeout=10 * UNIT)
            await asyncio.sleep(1.0 * UNIT)  # twenty backoffs: two attempts would be spent
            waiting = await fetch(api, cid)
            assert (waiting["status"], waiting["attempts"]) == ("queued", 1)
            assert waiting["operations"][0]["error"]["error"] == "station_offline"
            async with scripted_station(central.ws_url, "SUBS209") as st:
                await st.boot()
                done = await until_status(api, cid, "done")
            assert done["attempts"] == 2
            assert [a for a, _ in st.calls_received] == ["Reset"]

    run(scenario(), timeout=60 * UNIT)


def test_a_scheduled_command_survives_a_restart_and_runs_no_earlier_than_its_time(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        schedule = datetime.now(UTC) + timedelta(seconds=3 * UNIT)
        async with central_with(tmp_path) as (_, api):
            await api.add_station("SUBS201")
            cid = await submit(
                api, "SUBS201", {"action": "Reset", "payload": {}, "scheduleTime": iso(schedule)}
            )
        # A new process on the same database, the station connected before the time.
        async with central_with(tmp_path) as (central, api):
            async with scripted_station(central.ws_url, "SUBS201") as st:
                received: list[datetime] = []

                def answer(payload: dict[str, Any]) -> dict[str, Any]:
                    received.append(datetime.now(UTC))
                    return {"status": "Accepted"}

                st.answers["Reset"] = answer
                await st.boot()
                assert (await fetch(api, cid))["status"] == "queued"
                done = await until_status(api, cid, "done")
            assert len(received) == 1
            assert received[0] >= schedule
            assert done["attempts"] == 1
            assert done["scheduleTime"] == iso(schedule)
            assert done["operations"][0]["result"] == {"status": "Accepted"}

    run(scenario(), timeout=60 * UNIT)


def test_bypass_retry_fails_at_once_against_an_offline_station_the_default_waits(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with central_with(tmp_path) as (central, api):
            await api.add_station("SUBS202")
            once = await submit(
                api,
                "SUBS202",
                {
                    "action": "TriggerMessage",
                    "payload": {"requestedMessage": "StatusNotification"},
                    "bypassRetry": True,
                },
            )
            retried = await submit(api, "SUBS202", {"action": "Reset", "payload": {}})
            failed = await until_status(api, once, "failed")
            assert failed["attempts"] == 1
            assert failed["operations"][0]["error"]["error"] == "station_offline"
            await eventually(lambda: _attempted(api, retried), timeout=10 * UNIT)
            async with scripted_station(central.ws_url, "SUBS202") as st:
                await st.boot()
                done = await until_status(api, retried, "done")
            assert done["attempts"] == 2
            assert [action for action, _ in st.calls_received] == ["Reset"]
            assert (await fetch(api, once))["status"] == "failed"  # never sent later

    run(scenario(), timeout=60 * UNIT)


def test_a_bundle_runs_in_order_and_a_retry_runs_only_the_failed_operation(
    tmp_path: Path,
) -> None:
    quick = QueuePolicy(backoff_base=timedelta(seconds=0.2 * UNIT))

    async def scenario() -> None:
        async with central_with(tmp_path, queue=quick) as (central, api):
            await api.add_station("SUBS203")
            async with scripted_station(central.ws_url, "SUBS203") as st:
                await st.boot()
                answers = iter([("error", "InternalError"), {"status": "Accepted"}])
                st.answers["Reset"] = lambda payload: next(answers)
                cid = await submit(
                    api,
                    "SUBS203",
                    {
                        "operations": [
                            {
                                "action": "GetConfiguration",
                                "payload": {"key": ["HeartbeatInterval"]},
                            },
                            {"action": "Reset", "payload": {}},
                            {"action": "TestMVFaultIndicator"},
                        ]
                    },
                )
                done = await until_status(api, cid, "done", "failed")
            assert done["status"] == "done"
            assert done["attempts"] == 2
            assert [(op["action"], op["status"], op["attempts"]) for op in done["operations"]] == [
                ("GetConfiguration", "done", 1),
                ("Reset", "done", 2),
                ("TestMVFaultIndicator", "done", 1),
            ]
            assert done["operations"][1]["result"] == {"status": "Accepted"}
            assert [action for action, _ in st.calls_received] == [
                "GetConfiguration",
                "Reset",
                "TestMVFaultIndicator",
                "Reset",
            ]

    run(scenario(), timeout=60 * UNIT)


def test_a_bundle_operation_refused_for_good_is_not_retried(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with central_with(tmp_path) as (central, api):
            await api.add_station("SUBS204")
            async with scripted_station(central.ws_url, "SUBS204") as st:
                await st.boot()
                st.answers["Reset"] = lambda payload: ("error", "NotSupported")
                cid = await submit(
                    api,
                    "SUBS204",
                    {"operations": [{"action": "Reset"}, {"action": "ResetMVFaultIndicator"}]},
                )
                failed = await until_status(api, cid, "failed")
            assert [op["status"] for op in failed["operations"]] == ["failed", "done"]
            assert failed["operations"][0]["error"]["code"] == "NotSupported"
            assert [a for a, _ in st.calls_received] == ["Reset", "ResetMVFaultIndicator"]

    run(scenario(), timeout=60 * UNIT)


@contextlib.asynccontextmanager
async def webhook_receiver(
    statuses: list[int], signed: list[tuple[str, bytes]] | None = None
) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP receiver answering the given statuses in turn (then 200); keeps each
    POST's signature header and raw body in `signed` when given."""
    received: list[dict[str, Any]] = []
    answers = iter(statuses)

    async def hook(request: web.Request) -> web.Response:
        raw = await request.read()
        if signed is not None:
            signed.append((request.headers.get("X-OS3P-Signature", ""), raw))
        received.append(json.loads(raw))
        return web.Response(status=next(answers, 200))

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/hook", received
    finally:
        await runner.cleanup()


def test_the_webhook_is_called_retried_and_the_result_stays_fetchable(tmp_path: Path) -> None:
    webhooks = WebhookPolicy(backoff_base=timedelta(seconds=0.1 * UNIT))
    signed: list[tuple[str, bytes]] = []

    async def scenario() -> None:
        async with (
            central_with(tmp_path, webhooks=webhooks) as (central, admin),
            webhook_receiver([500], signed) as (url, received),
        ):
            await admin.add_station("SUBS205")
            token = await organisation(admin, "acme")
            status, _ = await admin.request("PUT", "/api/organisations/acme/stations/SUBS205")
            assert status == 204
            async with Api(central.api_url, token) as acme:
                status, body = await acme.request("PUT", "/api/organisation/webhook", {"url": url})
                assert (status, body["webhook"]) == (200, url)
                secret = body["secret"]
                async with scripted_station(central.ws_url, "SUBS205") as st:
                    await st.boot()
                    cid = await submit(
                        acme, "SUBS205", {"action": "GetConfiguration", "payload": {}}
                    )
                    await eventually(lambda: len(received) == 2, timeout=10 * UNIT)
                expected = {"correlationId": cid, "status": "done", "station": "SUBS205"}
                assert received == [expected, expected]  # the 500 was retried
                # Each POST is signed over its exact body, as a receiver would check it:
                # computed here from the header alone, not with the central's own code.
                for header, raw in signed:
                    fields = dict(part.split("=", 1) for part in header.split(","))
                    mac = hmac.new(secret.encode(), f"{fields['t']}.".encode() + raw, "sha256")
                    assert hmac.compare_digest(fields["v1"], mac.hexdigest())
                    assert abs(int(fields["t"]) - time.time()) < 60
                    assert verify_signature(secret, header, raw, datetime.now(UTC))
                    assert not verify_signature("whsec_other", header, raw, datetime.now(UTC))
                    assert not verify_signature(secret, header, raw + b" ", datetime.now(UTC))
                    late = datetime.now(UTC) + timedelta(hours=1)
                    assert not verify_signature(secret, header, raw, late)  # a replay
                for garbage in ("", "t=x,v1=00", f"t={int(time.time())},v1=é", "v1=00"):
                    assert not verify_signature(secret, garbage, b"{}", datetime.now(UTC))
                result = await fetch(acme, cid)
                assert result["organisation"] == "acme"
                assert result["operations"][0]["result"] == COMMAND_ANSWER
                await eventually(
                    lambda: _notified(acme, cid), timeout=10 * UNIT, what="delivery recorded"
                )
                # Another organisation cannot read it; the administrator can.
                other = await organisation(admin, "other")
                async with Api(central.api_url, other) as stranger:
                    status, body = await stranger.request("GET", f"/api/requests/{cid}")
                    assert (status, body["error"]) == (404, "unknown_request")
                assert (await fetch(admin, cid))["status"] == "done"

    run(scenario(), timeout=60 * UNIT)


COMMAND_ANSWER = {
    "configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]
}


async def _notified(api: Api, cid: str) -> bool:
    notification = (await fetch(api, cid))["notification"]
    return bool(notification == {"state": "delivered", "attempts": 2, "error": None})


def test_an_organisation_without_the_right_gets_403_and_nothing_is_sent(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with central_with(tmp_path) as (central, admin):
            await admin.add_station("SUBS206")
            await admin.add_station("SUBS207")
            token = await organisation(admin, "reader")
            status, _ = await admin.request("PUT", "/api/organisations/reader/grants/SUBS206/read")
            assert status == 204
            async with (
                scripted_station(central.ws_url, "SUBS206") as st,
                Api(central.api_url, token) as reader,
            ):
                await st.boot()
                status, body = await reader.request(
                    "POST", "/api/stations/SUBS206/requests", {"action": "Reset"}
                )
                assert status == 403, body
                assert (body["error"], body["missing"], body["station"]) == (
                    "forbidden",
                    ["configure"],
                    "SUBS206",
                )
                # A bundle is refused whole when one operation lacks the right.
                status, body = await reader.request(
                    "POST",
                    "/api/stations/SUBS206/requests",
                    {"operations": [{"action": "GetConfiguration"}, {"action": "UpdateFirmware"}]},
                )
                assert (status, body["missing"]) == (403, ["firmware"])
                status, body = await reader.request(
                    "POST", "/api/stations/SUBS206/commands/OverrideStreetlight", {}
                )
                assert (status, body["missing"]) == (403, ["lights"])
                for path in ("/api/stations/SUBS207", "/api/stations/SUBS207/events"):
                    status, body = await reader.request("GET", path)
                    assert (status, body["error"]) == (403, "forbidden"), path
                # A station that does not exist looks exactly like one it may not see:
                # an organisation cannot probe which ids are in use.
                answers = []
                for station_id in ("SUBS207", "NO-SUCH-STATION"):
                    for method, path in (
                        ("GET", f"/api/stations/{station_id}"),
                        ("POST", f"/api/stations/{station_id}/commands/Reset"),
                        ("POST", f"/api/stations/{station_id}/requests"),
                        ("GET", f"/api/stations/{station_id}/meters"),
                    ):
                        status, body = await reader.request(method, path, {"action": "Reset"})
                        answers.append((status, body["error"], body.get("missing")))
                assert answers[:4] == answers[4:]
                assert {a[0] for a in answers} == {403}
                status, body = await admin.request("GET", "/api/stations/NO-SUCH-STATION")
                assert status == 404  # the administrator is told
                status, body = await reader.request("POST", "/api/stations", {"id": "X"})
                assert status == 403
                status, body = await reader.request("GET", "/api/requests")
                assert (status, body["requests"]) == (200, [])
                await asyncio.sleep(0.2 * UNIT)  # a CALL sent anyway would arrive by now
                assert st.calls_received == []
                # What it holds the right for goes through.
                status, body = await reader.request(
                    "POST", "/api/stations/SUBS206/commands/GetConfiguration", {}
                )
                assert status == 200, body
                assert [a for a, _ in st.calls_received] == ["GetConfiguration"]
                status, body = await reader.request("GET", "/api/stations")
                assert [s["id"] for s in body["stations"]] == ["SUBS206"]
            status, body = await admin.request("GET", "/api/audit", station="SUBS206")
            trail = [(e["actor"], e["operations"], e["outcome"]) for e in body["audit"]]
            assert trail == [
                ("reader", ["GetConfiguration"], "done"),
                ("reader", ["GetConfiguration"], "submitted"),
                ("reader", ["OverrideStreetlight"], "forbidden"),
                ("reader", ["GetConfiguration", "UpdateFirmware"], "forbidden"),
                ("reader", ["Reset"], "forbidden"),
            ]

    run(scenario(), timeout=60 * UNIT)


def test_requests_are_checked_before_they_are_queued(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with central_with(tmp_path) as (_, api):
            await api.add_station("SUBS208")
            path = "/api/stations/SUBS208/requests"
            cases: list[tuple[Any, int, str]] = [
                ({"action": "Fly"}, 400, "unknown_action"),
                ({"action": "OverrideStreetlight", "payload": {}}, 400, "invalid_payload"),
                ({"action": "Reset", "priority": 10}, 400, "invalid_payload"),
                ({"action": "Reset", "priority": "high"}, 400, "bad_request"),
                ({"action": "Reset", "scheduleTime": "tomorrow"}, 400, "bad_request"),
                ({"action": "Reset", "bypassRetry": "yes"}, 400, "bad_request"),
                ({"operations": []}, 400, "bad_request"),
                ({"operations": [{"action": "Reset"}], "action": "Reset"}, 400, "bad_request"),
                ({"action": "Reset", "colour": "red"}, 400, "bad_request"),
            ]
            for body, status, kind in cases:
                got, answer = await api.request("POST", path, body)
                assert (got, answer["error"]) == (status, kind), body
            status, answer = await api.request("POST", "/api/stations/NOPE/requests", {})
            assert status == 404
            status, answer = await api.request("GET", "/api/requests")
            assert answer["requests"] == []

    run(scenario())


def test_an_expired_command_is_never_sent(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with central_with(tmp_path) as (central, api):
            await api.add_station("SUBS209")
            deadline = datetime.now(UTC) + timedelta(seconds=0.5 * UNIT)
            cid = await submit(api, "SUBS209", {"action": "Reset", "deadline": iso(deadline)})
            expired = await until_status(api, cid, "expired")
            assert expired["finishedAt"] is not None
            async with scripted_station(central.ws_url, "SUBS209") as st:
                await st.boot()
                await asyncio.sleep(0.2 * UNIT)
            assert st.calls_received == []

    run(scenario())


def test_a_command_interrupted_by_a_restart_runs_again_unless_it_bypassed_retry(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with central_with(tmp_path) as (central, api):
            await api.add_station("SUBS210")
            await api.add_station("SUBS211")
            async with (
                scripted_station(central.ws_url, "SUBS210") as first,
                scripted_station(central.ws_url, "SUBS211") as second,
            ):
                await first.boot()
                await second.boot()
                first.answers["Reset"] = lambda payload: None  # no answer: still running
                second.answers["TriggerMessage"] = lambda payload: None
                again = await submit(api, "SUBS210", {"action": "Reset"})
                once = await submit(
                    api,
                    "SUBS211",
                    {
                        "action": "TriggerMessage",
                        "payload": {"requestedMessage": "Heartbeat"},
                        "bypassRetry": True,
                    },
                )
                await eventually(lambda: len(first.calls_received + second.calls_received) == 2)
                assert (await fetch(api, again))["status"] == "running"
                assert (await fetch(api, once))["status"] == "running"
                await central.stop()  # the central goes away with both calls out
        async with central_with(tmp_path) as (central, api):
            failed = await until_status(api, once, "failed")
            assert failed["operations"][0]["error"]["error"] == "interrupted"
            async with scripted_station(central.ws_url, "SUBS210") as first:
                await first.boot()
                done = await until_status(api, again, "done")
            # Interrupted, then run on its return: no attempt spent while it was away.
            assert done["attempts"] == 2
            assert [a for a, _ in first.calls_received] == ["Reset"]

    run(scenario(), timeout=60 * UNIT)


def test_the_global_limit_keeps_one_command_in_flight_over_all_stations(
    tmp_path: Path,
) -> None:
    one_at_a_time = QueuePolicy(max_in_flight=1, backoff_base=timedelta(hours=1))

    async def scenario() -> None:
        async with central_with(tmp_path, queue=one_at_a_time, command_timeout=1.0 * UNIT) as (
            central,
            api,
        ):
            for sid in ("SUBS212", "SUBS213"):
                await api.add_station(sid)
            async with (
                scripted_station(central.ws_url, "SUBS212") as first,
                scripted_station(central.ws_url, "SUBS213") as second,
            ):
                await first.boot()
                await second.boot()
                first.answers["Reset"] = lambda payload: None  # holds the one slot
                held = await submit(api, "SUBS212", {"action": "Reset"})
                await eventually(lambda: len(first.calls_received) == 1)
                waiting = await submit(api, "SUBS213", {"action": "Reset"})
                await asyncio.sleep(0.5 * UNIT)
                assert second.calls_received == []  # the slot is taken
                assert (await fetch(api, waiting))["status"] == "queued"
                done = await until_status(api, waiting, "done")  # after the timeout
                timed_out = await fetch(api, held)
            assert timed_out["operations"][0]["error"]["error"] == "timeout"
            assert timed_out["status"] == "queued"  # retried later (backoff)
            assert done["attempts"] == 1

    run(scenario(), timeout=60 * UNIT)


async def _link_state(central: Any, station_id: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"connected": central.connected(station_id), "tag": params["tag"]}


def _needs_tag(params: dict[str, Any]) -> None:
    if not isinstance(params.get("tag"), str):
        raise ValueError("tag: a string")  # noqa: TRY004 (ServiceOperation.check raises ValueError)


def test_a_registered_service_runs_in_a_bundle_beside_os3p_actions(tmp_path: Path) -> None:
    services = {"LinkState": ServiceOperation(Right.READ, _link_state, _needs_tag)}

    async def scenario() -> None:
        config = make_config(tmp_path)
        async with (
            CentralService(config, services=services) as central,
            Api(central.api_url) as api,
        ):
            await api.add_station("SUBS214")
            status, body = await api.request(
                "POST", "/api/stations/SUBS214/requests", {"action": "LinkState", "payload": {}}
            )
            assert (status, body["error"], body["operation"]) == (400, "invalid_payload", 0)
            async with scripted_station(central.ws_url, "SUBS214") as st:
                await st.boot()
                cid = await submit(
                    api,
                    "SUBS214",
                    {
                        "operations": [
                            {"action": "LinkState", "payload": {"tag": "before"}},
                            {"action": "Reset"},
                        ]
                    },
                )
                done = await until_status(api, cid, "done")
            assert [op["result"] for op in done["operations"]] == [
                {"connected": True, "tag": "before"},
                {"status": "Accepted"},
            ]
            assert [a for a, _ in st.calls_received] == ["Reset"]

    run(scenario(), timeout=60 * UNIT)


def test_a_webhook_that_keeps_failing_is_given_up_and_the_result_stays(tmp_path: Path) -> None:
    webhooks = WebhookPolicy(max_attempts=3, backoff_base=timedelta(seconds=0.05 * UNIT))

    async def scenario() -> None:
        async with (
            central_with(tmp_path, webhooks=webhooks) as (central, admin),
            webhook_receiver([500, 503, 500, 500]) as (url, received),
        ):
            await admin.add_station("SUBS215")
            token = await organisation(admin, "acme")
            await admin.request("PUT", "/api/organisations/acme/stations/SUBS215")
            async with Api(central.api_url, token) as acme:
                await acme.request("PUT", "/api/organisation/webhook", {"url": url})
                # Offline and bypassRetry: failed at once, which is a result too.
                cid = await submit(acme, "SUBS215", {"action": "Reset", "bypassRetry": True})

                async def given_up() -> bool:
                    notification = (await fetch(acme, cid))["notification"]
                    return bool(notification and notification["state"] == "failed")

                await eventually(given_up, timeout=10 * UNIT, what="delivery given up")
                result = await fetch(acme, cid)
            assert len(received) == 3
            assert result["status"] == "failed"
            assert result["notification"] == {"state": "failed", "attempts": 3, "error": "HTTP 500"}

    run(scenario(), timeout=60 * UNIT)


def test_the_meter_read_services_are_queueable_by_default(tmp_path: Path) -> None:
    """`os3p-central serve` (CentralService without `services=`) offers the meter-read
    services to requests and bundles, next to the OS³P actions."""

    async def scenario() -> None:
        async with running_central(tmp_path) as (central, api):
            await api.add_station("SUBS260")
            async with scripted_station(central.ws_url, "SUBS260") as st:
                await st.boot()
                cid = await submit(
                    api,
                    "SUBS260",
                    {"operations": [{"action": "GetFirmwareVersion", "payload": {}}]},
                )
                done = await until_status(api, cid, "done")
                assert done["operations"][0]["result"]["firmwareVersion"] == BOOT["firmwareVersion"]

    run(scenario())
