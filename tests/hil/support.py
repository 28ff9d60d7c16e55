"""Shared by the I/O module tests: one time unit, an asyncio runner and condition waits.

The project has no pytest-asyncio; `async_test` runs a coroutine test in a
fresh event loop (debug mode, so unawaited coroutines and unretrieved task
errors are reported), bounded by a deadline. Every duration in these tests is
a multiple of `UNIT`; a slow CI machine scales them all with RTU_TEST_UNIT.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from hil.io_module import IOModuleSimulator
from rtu.io.modbus import ModbusIOModule, Sleep, TcpEndpoint
from rtu.io.model import DEFAULT_IO_MAP, IOMap

UNIT = float(os.environ.get("RTU_TEST_UNIT", "0.05"))
RELAY_DELAY = UNIT  # contactor feedback lag in the simulator
DRIVER_TIMEOUT = 4 * UNIT  # per request; short so "unavailable" tests are quick
WAIT = 40 * UNIT  # deadline for a condition to become true
TEST_DEADLINE = 200 * UNIT  # a whole test

P = ParamSpec("P")
T = TypeVar("T")


def async_test(test: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run a coroutine test function with `asyncio.run`."""

    @functools.wraps(test)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        async def bounded() -> None:
            async with asyncio.timeout(TEST_DEADLINE):
                await test(*args, **kwargs)

        asyncio.run(bounded(), debug=True)

    return run


async def eventually(
    probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool], within: float = WAIT
) -> T:
    """Probe until `accept` holds, or fail with the last value seen after `within` seconds."""
    last: T | None = None
    try:
        async with asyncio.timeout(within):
            while True:
                last = await probe()
                if accept(last):
                    return last
                await asyncio.sleep(UNIT / 5)  # poll period, not a wait for an outcome
    except TimeoutError:
        raise AssertionError(f"condition not met within {within:.2f} s; last: {last!r}") from None


async def no_sleep(seconds: float) -> None:
    """A pulse sleep that takes no time: the simulator reacts to edges, not lengths."""
    await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def rig(
    iomap: IOMap = DEFAULT_IO_MAP,
    *,
    driver_map: IOMap | None = None,
    sleep: Sleep = no_sleep,
    coil_refresh: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[tuple[IOModuleSimulator, ModbusIOModule]]:
    """A simulator on an ephemeral loopback port and a real driver pointed at it."""
    async with IOModuleSimulator(iomap, relay_delay=RELAY_DELAY) as sim:
        driver = ModbusIOModule(
            driver_map or iomap,
            TcpEndpoint("127.0.0.1", sim.port, timeout=DRIVER_TIMEOUT),
            sleep=sleep,
            coil_refresh=coil_refresh,
            clock=clock,
        )
        try:
            yield sim, driver
        finally:
            await driver.close()
