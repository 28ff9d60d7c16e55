"""What the central stores: the station-initiated messages (OS³P 0.4 §6) and
the records the queries return.

Every message type names its wire fields explicitly in `from_payload` /
`to_payload`; the payload is assumed to have passed the OS³P schema validation
already (the server validates before it stores). Timestamps are aware datetimes
in UTC; a wire timestamp without an offset is read as UTC.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "DEFAULT_CONTEXT",
    "DEFAULT_FORMAT",
    "DEFAULT_LOCATION",
    "DEFAULT_UNIT",
    "BootNotification",
    "BootPolicy",
    "Event",
    "EventKind",
    "FirmwareStatus",
    "GetFileStatus",
    "LightState",
    "Liveness",
    "MeterSample",
    "MeterValue",
    "ModeState",
    "OpenFault",
    "SampledValue",
    "Station",
    "StationState",
    "StatusNotification",
    "StreetlightMode",
    "StreetlightStatus",
    "UploadedFile",
    "format_timestamp",
    "meter_values_from_payload",
    "parse_timestamp",
]


def parse_timestamp(text: str) -> datetime:
    """A wire `date-time` as an aware UTC datetime (no offset: read as UTC)."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_timestamp(value: datetime) -> str:
    """The wire form we send: RFC 3339 in UTC with a `Z`."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class BootPolicy(enum.StrEnum):
    """What the central answers a station's BootNotification with (§6.1 response)."""

    ACCEPTED = "Accepted"
    PENDING = "Pending"
    REJECTED = "Rejected"


class EventKind(enum.StrEnum):
    """The kinds `Store.events()` returns, named after the OS³P action that carried them."""

    BOOT = "BootNotification"
    STATUS = "StatusNotification"
    STREETLIGHT_STATUS = "StreetlightStatusNotification"
    STREETLIGHT_MODE = "StreetlightModeStatusNotification"
    FIRMWARE_STATUS = "FirmwareStatusNotification"
    GET_FILE_STATUS = "GetFileStatusNotification"
    FILE_UPLOADED = "FileUploaded"


@dataclass(frozen=True)
class Station:
    """A registry entry. The password hash never leaves the store; `has_password` says
    whether one is set. `cert_identity` is what the server compares with the client
    certificate, written as `sha256:<hex fingerprint>` or `CN=<subject common name>`
    (the store does not interpret it)."""

    station_id: str
    has_password: bool
    cert_identity: str | None
    policy: BootPolicy
    heartbeat_interval: int
    created_at: datetime
    enabled: bool


@dataclass(frozen=True)
class BootNotification:
    """OS³P 0.4 §6.1 BootNotificationRequest (all seven fields are required)."""

    vendor: str
    model: str
    station_number: str
    serial_number: str
    firmware_version: str
    iccid: str
    imsi: str

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> BootNotification:
        return cls(
            vendor=payload["vendor"],
            model=payload["model"],
            station_number=payload["stationNumber"],
            serial_number=payload["serialNumber"],
            firmware_version=payload["firmwareVersion"],
            iccid=payload["iccid"],
            imsi=payload["imsi"],
        )

    def to_payload(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor,
            "model": self.model,
            "stationNumber": self.station_number,
            "serialNumber": self.serial_number,
            "firmwareVersion": self.firmware_version,
            "iccid": self.iccid,
            "imsi": self.imsi,
        }


def _put(payload: dict[str, Any], key: str, value: object) -> None:
    if value is not None:
        payload[key] = value


@dataclass(frozen=True)
class StatusNotification:
    """OS³P 0.4 §6.6 StatusNotificationRequest; absent optional fields are None."""

    status: str
    error_code: str
    info: str | None = None
    timestamp: datetime | None = None
    vendor_id: str | None = None
    vendor_error_code: str | None = None
    test: bool | None = None

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> StatusNotification:
        timestamp = payload.get("timestamp")
        return cls(
            status=payload["status"],
            error_code=payload["errorCode"],
            info=payload.get("info"),
            timestamp=None if timestamp is None else parse_timestamp(timestamp),
            vendor_id=payload.get("vendorId"),
            vendor_error_code=payload.get("vendorErrorCode"),
            test=payload.get("test"),
        )

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"status": self.status, "errorCode": self.error_code}
        _put(payload, "info", self.info)
        if self.timestamp is not None:
            payload["timestamp"] = format_timestamp(self.timestamp)
        _put(payload, "vendorId", self.vendor_id)
        _put(payload, "vendorErrorCode", self.vendor_error_code)
        _put(payload, "test", self.test)
        return payload


@dataclass(frozen=True)
class StreetlightStatus:
    """OS³P 0.4 §6.8 StreetlightStatusNotificationRequest."""

    contactor_id: int
    status: str
    timestamp: datetime
    unexpected: bool | None = None

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> StreetlightStatus:
        return cls(
            contactor_id=payload["contactorId"],
            status=payload["status"],
            timestamp=parse_timestamp(payload["timestamp"]),
            unexpected=payload.get("unexpected"),
        )

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "contactorId": self.contactor_id,
            "status": self.status,
            "timestamp": format_timestamp(self.timestamp),
        }
        _put(payload, "unexpected", self.unexpected)
        return payload


@dataclass(frozen=True)
class StreetlightMode:
    """OS³P 0.4 §6.7 StreetlightModeStatusNotificationRequest; `contactor_id` None
    means the mode holds for all contactors (Table 7)."""

    contactor_id: int | None
    mode: str
    timestamp: datetime

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> StreetlightMode:
        return cls(
            contactor_id=payload.get("contactorId"),
            mode=payload["mode"],
            timestamp=parse_timestamp(payload["timestamp"]),
        )

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"mode": self.mode, "timestamp": format_timestamp(self.timestamp)}
        _put(payload, "contactorId", self.contactor_id)
        return payload


# OS³P 0.4 §6.5 Table 3: defaults of the optional sampledValue fields. They are
# applied before storing so that the duplicate key has no NULLs in it.
DEFAULT_CONTEXT = "Sample.Periodic"
DEFAULT_FORMAT = "Raw"
DEFAULT_UNIT = "-"
DEFAULT_LOCATION = "-"


@dataclass(frozen=True)
class SampledValue:
    """One sampledValue of §6.5; `value` stays the exact wire string."""

    measurand: str
    value: str
    unit: str = DEFAULT_UNIT
    location: str = DEFAULT_LOCATION
    context: str = DEFAULT_CONTEXT
    format: str = DEFAULT_FORMAT

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> SampledValue:
        return cls(
            measurand=payload["measurand"],
            value=payload["value"],
            unit=payload.get("unit", DEFAULT_UNIT),
            location=payload.get("location", DEFAULT_LOCATION),
            context=payload.get("context", DEFAULT_CONTEXT),
            format=payload.get("format", DEFAULT_FORMAT),
        )


@dataclass(frozen=True)
class MeterValue:
    """One meterValue of §6.5: a timestamp and its sampled values."""

    timestamp: datetime
    sampled_values: tuple[SampledValue, ...]


def meter_values_from_payload(payload: Mapping[str, Any]) -> tuple[MeterValue, ...]:
    """The meterValue list of a §6.5 MeterValuesRequest."""
    return tuple(
        MeterValue(
            timestamp=parse_timestamp(item["timestamp"]),
            sampled_values=tuple(SampledValue.from_payload(v) for v in item["sampledValue"]),
        )
        for item in payload["meterValue"]
    )


@dataclass(frozen=True)
class FirmwareStatus:
    """OS³P 0.4 §6.3 FirmwareStatusNotificationRequest."""

    status: str
    request_id: str | None = None

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> FirmwareStatus:
        return cls(status=payload["status"], request_id=payload.get("requestId"))


@dataclass(frozen=True)
class GetFileStatus:
    """OS³P 0.4 §6.2 GetFileStatusNotificationRequest."""

    status: str
    request_id: str | None = None

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> GetFileStatus:
        return cls(status=payload["status"], request_id=payload.get("requestId"))


@dataclass(frozen=True)
class UploadedFile:
    """A file a station uploaded to the file server after a GetFile request."""

    station_id: str
    request_id: str | None
    file_name: str
    stored_path: str
    size: int
    sha256: str
    uploaded_at: datetime


@dataclass(frozen=True)
class Liveness:
    """Last message and connection state of a station (written by the server)."""

    station_id: str
    last_seen: datetime | None
    connection_id: str | None
    connected_since: datetime | None
    disconnected_at: datetime | None

    @property
    def connected(self) -> bool:
        return self.connected_since is not None and self.disconnected_at is None


@dataclass(frozen=True)
class LightState:
    """The latest StreetlightStatusNotification of one contactor."""

    contactor_id: int
    status: str
    timestamp: datetime
    unexpected: bool | None
    received_at: datetime


@dataclass(frozen=True)
class ModeState:
    """The mode in force for one contactor: the latest mode notification naming it or
    naming all contactors (`station_wide`)."""

    contactor_id: int
    mode: str
    timestamp: datetime
    station_wide: bool
    received_at: datetime


@dataclass
class StationState:
    """What a station last reported of itself: the operator's station list."""

    boot: BootNotification | None = None
    lights: dict[int, LightState] = field(default_factory=dict)
    modes: dict[int, ModeState] = field(default_factory=dict)


@dataclass(frozen=True)
class OpenFault:
    """A fault raised by a StatusNotification and not yet resolved (see `faults`)."""

    station_id: str
    error_code: str
    vendor_id: str
    vendor_error_code: str
    info: str | None
    raised_at: datetime
    last_raised_at: datetime
    received_at: datetime


@dataclass(frozen=True)
class MeterSample:
    """One stored sampled value."""

    station_id: str
    timestamp: datetime
    measurand: str
    value: str
    unit: str
    location: str
    context: str
    format: str
    received_at: datetime


@dataclass(frozen=True)
class Event:
    """One stored event for the operator: `details` is the payload as the station sent
    it (wire names), plus `answeredStatus` for a BootNotification and the file
    metadata for FileUploaded. `occurred_at` is the station's timestamp when the
    message carries one, else the receive time."""

    kind: EventKind
    station_id: str
    occurred_at: datetime
    received_at: datetime
    details: Mapping[str, Any]
