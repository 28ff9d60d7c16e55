"""Typed OS³P 0.4 messages: one frozen msgspec Struct per request and response.

The JSON Schemas in `os3p/schemas/` are the source of truth (DESIGN.md); these classes
mirror them so handlers work with typed values instead of dicts.
`tests/os3p/test_messages.py` walks every Struct against its schema — wire names,
required-ness, enum values, bounds — so the two cannot drift apart.

Conventions, each chosen so that nothing about the wire is implicit:

- Attributes are snake_case; every attribute whose wire name differs declares it with
  `msgspec.field(name=...)`. No class-level `rename`, no case conversion.
- A field the schema does not require defaults to `None`, and `omit_defaults` leaves it
  out on the wire, so we never send `null` (no schema allows it). Decoding is one step
  laxer: `from_payload` takes an explicit `null` as absent, since `T | None` cannot tell
  the two apart; peer payloads meet the schema validator first, which rejects it.
- Arrays are tuples, so a frozen message is immutable all the way down (and hashable).
- Schema bounds (`minimum`, `maxLength`, `minItems`...) are repeated as `msgspec.Meta`, so
  `from_payload` enforces them too; unknown fields are rejected like the schemas'
  `additionalProperties: false` (docs/spec-errata.md S8).
- Datetimes are aware. The spec's examples omit the UTC offset (errata S20); msgspec
  decodes such a string to a naive `datetime`, which `__post_init__` reads as UTC, the
  same rule as `os3p.formats.parse_date_time`. Encoding writes RFC 3339 with `Z` or the
  offset, so what we send is valid for peers that insist on the offset.

Status enums follow their response tables; OverrideStreetlight and ResumeStreetlight share
`OverrideStatus` because §7.6 Table 12 and §7.7 Table 13 are the same table.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Annotated, Any, TypeVar, cast

import msgspec
import msgspec.structs

from os3p.actions import Action
from os3p.errors import PayloadError

__all__ = [
    "ACTION_OF",
    "MESSAGE_TYPES",
    "BootNotificationRequest",
    "BootNotificationResponse",
    "ChangeConfigurationRequest",
    "ChangeConfigurationResponse",
    "ClearProfileStatus",
    "ClearSingleStreetlightProfileRequest",
    "ClearSingleStreetlightProfileResponse",
    "ConfigurationKey",
    "ConfigurationStatus",
    "DayPeriod",
    "DaySchedulePeriod",
    "FileType",
    "FirmwareStatus",
    "FirmwareStatusNotificationRequest",
    "FirmwareStatusNotificationResponse",
    "GetConfigurationRequest",
    "GetConfigurationResponse",
    "GetEffectiveStreetlightDayScheduleRequest",
    "GetEffectiveStreetlightDayScheduleResponse",
    "GetFileRequest",
    "GetFileResponse",
    "GetFileStatus",
    "GetFileStatusNotificationRequest",
    "GetFileStatusNotificationResponse",
    "HeartbeatRequest",
    "HeartbeatResponse",
    "Location",
    "Measurand",
    "MessageTrigger",
    "MeterValue",
    "MeterValuesRequest",
    "MeterValuesResponse",
    "OverrideAction",
    "OverrideStatus",
    "OverrideStreetlightRequest",
    "OverrideStreetlightResponse",
    "PayloadError",
    "ReadingContext",
    "RecurrencyKind",
    "RegistrationStatus",
    "ResetMVFaultIndicatorRequest",
    "ResetMVFaultIndicatorResponse",
    "ResetMVFaultIndicatorStatus",
    "ResetRequest",
    "ResetResponse",
    "ResetStatus",
    "ResumeStreetlightRequest",
    "ResumeStreetlightResponse",
    "SampledValue",
    "SetStreetlightProfileRequest",
    "SetStreetlightProfileResponse",
    "SetStreetlightProfileStatus",
    "StationErrorCode",
    "StationStatus",
    "StatusNotificationRequest",
    "StatusNotificationResponse",
    "StreetlightMode",
    "StreetlightModeStatusNotificationRequest",
    "StreetlightModeStatusNotificationResponse",
    "StreetlightProfile",
    "StreetlightStatus",
    "StreetlightStatusNotificationRequest",
    "StreetlightStatusNotificationResponse",
    "TestMVFaultIndicatorRequest",
    "TestMVFaultIndicatorResponse",
    "TestMVFaultIndicatorStatus",
    "TimeKind",
    "TimeSpec",
    "TriggerMessageRequest",
    "TriggerMessageResponse",
    "TriggerMessageStatus",
    "UnitOfMeasure",
    "UpdateFirmwareRequest",
    "UpdateFirmwareResponse",
    "UploadStatus",
    "ValueFormat",
    "from_payload",
    "to_payload",
]


# --- Wire enums ------------------------------------------------------------------------


class RegistrationStatus(enum.StrEnum):
    """BootNotificationResponse `status` (§3.1: what the station may do next)."""

    ACCEPTED = "Accepted"
    PENDING = "Pending"
    REJECTED = "Rejected"


class UploadStatus(enum.StrEnum):
    """GetFileStatusNotificationRequest `status` (§6.2)."""

    NONE = "None"
    UPLOADED = "Uploaded"
    UPLOADING = "Uploading"
    UPLOAD_FAILED = "UploadFailed"


class FirmwareStatus(enum.StrEnum):
    """FirmwareStatusNotificationRequest `status`; `None` when no update runs (§4.1)."""

    NONE = "None"
    DOWNLOADING = "Downloading"
    DOWNLOADED = "Downloaded"
    DOWNLOAD_FAILED = "DownloadFailed"
    INSTALLING = "Installing"
    INSTALLATION_FAILED = "InstallationFailed"
    INSTALLED = "Installed"


class ReadingContext(enum.StrEnum):
    """SampledValue `context`; absent means `Sample.Periodic` (§6.5 Table 3)."""

    INTERRUPTION_BEGIN = "Interruption.Begin"
    INTERRUPTION_END = "Interruption.End"
    SAMPLE_CLOCK = "Sample.Clock"
    SAMPLE_PERIODIC = "Sample.Periodic"
    TRIGGER = "Trigger"
    OTHER = "Other"


class ValueFormat(enum.StrEnum):
    """SampledValue `format`; absent means `Raw` (§6.5 Table 3)."""

    RAW = "Raw"
    SIGNED_DATA = "SignedData"


class Measurand(enum.StrEnum):
    """SampledValue `measurand` (§6.5 Table 1, plus `BoardTemperature`: errata S4).

    Wire names are kept as inconsistent as the spec has them (`Voltage.L1N` but
    `DayMax.Voltage.L1`, errata T19).
    """

    AMBIENT_TEMPERATURE = "AmbientTemperature"
    OIL_TEMPERATURE = "OilTemperature"
    BOARD_TEMPERATURE = "BoardTemperature"
    VOLTAGE_L1N = "Voltage.L1N"
    VOLTAGE_L2N = "Voltage.L2N"
    VOLTAGE_L3N = "Voltage.L3N"
    CURRENT_L1 = "Current.L1"
    CURRENT_L2 = "Current.L2"
    CURRENT_L3 = "Current.L3"
    CURRENT_N = "Current.N"
    CURRENT_SUM = "Current.Sum"
    POWER_FACTOR_L1 = "PowerFactor.L1"
    POWER_FACTOR_L2 = "PowerFactor.L2"
    POWER_FACTOR_L3 = "PowerFactor.L3"
    POWER_FACTOR_SUM = "PowerFactor.Sum"
    ACTIVE_POWER_L1 = "ActivePower.L1"
    ACTIVE_POWER_L2 = "ActivePower.L2"
    ACTIVE_POWER_L3 = "ActivePower.L3"
    ACTIVE_POWER_SUM = "ActivePower.Sum"
    APPARENT_POWER_L1 = "ApparentPower.L1"
    APPARENT_POWER_L2 = "ApparentPower.L2"
    APPARENT_POWER_L3 = "ApparentPower.L3"
    APPARENT_POWER_SUM = "ApparentPower.Sum"
    REACTIVE_POWER_L1 = "ReactivePower.L1"
    REACTIVE_POWER_L2 = "ReactivePower.L2"
    REACTIVE_POWER_L3 = "ReactivePower.L3"
    REACTIVE_POWER_SUM = "ReactivePower.Sum"
    REAL_ENERGY_CONSUMED_L1 = "RealEnergyConsumed.L1"
    REAL_ENERGY_CONSUMED_L2 = "RealEnergyConsumed.L2"
    REAL_ENERGY_CONSUMED_L3 = "RealEnergyConsumed.L3"
    REAL_ENERGY_CONSUMED_SUM = "RealEnergyConsumed.Sum"
    REAL_ENERGY_DELIVERED_L1 = "RealEnergyDelivered.L1"
    REAL_ENERGY_DELIVERED_L2 = "RealEnergyDelivered.L2"
    REAL_ENERGY_DELIVERED_L3 = "RealEnergyDelivered.L3"
    REAL_ENERGY_DELIVERED_SUM = "RealEnergyDelivered.Sum"
    APPARENT_ENERGY_L1 = "ApparentEnergy.L1"
    APPARENT_ENERGY_L2 = "ApparentEnergy.L2"
    APPARENT_ENERGY_L3 = "ApparentEnergy.L3"
    APPARENT_ENERGY_SUM = "ApparentEnergy.Sum"
    REACTIVE_ENERGY_L1 = "ReactiveEnergy.L1"
    REACTIVE_ENERGY_L2 = "ReactiveEnergy.L2"
    REACTIVE_ENERGY_L3 = "ReactiveEnergy.L3"
    REACTIVE_ENERGY_SUM = "ReactiveEnergy.Sum"
    THD_V_L1N = "THDv.L1N"
    THD_V_L2N = "THDv.L2N"
    THD_V_L3N = "THDv.L3N"
    THD_C_L1 = "THDc.L1"
    THD_C_L2 = "THDc.L2"
    THD_C_L3 = "THDc.L3"
    FREQUENCY = "Frequency"
    ENERGY_ACTIVE_IMPORT_REGISTER = "Energy.Active.Import.Register"
    POWER_ACTIVE_IMPORT = "Power.Active.Import"
    # §6.5 Table 2: deprecated, but older firmware may still send them.
    REACTIVE_ENERGY_INDUCTIVE_L1 = "ReactiveEnergyInductive.L1"
    REACTIVE_ENERGY_INDUCTIVE_L2 = "ReactiveEnergyInductive.L2"
    REACTIVE_ENERGY_INDUCTIVE_L3 = "ReactiveEnergyInductive.L3"
    REACTIVE_ENERGY_INDUCTIVE_SUM = "ReactiveEnergyInductive.Sum"
    REACTIVE_ENERGY_CAPACITIVE_L1 = "ReactiveEnergyCapacitive.L1"
    REACTIVE_ENERGY_CAPACITIVE_L2 = "ReactiveEnergyCapacitive.L2"
    REACTIVE_ENERGY_CAPACITIVE_L3 = "ReactiveEnergyCapacitive.L3"
    REACTIVE_ENERGY_CAPACITIVE_SUM = "ReactiveEnergyCapacitive.Sum"
    DAY_MAX_VOLTAGE_L1 = "DayMax.Voltage.L1"
    DAY_MAX_VOLTAGE_L2 = "DayMax.Voltage.L2"
    DAY_MAX_VOLTAGE_L3 = "DayMax.Voltage.L3"
    DAY_MAX_CURRENT_L1 = "DayMax.Current.L1"
    DAY_MAX_CURRENT_L2 = "DayMax.Current.L2"
    DAY_MAX_CURRENT_L3 = "DayMax.Current.L3"
    DAY_MAX_ACTIVE_POWER_L1 = "DayMax.ActivePower.L1"
    DAY_MAX_ACTIVE_POWER_L2 = "DayMax.ActivePower.L2"
    DAY_MAX_ACTIVE_POWER_L3 = "DayMax.ActivePower.L3"
    DAY_MAX_REACTIVE_POWER_L1 = "DayMax.ReactivePower.L1"
    DAY_MAX_REACTIVE_POWER_L2 = "DayMax.ReactivePower.L2"
    DAY_MAX_REACTIVE_POWER_L3 = "DayMax.ReactivePower.L3"
    DAY_MAX_ENERGY_ACTIVE_IMPORT_REGISTER = "DayMax.Energy.Active.Import.Register"
    DAY_MIN_VOLTAGE_L1 = "DayMin.Voltage.L1"
    DAY_MIN_VOLTAGE_L2 = "DayMin.Voltage.L2"
    DAY_MIN_VOLTAGE_L3 = "DayMin.Voltage.L3"
    DAY_MIN_ACTIVE_POWER_L1 = "DayMin.ActivePower.L1"
    DAY_MIN_ACTIVE_POWER_L2 = "DayMin.ActivePower.L2"
    DAY_MIN_ACTIVE_POWER_L3 = "DayMin.ActivePower.L3"
    DAY_MIN_REACTIVE_POWER_L1 = "DayMin.ReactivePower.L1"
    DAY_MIN_REACTIVE_POWER_L2 = "DayMin.ReactivePower.L2"
    DAY_MIN_REACTIVE_POWER_L3 = "DayMin.ReactivePower.L3"


class Location(enum.StrEnum):
    """SampledValue `location`; absent means none (§6.5 Table 3 "-", errata S5)."""

    IN = "In"
    OUT = "Out"
    BODY = "Body"
    P1_METER = "P1Meter"


class UnitOfMeasure(enum.StrEnum):
    """SampledValue `unit`; absent means none. Table 1's "Celsius" is `C`, "Amp" is `A` (S5)."""

    WH = "Wh"
    KWH = "kWh"
    VARH = "varh"
    KVARH = "kvarh"
    W = "W"
    KW = "kW"
    VA = "VA"
    VAH = "VAh"
    KVA = "kVA"
    VAR = "var"
    KVAR = "kvar"
    A = "A"
    V = "V"
    KELVIN = "K"
    HZ = "Hz"
    CELSIUS = "C"
    PERCENT = "%"


class StationStatus(enum.StrEnum):
    """StatusNotificationRequest `status`: the transformer station as a whole (§6.6 Table 4)."""

    OK = "Ok"
    FAULTED = "Faulted"


class StationErrorCode(enum.StrEnum):
    """StatusNotificationRequest `errorCode` (§6.6; Table 6 mislabels some as statuses, T14).

    Named apart from the CALLERROR codes of Guide Table 7, which are a different thing.
    """

    GROUND_FAILURE = "GroundFailure"
    HIGH_TEMPERATURE = "HighTemperature"
    MV_FAULT_INDICATOR_ERROR = "MVFaultIndicatorError"
    NO_ERROR = "NoError"
    OTHER_ERROR = "OtherError"
    OVER_CURRENT_FAILURE = "OverCurrentFailure"
    POWER_METER_FAILURE = "PowerMeterFailure"
    POWER_SWITCH_FAILURE = "PowerSwitchFailure"
    RESET_FAILURE = "ResetFailure"
    UNDER_VOLTAGE = "UnderVoltage"
    OVER_VOLTAGE = "OverVoltage"
    WEAK_SIGNAL = "WeakSignal"


class StreetlightMode(enum.StrEnum):
    """Who switches a contactor (§6.7 Table 7)."""

    SCHEDULE = "Schedule"
    LOCAL_OVERRIDE = "LocalOverride"
    REMOTE_OVERRIDE = "RemoteOverride"


class StreetlightStatus(enum.StrEnum):
    """Lights on or off (§6.8 Table 8)."""

    ON = "On"
    OFF = "Off"


class ConfigurationStatus(enum.StrEnum):
    """ChangeConfigurationResponse `status` (§7.1); read-only keys are `Rejected` (§5)."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"


class ClearProfileStatus(enum.StrEnum):
    """ClearSingleStreetlightProfileResponse `status`; `Unknown`: nothing matched (S16)."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    UNKNOWN = "Unknown"


class FileType(enum.StrEnum):
    """GetFileRequest `fileType` (§7.5)."""

    SYSLOG = "Syslog"
    METER_VALUE_HISTORY = "MeterValueHistory"
    VENDOR_SPECIFIC = "VendorSpecific"


class GetFileStatus(enum.StrEnum):
    """GetFileResponse `status` (§7.5)."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"


class OverrideAction(enum.StrEnum):
    """OverrideStreetlightRequest `action` (§7.6 Table 11)."""

    ON = "On"
    OFF = "Off"
    SUSPEND = "Suspend"


class OverrideStatus(enum.StrEnum):
    """Override/ResumeStreetlightResponse `status` (§7.6 Table 12 = §7.7 Table 13)."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    REJECTED_LOCAL_OVERRIDE = "RejectedLocalOverride"


class ResetStatus(enum.StrEnum):
    """ResetResponse `status` (§7.8)."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"


class ResetMVFaultIndicatorStatus(enum.StrEnum):
    """ResetMVFaultIndicatorResponse `status`; `Rejected`: no indicator (§7.9 Table 14)."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"


class RecurrencyKind(enum.StrEnum):
    """StreetlightProfile `recurrencyKind` (§7.10.1 Table 16)."""

    NONE = "None"
    DAILY = "Daily"
    WEEKLY = "Weekly"


class TimeKind(enum.StrEnum):
    """TimeSpec `kind`: a wall-clock time or an offset from sunset/sunrise (Table 18)."""

    ABSOLUTE = "Absolute"
    SUNSET = "Sunset"
    SUNRISE = "Sunrise"


class SetStreetlightProfileStatus(enum.StrEnum):
    """SetStreetlightProfileResponse `status` (§7.10)."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"


class TestMVFaultIndicatorStatus(enum.StrEnum):
    """TestMVFaultIndicatorResponse `status` (§7.11 Table 19)."""

    ACCEPTED = "Accepted"
    REJECTED_ALREADY_FAULTED = "RejectedAlreadyFaulted"
    REJECTED = "Rejected"


class MessageTrigger(enum.StrEnum):
    """TriggerMessageRequest `requestedMessage`: any station-initiated action (§4.1, §7.12)."""

    BOOT_NOTIFICATION = "BootNotification"
    GET_FILE_STATUS_NOTIFICATION = "GetFileStatusNotification"
    FIRMWARE_STATUS_NOTIFICATION = "FirmwareStatusNotification"
    HEARTBEAT = "Heartbeat"
    METER_VALUES = "MeterValues"
    STATUS_NOTIFICATION = "StatusNotification"
    STREETLIGHT_MODE_STATUS_NOTIFICATION = "StreetlightModeStatusNotification"
    STREETLIGHT_STATUS_NOTIFICATION = "StreetlightStatusNotification"


class TriggerMessageStatus(enum.StrEnum):
    """TriggerMessageResponse `status`; "not implemented" is a CALLERROR (errata T12)."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"


# --- Constrained scalars (the schema's bounds, enforced by from_payload) ---------------

ContactorId = Annotated[int, msgspec.Meta(ge=1, le=4)]  # §8.1 Table 20
RequestId = Annotated[str, msgspec.Meta(max_length=36)]  # errata S15
NonNegative = Annotated[int, msgspec.Meta(ge=0)]
SunOffset = Annotated[int, msgspec.Meta(ge=-86400, le=86400)]


def _max_length(n: int) -> msgspec.Meta:
    return msgspec.Meta(max_length=n)


# --- Messages ---------------------------------------------------------------------------


class _Message(
    msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, forbid_unknown_fields=True
):
    """What every OS³P struct shares: closed like its schema, naive datetimes read as UTC.

    Subclasses restate `frozen`, `kw_only` and `omit_defaults` although msgspec inherits
    them: type checkers do not carry dataclass-transform options over to subclasses.
    """

    def __post_init__(self) -> None:
        # Errata S20: an offset-less date-time is UTC. msgspec runs __post_init__ after
        # decoding too, so decoded and constructed messages are normalised alike.
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if isinstance(value, datetime) and value.tzinfo is None:
                msgspec.structs.force_setattr(self, name, value.replace(tzinfo=UTC))


# §6.1 BootNotification


class BootNotificationRequest(_Message, frozen=True, kw_only=True, omit_defaults=True):
    vendor: Annotated[str, _max_length(20)]
    model: Annotated[str, _max_length(20)]
    station_number: Annotated[str, _max_length(10)] = msgspec.field(name="stationNumber")
    serial_number: Annotated[str, _max_length(25)] = msgspec.field(name="serialNumber")
    firmware_version: Annotated[str, _max_length(50)] = msgspec.field(name="firmwareVersion")
    iccid: Annotated[str, _max_length(20)]
    imsi: Annotated[str, _max_length(20)]


class BootNotificationResponse(_Message, frozen=True, kw_only=True, omit_defaults=True):
    status: RegistrationStatus
    current_time: datetime = msgspec.field(name="currentTime")
    # §3.1: the heartbeat interval when Accepted, the retry delay otherwise.
    interval: int


# §6.2 GetFileStatusNotification


class GetFileStatusNotificationRequest(_Message, frozen=True, kw_only=True, omit_defaults=True):
    status: UploadStatus
    # §6.2.1: echoes the GetFileRequest's requestId when it had one.
    request_id: RequestId | None = msgspec.field(default=None, name="requestId")


class GetFileStatusNotificationResponse(_Message, frozen=True, kw_only=True, omit_defaults=True):
    pass


# §6.3 FirmwareStatusNotification


class FirmwareStatusNotificationRequest(_Message, frozen=True, kw_only=True, omit_defaults=True):
    status: FirmwareStatus
    request_id: RequestId | None = msgspec.field(default=None, name="requestId")


class FirmwareStatusNotificationResponse(_Message, frozen=True, kw_only=True, omit_defaults=True):
    pass


# §6.4 Heartbeat


class HeartbeatRequest(_Message, frozen=True, kw_only=True, omit_defaults=True):
    pass


class HeartbeatResponse(_Message, frozen=True, kw_only=True, omit_defaults=True):
    current_time: datetime = msgspec.field(name="currentTime")


# §6.5 MeterValues


class SampledValue(_Message, frozen=True, kw_only=True, omit_defaults=True):
    """One reading. Absent optional fields take §6.5 Table 3's defaults at the receiver;
    they stay `None` here so that a round trip does not invent fields."""

    value: str
    context: ReadingContext | None = None
    format: ValueFormat | None = None
    measurand: Measurand
    location: Location | None = None
    unit: UnitOfMeasure | None = None


class MeterValue(_Message, frozen=True, kw_only=True, omit_defaults=True):
    timestamp: datetime
    sampled_value: tuple[SampledValue, ...] = msgspec.field(name="sampledValue")


class MeterValuesRequest(_Message, frozen=True, kw_only=True, omit_defaults=True):
    meter_value: tuple[MeterValue, ...] = msgspec.field(name="meterValue")


class MeterValuesResponse(_Message, frozen=True, kw_only=True, omit_defaults=True):
    pass


# §6.6 StatusNotification


class StatusNotificationRequest(_Message, frozen=True, kw_only=True, omit_defaults=True):
    status: StationStatus
    error_code: StationErrorCode = msgspec.field(name="errorCode")
    # §6.6 Table 5: with NoError, a fixed text marks an MV fault as resolved (errata T16).
    info: Annotated[str, _max_length(128)] | None = None
    timestamp: datetime | None = None
    vendor_id: Annotated[str, _max_length(128)] | None = msgspec.field(
        default=None, name="vendorId"
    )
    vendor_error_code: Annotated[str, _max_length(64)] | None = msgspec.field(
        default=None, name="vendorErrorCode"
    )
    # True when caused by TestMVFaultIndicator (§7.11), not by a real fault.
    test: bool | None = None


class StatusNotificationResponse(_Message, frozen=True, kw_only=True, omit_defaults=True):
    pass


# §6.7 StreetlightModeStatusNotification


class StreetlightModeStatusNotificationRequest(
    _Message, frozen=True, kw_only=True, omit_defaults=True
):
    # Absent: the mode holds for every contactor (§6.7 Table 7).
    contactor_id: ContactorId | None = msgspec.field(default=None, name="contactorId")
    mode: StreetlightMode
    timestamp: datetime


class StreetlightModeStatusNotificationResponse(
    _Message, frozen=True, kw_only=True, omit_defaults=True
):
    pass


# §6.8 StreetlightStatusNotification


class StreetlightStatusNotificationRequest(_Message, frozen=True, kw_only=True, omit_defaults=True):
    contactor_id: ContactorId = msgspec.field(name="contactorId")
    status: StreetlightStatus
    timestamp: datetime
    # True when the switch was not commanded by the RTU (§6.8 Table 8).
    unexpected: bool | None = None


class StreetlightStatusNotificationResponse(
    _Message, frozen=True, kw_only=True, omit_defaults=True
):
    pass


# §7.1 ChangeConfiguration


class ChangeConfigurationRequest(_Message, frozen=True, kw_only=True, omit_defaults=True):
    key: str
    value: str


class ChangeConfigurationResponse(_Message, frozen=True, kw_only=True, omit_defaults=True):
    status: ConfigurationStatus


# §7.2 ClearSingleStreetlightProfile


class ClearSingleStreetlightProfileRequest(_Message, frozen=True, kw_only=True, omit_defaults=True):
    """Criteria given together combine with AND; none given clears everything (errata S16)."""

    profile_id: NonNegative | None = msgspec.field(default=None, name="profileId")
    contactor_id: ContactorId | None = msgspec.field(default=None, name="contactorId")
    stack_level: NonNegative | None = msgspec.field(default=None, name="stackLevel")


class ClearSingleStreetlightProfileResponse(
    _Message, frozen=True, kw_only=True, omit_defaults=True
):
    status: ClearProfileStatus


# §7.3 GetConfiguration


class GetConfigurationRequest(_Message, frozen=True, kw_only=True, omit_defaults=True):
    # Absent: all keys.
    key: tuple[str, ...] | None = None


class ConfigurationKey(_Message, frozen=True, kw_only=True, omit_defaults=True):
    key: str
    readonly: bool
    value: str | None = None


class GetConfigurationResponse(_Message, frozen=True, kw_only=True, omit_defaults=True):
    configuration_key: tuple[ConfigurationKey, ...] | None = msgspec.field(
        default=None, name="configurationKey"
    )
    unknown_key: tuple[str, ...] | None = msgspec.field(default=None, name="unknownKey")


# §7.4 GetEffectiveStreetlightDaySchedule


class GetEffectiveStreetlightDayScheduleRequest(
    _Message, frozen=True, kw_only=True, omit_defaults=True
):
    contactor_id: ContactorId = msgspec.field(name="contactorId")
    # Table 10: only the date part counts, as written (errata S20).
    at: datetime


class DaySchedulePeriod(_Message, frozen=True, kw_only=True, omit_defaults=True):
    """An effective on-period as local `HH:mm:ss` in the noon-to-noon day (errata T29)."""

    start: str
    end: str


class GetEffectiveStreetlightDayScheduleResponse(
    _Message, frozen=True, kw_only=True, omit_defaults=True
):
    contactor_id: ContactorId = msgspec.field(name="contactorId")
    day_schedule: tuple[DaySchedulePeriod, ...] = msgspec.field(name="daySchedule")


# §7.5 GetFile


class GetFileRequest(_Message, frozen=True, kw_only=True, omit_defaults=True):
    request_id: RequestId | None = msgspec.field(default=None, name="requestId")
    file_type: FileType = msgspec.field(name="fileType")
    location: str
    start_time: datetime | None = msgspec.field(default=None, name="startTime")
    stop_time: datetime | None = msgspec.field(default=None, name="stopTime")


class GetFileResponse(_Message, frozen=True, kw_only=True, omit_defaults=True):
    status: GetFileStatus
    # Required even when Rejected: then "" (errata S18).
    file_name: str = msgspec.field(name="fileName")


# §7.6 OverrideStreetlight


class OverrideStreetlightRequest(_Message, frozen=True, kw_only=True, omit_defaults=True):
    # Absent: all contactors (Table 11).
    contactor_id: ContactorId | None = msgspec.field(default=None, name="contactorId")
    action: OverrideAction


class OverrideStreetlightResponse(_Message, frozen=True, kw_only=True, omit_defaults=True):
    status: OverrideStatus


# §7.7 ResumeStreetlight


class ResumeStreetlightRequest(_Message, frozen=True, kw_only=True, omit_defaults=True):
    contactor_id: ContactorId | None = msgspec.field(default=None, name="contactorId")


class ResumeStreetlightResponse(_Message, frozen=True, kw_only=True, omit_defaults=True):
    status: OverrideStatus


# §7.8 Reset


class ResetRequest(_Message, frozen=True, kw_only=True, omit_defaults=True):
    pass


class ResetResponse(_Message, frozen=True, kw_only=True, omit_defaults=True):
    status: ResetStatus


# §7.9 ResetMVFaultIndicator


class ResetMVFaultIndicatorRequest(_Message, frozen=True, kw_only=True, omit_defaults=True):
    pass


class ResetMVFaultIndicatorResponse(_Message, frozen=True, kw_only=True, omit_defaults=True):
    status: ResetMVFaultIndicatorStatus


# §7.10 SetStreetlightProfile


class TimeSpec(_Message, frozen=True, kw_only=True, omit_defaults=True):
    """A period boundary (Table 18). Which of `time`/`offset` `kind` demands, and the
    `HH:mm:ss[.SSS]` syntax of `time`, are checked by the station, which answers
    `Rejected` (errata S19)."""

    kind: TimeKind
    offset: SunOffset | None = None
    time: str | None = None


class DayPeriod(_Message, frozen=True, kw_only=True, omit_defaults=True):
    """An on-period of a profile's day, which runs from 12:00 to 11:59:59 (§7.10)."""

    start: TimeSpec
    end: TimeSpec


class StreetlightProfile(_Message, frozen=True, kw_only=True, omit_defaults=True):
    profile_id: NonNegative = msgspec.field(name="profileId")
    # Unique per contactor, ≤ StreetlightProfileMaxStackLevel: checked by the station (S19).
    stack_level: NonNegative = msgspec.field(name="stackLevel")
    recurrency_kind: RecurrencyKind = msgspec.field(name="recurrencyKind")
    # Only the dates count (Table 16); validFrom also fixes a Weekly profile's weekday.
    valid_from: datetime | None = msgspec.field(default=None, name="validFrom")
    valid_to: datetime | None = msgspec.field(default=None, name="validTo")
    day_schedule: Annotated[tuple[DayPeriod, ...], msgspec.Meta(min_length=1, max_length=4)] = (
        msgspec.field(name="daySchedule")
    )


class SetStreetlightProfileRequest(_Message, frozen=True, kw_only=True, omit_defaults=True):
    contactor_id: ContactorId = msgspec.field(name="contactorId")
    # Errata S13: the §7.10.3 example's `clearSchedule` is a typo. Absent means false.
    clear_all_schedules: bool | None = msgspec.field(default=None, name="clearAllSchedules")
    streetlight_profiles: Annotated[tuple[StreetlightProfile, ...], msgspec.Meta(min_length=1)] = (
        msgspec.field(name="streetlightProfiles")
    )


class SetStreetlightProfileResponse(_Message, frozen=True, kw_only=True, omit_defaults=True):
    status: SetStreetlightProfileStatus


# §7.11 TestMVFaultIndicator


class TestMVFaultIndicatorRequest(_Message, frozen=True, kw_only=True, omit_defaults=True):
    pass


class TestMVFaultIndicatorResponse(_Message, frozen=True, kw_only=True, omit_defaults=True):
    status: TestMVFaultIndicatorStatus


# §7.12 TriggerMessage


class TriggerMessageRequest(_Message, frozen=True, kw_only=True, omit_defaults=True):
    requested_message: MessageTrigger = msgspec.field(name="requestedMessage")
    # Errata S14: the wire keeps OCPP's `connectorId`; it is the contactor id (§8.1).
    contactor_id: ContactorId | None = msgspec.field(default=None, name="connectorId")


class TriggerMessageResponse(_Message, frozen=True, kw_only=True, omit_defaults=True):
    status: TriggerMessageStatus


# §7.13 UpdateFirmware


class UpdateFirmwareRequest(_Message, frozen=True, kw_only=True, omit_defaults=True):
    retrieve_date: datetime = msgspec.field(name="retrieveDate")
    location: str
    retries: NonNegative | None = None
    retry_interval: NonNegative | None = msgspec.field(default=None, name="retryInterval")
    request_id: RequestId | None = msgspec.field(default=None, name="requestId")


class UpdateFirmwareResponse(_Message, frozen=True, kw_only=True, omit_defaults=True):
    pass


MESSAGE_TYPES: Mapping[Action, tuple[type[msgspec.Struct], type[msgspec.Struct]]] = (
    MappingProxyType(
        {
            Action.BOOT_NOTIFICATION: (BootNotificationRequest, BootNotificationResponse),
            Action.GET_FILE_STATUS_NOTIFICATION: (
                GetFileStatusNotificationRequest,
                GetFileStatusNotificationResponse,
            ),
            Action.FIRMWARE_STATUS_NOTIFICATION: (
                FirmwareStatusNotificationRequest,
                FirmwareStatusNotificationResponse,
            ),
            Action.HEARTBEAT: (HeartbeatRequest, HeartbeatResponse),
            Action.METER_VALUES: (MeterValuesRequest, MeterValuesResponse),
            Action.STATUS_NOTIFICATION: (StatusNotificationRequest, StatusNotificationResponse),
            Action.STREETLIGHT_MODE_STATUS_NOTIFICATION: (
                StreetlightModeStatusNotificationRequest,
                StreetlightModeStatusNotificationResponse,
            ),
            Action.STREETLIGHT_STATUS_NOTIFICATION: (
                StreetlightStatusNotificationRequest,
                StreetlightStatusNotificationResponse,
            ),
            Action.CHANGE_CONFIGURATION: (ChangeConfigurationRequest, ChangeConfigurationResponse),
            Action.CLEAR_SINGLE_STREETLIGHT_PROFILE: (
                ClearSingleStreetlightProfileRequest,
                ClearSingleStreetlightProfileResponse,
            ),
            Action.GET_CONFIGURATION: (GetConfigurationRequest, GetConfigurationResponse),
            Action.GET_EFFECTIVE_STREETLIGHT_DAY_SCHEDULE: (
                GetEffectiveStreetlightDayScheduleRequest,
                GetEffectiveStreetlightDayScheduleResponse,
            ),
            Action.GET_FILE: (GetFileRequest, GetFileResponse),
            Action.OVERRIDE_STREETLIGHT: (OverrideStreetlightRequest, OverrideStreetlightResponse),
            Action.RESUME_STREETLIGHT: (ResumeStreetlightRequest, ResumeStreetlightResponse),
            Action.RESET: (ResetRequest, ResetResponse),
            Action.RESET_MV_FAULT_INDICATOR: (
                ResetMVFaultIndicatorRequest,
                ResetMVFaultIndicatorResponse,
            ),
            Action.SET_STREETLIGHT_PROFILE: (
                SetStreetlightProfileRequest,
                SetStreetlightProfileResponse,
            ),
            Action.TEST_MV_FAULT_INDICATOR: (
                TestMVFaultIndicatorRequest,
                TestMVFaultIndicatorResponse,
            ),
            Action.TRIGGER_MESSAGE: (TriggerMessageRequest, TriggerMessageResponse),
            Action.UPDATE_FIRMWARE: (UpdateFirmwareRequest, UpdateFirmwareResponse),
        }
    )
)
"""Request and response type of each action: a constant table, not a registry."""

ACTION_OF: Mapping[type[msgspec.Struct], Action] = MappingProxyType(
    {request: action for action, (request, _) in MESSAGE_TYPES.items()}
)
"""The action a request type belongs to: the inverse of MESSAGE_TYPES on requests."""


# --- Payload conversion -----------------------------------------------------------------


_M = TypeVar("_M", bound=msgspec.Struct)


def _arrays_as_lists(value: Any) -> Any:
    # to_builtins keeps our tuples as tuples; a JSON array is a list to every JSON tool
    # (jsonschema's "array" type, for one, does not accept a tuple).
    if isinstance(value, dict):
        return {k: _arrays_as_lists(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_arrays_as_lists(v) for v in value]
    return value


def to_payload(msg: msgspec.Struct) -> dict[str, Any]:
    """The JSON-ready payload of a message: wire names, enum values, RFC 3339 datetimes."""
    return cast(dict[str, Any], _arrays_as_lists(msgspec.to_builtins(msg)))


def from_payload(cls: type[_M], payload: Mapping[str, Any]) -> _M:
    """Build a `cls` from a decoded JSON payload; raise `PayloadError` if it does not fit."""
    try:
        return msgspec.convert(payload, cls)
    except msgspec.ValidationError as exc:
        raise PayloadError(cls, str(exc)) from exc
