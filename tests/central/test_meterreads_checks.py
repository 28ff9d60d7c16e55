"""The services' static parameter checks (what a queue runs at submission)."""

from __future__ import annotations

from typing import Any

import pytest

from central.errors import CommandError, CommandTimeout
from central.meterreads import CHECKS, SERVICES, BadParams, NoAnswer, StationRefused
from central.operations import Right

PERIOD = {"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"}

GOOD: list[tuple[str, dict[str, Any]]] = [
    ("ActualMeterReads", {}),
    ("ActualMeterReads", {"timeout": 30, "settle": 0.5}),
    ("PeriodicMeterReads", PERIOD),
    ("PeriodicMeterReads", {**PERIOD, "kind": "INTERVAL", "meterId": "E1",
                            "timeZone": "Europe/Amsterdam", "fillGaps": False, "timeout": 600}),
    ("FindEvents", {}),
    ("FindEvents", {**PERIOD, "categories": ["FaultsOpen", "BootNotification"], "limit": 5}),
    ("GetFirmwareVersion", {}),
    ("SynchronizeTime", {}),
]  # fmt: skip

BAD: list[tuple[str, dict[str, Any], str]] = [
    ("ActualMeterReads", {"timeout": 0}, "timeout"),
    ("ActualMeterReads", {"settle": True}, "settle"),
    ("ActualMeterReads", {"colour": 1}, "unknown parameters: colour"),
    ("PeriodicMeterReads", {}, "from: required"),
    ("PeriodicMeterReads", {**PERIOD, "kind": "WEEKLY"}, "kind"),
    ("PeriodicMeterReads", {**PERIOD, "from": "yesterday"}, "RFC 3339"),
    ("PeriodicMeterReads", {"from": PERIOD["to"], "to": PERIOD["from"]}, "empty"),
    ("PeriodicMeterReads", {"from": "2026-01-01T00:00:00Z", "to": "2027-01-01T00:00:00Z",
                            "kind": "INTERVAL"}, "shorter period"),
    ("PeriodicMeterReads", {**PERIOD, "timeZone": "Mars/Olympus"}, "IANA"),
    ("PeriodicMeterReads", {**PERIOD, "meterId": 7}, "meterId"),
    ("PeriodicMeterReads", {**PERIOD, "fillGaps": "yes"}, "fillGaps"),
    ("FindEvents", {"categories": []}, "categories"),
    ("FindEvents", {"categories": ["Nonsense"]}, "categories"),
    ("FindEvents", {"limit": 0}, "limit"),
    ("FindEvents", {"to": 5}, "to"),
    ("GetFirmwareVersion", {"x": 1}, "unknown"),
    ("SynchronizeTime", {"x": 1}, "unknown"),
]  # fmt: skip


@pytest.mark.parametrize(("service", "params"), GOOD)
def test_good_parameters_pass(service: str, params: dict[str, Any]) -> None:
    CHECKS[service](params)


@pytest.mark.parametrize(("service", "params", "reason"), BAD)
def test_bad_parameters_are_a_value_error_with_the_reason(
    service: str, params: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ValueError, match=reason) as raised:
        CHECKS[service](params)
    assert isinstance(raised.value, BadParams)


def test_every_service_has_a_check_and_a_right() -> None:
    assert set(CHECKS) == set(SERVICES)
    for right, _ in SERVICES.values():
        Right(right)  # one of the queue's rights


def test_station_failures_are_command_errors_a_queue_understands() -> None:
    refused = StationRefused("S1", "TriggerMessage", "MeterValues: Rejected")
    silent = NoAnswer("S1", "TriggerMessage", "no MeterValues within 5 s")
    assert isinstance(refused, CommandError)
    assert isinstance(silent, CommandTimeout)
    assert silent.reason == "no MeterValues within 5 s"
