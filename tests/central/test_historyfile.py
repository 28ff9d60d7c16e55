"""The RTU's MeterValueHistory file, read back: the bytes come from the RTU's own writer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central.historyfile import HistoryFileInvalid, history_payload, parse_history
from central.storage import meter_values_from_payload
from os3p.actions import Action
from os3p.validation import Validator
from rtu.files.content import history_csv
from rtu.metering.history import HistoryRow as RtuRow

T = datetime(2026, 5, 4, 10, 15, tzinfo=UTC)


def _rtu_file() -> bytes:
    return history_csv(
        [
            RtuRow(T, "station", "Voltage.L1N", "230.4", "V", None, "Sample.Clock"),
            RtuRow(T, "station", "PowerFactor.Sum", "0.979", None, None, "Sample.Clock"),
            RtuRow(
                T.replace(second=3),
                "streetlights",
                "Power.Active.Import",
                "1.5",
                "kW",
                "P1Meter",
                "Sample.Periodic",
            ),
        ]
    )


def test_the_rtus_file_becomes_a_valid_meter_values_payload_with_table_3_defaults() -> None:
    rows = parse_history(_rtu_file())
    assert [(r.line, r.measurand, r.source) for r in rows] == [
        (2, "Voltage.L1N", "station"),
        (3, "PowerFactor.Sum", "station"),
        (4, "Power.Active.Import", "streetlights"),
    ]
    payload = history_payload(rows)
    Validator().check(Action.METER_VALUES, "Request", payload)
    first, second = meter_values_from_payload(payload)
    assert first.timestamp == T
    assert [(s.measurand, s.unit, s.location) for s in first.sampled_values] == [
        ("Voltage.L1N", "V", "-"),
        ("PowerFactor.Sum", "-", "-"),
    ]
    assert second.sampled_values[0].location == "P1Meter"


def test_an_empty_history_is_an_empty_payload() -> None:
    assert history_payload(parse_history(history_csv([]))) == {"meterValue": []}


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "line 1: the header"),
        (b"timestamp,measurand\r\n", "line 1: the header"),
        (
            _rtu_file() + b"2026-05-04T10:15:00,Voltage.L1N,1,V,,Sample.Clock,x\r\n",
            "line 5: timestamp",
        ),
        (
            _rtu_file() + b"2026-05-04T10:15:00Z,,1,V,,Sample.Clock,x\r\n",
            "line 5: measurand: empty",
        ),
        (_rtu_file() + b"2026-05-04T10:15:00Z,Voltage.L1N\r\n", "line 5: 2 fields"),
        (b"\xff", "not UTF-8"),
    ],
)
def test_bad_files_name_their_lines(data: bytes, problem: str) -> None:
    with pytest.raises(HistoryFileInvalid) as raised:
        parse_history(data)
    assert any(problem in p for p in raised.value.problems), raised.value.problems


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_nothing_but_history_file_invalid(data: bytes) -> None:
    try:
        parse_history(b"timestamp,measurand,value,unit,location,context,source\r\n" + data)
    except HistoryFileInvalid as invalid:
        assert invalid.problems  # noqa: PT017 - any other exception fails the test
