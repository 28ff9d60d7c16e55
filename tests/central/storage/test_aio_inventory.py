"""AsyncStore additions: listeners after committed writes, the inventory calls."""

from __future__ import annotations

import asyncio

import pytest

from central.meters import Lifecycle, MeterKind, MeterProtocol
from central.shipment import MeterRecord
from central.storage import AsyncStore, GetFileStatus, MeterValue, SampledValue, UnknownStation

from ._helpers import T0, at


def test_listeners_hear_committed_meter_values_and_get_file_status(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    values = (MeterValue(at(0), (SampledValue("Frequency", "50.01"),)),)

    async def scenario() -> None:
        async with await AsyncStore.open(store_url) as store:
            heard: list[tuple[str, object]] = []

            def listener(station_id: str, stored: object) -> None:
                heard.append((station_id, stored))

            def broken(station_id: str, stored: object) -> None:
                raise RuntimeError("listener bug")

            stop = store.listen(listener)
            store.listen(broken)
            assert await store.record_meter_values("st1", values, received_at=at(1)) == 1
            status = GetFileStatus("Uploaded", "req-1")
            await store.record_get_file_status("st1", status, received_at=at(2))
            stop()
            stop()  # twice is harmless
            await store.record_meter_values("st1", values, received_at=at(3))
            await store.record_heartbeat("st1", received_at=at(4))
            assert heard == [("st1", values), ("st1", status)]
            assert len(await store.meter_values("st1", since=at(0), until=at(1))) == 1

    asyncio.run(scenario())
    assert "store listener failed" in caplog.text


def test_inventory_calls_run_on_the_store_thread(store_url: str) -> None:
    async def scenario() -> None:
        async with await AsyncStore.open(store_url) as store:
            meter = MeterRecord("E1", MeterKind.ELECTRICITY, MeterProtocol.DLMS, 0)
            with pytest.raises(UnknownStation):
                await store.add_meter("st1", meter, at=T0)
            await store.add_station("st1", created_at=T0)
            added = await store.add_meter("st1", meter, at=T0)
            assert added.lifecycle is Lifecycle.NEW_IN_INVENTORY
            moved = await store.set_meter_status("st1", "E1", Lifecycle.READY_FOR_USE, at=at(5))
            assert moved.lifecycle is Lifecycle.READY_FOR_USE
            assert [m.meter_id for m in await store.list_meters("st1")] == ["E1"]
            assert (await store.get_meter("E1")) == moved
            assert await store.station_time_zone("st1") is None

    asyncio.run(scenario())
