"""The typed messages against the schemas they mirror and the spec examples they carry.

The consistency test walks every Struct with `msgspec.inspect` beside its JSON Schema, so
a field renamed, made optional, bounded differently or given another enum value on one
side only fails here. The round trips run the spec's examples and generated payloads
through `from_payload` / `to_payload`.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jsonschema
import msgspec
import msgspec.inspect as mi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import os3p.actions
from os3p import messages as m
from os3p.actions import STATION_INITIATED, Action
from os3p.formats import DATE_TIME_PATTERN, parse_date_time

SCHEMA_DIR = Path(os3p.actions.__file__).parent / "schemas"
EXAMPLE_DIR = Path(__file__).parent / "spec_examples"

Payload = dict[str, Any]

CLASSES: dict[str, type[msgspec.Struct]] = {
    cls.__name__: cls for pair in m.MESSAGE_TYPES.values() for cls in pair
}
TITLES = sorted(CLASSES)


@cache
def load_schema(title: str) -> Payload:
    schema: Payload = json.loads((SCHEMA_DIR / f"{title}.json").read_text(encoding="utf-8"))
    return schema


def _date_time_checker() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker(formats=())

    @checker.checks("date-time")
    def is_date_time(instance: object) -> bool:
        return not isinstance(instance, str) or re.search(DATE_TIME_PATTERN, instance) is not None

    return checker


@cache
def validator(title: str) -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(load_schema(title), format_checker=_date_time_checker())


def _example_title(path: Path) -> str:
    return path.name.split(".", 1)[0]


def _load(path: Path) -> Payload:
    payload: Payload = json.loads(path.read_text(encoding="utf-8"))
    return payload


EXAMPLES = sorted(EXAMPLE_DIR.glob("*.json"))
# Which examples the schemas reject, and why, is test_schemas.py's and the errata's business;
# here the messages must simply agree with the schemas on each of them.
VALID_EXAMPLES = [p for p in EXAMPLES if validator(_example_title(p)).is_valid(_load(p))]
INVALID_EXAMPLES = [p for p in EXAMPLES if p not in VALID_EXAMPLES]


def normalised(schema: Payload, value: Any) -> Any:
    """`value` with every schema date-time parsed, so `...:00` and `...:00Z` compare equal."""
    if schema.get("format") == "date-time":
        return parse_date_time(value)
    if schema.get("type") == "object":
        return {k: normalised(schema["properties"][k], v) for k, v in value.items()}
    if schema.get("type") == "array":
        return [normalised(schema["items"], v) for v in value]
    return value


def assert_round_trip(title: str, payload: Payload) -> None:
    message = m.from_payload(CLASSES[title], payload)
    again = m.to_payload(message)
    validator(title).validate(again)
    schema = load_schema(title)
    assert normalised(schema, again) == normalised(schema, payload)
    assert m.from_payload(CLASSES[title], again) == message


# --- The table -------------------------------------------------------------------------


def test_message_types_is_a_constant_table_of_every_action() -> None:
    assert isinstance(m.MESSAGE_TYPES, MappingProxyType)
    assert set(m.MESSAGE_TYPES) == set(Action)
    for action, (request, response) in m.MESSAGE_TYPES.items():
        assert (request.__name__, response.__name__) == (f"{action}Request", f"{action}Response")


def test_every_message_class_is_exported() -> None:
    assert set(TITLES) <= set(m.__all__)


# --- Consistency with the schemas ------------------------------------------------------

# Keywords the walk below understands; a schema growing another one must teach it first.
_KEYWORDS = {
    "$schema", "title", "type", "properties", "additionalProperties", "required", "items",
    "enum", "format", "minimum", "maximum", "maxLength", "minItems", "maxItems", "description",
}  # fmt: skip


def _check(t: mi.Type, schema: Payload, path: str) -> None:
    assert set(schema) <= _KEYWORDS, path
    kind = schema["type"]
    if kind == "object":
        assert isinstance(t, mi.StructType), path
        _check_struct(t, schema, path)
    elif kind == "array":
        assert isinstance(t, mi.VarTupleType), path
        bounds = (schema.get("minItems"), schema.get("maxItems"))
        assert (t.min_length, t.max_length) == bounds, path
        _check(t.item_type, schema["items"], f"{path}[]")
    elif "enum" in schema:
        assert isinstance(t, mi.EnumType), path
        assert [member.value for member in t.cls] == schema["enum"], path
    elif schema.get("format") == "date-time":
        assert isinstance(t, mi.DateTimeType), path
    elif kind == "string":
        assert isinstance(t, mi.StrType), path
        assert (t.max_length, t.min_length, t.pattern) == (schema.get("maxLength"), None, None), (
            path
        )
    elif kind == "integer":
        assert isinstance(t, mi.IntType), path
        assert (t.ge, t.le) == (schema.get("minimum"), schema.get("maximum")), path
    else:
        assert kind == "boolean", path
        assert isinstance(t, mi.BoolType), path


def _check_struct(t: mi.StructType, schema: Payload, path: str) -> None:
    config = t.cls.__struct_config__
    assert config.frozen, path
    assert config.omit_defaults, path
    assert config.forbid_unknown_fields, path
    assert t.cls.__match_args__ == (), f"{path}: not kw_only"
    assert schema["additionalProperties"] is False, path
    # Same order too, so that encoded payloads read like the spec's.
    assert [f.encode_name for f in t.fields] == list(schema["properties"]), path
    required = set(schema.get("required", []))
    for field in t.fields:
        where = f"{path}.{field.encode_name}"
        assert field.required == (field.encode_name in required), where
        field_type = field.type
        if not field.required:
            # Optional means absent: default None, which omit_defaults leaves out.
            assert field.default is None, where
            assert isinstance(field_type, mi.UnionType), where
            others = [u for u in field_type.types if not isinstance(u, mi.NoneType)]
            assert len(others) == 1, where
            field_type = others[0]
        _check(field_type, schema["properties"][field.encode_name], where)


@pytest.mark.parametrize("title", TITLES)
def test_struct_matches_schema(title: str) -> None:
    info = mi.type_info(CLASSES[title])
    assert isinstance(info, mi.StructType)
    _check(info, load_schema(title), title)


def test_wire_names_are_declared_not_derived() -> None:
    # STYLE.md: no rename heuristics; a field whose wire name differs says so itself.
    source = Path(m.__file__).read_text(encoding="utf-8")
    assert re.search(r"rename\s*=", source) is None
    for cls in CLASSES.values():
        for name, wire in zip(cls.__struct_fields__, cls.__struct_encode_fields__, strict=True):
            assert wire == name or f'name="{wire}"' in source, (cls.__name__, name)


def test_trigger_message_wire_name_is_connector_id() -> None:
    # Errata S14: OCPP's name on the wire, the contactor in Python.
    msg = m.TriggerMessageRequest(
        requested_message=m.MessageTrigger.STREETLIGHT_STATUS_NOTIFICATION, contactor_id=3
    )
    assert m.to_payload(msg) == {
        "requestedMessage": "StreetlightStatusNotification",
        "connectorId": 3,
    }


def test_message_trigger_offers_every_station_initiated_action() -> None:
    assert {t.value for t in m.MessageTrigger} == {a.value for a in STATION_INITIATED}


# --- Spec examples ---------------------------------------------------------------------


@pytest.mark.parametrize("example", VALID_EXAMPLES, ids=lambda p: p.name)
def test_spec_example_round_trips(example: Path) -> None:
    assert_round_trip(_example_title(example), _load(example))


@pytest.mark.parametrize("example", INVALID_EXAMPLES, ids=lambda p: p.name)
def test_example_rejected_by_schema_is_rejected_by_message(example: Path) -> None:
    title = _example_title(example)
    with pytest.raises(m.PayloadError) as caught:
        m.from_payload(CLASSES[title], _load(example))
    assert caught.value.message_type is CLASSES[title]


def test_corrected_profile_example_round_trips() -> None:
    payload = _load(EXAMPLE_DIR / "SetStreetlightProfileRequest.json")
    payload["clearAllSchedules"] = payload.pop("clearSchedule")
    assert_round_trip("SetStreetlightProfileRequest", payload)
    profile = m.from_payload(m.SetStreetlightProfileRequest, payload).streetlight_profiles[0]
    assert profile.day_schedule[0].start == m.TimeSpec(kind=m.TimeKind.SUNSET, offset=3600)
    assert profile.valid_from == datetime(2015, 6, 6, tzinfo=UTC)


# --- Datetimes -------------------------------------------------------------------------


def test_offset_less_date_time_decodes_as_utc_and_encodes_with_z() -> None:
    msg = m.from_payload(
        m.GetEffectiveStreetlightDayScheduleRequest, {"contactorId": 1, "at": "2015-07-07T00:00:00"}
    )
    assert msg.at == datetime(2015, 7, 7, tzinfo=UTC)
    assert m.to_payload(msg)["at"] == "2015-07-07T00:00:00Z"


def test_given_offset_is_kept() -> None:
    plus_two = timezone(timedelta(hours=2))
    msg = m.from_payload(m.HeartbeatResponse, {"currentTime": "2015-07-07T00:30:00+02:00"})
    assert msg.current_time.utcoffset() == plus_two.utcoffset(None)
    assert m.to_payload(msg) == {"currentTime": "2015-07-07T00:30:00+02:00"}


def test_naive_datetime_given_in_python_is_utc_too() -> None:
    msg = m.HeartbeatResponse(current_time=datetime(2016, 7, 12, 12, 0))
    assert msg.current_time.tzinfo is UTC


def test_nested_datetimes_are_normalised() -> None:
    msg = m.MeterValuesRequest(
        meter_value=(m.MeterValue(timestamp=datetime(2016, 7, 12), sampled_value=()),)
    )
    assert msg.meter_value[0].timestamp.tzinfo is UTC


# --- Conversion errors and immutability ------------------------------------------------

REJECTED = [
    ("unknown-field", m.ResetRequest, {"type": "Soft"}),
    ("contactor-out-of-range", m.ResumeStreetlightRequest, {"contactorId": 5}),
    ("missing-required", m.HeartbeatResponse, {}),
    ("enum-value", m.ResetResponse, {"status": "accepted"}),
    ("string-for-int", m.ResumeStreetlightRequest, {"contactorId": "1"}),
    ("request-id-37", m.FirmwareStatusNotificationRequest,
     {"status": "None", "requestId": "x" * 37}),
    ("calendar", m.HeartbeatResponse, {"currentTime": "2015-02-30T00:00:00Z"}),
    ("five-periods", m.SetStreetlightProfileRequest, {"contactorId": 1, "streetlightProfiles": [
        {"profileId": 1, "stackLevel": 0, "recurrencyKind": "Daily", "daySchedule": [
            {"start": {"kind": "Sunset"}, "end": {"kind": "Sunrise"}}] * 5}]}),
]  # fmt: skip


@pytest.mark.parametrize(("cls", "payload"), [pytest.param(c, p, id=i) for i, c, p in REJECTED])
def test_from_payload_raises_payload_error(cls: type[msgspec.Struct], payload: Payload) -> None:
    with pytest.raises(m.PayloadError) as caught:
        m.from_payload(cls, payload)
    assert caught.value.message_type is cls
    assert caught.value.detail in str(caught.value)


def test_messages_are_frozen_and_hashable() -> None:
    msg = m.GetConfigurationRequest(key=("Geolocation",))
    with pytest.raises(AttributeError):
        msg.key = ()  # type: ignore[misc]
    assert hash(msg) == hash(m.GetConfigurationRequest(key=("Geolocation",)))


# --- Generated payloads ----------------------------------------------------------------

_OFFSETS = st.one_of(
    st.none(),
    st.just(UTC),
    st.builds(lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-1439, 1439)),
)


def _date_time_text(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def payloads(t: mi.Type) -> st.SearchStrategy[Any]:
    """Payloads for a message type, built from its msgspec description.

    Deriving them from the Struct alone is not circular: every payload must also pass the
    schema, which the Struct does not see.
    """
    if isinstance(t, mi.StructType):
        required = {f.encode_name: payloads(f.type) for f in t.fields if f.required}
        optional = {f.encode_name: payloads(f.type) for f in t.fields if not f.required}
        return st.fixed_dictionaries(required, optional=optional)
    if isinstance(t, mi.UnionType):  # T | None: absent is covered by `optional` above
        return st.one_of([payloads(u) for u in t.types if not isinstance(u, mi.NoneType)])
    if isinstance(t, mi.VarTupleType):
        return st.lists(payloads(t.item_type), min_size=t.min_length or 0, max_size=t.max_length)
    if isinstance(t, mi.EnumType):
        return st.sampled_from([member.value for member in t.cls])
    if isinstance(t, mi.DateTimeType):
        return st.datetimes(timezones=_OFFSETS).map(_date_time_text)
    if isinstance(t, mi.StrType):
        return st.text(max_size=t.max_length if t.max_length is not None else 40)
    if isinstance(t, mi.IntType):
        return st.integers(min_value=t.ge, max_value=t.le)
    assert isinstance(t, mi.BoolType)
    return st.booleans()


GENERATED = [
    "BootNotificationRequest",
    "MeterValuesRequest",
    "StatusNotificationRequest",
    "GetConfigurationResponse",
    "GetFileRequest",
    "SetStreetlightProfileRequest",
    "TriggerMessageRequest",
    "UpdateFirmwareRequest",
]


@pytest.mark.parametrize("title", GENERATED)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_payload_round_trips(title: str, data: st.DataObject) -> None:
    payload = data.draw(payloads(mi.type_info(CLASSES[title])))
    validator(title).validate(payload)
    assert_round_trip(title, payload)
