"""The pure session: one test per CALLERROR code driven by a real frame, windowing,
deadlines, late results, and hypothesis fuzzing of everything a peer can send."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from os3p import frames
from os3p.actions import Action
from os3p.errors import (
    CallErrorReceived,
    CallTimeout,
    ConnectionLost,
    ErrorCode,
    InvalidResponse,
    OutgoingInvalid,
)
from os3p.messages import (
    BootNotificationRequest,
    BootNotificationResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    ResetResponse,
)
from os3p.session import (
    CallCompleted,
    CallFailedEvent,
    CallReceived,
    PeerViolation,
    Role,
    Session,
    UnmatchedResponse,
)
from os3p.validation import Validator

VALIDATOR = Validator()

BOOT = {
    "vendor": "BrandX",
    "model": "SUBS-A1",
    "stationNumber": "987654321",
    "serialNumber": "AQ1234VB5678",
    "firmwareVersion": "1.1.0",
    "iccid": "83310415107943019317",
    "imsi": "080921439201835338",
}


def central() -> Session:
    return Session(Role.CENTRAL, VALIDATOR)


def station(**kwargs: Any) -> Session:
    counter = iter(range(1_000_000))
    return Session(Role.STATION, VALIDATOR, new_message_id=lambda: f"m{next(counter)}", **kwargs)


def call_frame(message_id: str, action: str, payload: Any) -> str:
    return json.dumps([2, message_id, action, payload])


def sent(session: Session) -> list[list[Any]]:
    return [json.loads(text) for text in session.data_to_send()]


# One row per CALLERROR code the receiving core answers by itself (Table 7), each from a
# real frame. (NotSupported, SecurityError and InternalError come from handlers and the
# boot policy: see test_reply_error_* and the shell/central tests; GenericError below.)
CALLERROR_CASES: list[tuple[str, Session, str, ErrorCode]] = [
    (
        "NotImplemented-unknown-action",
        central(),
        call_frame("a1", "MakeCoffee", {}),
        ErrorCode.NOT_IMPLEMENTED,
    ),
    (
        "NotImplemented-wrong-direction",
        central(),
        call_frame("a2", "Reset", {}),
        ErrorCode.NOT_IMPLEMENTED,
    ),
    (
        "ProtocolError-missing-required",
        central(),
        call_frame("a3", "BootNotification", {k: v for k, v in BOOT.items() if k != "imsi"}),
        ErrorCode.PROTOCOL_ERROR,
    ),
    (
        "FormationViolation-extra-property",
        central(),
        call_frame("a4", "Heartbeat", {"unexpected": 1}),
        ErrorCode.FORMATION_VIOLATION,
    ),
    (
        "FormationViolation-payload-not-object",
        central(),
        '[2,"a5","Heartbeat",[]]',
        ErrorCode.FORMATION_VIOLATION,
    ),
    (
        "PropertyConstraintViolation-enum",
        central(),
        call_frame(
            "a6",
            "StreetlightStatusNotification",
            {"contactorId": 1, "status": "Dim", "timestamp": "2013-02-01T15:09:18Z"},
        ),
        ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    ),
    (
        "PropertyConstraintViolation-maxLength",
        central(),
        call_frame("a7", "BootNotification", {**BOOT, "vendor": "V" * 21}),
        ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    ),
    (
        "PropertyConstraintViolation-range",
        station(),
        call_frame("a8", "OverrideStreetlight", {"contactorId": 5, "action": "On"}),
        ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    ),
    (
        "PropertyConstraintViolation-date-time",
        central(),
        call_frame(
            "a9",
            "StreetlightModeStatusNotification",
            {"mode": "Schedule", "timestamp": "yesterday"},
        ),
        ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
    ),
    (
        "OccurenceConstraintViolation-minItems",
        station(),
        call_frame("a10", "SetStreetlightProfile", {"contactorId": 1, "streetlightProfiles": []}),
        ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION,
    ),
    (
        "TypeConstraintViolation",
        station(),
        call_frame("a11", "OverrideStreetlight", {"contactorId": "1", "action": "On"}),
        ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    ),
]


@pytest.mark.parametrize(
    ("session", "frame", "code"),
    [c[1:] for c in CALLERROR_CASES],
    ids=[c[0] for c in CALLERROR_CASES],
)
def test_each_callerror_code_from_a_real_frame(
    session: Session, frame: str, code: ErrorCode
) -> None:
    message_id = json.loads(frame)[1]
    events = session.receive(frame, now=0.0)
    assert len(events) == 1
    assert isinstance(events[0], PeerViolation)
    assert events[0].answered is code
    [answer] = sent(session)
    assert answer[:3] == [4, message_id, code.value]
    assert isinstance(answer[3], str)
    assert answer[4] == {}  # §4.4 Table 6: "If there are no error details you MUST fill in {}"
    assert session.handling == frozenset()


def test_duplicate_id_in_progress_is_protocol_error_and_handler_runs_once() -> None:
    session = central()
    first = session.receive(call_frame("dup", "Heartbeat", {}), now=0.0)
    assert isinstance(first[0], CallReceived)
    second = session.receive(call_frame("dup", "Heartbeat", {}), now=0.0)
    assert isinstance(second[0], PeerViolation)
    assert second[0].answered is ErrorCode.PROTOCOL_ERROR
    assert sent(session) == [[4, "dup", "ProtocolError", "message id already being handled", {}]]
    session.reply("dup", HeartbeatResponse(current_time=_dt("2013-02-01T15:09:18Z")))
    [result] = sent(session)
    assert result[0:2] == [3, "dup"]
    # Once answered, the id is no longer in progress.
    assert isinstance(session.receive(call_frame("dup", "Heartbeat", {}), now=0.0)[0], CallReceived)


def test_generic_error_from_the_peer_fails_the_call() -> None:
    session = station()
    message_id = session.call(HeartbeatRequest(), now=0.0)
    session.data_to_send()
    events = session.receive(json.dumps([4, message_id, "GenericError", "boom", {"x": 1}]), now=1.0)
    assert len(events) == 1
    assert isinstance(events[0], CallFailedEvent)
    error = events[0].error
    assert isinstance(error, CallErrorReceived)
    assert (error.code, error.description, error.details) == ("GenericError", "boom", {"x": 1})


@pytest.mark.parametrize(
    "code",
    [
        ErrorCode.NOT_SUPPORTED,
        ErrorCode.SECURITY_ERROR,
        ErrorCode.INTERNAL_ERROR,
        ErrorCode.GENERIC_ERROR,
    ],
)
def test_reply_error_sends_the_code(code: ErrorCode) -> None:
    session = central()
    session.receive(call_frame("r1", "Heartbeat", {}), now=0.0)
    session.reply_error("r1", code, "because")
    assert sent(session) == [[4, "r1", code.value, "because", {}]]


def test_valid_call_is_received_typed() -> None:
    session = central()
    [event] = session.receive(call_frame("b1", "BootNotification", BOOT), now=0.0)
    assert isinstance(event, CallReceived)
    assert isinstance(event.request, BootNotificationRequest)
    assert event.request.vendor == "BrandX"
    assert event.request.station_number == "987654321"
    assert sent(session) == []


def test_reply_with_wrong_type_or_invalid_payload_is_our_bug() -> None:
    session = central()
    session.receive(call_frame("h1", "Heartbeat", {}), now=0.0)
    with pytest.raises(TypeError):
        session.reply("h1", ResetResponse(status="Accepted"))  # type: ignore[arg-type]
    with pytest.raises(OutgoingInvalid):
        # Constructors do not validate; the schema check before sending does.
        session.reply("h1", HeartbeatResponse(current_time="not a date"))  # type: ignore[arg-type]
    assert sent(session) == []
    assert session.handling == {"h1"}


def test_outgoing_call_is_validated_before_anything_is_sent() -> None:
    session = station()
    with pytest.raises(OutgoingInvalid):
        session.call(BootNotificationRequest(**{**_boot_kwargs(), "vendor": "V" * 21}), now=0.0)
    assert sent(session) == []


def test_station_cannot_send_central_actions() -> None:
    with pytest.raises(TypeError):
        central().call(HeartbeatRequest(), now=0.0)


def test_call_result_completes_typed() -> None:
    session = station()
    message_id = session.call(BootNotificationRequest(**_boot_kwargs()), now=0.0)
    [frame] = sent(session)
    assert frame[:3] == [2, message_id, "BootNotification"]
    assert frame[3] == BOOT
    events = session.receive(
        json.dumps(
            [
                3,
                message_id,
                {"status": "Accepted", "currentTime": "2013-02-01T15:09:18Z", "interval": 1200},
            ]
        ),
        now=1.0,
    )
    assert isinstance(events[0], CallCompleted)
    assert isinstance(events[0].response, BootNotificationResponse)
    assert events[0].response.interval == 1200


def test_invalid_call_result_fails_the_call() -> None:
    session = station()
    message_id = session.call(HeartbeatRequest(), now=0.0)
    events = session.receive(json.dumps([3, message_id, {}]), now=1.0)
    assert isinstance(events[0], CallFailedEvent)
    assert isinstance(events[0].error, InvalidResponse)
    assert events[0].error.cause.code is ErrorCode.PROTOCOL_ERROR


def test_one_call_in_flight_by_default_and_fifo_release() -> None:
    session = station()
    ids = [session.call(HeartbeatRequest(), now=0.0) for _ in range(3)]
    assert [f[1] for f in sent(session)] == ids[:1]
    assert (session.in_flight, session.queued) == (1, 2)
    session.receive(json.dumps([3, ids[0], {"currentTime": "2013-02-01T15:09:18Z"}]), now=1.0)
    assert [f[1] for f in sent(session)] == ids[1:2]
    session.receive(json.dumps([4, ids[1], "GenericError", "", {}]), now=2.0)
    assert [f[1] for f in sent(session)] == ids[2:3]


def test_window_lets_several_calls_fly() -> None:
    session = station(window=3)
    ids = [session.call(HeartbeatRequest(), now=0.0) for _ in range(5)]
    assert [f[1] for f in sent(session)] == ids[:3]


def test_deadline_expires_then_late_result_is_dropped() -> None:
    session = station(call_timeout=10.0)
    first = session.call(HeartbeatRequest(), now=0.0)
    second = session.call(HeartbeatRequest(), now=0.0)
    sent(session)
    assert session.next_deadline() == 10.0
    assert session.expire(9.9) == []
    [event] = session.expire(10.0)
    assert isinstance(event, CallFailedEvent)
    assert isinstance(event.error, CallTimeout)
    assert event.message_id == first
    # The queued call is released when the first one expires; its deadline counts from then.
    assert [f[1] for f in sent(session)] == [second]
    assert session.next_deadline() == 20.0
    [late] = session.receive(
        json.dumps([3, first, {"currentTime": "2013-02-01T15:09:18Z"}]), now=11.0
    )
    assert isinstance(late, UnmatchedResponse)
    assert sent(session) == []


def test_close_fails_pending_and_queued_calls() -> None:
    session = station()
    ids = {session.call(HeartbeatRequest(), now=0.0) for _ in range(3)}
    events = session.close()
    assert {e.message_id for e in events if isinstance(e, CallFailedEvent)} == ids
    assert all(
        isinstance(e, CallFailedEvent) and isinstance(e.error, ConnectionLost) for e in events
    )
    assert session.next_deadline() is None


def _boot_kwargs() -> dict[str, Any]:
    return {
        "vendor": "BrandX",
        "model": "SUBS-A1",
        "station_number": "987654321",
        "serial_number": "AQ1234VB5678",
        "firmware_version": "1.1.0",
        "iccid": "83310415107943019317",
        "imsi": "080921439201835338",
    }


def _dt(text: str) -> Any:
    from os3p.formats import parse_date_time

    return parse_date_time(text)


# --------------------------------------------------------------------- fuzzing
json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=15,
)
actions = st.sampled_from(
    ["Heartbeat", "BootNotification", "Reset", "StatusNotification", "MeterValues", "Nope", ""]
)
frames_like = st.one_of(
    st.text(max_size=120),
    st.binary(max_size=120),
    st.lists(json_values, max_size=6).map(frames.encode_json),
    st.tuples(st.just(2), st.text(max_size=40), actions, json_values).map(
        lambda t: frames.encode_json(list(t))
    ),
    st.tuples(st.sampled_from([3, 4]), st.text(max_size=40), json_values).map(
        lambda t: frames.encode_json(list(t))
    ),
)


@settings(max_examples=300)
@given(st.lists(frames_like, min_size=1, max_size=8), st.sampled_from([Role.STATION, Role.CENTRAL]))
def test_any_input_never_raises_and_answers_by_the_rules(
    inputs: list[str | bytes], role: Role
) -> None:
    session = Session(role, VALIDATOR)
    for data in inputs:
        events = session.receive(data, now=0.0)
        out = sent(session)
        assert len(events) == 1
        [event] = events
        match event:
            case PeerViolation(message_id=message_id, answered=code):
                if code is None:
                    assert out == []
                else:
                    # Exactly one CALLERROR, echoing the id the peer used.
                    assert len(out) == 1
                    assert out[0][0] == 4
                    assert out[0][1] == message_id
                    assert out[0][2] == code.value
                    assert message_id is not None
            case CallReceived(message_id=message_id, action=action):
                assert out == []
                assert action in role.receives
                assert message_id in session.handling
                session.reply_error(message_id, ErrorCode.GENERIC_ERROR)
                session.data_to_send()
            case UnmatchedResponse():
                assert out == []
            case _:
                pytest.fail(f"unexpected event {event!r}")


def test_raw_call_puts_the_stored_payload_bytes_on_the_wire() -> None:
    session = station()
    stored = '{"contactorId":2,"status":"On","timestamp":"2026-11-23T16:30:00.125Z"}'
    message_id = session.call_raw(Action.STREETLIGHT_STATUS_NOTIFICATION, stored, now=0.0)
    [text] = session.data_to_send()
    assert text == f'[2,"{message_id}","StreetlightStatusNotification",{stored}]'
    [event] = session.receive(json.dumps([3, message_id, {}]), now=1.0)
    assert isinstance(event, CallCompleted)


def test_raw_call_of_a_central_action_is_refused() -> None:
    with pytest.raises(TypeError):
        station().call_raw(Action.RESET, "{}", now=0.0)
