"""Frame codec: table-driven from the implementation guide's examples and rules."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from os3p import frames
from os3p.errors import ErrorCode, FrameError

# §4.2, §4.3 and the bootNotification examples, verbatim.
SPEC_FRAMES: list[tuple[str, frames.Frame]] = [
    (
        '[2, "19223201", "BootNotification", {"vendor": "VendorX", "model": "MDL1"}]',
        frames.Call("19223201", "BootNotification", {"vendor": "VendorX", "model": "MDL1"}),
    ),
    (
        '[3, "19223201", {"status": "Accepted", "currentTime": "2013-02-01T20:53:32.486Z",'
        ' "interval": 300}]',
        frames.CallResult(
            "19223201",
            {"status": "Accepted", "currentTime": "2013-02-01T20:53:32.486Z", "interval": 300},
        ),
    ),
]


@pytest.mark.parametrize(("text", "expected"), SPEC_FRAMES, ids=["call", "callresult"])
def test_spec_examples_decode(text: str, expected: frames.Frame) -> None:
    assert frames.decode(text) == expected


@pytest.mark.parametrize(
    "frame",
    [
        frames.Call("1", "Heartbeat", {}),
        frames.CallResult("abc", {"currentTime": "2013-02-01T15:09:18Z"}),
        frames.CallError("x", "NotImplemented", "unknown action", {"a": [1, 2]}),
        frames.Call("ü-id", "BootNotification", {"vendor": "Zürich"}),
    ],
    ids=["call", "callresult", "callerror", "non-ascii"],
)
def test_encode_decode_round_trip(frame: frames.Frame) -> None:
    assert frames.decode(frames.encode(frame)) == frame


def test_encode_is_compact_json() -> None:
    assert frames.encode(frames.Call("7", "Heartbeat", {})) == '[2,"7","Heartbeat",{}]'


@pytest.mark.parametrize(
    ("text", "payload"),
    [('[2,"1","Heartbeat",null]', {}), ('[3,"1",null]', {})],
    ids=["call-null-payload", "result-null-payload"],
)
def test_null_payload_means_empty(text: str, payload: dict[str, Any]) -> None:
    # §4.2 Table 4: "JSON allows for two different notations: null or an empty object {}".
    frame = frames.decode(text)
    assert isinstance(frame, frames.Call | frames.CallResult)
    assert frame.payload == payload


IGNORED: list[tuple[str, str | bytes]] = [
    ("invalid-utf8", b'[2,"1","Heartbeat",{}]\xff'),
    ("json-object", '{"a": 1}'),
    ("empty-array", "[]"),
    ("json-number", "5"),
    ("unknown-type-5", '[5,"1","Heartbeat",{}]'),
    ("type-as-string", '["2","1","Heartbeat",{}]'),
    ("type-bool", '[true,"1","Heartbeat",{}]'),
    ("id-number", '[2,1,"Heartbeat",{}]'),
    ("id-missing", "[2]"),
    ("not-json-no-id", "hello"),
    ("result-wrong-length", '[3,"1",{},{}]'),
    ("result-payload-list", '[3,"1",[]]'),
    ("error-wrong-length", '[4,"1","GenericError",""]'),
    ("error-code-number", '[4,"1",5,"",{}]'),
    ("error-details-string", '[4,"1","GenericError","","x"]'),
]


@pytest.mark.parametrize(("text"), [t for _, t in IGNORED], ids=[i for i, _ in IGNORED])
def test_frames_that_must_be_ignored(text: str | bytes) -> None:
    # §4.1.1 unknown message type → ignore; §4.4 case 1 id not discernible → ignore;
    # a malformed response cannot be answered.
    with pytest.raises(FrameError) as caught:
        frames.decode(text)
    assert caught.value.code is None


ANSWERED: list[tuple[str, str, str]] = [
    ("call-too-short", '[2,"m1","Heartbeat"]', "m1"),
    ("call-too-long", '[2,"m1","Heartbeat",{},{}]', "m1"),
    ("action-not-string", '[2,"m1",7,{}]', "m1"),
    ("payload-array", '[2,"m1","Heartbeat",[]]', "m1"),
    ("payload-string", '[2,"m1","Heartbeat","{}"]', "m1"),
    ("id-37-chars", '[2,"' + "a" * 37 + '","Heartbeat",{}]', "a" * 37),
    ("id-empty", '[2,"","Heartbeat",{}]', ""),
    ("broken-json-with-id", '[2, "m2", "Heartbeat", {', "m2"),
]


@pytest.mark.parametrize(
    ("text", "message_id"), [a[1:] for a in ANSWERED], ids=[a[0] for a in ANSWERED]
)
def test_malformed_calls_with_discernible_id_are_formation_violations(
    text: str, message_id: str
) -> None:
    with pytest.raises(FrameError) as caught:
        frames.decode(text)
    assert caught.value.code is ErrorCode.FORMATION_VIOLATION
    assert caught.value.message_id == message_id


def test_oversized_frame_is_answered_without_parsing() -> None:
    text = '[2,"big","MeterValues",{"meterValue":[' + '"x",' * 1000 + '"x"]}]'
    with pytest.raises(FrameError) as caught:
        frames.decode(text, max_chars=1000)
    assert caught.value.code is ErrorCode.FORMATION_VIOLATION
    assert caught.value.message_id == "big"
    assert "exceeds" in caught.value.reason


def test_sniffed_id_never_includes_escapes() -> None:
    # An id we cannot reproduce exactly must not be echoed.
    assert frames.sniff_call_id('[2, "a\\"b", ...') is None
    assert frames.sniff_call_id('  [ 2 , "abc", "X", {') == "abc"


@given(st.text(max_size=200))
def test_decode_never_raises_anything_but_frame_error_on_text(text: str) -> None:
    with contextlib.suppress(FrameError):
        frames.decode(text)


@given(st.binary(max_size=200))
def test_decode_never_raises_anything_but_frame_error_on_bytes(data: bytes) -> None:
    with contextlib.suppress(FrameError):
        frames.decode(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)


@given(st.lists(json_values, max_size=6))
def test_arbitrary_json_arrays_decode_or_fail_by_the_rules(value: list[Any]) -> None:
    text = frames.encode_json(value)
    try:
        frame = frames.decode(text)
    except FrameError as exc:  # both outcomes are legal; the rules decide which
        if exc.code is not None:
            # Only CALLs with a string id are answered, and always with FormationViolation.
            assert value[0] == 2
            assert type(value[0]) is int
            assert isinstance(value[1], str)
            assert exc.code is ErrorCode.FORMATION_VIOLATION  # noqa: PT017
        return
    assert value[0] in (2, 3, 4)
    assert frame.message_id == value[1]
