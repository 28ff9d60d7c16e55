"""Supervised loops: a loop that fails is logged and restarted with backoff.

DESIGN.md "Runtime": the daemon never exits because one device misbehaves. Each
named loop runs inside the root TaskGroup wrapped by `supervised`, which also
tracks whether the loop is healthy (running, or not failed recently), so the
systemd watchdog is fed only while every loop is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from os3p.backoff import Backoff

__all__ = ["Health", "supervised"]

log = logging.getLogger(__name__)


class Health:
    """Which loops failed and have not yet run stably again."""

    def __init__(self) -> None:
        self.failing: dict[str, str] = {}

    def healthy(self) -> bool:
        return not self.failing


async def supervised(
    name: str,
    loop: Callable[[], Awaitable[object]],
    health: Health,
    *,
    backoff: Backoff | None = None,
    stable_after: float = 60.0,
    monotonic: Callable[[], float] = time.monotonic,
) -> None:
    """Run `loop()` forever; restart it with backoff when it raises or returns."""
    backoff = backoff or Backoff(base=1.0, cap=60.0)
    while True:
        started = monotonic()
        try:
            await loop()
            reason = "returned"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("loop %s failed", name)
            reason = f"{type(exc).__name__}: {exc}"
        if monotonic() - started >= stable_after:
            backoff.reset()  # it ran well for a while: this is a new incident
        health.failing[name] = reason
        delay = backoff.next_delay()
        log.warning("loop %s %s; restarting in %.1f s", name, reason, delay)
        await asyncio.sleep(delay)
        health.failing.pop(name, None)
