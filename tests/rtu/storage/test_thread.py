"""DatabaseThread: one worker thread, calls serialised, results and errors returned."""

from __future__ import annotations

import asyncio
import threading

import pytest

from rtu.storage import DatabaseThread


def test_calls_run_on_one_thread_in_order() -> None:
    seen: list[tuple[int, str]] = []

    def record(n: int, *, tag: str) -> int:
        seen.append((n, threading.current_thread().name))
        return n * 2

    async def main() -> list[int]:
        thread = DatabaseThread("test-db")
        try:
            return await asyncio.gather(*(thread.run(record, n, tag="t") for n in range(20)))
        finally:
            thread.shutdown()

    assert asyncio.run(main()) == [n * 2 for n in range(20)]
    assert [n for n, _ in seen] == list(range(20))
    names = {name for _, name in seen}
    assert len(names) == 1
    assert names.pop().startswith("test-db")
    assert threading.current_thread().name == "MainThread"


def test_errors_reach_the_caller() -> None:
    def boom() -> None:
        raise KeyError("x")

    async def main() -> None:
        thread = DatabaseThread("test-db")
        try:
            await thread.run(boom)
        finally:
            thread.shutdown()

    with pytest.raises(KeyError):
        asyncio.run(main())
