"""Configuration keys: GetConfiguration / ChangeConfiguration semantics, table-driven."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtu.configkeys import (
    Change,
    ConfigurationKeys,
    InvalidValue,
    format_latlng,
    parse_latlng,
    standard_keys,
)

DEFAULTS: dict[str, Any] = {
    "HeartbeatInterval": 300,
    "websocketPingInterval": 60,
    "Geolocation": (51.98, 5.91),
    "StreetlightProfileMaxStackLevel": 16,
    "MeterValueSampleInterval": 900,
    "ClockAlignedDataInterval": 900,
}


def keys() -> ConfigurationKeys:
    return ConfigurationKeys(
        standard_keys(),
        DEFAULTS,
        providers={"Sunrise": lambda: "08:21:00", "Sunset": lambda: "16:35:00"},
    )


ACCEPTED, REJECTED = True, False


CHANGES = [
    ("heartbeat", "HeartbeatInterval", "600", ACCEPTED, 600),
    ("heartbeat-zero", "HeartbeatInterval", "0", ACCEPTED, 0),
    ("heartbeat-text", "HeartbeatInterval", "soon", REJECTED, 300),
    ("ping-positive", "websocketPingInterval", "30", ACCEPTED, 30),
    ("ping-zero-disables", "websocketPingInterval", "0", ACCEPTED, 0),
    (
        "ping-negative-rejected",
        "websocketPingInterval",
        "-1",
        REJECTED,
        60,
    ),  # Table 8
    ("geolocation", "Geolocation", "[52.37, 4.89]", ACCEPTED, (52.37, 4.89)),
    (
        "geolocation-no-brackets",
        "Geolocation",
        "52.37, 4.89",
        REJECTED,
        (51.98, 5.91),
    ),
    (
        "geolocation-out-of-range",
        "Geolocation",
        "[91, 4.89]",
        REJECTED,
        (51.98, 5.91),
    ),
    ("stack-level", "StreetlightProfileMaxStackLevel", "8", ACCEPTED, 8),
    ("sample-interval", "MeterValueSampleInterval", "60", ACCEPTED, 60),
]


@pytest.mark.parametrize(
    ("key", "value", "outcome", "after"), [c[1:] for c in CHANGES], ids=[c[0] for c in CHANGES]
)
def test_change_configuration(key: str, value: str, outcome: bool, after: Any) -> None:
    station = keys()
    change = station.prepare(key, value)
    assert isinstance(change, Change) is outcome, change
    if isinstance(change, Change):
        assert station.prepare(key, change.rendered) == change  # what is persisted re-parses
        station.apply(change)
    assert station.value(key) == after


@pytest.mark.parametrize("key", ["Sunrise", "Sunset"])
def test_read_only_keys_are_rejected(key: str) -> None:
    reason = keys().prepare(key, "05:00:00")
    assert isinstance(reason, str)
    assert "read-only" in reason


def test_unknown_key_change_is_rejected() -> None:
    # §7.1.2's example key is not one of ours.
    assert isinstance(keys().prepare("KVCBX_LANG", "FR"), str)


def test_get_configuration_known_unknown_and_readonly() -> None:
    known, unknown = keys().get(["HeartbeatInterval", "Sunset", "KVCBX_PROFILE"])
    assert known == [("HeartbeatInterval", False, "300"), ("Sunset", True, "16:35:00")]
    assert unknown == ["KVCBX_PROFILE"]


def test_get_configuration_without_keys_lists_all() -> None:
    known, unknown = keys().get(None)
    assert {k for k, _, _ in known} == {s.name for s in standard_keys()}
    assert unknown == []


def test_listeners_see_accepted_changes_only() -> None:
    station = keys()
    seen: list[Any] = []
    station.on_change("HeartbeatInterval", seen.append)
    assert isinstance(station.prepare("HeartbeatInterval", "-5"), str)
    change = station.prepare("HeartbeatInterval", "120")
    assert isinstance(change, Change)
    assert seen == []  # prepared, not yet applied
    station.apply(change)
    assert seen == [120]


def test_persisted_values_parse_and_bad_ones_are_reported() -> None:
    values, rejected = ConfigurationKeys.parse_persisted(
        standard_keys(),
        {"HeartbeatInterval": "42", "Geolocation": "nonsense", "Sunset": "x", "Old": "1"},
    )
    assert values == {"HeartbeatInterval": 42}
    assert set(rejected) == {"Geolocation", "Sunset", "Old"}


@given(st.floats(-90, 90), st.floats(-180, 180))
def test_latlng_round_trips(lat: float, lng: float) -> None:
    back = parse_latlng(format_latlng((lat, lng)))
    assert back == pytest.approx((lat, lng), abs=1e-6)


@pytest.mark.parametrize("text", ["[1,2,3]", "[a, b]", "", "[1e3, 2]", "[nan, 1]"])
def test_latlng_rejects(text: str) -> None:
    with pytest.raises(InvalidValue):
        parse_latlng(text)
