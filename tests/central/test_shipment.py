"""Shipment files: every problem reported with its line, all or nothing, no other error."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central.meters import MeterKind, MeterProtocol
from central.shipment import (
    MeterRecord,
    Problem,
    Shipment,
    ShipmentInvalid,
    parse_csv,
    parse_json,
    parse_meter,
    parse_shipment,
)

HEADER = "station_id,meter_id,kind,protocol,channel,password,cert_identity,timezone"
GOOD_CSV = (
    f"{HEADER}\r\n"
    "SUBS001,E0001,E,DLMS,0,s3cret-pass,,Europe/Amsterdam\r\n"
    "SUBS001,G0001,G,DLMS,1,,,\r\n"
    "SUBS002,E0002,e,p1,,,CN=subs002,\r\n"
)


def _csv(*lines: str) -> bytes:
    return "\r\n".join([HEADER, *lines]).encode()


def _problems(data: bytes, media_type: str = "text/csv") -> list[Problem]:
    with pytest.raises(ShipmentInvalid) as raised:
        parse_shipment(data, media_type)
    return list(raised.value.problems)


def test_a_good_csv_file_gives_stations_with_their_meters() -> None:
    shipment = parse_csv(GOOD_CSV.encode())
    first, second = shipment.stations
    assert (first.station_id, first.password, first.timezone, first.line) == (
        "SUBS001",
        "s3cret-pass",
        "Europe/Amsterdam",
        2,
    )
    assert first.meters == (
        MeterRecord("E0001", MeterKind.ELECTRICITY, MeterProtocol.DLMS, 0, line=2),
        MeterRecord("G0001", MeterKind.GAS, MeterProtocol.DLMS, 1, line=3),
    )
    assert (second.cert_identity, second.password) == ("CN=subs002", None)
    # kind and protocol in any case; channel defaults to 0 for an E meter
    assert second.meters == (
        MeterRecord("E0002", MeterKind.ELECTRICITY, MeterProtocol.P1, 0, line=4),
    )
    assert shipment.meter_count == 3


def test_a_bom_blank_lines_and_reordered_columns_are_fine() -> None:
    data = "\ufeffmeter_id,station_id,protocol,kind\n\nE1,S1,DLMS,E\n".encode()
    (station,) = parse_csv(data).stations
    assert station.meters[0].meter_id == "E1"
    assert station.meters[0].line == 3


# One bad line each: (line text, field reported, reason fragment).
BAD_LINES: list[tuple[str, str | None, str]] = [
    ("SUBS009,E9,X,DLMS,0,,,", "kind", "E or G"),
    ("SUBS009,E9,E,MODBUS,0,,,", "protocol", "DLMS or P1"),
    ("SUBS009,E9,E,DLMS,7,,,", "channel", "0..4"),
    ("SUBS009,E9,E,DLMS,2,,,", "channel", "channel 0"),
    ("SUBS009,G9,G,DLMS,,,,", "channel", "required for a G meter"),
    ("SUBS009,G9,G,DLMS,0,,,", "channel", "1..4"),
    ("SUBS009,E9,E,DLMS,x,,,", "channel", "0..4"),
    (",E9,E,DLMS,0,,,", "station_id", "required"),
    ("SUBS009,,E,DLMS,0,,,", "meter_id", "required"),
    ("SUBS009,E 9,E,DLMS,0,,,", "meter_id", "A-Z"),
    ("SUBS009,E9,E,DLMS,0,short,,", "password", "8..128"),
    ("SUBS009,E9,E,DLMS,0,,,Mars/Olympus", "timezone", "IANA"),
    ("SUBS009,E9,E,DLMS,0,,,../etc/passwd", "timezone", "IANA"),
    ("SUBS009,E9,E,DLMS", None, "4 fields, the header has 8"),
    ("SUBS001,E0001,E,DLMS,0,,,", "meter_id", "already listed (line 2)"),
    ("SUBS001,G0002,G,DLMS,1,,,", "channel", "taken by G0001 (line 3)"),
    ("SUBS001,G0002,G,DLMS,2,other-password,,", "password", "differs from an earlier line"),
]


@pytest.mark.parametrize(
    ("line", "field", "reason"), BAD_LINES, ids=[reason for _, _, reason in BAD_LINES]
)
def test_one_bad_line_rejects_the_file_and_is_reported_with_its_number(
    line: str, field: str | None, reason: str
) -> None:
    data = (GOOD_CSV + line + "\r\n").encode()
    problems = _problems(data)
    assert len(problems) == 1, problems
    (problem,) = problems
    assert (problem.line, problem.field) == (5, field)
    assert reason in problem.reason


def test_every_bad_line_is_reported_not_only_the_first() -> None:
    data = _csv(
        "S1,E1,E,DLMS,0,,,",
        "S1,E2,Q,DLMS,0,,,",  # line 3: kind
        "S2,E3,E,DLMS,0,,,",
        "S2,E4,E,XX,9,,,",  # line 5: protocol and channel
        "S3,E1,E,DLMS,0,,,",  # line 6: duplicate meter id
    )
    problems = _problems(data)
    assert [(p.line, p.field) for p in problems] == [
        (3, "kind"),
        (5, "protocol"),
        (5, "channel"),
        (6, "meter_id"),
    ]
    assert "line 3: kind: E or G" in [str(p) for p in problems]


def test_a_quoted_field_spanning_lines_keeps_the_following_line_numbers_right() -> None:
    data = _csv('S1,E1,E,DLMS,0,"multi\r\nline pass",,', "S1,E2,Q,DLMS,0,,,")
    (problem,) = _problems(data)
    assert (problem.line, problem.field) == (4, "kind")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (HEADER.encode(), "lists no meter"),
        (b"station_id,meter_id,kind\r\nS1,E1,E\r\n", "missing column 'protocol'"),
        (b"station_id,meter_id,kind,protocol,colour\r\n", "unknown column 'colour'"),
        (b"station_id,meter_id,kind,protocol,kind\r\n", "appears twice"),
        (b"station_id,meter_id,kind,protocol\r\n\xff\xfe,E1,E,DLMS\r\n", "not UTF-8"),
        (b'station_id,meter_id,kind,protocol\r\n"S1"x,E1,E,DLMS\r\n', "not CSV"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_whole_file_problems(data: bytes, reason: str) -> None:
    problems = _problems(data)
    assert any(reason in p.reason for p in problems), problems


def _station(**fields: Any) -> dict[str, Any]:
    return {
        "stationId": "SUBS001",
        "meters": [{"meterId": "E1", "kind": "E", "protocol": "DLMS"}],
        **fields,
    }


def test_a_good_json_file() -> None:
    document = {
        "stations": [
            _station(password="s3cret-pass", timeZone="Europe/Amsterdam"),
            {
                "stationId": "SUBS002",
                "certIdentity": "CN=subs002",
                "meters": [
                    {"meterId": "E2", "kind": "E", "protocol": "P1", "channel": 0},
                    {"meterId": "G2", "kind": "G", "protocol": "P1", "channel": 4},
                ],
            },
        ]
    }
    shipment = parse_json(json.dumps(document).encode())
    assert [s.station_id for s in shipment.stations] == ["SUBS001", "SUBS002"]
    assert shipment.stations[0].timezone == "Europe/Amsterdam"
    assert shipment.stations[1].meters[1] == MeterRecord(
        "G2", MeterKind.GAS, MeterProtocol.P1, 4, path="/stations/1/meters/1"
    )


def test_json_problems_carry_pointers_and_all_are_reported() -> None:
    document = {
        "stations": [
            _station(),
            _station(),  # the same station again
            {
                "stationId": "S3",
                "colour": "red",
                "meters": [
                    {"meterId": "E1", "kind": "E", "protocol": "DLMS"},
                    {"meterId": "G3", "kind": "G", "protocol": "DLMS", "channel": True},
                    "not a meter",
                ],
            },
            {"stationId": "S4", "meters": []},
        ]
    }
    problems = _problems(json.dumps(document).encode(), "application/json")
    assert {(p.path, p.field) for p in problems} == {
        ("/stations/1", "stationId"),
        ("/stations/2", "colour"),
        ("/stations/2/meters/1", "channel"),
        ("/stations/2/meters/2", None),
        ("/stations/3", "meters"),
        ("/stations/2/meters/0", "meterId"),  # E1 already listed by /stations/0
    }
    assert all(p.line is None for p in problems)


def test_a_json_syntax_error_names_its_line() -> None:
    (problem,) = _problems(b'{"stations": [\n  {"stationId": "S1",,}\n]}', "application/json")
    assert problem.line == 2
    assert "not JSON" in problem.reason


@pytest.mark.parametrize("document", [[], {"stations": {}}, {"meters": []}, "x", 1])
def test_a_json_document_of_the_wrong_shape(document: object) -> None:
    (problem,) = _problems(json.dumps(document).encode(), "application/json")
    assert problem.field == "stations"


def test_an_unsupported_media_type_is_a_problem_too() -> None:
    (problem,) = _problems(b"x", "application/xml")
    assert "unsupported type application/xml" in problem.reason


def test_parse_meter_for_the_api() -> None:
    assert parse_meter({"meterId": "G7", "kind": "G", "protocol": "P1", "channel": 2}) == (
        MeterRecord("G7", MeterKind.GAS, MeterProtocol.P1, 2, path="")
    )
    with pytest.raises(ShipmentInvalid) as raised:
        parse_meter({"meterId": "G7", "kind": "G", "protocol": "P1", "extra": 1})
    assert {p.field for p in raised.value.problems} == {"channel", "extra"}


def _parses_or_explains(parse: Callable[..., Shipment], *args: object) -> None:
    """Any other exception propagates and fails the test; a rejection must say why."""
    problems: tuple[Problem, ...] = ()
    try:
        shipment = parse(*args)
    except ShipmentInvalid as invalid:
        problems = invalid.problems
    else:
        assert shipment.meter_count > 0
        return
    assert problems
    assert all(isinstance(p.reason, str) and p.reason for p in problems)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "stations",
                    "stationId",
                    "meters",
                    "meterId",
                    "kind",
                    "protocol",
                    "channel",
                    "password",
                    "timeZone",
                    "certIdentity",
                    "x",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), media=st.sampled_from(["text/csv", "application/json"]))
def test_arbitrary_bytes_raise_nothing_but_shipment_invalid(data: bytes, media: str) -> None:
    _parses_or_explains(parse_shipment, data, media)


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from('SEGDLMP1,"\r\n0123 x-_/'), max_size=200),
)
def test_arbitrary_csv_like_text_raises_nothing_but_shipment_invalid(text: str) -> None:
    _parses_or_explains(parse_csv, (HEADER + "\r\n" + text).encode())


@settings(max_examples=300, deadline=None)
@given(document=_json_values)
def test_arbitrary_json_documents_raise_nothing_but_shipment_invalid(document: object) -> None:
    _parses_or_explains(parse_json, json.dumps(document).encode())
