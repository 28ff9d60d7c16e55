"""AsyncStore: every call runs in the one thread that opened the store."""

from __future__ import annotations

import asyncio
import threading

import pytest

from central.storage import (
    AsyncStore,
    BootPolicy,
    MeterValue,
    SampledValue,
    Store,
    StoreClosed,
    StreetlightStatus,
    open_store,
)

from ._helpers import T0, at


class ThreadRecordingOpener:
    """Opens the real store and remembers which threads touch it."""

    def __init__(self) -> None:
        self.threads: set[int] = set()

    def __call__(self, url: str) -> Store:
        self.threads.add(threading.get_ident())
        return open_store(url)


def test_async_facade_round_trip(store_url: str) -> None:
    opener = ThreadRecordingOpener()

    async def scenario() -> None:
        async with await AsyncStore.open(store_url, opener=opener) as store:
            await store.add_station("st1", created_at=T0, password="pw")
            assert await store.verify_password("st1", "pw")
            event = StreetlightStatus(1, "On", at(0))
            results = await asyncio.gather(
                *(
                    store.record_streetlight_status("st1", event, received_at=at(i))
                    for i in range(5)
                )
            )
            assert sorted(results) == [False, False, False, False, True]
            samples = [MeterValue(at(0), (SampledValue("Frequency", "50.01", unit="Hz"),))]
            assert await store.record_meter_values("st1", samples, received_at=at(1)) == 1
            assert (await store.current_lights("st1"))[1].status == "On"
            assert (await store.set_policy("st1", BootPolicy.PENDING)).policy is BootPolicy.PENDING
            assert await store.schema_version() >= 1
            thread_ids = await asyncio.gather(
                *(store._call(threading.get_ident) for _ in range(10))
            )
            opener.threads.update(thread_ids)
            assert threading.get_ident() not in opener.threads
        with pytest.raises(StoreClosed):
            await store.get_station("st1")
        await store.aclose()

    asyncio.run(scenario())
    assert len(opener.threads) == 1


def test_open_failure_leaves_no_thread(store_url: str) -> None:
    def failing(url: str) -> Store:
        raise RuntimeError("boom")

    before = threading.active_count()
    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(AsyncStore.open(store_url, opener=failing))
    assert threading.active_count() == before
