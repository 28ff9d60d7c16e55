"""The shared I/O poller against the Modbus simulator over real Modbus TCP."""

from __future__ import annotations

import asyncio

from rtu.io.model import IOSnapshot
from rtu.io.poller import IOPoller
from tests.hil.support import UNIT, async_test, rig
from tests.support.aio import eventually


@async_test
async def test_subscribers_see_changes_and_the_module_going_away_once() -> None:
    async with rig() as (sim, driver):
        poller = IOPoller(driver, period=UNIT / 5, retry=UNIT / 2)
        seen: list[IOSnapshot | None] = []
        also: list[IOSnapshot | None] = []

        def broken(snapshot: IOSnapshot | None) -> None:
            raise RuntimeError("a buggy subscriber must not stop the others")

        poller.subscribe(seen.append)
        poller.subscribe(broken)
        poller.subscribe(also.append)
        task = asyncio.create_task(poller.poll_loop())
        try:
            await eventually(lambda: poller.available)
            sim.set_local_switch(True)
            await eventually(lambda: seen[-1] is not None and seen[-1].local_switch)
            await sim.stop()
            await eventually(lambda: not poller.available)
            await asyncio.sleep(UNIT * 2)  # several failed reads while it is down...
            assert sum(1 for s in seen if s is None) == 1  # ...reported once
            await sim.start()
            await eventually(lambda: poller.available)
            assert seen[-1] is not None
            assert seen[-1].local_switch is True
            assert len(also) == len(seen)
        finally:
            task.cancel()
