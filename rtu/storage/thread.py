"""The one thread a store's SQLite connection lives on.

sqlite3 calls block, so the event loop hands them to a worker thread. One
thread per database (`max_workers=1`) serialises every call: no locking inside
the stores, and a connection is only ever used by the thread that opened it
(sqlite3's `check_same_thread` stays on as a guard). Several small stores may
share one `DatabaseThread`; the outbox gets its own so a slow state write never
delays an emit.

A caller cancelled while its call runs does not stop the call: the thread
finishes it (an `append` still commits). At-least-once delivery tolerates
that; nothing here pretends otherwise.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

__all__ = ["DatabaseThread"]

P = ParamSpec("P")
T = TypeVar("T")


class DatabaseThread:
    """Runs synchronous store methods one at a time on a dedicated thread."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def shutdown(self) -> None:
        """Wait for queued calls to finish, then stop the thread."""
        self._executor.shutdown(wait=True)
