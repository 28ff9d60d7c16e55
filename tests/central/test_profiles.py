"""Readable schedules → SetStreetlightProfile payloads that pass the schema (§7.10)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from central.profiles import ProfileError, build_profile_request, parse_schedule, parse_time
from os3p.actions import Action
from os3p.messages import RecurrencyKind, TimeKind, TimeSpec, to_payload
from os3p.validation import Validator


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("23:00", TimeSpec(kind=TimeKind.ABSOLUTE, time="23:00:00")),
        ("5:30", TimeSpec(kind=TimeKind.ABSOLUTE, time="05:30:00")),
        ("05:30:15", TimeSpec(kind=TimeKind.ABSOLUTE, time="05:30:15")),
        ("sunset", TimeSpec(kind=TimeKind.SUNSET, offset=0)),
        ("sunset+10min", TimeSpec(kind=TimeKind.SUNSET, offset=600)),
        ("Sunrise - 1h", TimeSpec(kind=TimeKind.SUNRISE, offset=-3600)),
        ("sunset+1h30min", TimeSpec(kind=TimeKind.SUNSET, offset=5400)),
        ("sunrise-45s", TimeSpec(kind=TimeKind.SUNRISE, offset=-45)),
    ],
)
def test_times(text: str, spec: TimeSpec) -> None:
    assert parse_time(text) == spec


@pytest.mark.parametrize("text", ["24:00", "12:60", "noon", "sunset+10 days", "sunset+25h"])
def test_bad_times(text: str) -> None:
    with pytest.raises(ProfileError):
        parse_time(text)


def test_the_example_schedule() -> None:
    periods = parse_schedule("on at sunset+10min, off at 23:00, on at 05:30, off at sunrise")
    assert [(p.start, p.end) for p in periods] == [
        (
            TimeSpec(kind=TimeKind.SUNSET, offset=600),
            TimeSpec(kind=TimeKind.ABSOLUTE, time="23:00:00"),
        ),
        (
            TimeSpec(kind=TimeKind.ABSOLUTE, time="05:30:00"),
            TimeSpec(kind=TimeKind.SUNRISE, offset=0),
        ),
    ]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("on at sunset", "no 'off'"),
        ("off at sunrise", "without an 'on'"),
        ("on at sunset, on at 23:00", "two 'on'"),
        ("lights on at sunset", "expected 'on at"),
        (", ".join(["on at 18:00, off at 19:00"] * 5), "at most 4"),
    ],
)
def test_bad_schedules(text: str, reason: str) -> None:
    with pytest.raises(ProfileError, match=reason):
        parse_schedule(text)


def test_request_with_validity_and_recurrency_passes_the_schema() -> None:
    request = build_profile_request(
        3,
        "on at sunset, off at sunrise",
        profile_id=7,
        stack_level=2,
        recurrency=RecurrencyKind.WEEKLY,
        valid_from=datetime(2026, 11, 23, tzinfo=UTC),
        valid_to=datetime(2027, 3, 1, tzinfo=UTC),
        clear_all_schedules=True,
    )
    payload = to_payload(request)
    Validator().check(Action.SET_STREETLIGHT_PROFILE, "Request", payload)
    profile = payload["streetlightProfiles"][0]
    assert (payload["contactorId"], payload["clearAllSchedules"]) == (3, True)
    assert (profile["profileId"], profile["stackLevel"], profile["recurrencyKind"]) == (
        7,
        2,
        "Weekly",
    )
    assert profile["validFrom"] == "2026-11-23T00:00:00Z"


def test_requests_the_schema_refuses_are_profile_errors() -> None:
    with pytest.raises(ProfileError):
        build_profile_request(9, "on at sunset, off at sunrise")  # contactor 1..4
    with pytest.raises(ProfileError, match="before"):
        build_profile_request(
            1,
            "on at sunset, off at sunrise",
            valid_from=datetime(2027, 1, 1, tzinfo=UTC),
            valid_to=datetime(2026, 1, 1, tzinfo=UTC),
        )


_TIMES = st.one_of(
    st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.integers(0, 59)),
    st.builds(
        lambda kind, sign, n, unit: f"{kind}{sign}{n}{unit}",
        st.sampled_from(["sunset", "sunrise"]),
        st.sampled_from(["+", "-"]),
        st.integers(0, 23),
        st.sampled_from(["h", "min", "s"]),
    ),
)


@given(st.lists(st.tuples(_TIMES, _TIMES), min_size=1, max_size=4))
def test_any_well_formed_schedule_gives_a_valid_payload(pairs: list[tuple[str, str]]) -> None:
    text = ", ".join(f"on at {a}, off at {b}" for a, b in pairs)
    request = build_profile_request(1, text)
    assert len(request.streetlight_profiles[0].day_schedule) == len(pairs)
