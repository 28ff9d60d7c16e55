"""Profiles on the wire and their validation (OS³P 0.4 §7.10.1, Tables 16 and 18)."""

from __future__ import annotations

import copy
import dataclasses
from datetime import date, time, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtu.schedule.model import (
    InvalidProfile,
    Period,
    Profile,
    Reason,
    Recurrency,
    TimeKind,
    TimeSpec,
    parse_time_of_day,
    profile_from_wire,
    profile_to_wire,
    validate_profiles,
)
from tests.rtu.schedule.strategies import stacks

# §7.10.3, the spec's own example item.
SPEC_ITEM: dict[str, Any] = {
    "profileId": 1,
    "stackLevel": 2,
    "recurrencyKind": "Daily",
    "validFrom": "2015-06-06T00:00:00",
    "validTo": "2019-09-06T00:00:00",
    "daySchedule": [
        {
            "start": {"kind": "Sunset", "offset": 3600},
            "end": {"kind": "Absolute", "time": "01:00:00"},
        },
        {
            "start": {"kind": "Absolute", "time": "06:00:00"},
            "end": {"kind": "Sunrise", "offset": 0},
        },
    ],
}

SPEC_PROFILE = Profile(
    profile_id=1,
    stack_level=2,
    recurrency=Recurrency.DAILY,
    valid_from=date(2015, 6, 6),
    valid_to=date(2019, 9, 6),
    periods=(
        Period(
            TimeSpec(TimeKind.SUNSET, offset=timedelta(hours=1)),
            TimeSpec(TimeKind.ABSOLUTE, time=time(1)),
        ),
        Period(
            TimeSpec(TimeKind.ABSOLUTE, time=time(6)),
            TimeSpec(TimeKind.SUNRISE, offset=timedelta(0)),
        ),
    ),
)


def test_spec_example_builds_the_profile() -> None:
    assert profile_from_wire(SPEC_ITEM) == SPEC_PROFILE


def test_spec_example_round_trips() -> None:
    assert profile_to_wire(SPEC_PROFILE) == SPEC_ITEM


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("21:03:00", time(21, 3), id="evening"),
        pytest.param("06:30:59", time(6, 30, 59), id="morning-seconds"),
        pytest.param("12:00:00", time(12), id="start-of-day"),
        pytest.param("11:59:59", time(11, 59, 59), id="end-of-day"),
        pytest.param("21:03:00.500", time(21, 3, 0, 500_000), id="milliseconds"),
        pytest.param("21:03:00.5", time(21, 3, 0, 500_000), id="tenths"),
        pytest.param("00:00:00.001", time(0, 0, 0, 1000), id="one-millisecond"),
        pytest.param("23:59:59.999", time(23, 59, 59, 999_000), id="last-millisecond"),
    ],
)
def test_parse_time_of_day(text: str, expected: time) -> None:
    assert parse_time_of_day(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("24:00:00", id="hour-24"),
        pytest.param("12:60:00", id="minute-60"),
        pytest.param("12:00:60", id="leap-second"),
        pytest.param("7:00:00", id="one-digit-hour"),
        pytest.param("07:00", id="no-seconds"),
        pytest.param("07:00:00.1234", id="microseconds"),
        pytest.param("07:00:00.", id="empty-fraction"),
        pytest.param("07:00:00Z", id="zone-suffix"),
        pytest.param(" 07:00:00", id="leading-space"),
        pytest.param("07:00:00\n", id="trailing-newline"),
        pytest.param("٠٧:٠٠:٠٠", id="arabic-indic-digits"),
        pytest.param("", id="empty"),
    ],
)
def test_parse_time_of_day_rejects(text: str) -> None:
    with pytest.raises(InvalidProfile) as caught:
        parse_time_of_day(text)
    assert caught.value.reason is Reason.MALFORMED_TIME


@given(st.times().map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000)))
def test_parse_time_of_day_inverts_formatting(value: time) -> None:
    text = profile_to_wire(
        Profile(
            1,
            0,
            Recurrency.DAILY,
            None,
            None,
            (Period(TimeSpec(TimeKind.ABSOLUTE, value), TimeSpec(TimeKind.ABSOLUTE, value)),),
        )
    )["daySchedule"]
    assert parse_time_of_day(text[0]["start"]["time"]) == value  # type: ignore[index]


@given(st.text(max_size=16))
def test_parse_time_of_day_never_raises_anything_else(text: str) -> None:
    """Peer input becomes a Rejected answer, never an IndexError or a crash."""
    reason = Reason.MALFORMED_TIME
    try:
        parse_time_of_day(text)
    except InvalidProfile as exc:
        reason = exc.reason
    assert reason is Reason.MALFORMED_TIME


def _edited(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    item = copy.deepcopy(SPEC_ITEM)
    target: Any = item
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return item


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        pytest.param(
            ("daySchedule", 0, "end", "time"), "1:00", Reason.MALFORMED_TIME, id="malformed-time"
        ),
        pytest.param(
            ("daySchedule", 0, "end", "time"), 3600, Reason.MALFORMED, id="time-not-a-string"
        ),
        pytest.param(
            ("validFrom",), "6 June 2015", Reason.MALFORMED_DATE, id="malformed-validFrom"
        ),
        pytest.param(
            ("validTo",), "2019-13-01T00:00:00", Reason.MALFORMED_DATE, id="malformed-validTo"
        ),
        pytest.param(("recurrencyKind",), "Monthly", Reason.MALFORMED, id="unknown-recurrency"),
        pytest.param(
            ("daySchedule", 0, "start", "kind"), "Dusk", Reason.MALFORMED, id="unknown-kind"
        ),
        pytest.param(
            ("daySchedule", 0, "start", "offset"), "3600", Reason.MALFORMED, id="offset-string"
        ),
        pytest.param(("profileId",), True, Reason.MALFORMED, id="boolean-profileId"),
        pytest.param(("stackLevel",), _DELETE, Reason.MALFORMED, id="missing-stackLevel"),
        pytest.param(("daySchedule",), {}, Reason.MALFORMED, id="daySchedule-not-a-list"),
        pytest.param(
            ("daySchedule", 1),
            {"start": {"kind": "Sunset", "offset": 0}},
            Reason.MALFORMED,
            id="period-without-end",
        ),
        pytest.param(
            ("daySchedule", 1, "end"), "Sunrise", Reason.MALFORMED, id="bound-not-an-object"
        ),
    ],
)
def test_profile_from_wire_rejects(path: tuple[Any, ...], value: Any, reason: Reason) -> None:
    with pytest.raises(InvalidProfile) as caught:
        profile_from_wire(_edited(path, value))
    assert caught.value.reason is reason


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("2015-06-06T00:00:00", date(2015, 6, 6), id="no-offset"),
        pytest.param("2015-06-06T23:30:00-05:00", date(2015, 6, 6), id="offset-not-applied"),
        pytest.param("2015-06-06T00:30:00Z", date(2015, 6, 6), id="utc-designator"),
        pytest.param("2015-06-06", date(2015, 6, 6), id="bare-date"),
    ],
)
def test_only_the_date_part_counts(text: str, expected: date) -> None:
    assert profile_from_wire(_edited(("validFrom",), text)).valid_from == expected


def _profile(profile_id: int = 1, stack_level: int = 0, **changes: Any) -> Profile:
    base = Profile(
        profile_id=profile_id,
        stack_level=stack_level,
        recurrency=Recurrency.DAILY,
        valid_from=date(2026, 1, 1),
        valid_to=None,
        periods=SPEC_PROFILE.periods,
    )
    return dataclasses.replace(base, **changes)


_ABS_NO_TIME = TimeSpec(TimeKind.ABSOLUTE)
_SUNSET_NO_OFFSET = TimeSpec(TimeKind.SUNSET, time=time(20))
_SUNRISE = TimeSpec(TimeKind.SUNRISE, offset=timedelta(0))
_FIVE = tuple(Period(_SUNRISE, _SUNRISE) for _ in range(5))


@pytest.mark.parametrize(
    ("new", "existing", "clear_all", "reason"),
    [
        pytest.param(
            [_profile(stack_level=17)],
            [],
            False,
            Reason.STACK_LEVEL_TOO_HIGH,
            id="stack-level-above-max",
        ),
        pytest.param(
            [_profile(1, 0), _profile(1, 1)],
            [],
            False,
            Reason.DUPLICATE_PROFILE_ID,
            id="duplicate-id-in-request",
        ),
        pytest.param(
            [_profile(1, 0), _profile(2, 0)],
            [],
            False,
            Reason.DUPLICATE_STACK_LEVEL,
            id="duplicate-level-in-request",
        ),
        pytest.param(
            [_profile(1, 0)],
            [_profile(1, 5)],
            False,
            Reason.DUPLICATE_PROFILE_ID,
            id="duplicate-id-existing",
        ),
        pytest.param(
            [_profile(2, 5)],
            [_profile(1, 5)],
            False,
            Reason.DUPLICATE_STACK_LEVEL,
            id="duplicate-level-existing",
        ),
        pytest.param(
            [_profile(1, 0), _profile(1, 1)],
            [],
            True,
            Reason.DUPLICATE_PROFILE_ID,
            id="clear-all-still-checks-request",
        ),
        pytest.param(
            [_profile(periods=(Period(_ABS_NO_TIME, _SUNRISE),))],
            [],
            False,
            Reason.MISSING_TIME,
            id="absolute-without-time",
        ),
        pytest.param(
            [_profile(periods=(Period(_SUNRISE, _SUNSET_NO_OFFSET),))],
            [],
            False,
            Reason.MISSING_OFFSET,
            id="sunset-without-offset",
        ),
        pytest.param(
            [
                _profile(
                    periods=(
                        Period(
                            TimeSpec(TimeKind.SUNRISE, offset=timedelta(days=1, seconds=1)),
                            _SUNRISE,
                        ),
                    )
                )
            ],
            [],
            False,
            Reason.OFFSET_OUT_OF_RANGE,
            id="offset-beyond-a-day",
        ),
        pytest.param(
            [_profile(valid_from=date(2026, 1, 2), valid_to=date(2026, 1, 1))],
            [],
            False,
            Reason.VALID_TO_BEFORE_VALID_FROM,
            id="validTo-before-validFrom",
        ),
        pytest.param(
            [_profile(periods=_FIVE)], [], False, Reason.TOO_MANY_PERIODS, id="five-periods"
        ),
        pytest.param([_profile(periods=())], [], False, Reason.NO_PERIODS, id="no-periods"),
        pytest.param(
            [_profile(profile_id=-1)], [], False, Reason.MALFORMED, id="negative-profileId"
        ),
        pytest.param(
            [_profile(recurrency=Recurrency.WEEKLY, valid_from=None)],
            [],
            False,
            Reason.MISSING_VALID_FROM,
            id="weekly-without-validFrom",
        ),
        pytest.param(
            [_profile(recurrency=Recurrency.NONE, valid_from=None)],
            [],
            False,
            Reason.MISSING_VALID_FROM,
            id="once-without-validFrom",
        ),
    ],
)
def test_validate_profiles_rejects(
    new: list[Profile], existing: list[Profile], clear_all: bool, reason: Reason
) -> None:
    with pytest.raises(InvalidProfile) as caught:
        validate_profiles(new, existing, max_stack_level=16, clear_all=clear_all)
    assert caught.value.reason is reason


@pytest.mark.parametrize(
    ("new", "existing", "clear_all"),
    [
        pytest.param([SPEC_PROFILE], [], False, id="spec-example"),
        pytest.param([_profile(stack_level=16)], [], False, id="stack-level-at-max"),
        pytest.param([_profile(1, 0)], [_profile(1, 0)], True, id="clear-all-replaces-existing"),
        pytest.param([_profile(2, 1)], [_profile(1, 0)], False, id="added-on-top"),
        pytest.param(
            [_profile(valid_from=date(2026, 1, 1), valid_to=date(2026, 1, 1))],
            [],
            False,
            id="single-day",
        ),
        pytest.param([_profile(valid_from=None)], [], False, id="daily-forever"),
        pytest.param([_profile(periods=_FIVE[:4])], [], False, id="four-periods"),
    ],
)
def test_validate_profiles_accepts(
    new: list[Profile], existing: list[Profile], clear_all: bool
) -> None:
    validate_profiles(new, existing, max_stack_level=16, clear_all=clear_all)


def test_profile_must_be_an_object() -> None:
    with pytest.raises(InvalidProfile, match="malformed"):
        profile_from_wire([SPEC_ITEM])  # type: ignore[arg-type]


def test_rejection_names_the_profile() -> None:
    with pytest.raises(InvalidProfile, match="profile 7: stack-level-too-high"):
        validate_profiles([_profile(7, 99)], [], max_stack_level=16, clear_all=False)


@given(stacks())
def test_wire_round_trip(profiles: list[Profile]) -> None:
    for profile in profiles:
        assert profile_from_wire(profile_to_wire(profile)) == profile


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_PATHS = [
    ("profileId",),
    ("stackLevel",),
    ("recurrencyKind",),
    ("validFrom",),
    ("validTo",),
    ("daySchedule",),
    ("daySchedule", 0),
    ("daySchedule", 0, "start"),
    ("daySchedule", 0, "start", "kind"),
    ("daySchedule", 1, "end", "offset"),
    ("daySchedule", 1, "start", "time"),
]


@given(path=st.sampled_from(_PATHS), value=_JSON)
def test_profile_from_wire_only_ever_rejects(path: tuple[Any, ...], value: Any) -> None:
    """Whatever JSON a peer sends, the builder answers with a Profile or InvalidProfile."""
    reason = None
    try:
        profile_from_wire(_edited(path, value))
    except InvalidProfile as exc:
        reason = exc.reason
    assert reason is None or isinstance(reason, Reason)
