"""`Store` behaviour, run against SQLite and PostgreSQL (see conftest)."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from central.storage import (
    BootNotification,
    BootPolicy,
    EventKind,
    FirmwareStatus,
    GetFileStatus,
    MeterValue,
    SampledValue,
    StationExists,
    StatusNotification,
    Store,
    StoreClosed,
    StreetlightMode,
    StreetlightStatus,
    UnknownStation,
    UploadedFile,
    open_store,
)
from central.storage.faults import MV_FAULT_CODES, RESOLUTION_INFO, effect_of

from ._helpers import T0, at

BOOT = BootNotification(
    vendor="BrandX",
    model="SUBS-A1",
    station_number="987654321",
    serial_number="AQ1234VB5678",
    firmware_version="1.1.0",
    iccid="83310415107943019317",
    imsi="080921439201835338",
)


def fault_codes(store: Store, station_id: str = "st1") -> list[str]:
    return sorted(fault.error_code for fault in store.open_faults(station_id))


def status(
    state: str, code: str, info: str | None = None, when: datetime | None = None, **extra: object
) -> StatusNotification:
    return StatusNotification(state, code, info=info, timestamp=when, **extra)  # type: ignore[arg-type]


# -- station registry


def test_add_get_list_remove(store: Store) -> None:
    added = store.add_station("st1", created_at=T0, password="pw", heartbeat_interval=600)
    assert added.station_id == "st1"
    assert added.has_password
    assert added.policy is BootPolicy.ACCEPTED
    assert (added.heartbeat_interval, added.enabled, added.created_at) == (600, True, T0)
    store.add_station("st0", created_at=at(1), cert_identity="sha256:ab12", enabled=False)
    assert store.get_station("st1") == added
    assert [s.station_id for s in store.list_stations()] == ["st0", "st1"]
    assert store.get_station("st0") is not None
    st0 = store.get_station("st0")
    assert st0 is not None
    assert (st0.has_password, st0.cert_identity, st0.enabled) == (False, "sha256:ab12", False)
    store.remove_station("st0")
    assert store.get_station("st0") is None
    with pytest.raises(UnknownStation):
        store.remove_station("st0")


def test_add_twice_is_refused(store: Store) -> None:
    store.add_station("st1", created_at=T0)
    with pytest.raises(StationExists):
        store.add_station("st1", created_at=at(1), password="other")
    station = store.get_station("st1")
    assert station is not None
    assert not station.has_password


def test_policy_enabled_and_cert_updates(store: Store) -> None:
    store.add_station("st1", created_at=T0)
    pending = store.set_policy("st1", BootPolicy.PENDING)
    assert (pending.policy, pending.heartbeat_interval) == (BootPolicy.PENDING, 300)
    assert (
        store.set_policy("st1", BootPolicy.REJECTED, heartbeat_interval=60).heartbeat_interval == 60
    )
    assert not store.set_enabled("st1", False).enabled
    assert store.set_cert_identity("st1", "CN=st1").cert_identity == "CN=st1"
    for update in (
        lambda: store.set_policy("nope", BootPolicy.ACCEPTED),
        lambda: store.set_enabled("nope", True),
        lambda: store.set_password("nope", "x"),
        lambda: store.set_cert_identity("nope", None),
    ):
        with pytest.raises(UnknownStation):
            update()


def test_verify_password(store: Store) -> None:
    store.add_station("st1", created_at=T0, password="correct horse")
    store.add_station("nopw", created_at=T0)
    assert store.verify_password("st1", "correct horse")
    assert not store.verify_password("st1", "wrong")
    assert not store.verify_password("unknown", "correct horse")
    assert not store.verify_password("nopw", "")
    store.set_enabled("st1", False)
    assert not store.verify_password("st1", "correct horse")
    store.set_enabled("st1", True)
    store.set_password("st1", "new")
    assert not store.verify_password("st1", "correct horse")
    assert store.verify_password("st1", "new")


# -- liveness


def test_heartbeats_of_many_stations_in_one_call(store: Store) -> None:
    store.record_heartbeat("st2", received_at=at(50))
    store.record_heartbeats({"st1": at(10), "st2": at(40), "st3": at(30)})
    seen = {live.station_id: live.last_seen for live in store.list_liveness()}
    # st2 already had a later time: moving forward only holds within a batch too.
    assert seen == {"st1": at(10), "st2": at(50), "st3": at(30)}
    store.record_streetlight_status("st1", StreetlightStatus(1, "On", at(0)), received_at=at(60))
    assert store.get_liveness("st1").last_seen == at(60)  # type: ignore[union-attr]


def test_last_seen_moves_forward_only(store: Store) -> None:
    assert store.get_liveness("st1") is None
    store.record_heartbeat("st1", received_at=at(10))
    store.record_heartbeat("st1", received_at=at(5))
    liveness = store.get_liveness("st1")
    assert liveness is not None
    assert liveness.last_seen == at(10)
    store.record_meter_values("st1", [], received_at=at(20))
    store.record_streetlight_status("st1", StreetlightStatus(1, "On", at(0)), received_at=at(30))
    liveness = store.get_liveness("st1")
    assert liveness is not None
    assert liveness.last_seen == at(30)
    assert not liveness.connected


def test_connection_state_and_half_open_replacement(store: Store) -> None:
    store.record_connected("st1", "conn-a", at=at(0))
    first = store.get_liveness("st1")
    assert first is not None
    assert first.connected
    assert (first.connection_id, first.connected_since) == ("conn-a", at(0))
    # A new connection replaces the half-open one; the old one closing later is ignored.
    store.record_connected("st1", "conn-b", at=at(5))
    assert not store.record_disconnected("st1", "conn-a", at=at(6))
    live = store.get_liveness("st1")
    assert live is not None
    assert live.connected
    assert store.record_disconnected("st1", "conn-b", at=at(7))
    gone = store.get_liveness("st1")
    assert gone is not None
    assert (gone.connected, gone.disconnected_at) == (False, at(7))


def test_mark_all_disconnected_at_server_start(store: Store) -> None:
    store.record_connected("st1", "a", at=at(0))
    store.record_connected("st2", "b", at=at(0))
    store.record_disconnected("st2", "b", at=at(1))
    store.record_heartbeat("st3", received_at=at(1))
    assert store.mark_all_disconnected(at=at(9)) == 1
    st1 = store.get_liveness("st1")
    assert st1 is not None
    assert st1.disconnected_at == at(9)
    everyone = store.list_liveness()
    assert [(s.station_id, s.connected, s.last_seen) for s in everyone] == [
        ("st1", False, None),
        ("st2", False, None),
        ("st3", False, at(1)),
    ]


# -- boot


def test_boot_notifications(store: Store) -> None:
    assert store.last_boot("st1") is None
    store.record_boot("st1", BOOT, answered=BootPolicy.PENDING, received_at=at(0))
    newer = BootNotification(**{**BOOT.__dict__, "firmware_version": "1.2.0"})
    store.record_boot("st1", newer, answered=BootPolicy.ACCEPTED, received_at=at(60))
    assert store.last_boot("st1") == newer
    events = store.events("st1", since=T0, until=at(3600), kinds={EventKind.BOOT})
    assert [(e.details["firmwareVersion"], e.details["answeredStatus"]) for e in events] == [
        ("1.1.0", "Pending"),
        ("1.2.0", "Accepted"),
    ]
    assert events[0].details["stationNumber"] == "987654321"
    liveness = store.get_liveness("st1")
    assert liveness is not None
    assert liveness.last_seen == at(60)


# -- status notifications and open faults


def test_open_faults_lifecycle_table5(store: Store) -> None:
    store.record_status(
        "st1", status("Faulted", "GroundFailure", "group 1", at(0)), received_at=at(1)
    )
    store.record_status(
        "st1", status("Faulted", "OverCurrentFailure", "group 2", at(2)), received_at=at(3)
    )
    store.record_status(
        "st1", status("Faulted", "MVFaultIndicatorError", None, at(4)), received_at=at(5)
    )
    store.record_status("st1", status("Faulted", "HighTemperature", None, at(6)), received_at=at(7))
    store.record_status("st2", status("Faulted", "GroundFailure", None, at(6)), received_at=at(7))
    assert fault_codes(store) == [
        "GroundFailure",
        "HighTemperature",
        "MVFaultIndicatorError",
        "OverCurrentFailure",
    ]
    # Table 5: each MV fault has its own resolution string.
    store.record_status(
        "st1", status("Faulted", "NoError", "Ground failure resolved", at(10)), received_at=at(11)
    )
    assert "GroundFailure" not in fault_codes(store)
    # A plain Ok resolves the other faults but not the latched MV ones.
    store.record_status("st1", status("Ok", "NoError", "", at(12)), received_at=at(13))
    assert fault_codes(store) == ["MVFaultIndicatorError", "OverCurrentFailure"]
    store.record_status(
        "st1",
        status("Faulted", "NoError", "Over current error (MV) resolved", at(14)),
        received_at=at(15),
    )
    store.record_status(
        "st1", status("Ok", "NoError", "Indicator fault (MV) resolved", at(16)), received_at=at(17)
    )
    assert fault_codes(store) == []
    assert fault_codes(store, "st2") == ["GroundFailure"]
    assert [f.station_id for f in store.open_faults()] == ["st2"]


def test_fault_raised_again_keeps_first_raise(store: Store) -> None:
    store.record_status("st1", status("Faulted", "UnderVoltage", "L1", at(0)), received_at=at(1))
    store.record_status("st1", status("Faulted", "UnderVoltage", "L2", at(5)), received_at=at(6))
    (fault,) = store.open_faults("st1")
    assert (fault.raised_at, fault.last_raised_at, fault.info) == (at(0), at(5), "L2")


def test_other_errors_are_told_apart_by_vendor_code(store: Store) -> None:
    for code in ("E1", "E2"):
        store.record_status(
            "st1",
            status("Faulted", "OtherError", None, at(0), vendor_id="acme", vendor_error_code=code),
            received_at=at(1),
        )
    assert [f.vendor_error_code for f in store.open_faults("st1")] == ["E1", "E2"]


def test_test_notifications_are_stored_but_open_nothing(store: Store) -> None:
    assert store.record_status(
        "st1", status("Faulted", "GroundFailure", None, at(0), test=True), received_at=at(1)
    )
    assert fault_codes(store) == []
    (event,) = store.events("st1", since=T0, until=at(10))
    assert event.details["test"] is True


def test_status_resend_is_stored_once_and_applied_once(store: Store) -> None:
    raised = status("Faulted", "GroundFailure", None, at(0))
    assert store.record_status("st1", raised, received_at=at(1))
    store.record_status(
        "st1", status("Faulted", "NoError", "Ground failure resolved", at(2)), received_at=at(3)
    )
    # The raise re-sent after a lost CALLRESULT must not reopen the fault.
    assert not store.record_status("st1", raised, received_at=at(4))
    assert fault_codes(store) == []
    kinds = [e.kind for e in store.events("st1", since=T0, until=at(10))]
    assert kinds == [EventKind.STATUS, EventKind.STATUS]


def test_status_without_timestamp_is_never_merged(store: Store) -> None:
    raised = status("Faulted", "HighTemperature")
    assert store.record_status("st1", raised, received_at=at(0))
    assert store.record_status("st1", status("Ok", "NoError"), received_at=at(1))
    assert store.record_status("st1", raised, received_at=at(2))
    assert fault_codes(store) == ["HighTemperature"]
    events = store.events("st1", since=T0, until=at(10))
    assert [e.occurred_at for e in events] == [at(0), at(1), at(2)]


# -- streetlights


def test_streetlight_event_stored_once(store: Store) -> None:
    event = StreetlightStatus(2, "On", at(0))
    assert store.record_streetlight_status("st1", event, received_at=at(1))
    assert not store.record_streetlight_status("st1", event, received_at=at(2))
    assert store.record_streetlight_status("st2", event, received_at=at(2))
    assert len(store.events("st1", since=T0, until=at(10))) == 1


def test_mode_event_stored_once_also_station_wide(store: Store) -> None:
    everywhere = StreetlightMode(None, "LocalOverride", at(0))
    assert store.record_streetlight_mode("st1", everywhere, received_at=at(1))
    assert not store.record_streetlight_mode("st1", everywhere, received_at=at(2))
    one = StreetlightMode(1, "LocalOverride", at(0))
    assert store.record_streetlight_mode("st1", one, received_at=at(2))
    assert not store.record_streetlight_mode("st1", one, received_at=at(3))
    details = [e.details for e in store.events("st1", since=T0, until=at(10))]
    assert details == [
        {"mode": "LocalOverride", "timestamp": "2026-11-23T18:00:00Z"},
        {"mode": "LocalOverride", "timestamp": "2026-11-23T18:00:00Z", "contactorId": 1},
    ]


def test_current_lights_per_contactor(store: Store) -> None:
    assert store.current_lights("st1") == {}
    store.record_streetlight_status("st1", StreetlightStatus(1, "On", at(0)), received_at=at(1))
    store.record_streetlight_status("st1", StreetlightStatus(2, "On", at(0)), received_at=at(1))
    store.record_streetlight_status(
        "st1", StreetlightStatus(1, "Off", at(60), True), received_at=at(61)
    )
    # Delivered late (backlog) but older: does not win over the newer state.
    store.record_streetlight_status("st1", StreetlightStatus(2, "Off", at(-60)), received_at=at(62))
    lights = store.current_lights("st1")
    assert {c: (s.status, s.unexpected) for c, s in lights.items()} == {
        1: ("Off", True),
        2: ("On", None),
    }
    assert lights[1].timestamp == at(60)


def test_current_modes_with_station_wide_events(store: Store) -> None:
    assert store.current_modes("st1") == {}
    store.record_streetlight_mode(
        "st1", StreetlightMode(1, "RemoteOverride", at(0)), received_at=at(0)
    )
    assert set(store.current_modes("st1")) == {1}
    store.record_streetlight_mode(
        "st1", StreetlightMode(None, "LocalOverride", at(10)), received_at=at(10)
    )
    store.record_streetlight_mode("st1", StreetlightMode(3, "Schedule", at(20)), received_at=at(20))
    modes = store.current_modes("st1")
    assert {c: (m.mode, m.station_wide) for c, m in modes.items()} == {
        1: ("LocalOverride", True),
        2: ("LocalOverride", True),
        3: ("Schedule", False),
        4: ("LocalOverride", True),
    }


# -- meter values

MESSAGE = [
    MeterValue(
        at(0),
        (
            SampledValue("Current.L1", "12", unit="A"),
            SampledValue("Energy.Active.Import.Register", "300.10", unit="kWh"),
            SampledValue("ActivePower.L1", "40", unit="kW", location="P1Meter"),
        ),
    ),
    MeterValue(at(900), (SampledValue("Current.L1", "13.000", unit="A"),)),
]


def test_meter_values_batch_range_and_duplicates(store: Store) -> None:
    assert store.record_meter_values("st1", MESSAGE, received_at=at(901)) == 4
    assert store.record_meter_values("st1", MESSAGE, received_at=at(902)) == 0
    samples = store.meter_values("st1", since=T0, until=at(3600))
    assert [(s.timestamp, s.measurand, s.value) for s in samples] == [
        (at(0), "ActivePower.L1", "40"),
        (at(0), "Current.L1", "12"),
        (at(0), "Energy.Active.Import.Register", "300.10"),
        (at(900), "Current.L1", "13.000"),
    ]
    assert samples[0].location == "P1Meter"
    assert (samples[1].context, samples[1].format, samples[1].received_at) == (
        "Sample.Periodic",
        "Raw",
        at(901),
    )
    current = store.meter_values("st1", since=T0, until=at(3600), measurand="Current.L1")
    assert [s.value for s in current] == ["12", "13.000"]
    # Half-open range.
    assert [s.value for s in store.meter_values("st1", since=at(1), until=at(900))] == []
    assert len(store.meter_values("st1", since=T0, until=at(901), limit=2)) == 2
    assert store.meter_values("st2", since=T0, until=at(3600)) == []


def test_meter_values_partly_new_message(store: Store) -> None:
    store.record_meter_values("st1", MESSAGE[:1], received_at=at(1))
    assert store.record_meter_values("st1", MESSAGE, received_at=at(901)) == 1
    other_context = [MeterValue(at(0), (SampledValue("Current.L1", "12", context="Trigger"),))]
    assert store.record_meter_values("st1", other_context, received_at=at(902)) == 1


# -- firmware, file transfer


def test_file_statuses_and_uploads(store: Store) -> None:
    store.record_firmware_status("st1", FirmwareStatus("Downloading", "fw-1"), received_at=at(0))
    store.record_firmware_status("st1", FirmwareStatus("Installed", "fw-1"), received_at=at(5))
    store.record_get_file_status("st1", GetFileStatus("Uploading"), received_at=at(6))
    upload = UploadedFile("st1", "gf-7", "history.csv", "/srv/up/st1/gf-7", 1234, "ab" * 32, at(7))
    store.record_uploaded_file(upload)
    store.record_get_file_status("st1", GetFileStatus("Uploaded", "gf-7"), received_at=at(8))
    assert store.uploaded_files("st1") == [upload]
    assert store.uploaded_files("st1", "other") == []
    events = store.events("st1", since=T0, until=at(10))
    assert [(e.kind, e.details.get("status")) for e in events] == [
        (EventKind.FIRMWARE_STATUS, "Downloading"),
        (EventKind.FIRMWARE_STATUS, "Installed"),
        (EventKind.GET_FILE_STATUS, "Uploading"),
        (EventKind.FILE_UPLOADED, None),
        (EventKind.GET_FILE_STATUS, "Uploaded"),
    ]
    assert events[3].details["sha256"] == "ab" * 32
    assert events[4].details["requestId"] == "gf-7"


# -- events across kinds


def test_events_range_order_kinds_and_limit(store: Store) -> None:
    store.record_boot("st1", BOOT, answered=BootPolicy.ACCEPTED, received_at=at(0))
    store.record_streetlight_status("st1", StreetlightStatus(1, "On", at(30)), received_at=at(40))
    store.record_status("st1", status("Faulted", "WeakSignal", None, at(20)), received_at=at(41))
    store.record_streetlight_mode(
        "st1", StreetlightMode(None, "Schedule", at(50)), received_at=at(50)
    )
    store.record_firmware_status("st1", FirmwareStatus("None"), received_at=at(70))
    store.record_boot("st2", BOOT, answered=BootPolicy.ACCEPTED, received_at=at(25))
    everything = store.events("st1", since=T0, until=at(100))
    assert [(e.kind, e.occurred_at) for e in everything] == [
        (EventKind.BOOT, at(0)),
        (EventKind.STATUS, at(20)),
        (EventKind.STREETLIGHT_STATUS, at(30)),
        (EventKind.STREETLIGHT_MODE, at(50)),
        (EventKind.FIRMWARE_STATUS, at(70)),
    ]
    assert everything[2].received_at == at(40)
    window = store.events("st1", since=at(20), until=at(50))
    assert [e.kind for e in window] == [EventKind.STATUS, EventKind.STREETLIGHT_STATUS]
    assert len(store.events("st1", since=T0, until=at(100), limit=3)) == 3
    lights = store.events(
        "st1", since=T0, until=at(100), kinds=[EventKind.STREETLIGHT_STATUS, EventKind.BOOT]
    )
    assert [e.kind for e in lights] == [EventKind.BOOT, EventKind.STREETLIGHT_STATUS]


# -- durability and lifecycle


def test_restart_loses_nothing(store_url: str) -> None:
    first = open_store(store_url)
    first.add_station("st1", created_at=T0, password="pw", policy=BootPolicy.PENDING)
    first.record_boot("st1", BOOT, answered=BootPolicy.PENDING, received_at=at(0))
    first.record_status("st1", status("Faulted", "GroundFailure", None, at(1)), received_at=at(1))
    light = StreetlightStatus(1, "On", at(2))
    first.record_streetlight_status("st1", light, received_at=at(2))
    first.record_streetlight_mode(
        "st1", StreetlightMode(None, "Schedule", at(3)), received_at=at(3)
    )
    first.record_meter_values("st1", MESSAGE, received_at=at(4))
    first.record_connected("st1", "c1", at=at(0))
    before = (
        first.list_stations(),
        first.events("st1", since=T0, until=at(1000)),
        first.open_faults(),
        first.current_lights("st1"),
        first.current_modes("st1"),
        first.meter_values("st1", since=T0, until=at(1000)),
        first.get_liveness("st1"),
    )
    first.close()
    second = open_store(store_url)
    try:
        after = (
            second.list_stations(),
            second.events("st1", since=T0, until=at(1000)),
            second.open_faults(),
            second.current_lights("st1"),
            second.current_modes("st1"),
            second.meter_values("st1", since=T0, until=at(1000)),
            second.get_liveness("st1"),
        )
        assert after == before
        assert second.verify_password("st1", "pw")
        # The dedup keys survive the restart too.
        assert not second.record_streetlight_status("st1", light, received_at=at(5))
    finally:
        second.close()


def test_closed_store_refuses(store_url: str) -> None:
    closed = open_store(store_url)
    closed.close()
    closed.close()
    with pytest.raises(StoreClosed):
        closed.get_station("st1")


def test_naive_datetime_is_our_bug(store: Store) -> None:
    with pytest.raises(ValueError, match="naive"):
        store.record_heartbeat("st1", received_at=datetime(2026, 1, 1))


def test_meter_values_backlog_spanning_several_statements(store: Store) -> None:
    backlog = [
        MeterValue(at(i), tuple(SampledValue(f"Voltage.L{p}N", f"{i}.{p}") for p in (1, 2, 3)))
        for i in range(120)
    ]
    assert store.record_meter_values("st1", backlog, received_at=at(200)) == 360
    assert store.record_meter_values("st1", backlog, received_at=at(201)) == 0
    samples = store.meter_values("st1", since=T0, until=at(200), measurand="Voltage.L2N")
    assert [s.value for s in samples] == [f"{i}.2" for i in range(120)]


def test_meter_value_repeated_inside_one_message_is_stored_once(store: Store) -> None:
    twice = [
        MeterValue(at(0), (SampledValue("Frequency", "50.00"), SampledValue("Frequency", "50.00")))
    ]
    assert store.record_meter_values("st1", twice, received_at=at(1)) == 1


# -- the store applies the open-faults rule exactly as `faults.effect_of` states it

NOTIFICATIONS = st.builds(
    StatusNotification,
    status=st.sampled_from(["Ok", "Faulted"]),
    error_code=st.sampled_from(
        ["NoError", "GroundFailure", "OverCurrentFailure", "MVFaultIndicatorError", "UnderVoltage"]
    ),
    info=st.sampled_from([None, "", "group 1", *RESOLUTION_INFO]),
    test=st.sampled_from([None, False, True]),
)


def reference_open_faults(notifications: list[StatusNotification]) -> set[str]:
    open_codes: set[str] = set()
    for notification in notifications:
        effect = effect_of(notification)
        if effect.raises is not None:
            open_codes.add(effect.raises[0])
        open_codes -= effect.resolves
        if effect.resolves_all_but_mv:
            open_codes &= MV_FAULT_CODES
    return open_codes


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(notifications=st.lists(NOTIFICATIONS, max_size=12))
def test_open_faults_follow_the_rule(store: Store, notifications: list[StatusNotification]) -> None:
    station_id = f"st-{uuid.uuid4().hex}"
    for i, notification in enumerate(notifications):
        store.record_status(station_id, notification, received_at=at(i))
    assert set(fault_codes(store, station_id)) == reference_open_faults(notifications)


def test_boot_answers_are_each_stations_latest(store: Store) -> None:
    assert store.boot_answers() == {}
    store.record_boot("st1", BOOT, answered=BootPolicy.PENDING, received_at=at(0))
    store.record_boot("st1", BOOT, answered=BootPolicy.ACCEPTED, received_at=at(10))
    store.record_boot("st2", BOOT, answered=BootPolicy.ACCEPTED, received_at=at(0))
    store.record_boot("st2", BOOT, answered=BootPolicy.REJECTED, received_at=at(20))
    assert store.boot_answers() == {"st1": BootPolicy.ACCEPTED, "st2": BootPolicy.REJECTED}


# -- latest state per contactor (kept on write, migration 4)

LIGHT_EVENTS = st.builds(
    StreetlightStatus,
    st.integers(1, 4),
    st.sampled_from(["On", "Off"]),
    st.integers(-5, 5).map(at),  # few distinct times: ties are common
    st.none() | st.booleans(),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(events=st.lists(LIGHT_EVENTS, max_size=10))
def test_current_lights_are_the_latest_by_timestamp_then_by_storage(
    store: Store, events: list[StreetlightStatus]
) -> None:
    """The reference is the rule itself, over the events in the order they were stored."""
    station_id = f"st-{uuid.uuid4().hex}"
    stored = [
        e
        for i, e in enumerate(events)
        if store.record_streetlight_status(station_id, e, received_at=at(i))
    ]
    expected: dict[int, StreetlightStatus] = {}
    for event in stored:  # later in storage order wins a tie
        held = expected.get(event.contactor_id)
        if held is None or held.timestamp <= event.timestamp:
            expected[event.contactor_id] = event
    lights = store.current_lights(station_id)
    assert {c: (s.status, s.timestamp, s.unexpected) for c, s in lights.items()} == {
        c: (e.status, e.timestamp, e.unexpected) for c, e in expected.items()
    }


def test_station_states_cover_every_station_in_three_queries(store: Store) -> None:
    store.record_boot("st1", BOOT, answered=BootPolicy.ACCEPTED, received_at=at(0))
    store.record_streetlight_status("st1", StreetlightStatus(1, "On", at(1)), received_at=at(1))
    store.record_streetlight_mode(
        "st2", StreetlightMode(None, "LocalOverride", at(2)), received_at=at(2)
    )
    every = store.station_states()
    assert set(every) == {"st1", "st2"}
    assert every["st1"].boot == BOOT
    assert every["st1"].lights[1].status == "On"
    assert every["st1"].modes == {}
    assert every["st2"].boot is None
    assert every["st2"].lights == {}
    assert {m.mode for m in every["st2"].modes.values()} == {"LocalOverride"}
    assert set(every["st2"].modes) == {1, 2, 3, 4}
    asked = store.station_states(["st2", "never-reported"])
    assert set(asked) == {"st2", "never-reported"}
    assert asked["never-reported"].boot is None
    assert not asked["never-reported"].lights
    assert store.station_states([]) == {}


def test_a_password_that_passed_is_remembered_bound_to_its_hash(store: Store) -> None:
    store.add_station("st1", created_at=T0, password="correct horse")
    assert not store.verify_password("st1", "wrong", remember="d-wrong")
    assert store.remembered_credentials() == {}  # only a match is remembered
    assert store.verify_password("st1", "correct horse", remember="d-1")
    assert store.remembered_credentials() == {"st1": "d-1"}
    assert store.verify_password("st1", "correct horse", remember="d-2")  # a new key
    assert store.remembered_credentials() == {"st1": "d-2"}
    store.set_enabled("st1", False)
    assert store.remembered_credentials() == {}
    store.set_enabled("st1", True)
    store.set_password("st1", "battery staple")
    assert store.remembered_credentials() == {}  # bound to the old hash: forgotten


def test_station_states_of_more_stations_than_one_query_takes(store: Store) -> None:
    """Asked for in chunks (SQLite and PostgreSQL limit a statement's parameters)."""
    ids = [f"st{i:04d}" for i in range(1200)]
    for station_id in ids[499:502] + ids[-1:]:
        store.record_streetlight_status(
            station_id, StreetlightStatus(1, "On", at(1)), received_at=at(1)
        )
    states = store.station_states(ids)
    assert list(states) == ids
    assert [sid for sid, state in states.items() if state.lights] == [*ids[499:502], ids[-1]]
