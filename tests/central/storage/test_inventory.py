"""The meter inventory in the store, on SQLite and PostgreSQL (see conftest)."""

from __future__ import annotations

import pytest

from central.meters import IllegalTransition, Lifecycle, MeterKind, MeterProtocol
from central.shipment import MeterRecord, ShipmentInvalid, parse_csv
from central.storage import MeterValue, SampledValue, SqlStore, Store, UnknownStation
from central.storage import inventory as inv

from ._helpers import T0, at

SHIPMENT = (
    b"station_id,meter_id,kind,protocol,channel,password,cert_identity,timezone\r\n"
    b"SUBS001,E0001,E,DLMS,0,s3cret-pass,,Europe/Amsterdam\r\n"
    b"SUBS001,G0001,G,DLMS,1,,,\r\n"
    b"SUBS002,E0002,E,P1,0,,,\r\n"
    b"SUBS003,E0003,E,DLMS,0,,CN=subs003,\r\n"
)


def sql(store: Store) -> SqlStore:
    assert isinstance(store, SqlStore)
    return store


def _import(store: Store, data: bytes = SHIPMENT) -> inv.ImportResult:
    shipment = parse_csv(data)
    return inv.import_shipment(
        sql(store),
        shipment,
        at=T0,
        hashes=inv.password_hashes(shipment, {"SUBS002": "generated-password"}),
        sha256="0" * 64,
        media_type="text/csv",
    )


def test_a_shipment_registers_stations_with_credentials_zones_and_meters(store: Store) -> None:
    result = _import(store)
    assert result.stations == ("SUBS001", "SUBS002", "SUBS003")
    assert result.meters == ("E0001", "G0001", "E0002", "E0003")
    assert store.verify_password("SUBS001", "s3cret-pass")
    assert store.verify_password("SUBS002", "generated-password")
    subs003 = store.get_station("SUBS003")
    assert subs003 is not None
    assert (subs003.has_password, subs003.cert_identity) == (False, "CN=subs003")
    assert inv.station_time_zone(sql(store), "SUBS001") == "Europe/Amsterdam"
    assert inv.station_time_zone(sql(store), "SUBS002") is None
    meters = inv.list_meters(sql(store), "SUBS001")
    assert [(m.meter_id, m.kind, m.protocol, m.channel) for m in meters] == [
        ("E0001", MeterKind.ELECTRICITY, MeterProtocol.DLMS, 0),
        ("G0001", MeterKind.GAS, MeterProtocol.DLMS, 1),
    ]
    assert {(m.lifecycle, m.shipment_id) for m in meters} == {
        (Lifecycle.NEW_IN_INVENTORY, result.shipment_id)
    }
    assert meters[0].created_at == T0


def test_a_shipment_colliding_with_stored_ids_stores_nothing_and_names_every_conflict(
    store: Store,
) -> None:
    store.add_station("SUBS002", created_at=T0)
    inv.add_meter(
        sql(store),
        "SUBS002",
        MeterRecord("E0003", MeterKind.ELECTRICITY, MeterProtocol.P1, 0),
        at=T0,
    )
    shipment = parse_csv(SHIPMENT)
    assert [(p.line, p.field) for p in inv.shipment_conflicts(sql(store), shipment)] == [
        (4, "station_id"),
        (5, "meter_id"),
    ]
    with pytest.raises(ShipmentInvalid) as raised:
        _import(store)
    assert [(p.line, p.field) for p in raised.value.problems] == [
        (4, "station_id"),
        (5, "meter_id"),
    ]
    assert [s.station_id for s in store.list_stations()] == ["SUBS002"]
    assert inv.list_meters(sql(store), "SUBS001") == []
    assert inv.station_time_zone(sql(store), "SUBS001") is None


def test_add_meter_rules(store: Store) -> None:
    e = MeterRecord("E1", MeterKind.ELECTRICITY, MeterProtocol.DLMS, 0)
    g = MeterRecord("G1", MeterKind.GAS, MeterProtocol.DLMS, 1)
    with pytest.raises(UnknownStation):
        inv.add_meter(sql(store), "nobody", e, at=T0)
    store.add_station("st1", created_at=T0)
    store.add_station("st2", created_at=T0)
    inv.add_meter(sql(store), "st1", e, at=T0)
    inv.add_meter(sql(store), "st1", g, at=T0)
    with pytest.raises(inv.MeterExists):
        inv.add_meter(sql(store), "st2", e, at=T0)
    with pytest.raises(inv.ChannelTaken) as taken:
        inv.add_meter(
            sql(store), "st1", MeterRecord("G2", MeterKind.GAS, MeterProtocol.DLMS, 1), at=T0
        )
    assert taken.value.meter_id == "G1"
    # Channel 1 of another station, and a second E meter on channel 0, are fine.
    inv.add_meter(sql(store), "st2", MeterRecord("G2", MeterKind.GAS, MeterProtocol.DLMS, 1), at=T0)
    inv.add_meter(
        sql(store), "st1", MeterRecord("E2", MeterKind.ELECTRICITY, MeterProtocol.P1, 0), at=T0
    )
    assert [m.meter_id for m in inv.list_meters(sql(store), "st1")] == ["E1", "E2", "G1"]
    got = inv.get_meter(sql(store), "G2")
    assert got is not None
    assert got.station_id == "st2"


def test_lifecycle_moves_follow_the_table_and_a_retired_meter_frees_its_channel(
    store: Store,
) -> None:
    store.add_station("st1", created_at=T0)
    g1 = MeterRecord("G1", MeterKind.GAS, MeterProtocol.DLMS, 1)
    inv.add_meter(sql(store), "st1", g1, at=T0)
    moved = inv.set_meter_status(sql(store), "st1", "G1", Lifecycle.READY_FOR_USE, at=at(60))
    assert (moved.lifecycle, moved.status_changed_at, moved.created_at) == (
        Lifecycle.READY_FOR_USE,
        at(60),
        T0,
    )
    same = inv.set_meter_status(sql(store), "st1", "G1", Lifecycle.READY_FOR_USE, at=at(120))
    assert same.status_changed_at == at(60)  # nothing changed
    with pytest.raises(inv.UnknownMeter):
        inv.set_meter_status(sql(store), "st2", "G1", Lifecycle.IN_USE, at=at(1))
    inv.set_meter_status(sql(store), "st1", "G1", Lifecycle.RETURNED_TO_SUPPLIER, at=at(180))
    # the channel is free for a replacement ...
    inv.add_meter(
        sql(store), "st1", MeterRecord("G2", MeterKind.GAS, MeterProtocol.DLMS, 1), at=at(200)
    )
    # ... so the returned meter cannot come back into use on it
    with pytest.raises(inv.ChannelTaken):
        inv.set_meter_status(sql(store), "st1", "G1", Lifecycle.NEW_IN_INVENTORY, at=at(240))
    inv.set_meter_status(sql(store), "st1", "G1", Lifecycle.DESTROYED, at=at(300))
    with pytest.raises(IllegalTransition):
        inv.set_meter_status(sql(store), "st1", "G1", Lifecycle.NEW_IN_INVENTORY, at=at(360))
    got = inv.get_meter(sql(store), "G1")
    assert got is not None
    assert got.lifecycle is Lifecycle.DESTROYED


def test_imported_meter_values_are_stored_once_and_do_not_move_last_seen(store: Store) -> None:
    def energy(value: str) -> tuple[SampledValue, ...]:
        return (SampledValue("RealEnergyConsumed.Sum", value, "Wh", context="Sample.Clock"),)

    values = [MeterValue(at(0), energy("100")), MeterValue(at(900), energy("110"))]
    store.record_meter_values("st1", values[:1], received_at=at(1))
    assert inv.import_meter_values(sql(store), "st1", values, received_at=at(5000)) == 1
    assert inv.import_meter_values(sql(store), "st1", values, received_at=at(6000)) == 0
    stored = store.meter_values("st1", since=at(0), until=at(1000))
    assert [(s.value, s.received_at) for s in stored] == [("100", at(1)), ("110", at(5000))]
    liveness = store.get_liveness("st1")
    assert liveness is not None
    assert liveness.last_seen == at(1)
    assert inv.import_meter_values(sql(store), "st1", [], received_at=at(1)) == 0
