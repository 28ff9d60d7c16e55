"""Helpers for asyncio tests without a plugin: one scaled time unit, condition waits."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

# Every test timeout is a multiple of this; slow machines raise OS3P_TEST_UNIT.
UNIT = float(os.environ.get("OS3P_TEST_UNIT", "1.0"))


def run(coro: Coroutine[Any, Any, T], *, timeout: float = 30 * UNIT) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]], *, timeout: float = 5 * UNIT, what: str = ""
) -> None:
    """Wait until `condition()` holds; fail with `what` after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.01)
