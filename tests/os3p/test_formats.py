"""The OS³P date-time format (docs/spec-errata.md S20): one syntax for validator and decoder."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from os3p.formats import DATE_TIME_PATTERN, parse_date_time

PLUS_TWO = timezone(timedelta(hours=2))

PARSED = [
    ("spec-7.4.2-no-offset", "2015-07-07T00:00:00", datetime(2015, 7, 7, tzinfo=UTC)),
    ("spec-6.1.2-zulu", "2013-02-01T15:09:18Z", datetime(2013, 2, 1, 15, 9, 18, tzinfo=UTC)),
    (
        "guide-4.3-millis",
        "2013-02-01T20:53:32.486Z",
        datetime(2013, 2, 1, 20, 53, 32, 486000, tzinfo=UTC),
    ),
    ("offset-kept", "2015-07-07T00:00:00+02:00", datetime(2015, 7, 7, tzinfo=PLUS_TWO)),
    (
        "negative-offset",
        "2015-07-06T23:00:00-05:30",
        datetime(2015, 7, 6, 23, tzinfo=timezone(-timedelta(hours=5, minutes=30))),
    ),
    ("lower-case", "2015-07-07t00:00:00z", datetime(2015, 7, 7, tzinfo=UTC)),
    (
        "nanoseconds-round-half-up",
        "2015-07-07T00:00:00.0000005Z",
        datetime(2015, 7, 7, 0, 0, 0, 1, tzinfo=UTC),
    ),
    (
        "rounding-carries-into-seconds",
        "2015-07-07T00:00:59.9999995Z",
        datetime(2015, 7, 7, 0, 1, tzinfo=UTC),
    ),
]


@pytest.mark.parametrize(("text", "expected"), [pytest.param(t, e, id=i) for i, t, e in PARSED])
def test_parse(text: str, expected: datetime) -> None:
    parsed = parse_date_time(text)
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()


def test_offset_is_kept_so_the_written_date_survives() -> None:
    # §7.4 Table 10: only the date part of `at` counts, as written.
    assert parse_date_time("2015-07-07T00:00:00+02:00").date().isoformat() == "2015-07-07"


MALFORMED = [
    ("date-only", "2015-07-07"),
    ("space-separator", "2015-07-07 00:00:00Z"),
    ("month-13", "2015-13-07T00:00:00Z"),
    ("hour-24", "2015-07-07T24:00:00Z"),
    ("leap-second", "2016-12-31T23:59:60Z"),
    ("offset-without-colon", "2015-07-07T00:00:00+0200"),
    ("hour-offset-only", "2015-07-07T00:00:00+02"),
    ("empty-fraction", "2015-07-07T00:00:00.Z"),
    ("no-seconds", "2015-07-07T00:00Z"),
    ("trailing-text", "2015-07-07T00:00:00Z "),
    ("trailing-newline", "2015-07-07T00:00:00Z\n"),
]


@pytest.mark.parametrize("text", [pytest.param(t, id=i) for i, t in MALFORMED])
def test_malformed_is_rejected_by_pattern_and_parser(text: str) -> None:
    assert re.search(DATE_TIME_PATTERN, text) is None
    with pytest.raises(ValueError, match="date-time"):
        parse_date_time(text)


def test_calendar_is_checked_by_the_parser_not_the_pattern() -> None:
    assert re.search(DATE_TIME_PATTERN, "2015-02-30T00:00:00Z") is not None
    with pytest.raises(ValueError, match="day is out of range"):
        parse_date_time("2015-02-30T00:00:00Z")


@given(
    st.datetimes(
        min_value=datetime(1, 1, 1), timezones=st.none() | st.timezones() | st.just(UTC)
    ).map(lambda d: d.isoformat()),
    st.integers(min_value=0, max_value=9),
)
def test_agrees_with_msgspec(iso: str, extra_digits: int) -> None:
    """`parse_date_time` and msgspec must read every well-formed string identically."""
    # isoformat gives 0 or 6 fraction digits; add more so rounding is exercised too.
    if "." in iso:
        head, tail = iso.split(".", 1)
        iso = f"{head}.{tail[:6]}{'5' * extra_digits}{tail[6:]}"
    if re.search(DATE_TIME_PATTERN, iso) is None:
        # Offsets with seconds (pre-1900 zones) are not RFC 3339.
        assert re.search(r"[+-]\d\d:\d\d:\d\d", iso)
        return
    ours = parse_date_time(iso)
    theirs = msgspec.convert(iso, datetime)
    if theirs.tzinfo is None:
        theirs = theirs.replace(tzinfo=UTC)
    assert ours == theirs
    assert ours.utcoffset() == theirs.utcoffset()
