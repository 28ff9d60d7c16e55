"""Wire payloads ↔ records, from the OS³P 0.4 §6 examples verbatim."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from central.storage.model import (
    BootNotification,
    FirmwareStatus,
    GetFileStatus,
    SampledValue,
    StatusNotification,
    StreetlightMode,
    StreetlightStatus,
    meter_values_from_payload,
    parse_timestamp,
)

BOOT = {
    "vendor": "BrandX",
    "model": "SUBS-A1",
    "stationNumber": "987654321",
    "serialNumber": "AQ1234VB5678",
    "firmwareVersion": "1.1.0",
    "iccid": "83310415107943019317",
    "imsi": "080921439201835338",
}


def test_boot_round_trip() -> None:
    boot = BootNotification.from_payload(BOOT)
    assert boot.station_number == "987654321"
    assert boot.to_payload() == BOOT


def test_status_notification_example() -> None:
    payload = {
        "status": "Ok",
        "errorCode": "NoError",
        "info": "",
        "timestamp": "2013-02-01T15:09:18Z",
        "vendorId": "",
        "vendorErrorCode": "",
    }
    notification = StatusNotification.from_payload(payload)
    assert notification.timestamp == datetime(2013, 2, 1, 15, 9, 18, tzinfo=UTC)
    assert notification.test is None
    assert notification.to_payload() == payload


def test_streetlight_examples() -> None:
    light = StreetlightStatus.from_payload(
        {"contactorId": 2, "status": "On", "timestamp": "2013-02-01T15:09:18Z"}
    )
    assert (light.contactor_id, light.status, light.unexpected) == (2, "On", None)
    everywhere = StreetlightMode.from_payload(
        {"mode": "LocalOverride", "timestamp": "2013-02-01T15:09:18Z"}
    )
    assert everywhere.contactor_id is None
    assert everywhere.to_payload() == {"mode": "LocalOverride", "timestamp": "2013-02-01T15:09:18Z"}


def test_meter_values_example_with_table3_defaults() -> None:
    payload = {
        "meterValue": [
            {
                "timestamp": "2013-03-07T16:52:16Z",
                "sampledValue": [
                    {"value": "12", "unit": "A", "measurand": "Current.L1"},
                    {"value": "300", "unit": "kWh", "measurand": "Energy.Active.Import.Register"},
                ],
            },
            {
                "timestamp": "2013-03-07T19:52:16Z",
                "sampledValue": [
                    {"value": "20", "unit": "kWh", "measurand": "Energy.Active.Import.Register"},
                    {
                        "value": "40",
                        "unit": "kW",
                        "location": "P1Meter",
                        "measurand": "ActivePower.L1",
                    },
                ],
            },
        ]
    }
    first, second = meter_values_from_payload(payload)
    assert first.sampled_values[0] == SampledValue(
        "Current.L1", "12", unit="A", location="-", context="Sample.Periodic", format="Raw"
    )
    assert second.sampled_values[1].location == "P1Meter"
    assert second.timestamp - first.timestamp == timedelta(hours=3)


def test_file_statuses() -> None:
    assert FirmwareStatus.from_payload({"status": "DownloadFailed"}) == FirmwareStatus(
        "DownloadFailed"
    )
    assert GetFileStatus.from_payload({"status": "Uploaded", "requestId": "r1"}).request_id == "r1"


def test_timestamps_become_utc() -> None:
    assert parse_timestamp("2013-02-01T16:09:18+01:00") == datetime(
        2013, 2, 1, 15, 9, 18, tzinfo=UTC
    )
    assert parse_timestamp("2013-02-01T15:09:18").tzinfo is UTC
    assert parse_timestamp("2013-02-01T15:09:18.5Z").utcoffset() == UTC.utcoffset(None)
