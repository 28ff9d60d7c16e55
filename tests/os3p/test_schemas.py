"""The 42 schemas against the spec's own examples and against each repair we made.

The schemas are the single source of truth (DESIGN.md); these tests keep them honest:
well-formed draft-04, one request and one response per action, every example of
OS³P 0.4 §6 and §7 accepted unless docs/spec-errata.md says why not, and each repair
listed in the errata pinned by a negative case so that nobody quietly reverts it.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema
import jsonschema
import pytest

import os3p.actions
from os3p.actions import Action
from os3p.formats import DATE_TIME_PATTERN

SCHEMA_DIR = Path(os3p.actions.__file__).parent / "schemas"
EXAMPLE_DIR = Path(__file__).parent / "spec_examples"
ERRATA = Path(__file__).parents[2] / "docs" / "spec-errata.md"

Payload = dict[str, Any]


def _date_time_checker() -> jsonschema.FormatChecker:
    # Only our date-time: jsonschema's own "uri" check needs an optional package and the
    # validator (fastjsonschema) applies its own, so it is not what these tests pin.
    checker = jsonschema.FormatChecker(formats=())

    @checker.checks("date-time")
    def is_date_time(instance: object) -> bool:
        return not isinstance(instance, str) or re.search(DATE_TIME_PATTERN, instance) is not None

    return checker


@cache
def load_schema(title: str) -> Payload:
    schema: Payload = json.loads((SCHEMA_DIR / f"{title}.json").read_text(encoding="utf-8"))
    return schema


@cache
def validator(title: str) -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(load_schema(title), format_checker=_date_time_checker())


def schema_title(example: Path) -> str:
    """`StreetlightModeStatusNotificationRequest.one-contactor.json` → its schema's title."""
    return example.name.split(".", 1)[0]


def load_example(example: Path) -> Payload:
    payload: Payload = json.loads(example.read_text(encoding="utf-8"))
    return payload


def _without(*keys: str) -> Callable[[Payload], Payload]:
    def fix(payload: Payload) -> Payload:
        return {k: v for k, v in payload.items() if k not in keys}

    return fix


def _renamed(old: str, new: str) -> Callable[[Payload], Payload]:
    def fix(payload: Payload) -> Payload:
        return {(new if k == old else k): v for k, v in payload.items()}

    return fix


# Spec examples the schemas reject on purpose, each with the correction docs/spec-errata.md
# prescribes (None: nothing to correct, the example only illustrates framing).
KNOWN_INVALID: dict[str, Callable[[Payload], Payload] | None] = {
    "BootNotificationRequest.section-4.2.json": None,
    "GetEffectiveStreetlightDayScheduleResponse.json": _without("status"),
    "ResetRequest.json": _without("type"),
    "ResumeStreetlightRequest.json": _without("type"),
    "SetStreetlightProfileRequest.json": _renamed("clearSchedule", "clearAllSchedules"),
}

ALL_TITLES = sorted(f"{action}{kind}" for action in Action for kind in ("Request", "Response"))
EXAMPLES = sorted(EXAMPLE_DIR.glob("*.json"))
VALID_EXAMPLES = [e for e in EXAMPLES if e.name not in KNOWN_INVALID]


def test_one_request_and_one_response_schema_per_action() -> None:
    assert len(ALL_TITLES) == 42
    assert sorted(p.stem for p in SCHEMA_DIR.glob("*.json")) == ALL_TITLES


@pytest.mark.parametrize("title", ALL_TITLES)
def test_schema_is_draft4_and_titled_after_its_file(title: str) -> None:
    schema = load_schema(title)
    jsonschema.Draft4Validator.check_schema(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    assert schema["title"] == title


def _object_schemas(schema: Payload, path: str) -> Iterator[tuple[str, Payload]]:
    if schema.get("type") == "object":
        yield path, schema
        for name, sub in schema.get("properties", {}).items():
            yield from _object_schemas(sub, f"{path}.{name}")
    if schema.get("type") == "array":
        yield from _object_schemas(schema["items"], f"{path}[]")


@pytest.mark.parametrize("title", ALL_TITLES)
def test_every_object_is_closed_and_requires_only_what_it_declares(title: str) -> None:
    # Errata "strictness": nested objects are as closed as the top level.
    for path, schema in _object_schemas(load_schema(title), title):
        assert schema["additionalProperties"] is False, path
        assert set(schema.get("required", [])) <= set(schema["properties"]), path


def test_every_example_file_names_an_existing_schema() -> None:
    assert {schema_title(e) for e in EXAMPLES} == set(ALL_TITLES)
    assert set(KNOWN_INVALID) <= {e.name for e in EXAMPLES}


@pytest.mark.parametrize("example", VALID_EXAMPLES, ids=lambda p: p.name)
def test_spec_example_is_valid(example: Path) -> None:
    validator(schema_title(example)).validate(load_example(example))


@pytest.mark.parametrize("name", sorted(KNOWN_INVALID))
def test_known_invalid_example_fails_and_is_documented(name: str) -> None:
    example = EXAMPLE_DIR / name
    title = schema_title(example)
    payload = load_example(example)
    assert not validator(title).is_valid(payload)
    assert f"`{name}`" in ERRATA.read_text(encoding="utf-8")
    fix = KNOWN_INVALID[name]
    if fix is not None:
        validator(title).validate(fix(payload))


def _example(name: str) -> Payload:
    return load_example(EXAMPLE_DIR / f"{name}.json")


def _edit(name: str, edit: Callable[[Payload], object]) -> Payload:
    """A spec example with one deliberate change, so a case isolates one rule."""
    payload = copy.deepcopy(_example(name))
    edit(payload)
    return payload


def _profile_example() -> Payload:
    return _renamed("clearSchedule", "clearAllSchedules")(_example("SetStreetlightProfileRequest"))


def _edit_profile(edit: Callable[[Payload], object]) -> Payload:
    payload = _profile_example()
    edit(payload)
    return payload


_SAMPLE = {"value": "21.5", "measurand": "AmbientTemperature"}


def _meter_values(**sample: object) -> Payload:
    return {"meterValue": [{"timestamp": "2016-07-12T12:00:00Z", "sampledValue": [sample]}]}


# (id, schema title, payload, accepted?). Each id names the erratum it pins.
# One case per two lines reads as a table; the formatter would spread each over six.
# fmt: off
RULE_CASES: list[tuple[str, str, Payload, bool]] = [
    # BootNotification: the page-break trailing comma lost nothing; all seven stay required.
    ("boot-imsi-still-required", "BootNotificationRequest",
     _edit("BootNotificationRequest", lambda p: p.pop("imsi")), False),
    # MeterValues: the sampledValue item holds its properties, required list and closure.
    ("meter-values-board-temperature", "MeterValuesRequest",
     _meter_values(value="30", measurand="BoardTemperature", unit="C"), True),
    ("meter-values-celsius-is-C", "MeterValuesRequest",
     _meter_values(**_SAMPLE, unit="Celsius"), False),
    ("meter-values-amp-is-A", "MeterValuesRequest", _meter_values(**_SAMPLE, unit="Amp"), False),
    ("meter-values-dash-is-no-unit", "MeterValuesRequest",
     _meter_values(**_SAMPLE, unit="-"), False),
    ("meter-values-context-enum-applies", "MeterValuesRequest",
     _meter_values(**_SAMPLE, context="Periodic"), False),
    ("meter-values-location-enum-applies", "MeterValuesRequest",
     _meter_values(**_SAMPLE, location="Outlet"), False),
    ("meter-values-all-optional-fields", "MeterValuesRequest",
     _meter_values(**_SAMPLE, context="Sample.Clock", format="Raw", location="Body", unit="C"),
     True),
    ("meter-values-measurand-required", "MeterValuesRequest", _meter_values(value="1"), False),
    ("meter-values-sample-closed", "MeterValuesRequest",
     _meter_values(**_SAMPLE, phase="L1"), False),
    ("meter-values-meter-value-closed", "MeterValuesRequest",
     _edit("MeterValuesRequest", lambda p: p["meterValue"][0].update(extra=1)), False),
    ("meter-values-timestamp-required", "MeterValuesRequest",
     _edit("MeterValuesRequest", lambda p: p["meterValue"][0].pop("timestamp")), False),
    # StatusNotification: Table 6 "statuses" are error codes, not statuses.
    ("status-ground-failure-is-error-code", "StatusNotificationRequest",
     {"status": "Faulted", "errorCode": "GroundFailure", "test": True}, True),
    ("status-ground-failure-not-status", "StatusNotificationRequest",
     {"status": "GroundFailure", "errorCode": "NoError"}, False),
    # GetConfiguration: the configurationKey item is closed.
    ("configuration-key-closed", "GetConfigurationResponse",
     _edit("GetConfigurationResponse", lambda p: p["configurationKey"][0].update(x=1)), False),
    ("configuration-key-readonly-required", "GetConfigurationResponse",
     _edit("GetConfigurationResponse", lambda p: p["configurationKey"][0].pop("readonly")),
     False),
    # GetEffectiveStreetlightDaySchedule: additionalProperties/required belong to the item.
    ("day-schedule-item-end-required", "GetEffectiveStreetlightDayScheduleResponse",
     {"contactorId": 1, "daySchedule": [{"start": "20:11:00"}]}, False),
    ("day-schedule-item-closed", "GetEffectiveStreetlightDayScheduleResponse",
     {"contactorId": 1, "daySchedule": [{"start": "20:11:00", "end": "23:00:00", "x": 1}]},
     False),
    ("day-schedule-empty-day", "GetEffectiveStreetlightDayScheduleResponse",
     {"contactorId": 1, "daySchedule": []}, True),
    ("effective-at-date-only-rejected", "GetEffectiveStreetlightDayScheduleRequest",
     {"contactorId": 1, "at": "2015-07-07"}, False),
    ("effective-at-with-offset", "GetEffectiveStreetlightDayScheduleRequest",
     {"contactorId": 1, "at": "2015-07-07T00:00:00+02:00"}, True),
    # ResetResponse: additionalProperties/required moved out of "properties".
    ("reset-response-status-required", "ResetResponse", {}, False),
    ("reset-response-closed", "ResetResponse", {"status": "Accepted", "type": "Soft"}, False),
    ("reset-request-no-type", "ResetRequest", {"type": "Hard"}, False),
    ("resume-request-no-type", "ResumeStreetlightRequest", {"type": "Immediate"}, False),
    ("resume-response-values", "ResumeStreetlightResponse",
     {"status": "RejectedLocalOverride"}, True),
    # SetStreetlightProfile: clearAllSchedules, closed nested objects, application-level limits.
    ("profile-clear-schedule-typo-rejected", "SetStreetlightProfileRequest",
     _example("SetStreetlightProfileRequest"), False),
    ("profile-corrected-example", "SetStreetlightProfileRequest", _profile_example(), True),
    ("profile-item-closed", "SetStreetlightProfileRequest",
     _edit_profile(lambda p: p["streetlightProfiles"][0].update(chargingRateUnit="W")), False),
    ("profile-period-closed", "SetStreetlightProfileRequest",
     _edit_profile(lambda p: p["streetlightProfiles"][0]["daySchedule"][0].update(x=1)), False),
    ("profile-time-spec-closed", "SetStreetlightProfileRequest",
     _edit_profile(
         lambda p: p["streetlightProfiles"][0]["daySchedule"][0]["start"].update(x=1)), False),
    ("profile-malformed-time-is-application-level", "SetStreetlightProfileRequest",
     _edit_profile(
         lambda p: p["streetlightProfiles"][0]["daySchedule"][1]["start"].update(time="25:99")),
     True),
    ("profile-valid-to-before-valid-from-is-application-level", "SetStreetlightProfileRequest",
     _edit_profile(lambda p: p["streetlightProfiles"][0].update(validTo="2014-01-01T00:00:00")),
     True),
    ("profile-high-stack-level-is-application-level", "SetStreetlightProfileRequest",
     _edit_profile(lambda p: p["streetlightProfiles"][0].update(stackLevel=10**6)), True),
    ("profile-five-periods-rejected", "SetStreetlightProfileRequest",
     _edit_profile(lambda p: p["streetlightProfiles"][0].update(
         daySchedule=p["streetlightProfiles"][0]["daySchedule"] * 3)), False),
    ("profile-response-closed", "SetStreetlightProfileResponse",
     {"status": "Accepted", "x": 1}, False),
    # TriggerMessage: connectorId is the contactor id, 1..4.
    ("trigger-contactor-4", "TriggerMessageRequest",
     {"requestedMessage": "StreetlightStatusNotification", "connectorId": 4}, True),
    ("trigger-contactor-0", "TriggerMessageRequest",
     {"requestedMessage": "StreetlightStatusNotification", "connectorId": 0}, False),
    ("trigger-contactor-5", "TriggerMessageRequest",
     {"requestedMessage": "StreetlightStatusNotification", "connectorId": 5}, False),
    ("trigger-contactor-id-not-wire-name", "TriggerMessageRequest",
     {"requestedMessage": "StreetlightStatusNotification", "contactorId": 1}, False),
    # requestId: 36 characters everywhere.
    ("file-status-request-id-36", "GetFileStatusNotificationRequest",
     {"status": "Uploading", "requestId": "08fb86a4-3e9b-11e6-ac61-9e71128cae77"}, True),
    ("file-status-request-id-37", "GetFileStatusNotificationRequest",
     {"status": "Uploading", "requestId": "x" * 37}, False),
    ("firmware-status-request-id-36", "FirmwareStatusNotificationRequest",
     {"status": "Installed", "requestId": "08fb86a4-3e9b-11e6-ac61-9e71128cae77"}, True),
    ("firmware-status-request-id-37", "FirmwareStatusNotificationRequest",
     {"status": "Installed", "requestId": "x" * 37}, False),
    # ClearSingleStreetlightProfile: criteria together are allowed (AND).
    ("clear-profile-all-criteria", "ClearSingleStreetlightProfileRequest",
     {"profileId": 2, "contactorId": 1, "stackLevel": 3}, True),
    ("clear-profile-no-criteria", "ClearSingleStreetlightProfileRequest", {}, True),
    # UpdateFirmware: no negative retries.
    ("firmware-retries-negative", "UpdateFirmwareRequest",
     _edit("UpdateFirmwareRequest", lambda p: p.update(retries=-1)), False),
    ("firmware-retry-interval-negative", "UpdateFirmwareRequest",
     _edit("UpdateFirmwareRequest", lambda p: p.update(retryInterval=-1)), False),
    ("firmware-retries-zero", "UpdateFirmwareRequest",
     _edit("UpdateFirmwareRequest", lambda p: p.update(retries=0, retryInterval=0)), True),
    # GetFile: fileName stays required, "" when Rejected.
    ("get-file-rejected-empty-name", "GetFileResponse", {"status": "Rejected", "fileName": ""},
     True),
    ("get-file-rejected-no-name", "GetFileResponse", {"status": "Rejected"}, False),
    # date-time: RFC 3339 with optional offset, nothing looser.
    ("date-time-no-offset", "HeartbeatResponse", {"currentTime": "2013-02-01T15:09:18"}, True),
    ("date-time-fraction-and-offset", "HeartbeatResponse",
     {"currentTime": "2013-02-01T15:09:18.486-05:30"}, True),
    ("date-time-space-separator", "HeartbeatResponse",
     {"currentTime": "2013-02-01 15:09:18Z"}, False),
    ("date-time-date-only", "HeartbeatResponse", {"currentTime": "2013-02-01"}, False),
    ("date-time-month-13", "HeartbeatResponse", {"currentTime": "2013-13-01T15:09:18Z"}, False),
    ("date-time-offset-without-colon", "HeartbeatResponse",
     {"currentTime": "2013-02-01T15:09:18+0100"}, False),
]
# fmt: on


@pytest.mark.parametrize(
    ("title", "payload", "accepted"),
    [pytest.param(title, payload, ok, id=case) for case, title, payload, ok in RULE_CASES],
)
def test_repaired_rule(title: str, payload: Payload, accepted: bool) -> None:
    assert validator(title).is_valid(payload) is accepted


@cache
def fast_validator(title: str) -> Callable[[Payload], object]:
    """The schema compiled as os3p.validation compiles it: fastjsonschema, our date-time."""
    return fastjsonschema.compile(load_schema(title), formats={"date-time": DATE_TIME_PATTERN})


def _fast_accepts(title: str, payload: Payload) -> bool:
    try:
        fast_validator(title)(payload)
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


@pytest.mark.parametrize(
    ("title", "payload", "accepted"),
    [pytest.param(title, payload, ok, id=case) for case, title, payload, ok in RULE_CASES]
    + [
        pytest.param(schema_title(e), load_example(e), e.name not in KNOWN_INVALID, id=e.name)
        for e in EXAMPLES
    ],
)
def test_fastjsonschema_agrees(title: str, payload: Payload, accepted: bool) -> None:
    # The runtime validator is fastjsonschema, these tests use jsonschema: both must read
    # the schemas, and our date-time, the same way.
    assert _fast_accepts(title, payload) is accepted
