"""Frames per second: decode + validate + dispatch + encode, OS³P vs the `ocpp` package.

For each message the central side receives a CALL as text and produces the
CALLRESULT text, the whole server-side round of one message:

- ours: `Session.receive` (frame decode, schema validation, typed request) →
  `Router.dispatch` (the handler) → `Session.reply` (response validation,
  encode) → `data_to_send`;
- ocpp 1.6: what `ocpp.charge_point.ChargePoint._handle_call` does, with
  synchronous validation (`ocpp.messages.ASYNC_VALIDATION = False`): `unpack`,
  validate, camelCase→snake_case, handler lookup in the route map with
  `inspect.signature`, handler, `serialize_as_dict`, `remove_nones`,
  snake_case→camelCase, `create_call_result`, validate, `to_json`.

Neither side touches a socket or an event loop: coroutine handlers are driven by
hand, so the figure is the protocol work alone. Both run in the same process,
interleaved, best of several rounds; the ratio is what the target is about
(≥ 3× the ocpp figure for each message).

    python bench/protocol.py [--seconds 1.0] [--rounds 5]
"""

from __future__ import annotations

import argparse
import inspect
import json
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import ocpp.messages
from ocpp.charge_point import (
    camel_to_snake_case,
    remove_nones,
    serialize_as_dict,
    snake_to_camel_case,
)
from ocpp.routing import create_route_map, on
from ocpp.v16 import ChargePoint as OcppChargePoint
from ocpp.v16 import call_result as ocpp_result
from ocpp.v16.enums import Action as OcppAction
from ocpp.v16.enums import RegistrationStatus as OcppRegistrationStatus

from os3p.messages import (
    BootNotificationRequest,
    BootNotificationResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    MeterValuesRequest,
    MeterValuesResponse,
    RegistrationStatus,
)
from os3p.router import Router
from os3p.session import CallReceived, Role, Session
from os3p.validation import Validator

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
NOW_TEXT = "2026-11-23T12:00:00Z"

# ----------------------------------------------------------------- the frames
OS3P_FRAMES = {
    "BootNotification": json.dumps(
        [
            2,
            "19223201",
            "BootNotification",
            {
                "vendor": "BrandX",
                "model": "SUBS-A1",
                "stationNumber": "987654321",
                "serialNumber": "AQ1234VB5678",
                "firmwareVersion": "1.1.0",
                "iccid": "83310415107943019317",
                "imsi": "080921439201835338",
            },
        ]
    ),
    "Heartbeat": json.dumps([2, "19223202", "Heartbeat", {}]),
    "MeterValues": json.dumps(
        [
            2,
            "19223203",
            "MeterValues",
            {
                "meterValue": [
                    {
                        "timestamp": "2026-11-23T11:45:00Z",
                        "sampledValue": [
                            {
                                "value": f"{230 + i}.{i}",
                                "measurand": m,
                                "unit": u,
                                "context": "Sample.Clock",
                            }
                            for i, (m, u) in enumerate(
                                [
                                    ("Voltage.L1N", "V"),
                                    ("Voltage.L2N", "V"),
                                    ("Voltage.L3N", "V"),
                                    ("Current.L1", "A"),
                                    ("Current.L2", "A"),
                                    ("Current.L3", "A"),
                                    ("ActivePower.L1", "W"),
                                    ("ActivePower.L2", "W"),
                                    ("ActivePower.L3", "W"),
                                    ("RealEnergyDelivered.Sum", "Wh"),
                                ]
                            )
                        ],
                    }
                ]
            },
        ]
    ),
}

# The equivalent OCPP 1.6 messages: same shapes, OCPP field names and enums.
OCPP_FRAMES = {
    "BootNotification": json.dumps(
        [
            2,
            "19223201",
            "BootNotification",
            {
                "chargePointVendor": "BrandX",
                "chargePointModel": "SUBS-A1",
                "chargeBoxSerialNumber": "987654321",
                "chargePointSerialNumber": "AQ1234VB5678",
                "firmwareVersion": "1.1.0",
                "iccid": "83310415107943019317",
                "imsi": "080921439201835338",
            },
        ]
    ),
    "Heartbeat": json.dumps([2, "19223202", "Heartbeat", {}]),
    "MeterValues": json.dumps(
        [
            2,
            "19223203",
            "MeterValues",
            {
                "connectorId": 1,
                "meterValue": [
                    {
                        "timestamp": "2026-11-23T11:45:00Z",
                        "sampledValue": [
                            {
                                "value": f"{230 + i}.{i}",
                                "measurand": m,
                                "unit": u,
                                "context": "Sample.Clock",
                            }
                            for i, (m, u) in enumerate(
                                [
                                    ("Voltage", "V"),
                                    ("Voltage", "V"),
                                    ("Voltage", "V"),
                                    ("Current.Import", "A"),
                                    ("Current.Import", "A"),
                                    ("Current.Import", "A"),
                                    ("Power.Active.Import", "W"),
                                    ("Power.Active.Import", "W"),
                                    ("Power.Active.Import", "W"),
                                    ("Energy.Active.Import.Register", "Wh"),
                                ]
                            )
                        ],
                    }
                ],
            },
        ]
    ),
}


# ----------------------------------------------------------------- our side
def drive(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends (the handlers here don't) without a loop."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("handler suspended")


def os3p_pipeline() -> Callable[[str], str]:
    router: Router[None] = Router()

    @router.on(BootNotificationRequest)
    async def boot(request: BootNotificationRequest, ctx: None) -> BootNotificationResponse:
        return BootNotificationResponse(
            status=RegistrationStatus.ACCEPTED, current_time=NOW, interval=300
        )

    @router.on(HeartbeatRequest)
    async def heartbeat(request: HeartbeatRequest, ctx: None) -> HeartbeatResponse:
        return HeartbeatResponse(current_time=NOW)

    @router.on(MeterValuesRequest)
    async def meter_values(request: MeterValuesRequest, ctx: None) -> MeterValuesResponse:
        return MeterValuesResponse()

    session = Session(Role.CENTRAL, Validator(), implemented=router.actions)

    def handle(text: str) -> str:
        [event] = session.receive(text, 0.0)
        assert isinstance(event, CallReceived)
        response = drive(router.dispatch(event.action, event.request, None))
        session.reply(event.message_id, response)
        [out] = session.data_to_send()
        return out

    return handle


# ----------------------------------------------------------------- ocpp side
class BenchChargePointHandlers(OcppChargePoint):
    @on(OcppAction.boot_notification)
    def on_boot(self, **kwargs: Any) -> Any:
        return ocpp_result.BootNotification(
            current_time=NOW_TEXT, interval=300, status=OcppRegistrationStatus.accepted
        )

    @on(OcppAction.heartbeat)
    def on_heartbeat(self) -> Any:
        return ocpp_result.Heartbeat(current_time=NOW_TEXT)

    @on(OcppAction.meter_values)
    def on_meter_values(self, **kwargs: Any) -> Any:
        return ocpp_result.MeterValues()


def ocpp_pipeline() -> Callable[[str], str]:
    ocpp.messages.ASYNC_VALIDATION = False
    route_map = create_route_map(BenchChargePointHandlers("bench", connection=None))

    def handle(text: str) -> str:
        # ChargePoint._handle_call, step by step, without the event loop.
        msg = ocpp.messages.unpack(text)
        handlers = route_map[msg.action]
        ocpp.messages._validate_payload(msg, "1.6")
        snake_case_payload = camel_to_snake_case(msg.payload)
        handler = handlers["_on_action"]
        signature = inspect.signature(handler)
        if "call_unique_id" in signature.parameters:
            response = handler(**snake_case_payload, call_unique_id=msg.unique_id)
        else:
            response = handler(**snake_case_payload)
        payload = snake_to_camel_case(remove_nones(serialize_as_dict(response)))
        result = msg.create_call_result(payload)
        ocpp.messages._validate_payload(result, "1.6")
        return str(result.to_json())

    return handle


# ----------------------------------------------------------------- measuring
def rate(handle: Callable[[str], str], text: str, seconds: float) -> float:
    handle(text)  # warm up caches (compiled validators, route maps)
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(100):
            handle(text)
        count += 100
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="best of N, interleaved")
    args = parser.parse_args()
    ours, theirs = os3p_pipeline(), ocpp_pipeline()
    for name, text in OS3P_FRAMES.items():
        # Both sides must actually answer before we time them.
        assert json.loads(ours(text))[0] == 3, name
        assert json.loads(theirs(OCPP_FRAMES[name]))[0] == 3, name
    print(f"{'message':<18}{'os3p frames/s':>15}{'ocpp frames/s':>15}{'ratio':>8}  target ≥ 3×")
    worst = float("inf")
    for name, text in OS3P_FRAMES.items():
        best_ours = best_theirs = 0.0
        for _ in range(args.rounds):
            best_ours = max(best_ours, rate(ours, text, args.seconds))
            best_theirs = max(best_theirs, rate(theirs, OCPP_FRAMES[name], args.seconds))
        ratio = best_ours / best_theirs
        worst = min(worst, ratio)
        print(f"{name:<18}{best_ours:>15,.0f}{best_theirs:>15,.0f}{ratio:>7.1f}×")
    print(f"lowest ratio {worst:.1f}× ({'meets' if worst >= 3 else 'MISSES'} the 3× target)")


if __name__ == "__main__":
    main()
