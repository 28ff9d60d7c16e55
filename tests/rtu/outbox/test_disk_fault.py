"""The outbox on a data disk that fills up or turns read-only while the daemon runs.

Real SQLite files: "full" is `PRAGMA max_page_count` pinned to the file's
current size (SQLITE_FULL as soon as a write needs a new page), "read-only" is
`PRAGMA query_only` (SQLITE_READONLY), both on the store's own connection, on
its own thread. Issue 4: reported, not crashed on; no event lost; FIFO kept.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from os3p.backoff import Backoff
from rtu.outbox import Outbox, OutboxStore, StorageFault, pump_loop, read_status
from rtu.outbox.memory import MemoryQueue
from rtu.outbox.store import MIGRATIONS
from rtu.storage import Database, DatabaseThread, open_database
from tests.rtu.outbox.test_pump import EVENT, UNIT, FakeCentral, callerror, eventually, wall

BIG = "x" * 1500  # a payload that fills a 4 KiB page in three entries


class Disk:
    """The outbox's connection, to make its disk full, read-only, or fine again."""

    def __init__(self, thread: DatabaseThread, database: Database) -> None:
        self._thread = thread
        self._db = database

    async def _pragma(self, text: str) -> None:
        await self._thread.run(self._db.connection.execute, text)

    async def fill(self) -> None:
        await self._pragma("PRAGMA max_page_count = 1")  # clamps to the current size

    async def read_only(self) -> None:
        await self._pragma("PRAGMA query_only = 1")

    async def repair(self) -> None:
        await self._pragma("PRAGMA max_page_count = 1073741823")
        await self._pragma("PRAGMA query_only = 0")


@asynccontextmanager
async def outbox_on(
    path: Path, *, memory_max: int = 10_000, dead_letter_after: int = 5, settle: float = 10 * UNIT
) -> AsyncIterator[tuple[Outbox, Disk, list[StorageFault | None]]]:
    thread = DatabaseThread("test-outbox")
    database = await thread.run(open_database, path, MIGRATIONS, now=wall)
    store = await thread.run(
        OutboxStore,
        database,
        dead_letter_after=dead_letter_after,
        retry_base=timedelta(seconds=UNIT),
        retry_cap=timedelta(seconds=4 * UNIT),
    )
    memory = MemoryQueue(
        max_entries=memory_max,
        dead_letter_after=dead_letter_after,
        retry_base=timedelta(seconds=UNIT),
        retry_cap=timedelta(seconds=4 * UNIT),
    )
    retry = Backoff(base=UNIT, cap=4 * UNIT, uniform=lambda low, high: high)
    outbox = Outbox(store, thread, wall, memory=memory, disk_retry=retry, settle=settle)
    transitions: list[StorageFault | None] = []
    outbox.on_storage_change(transitions.append)
    try:
        yield outbox, Disk(thread, database), transitions
    finally:
        await outbox.close()


async def emit_big(outbox: Outbox, numbers: range) -> None:
    for n in numbers:
        await outbox.emit(EVENT, {"n": n, "pad": BIG})


@asynccontextmanager
async def pumping(
    outbox: Outbox, central: FakeCentral, link: asyncio.Event, *, window: int = 1
) -> AsyncIterator[None]:
    pinned = Backoff(base=UNIT, cap=4 * UNIT, uniform=lambda low, high: high)
    async with asyncio.TaskGroup() as tasks:
        pump = tasks.create_task(
            pump_loop(outbox, central.send, window=window, wake=link, link_retry=pinned)
        )
        recover = tasks.create_task(outbox.recover_loop())
        yield
        pump.cancel()
        recover.cancel()


def test_a_full_disk_holds_events_in_memory_and_the_pump_still_delivers_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        central = FakeCentral()
        link = asyncio.Event()  # down until the disk is full (acks would free pages)
        async with outbox_on(tmp_path / "outbox.db") as (outbox, disk, transitions):
            async with pumping(outbox, central, link, window=4):
                await emit_big(outbox, range(5))
                await disk.fill()
                await emit_big(outbox, range(5, 40))  # no exception: held
                assert outbox.storage_fault is not None
                assert "disk full" in outbox.storage_fault.reason
                link.set()
                await eventually(lambda: len(set(central.received)) == 40)
                assert central.received == sorted(central.received)  # FIFO kept
                assert outbox.depth() == 0
                await disk.repair()
                await eventually(lambda: outbox.storage_fault is None)
            assert [t is None for t in transitions] == [False, True]  # one line per transition

    with caplog.at_level(logging.WARNING):
        asyncio.run(main())
    lines = [r.getMessage() for r in caplog.records if r.name == "rtu.outbox.pump"]
    assert sum("refused a write" in line for line in lines) == 1
    assert sum("takes writes again" in line for line in lines) == 1


def test_held_events_go_into_the_store_in_order_when_the_disk_is_back(tmp_path: Path) -> None:
    """The central is unreachable for the whole fault: nothing may be lost at recovery."""
    path = tmp_path / "outbox.db"

    async def main() -> None:
        central = FakeCentral()
        link = asyncio.Event()  # down
        async with outbox_on(path) as (outbox, disk, _):
            async with pumping(outbox, central, link):
                await emit_big(outbox, range(3))
                await disk.read_only()
                await emit_big(outbox, range(3, 20))
                assert outbox.storage_fault is not None
                assert "read-only" in outbox.storage_fault.reason
                assert outbox.storage_fault.held == 17
                await disk.repair()
                await eventually(lambda: outbox.storage_fault is None)
                assert outbox.depth() == 20
        # Everything held is durable now: a restart finds it in the file, in order.
        status, _ = read_status(path)
        assert status.depth == 20
        central2 = FakeCentral()
        link.set()
        async with outbox_on(path) as (outbox, _, _):
            async with pumping(outbox, central2, link):
                await eventually(lambda: len(central2.received) == 20)
        assert central2.received == list(range(20))

    asyncio.run(main())


def test_an_ack_that_cannot_be_written_is_not_resent_and_is_deleted_later(tmp_path: Path) -> None:
    async def main() -> None:
        central = FakeCentral()
        link = asyncio.Event()
        async with outbox_on(tmp_path / "outbox.db") as (outbox, disk, _):
            await emit_big(outbox, range(6))  # stored
            await disk.read_only()  # the DELETEs of the acks fail
            async with pumping(outbox, central, link):
                link.set()
                await eventually(lambda: len(central.received) >= 6)
                await emit_big(outbox, range(6, 8))
                await eventually(lambda: len(central.received) >= 8)
                await asyncio.sleep(20 * UNIT)  # a resend would show up now
                assert central.received == list(range(8))
                assert outbox.depth() == 0
                await disk.repair()
                await eventually(lambda: outbox.storage_fault is None)
        status, _ = read_status(tmp_path / "outbox.db")
        assert status.depth == 0

    asyncio.run(main())


def test_a_held_entry_refused_n_times_becomes_a_stored_dead_letter(tmp_path: Path) -> None:
    async def main() -> None:
        central = FakeCentral()
        central.plan[1] = [callerror() for _ in range(2)]
        link = asyncio.Event()
        link.set()
        async with outbox_on(tmp_path / "outbox.db", dead_letter_after=2) as (outbox, disk, _):
            await disk.fill()
            async with pumping(outbox, central, link):
                await emit_big(outbox, range(1, 4))
                await eventually(lambda: {2, 3} <= set(central.received))
                assert central.received == [1, 1, 2, 3]  # the retry held back the rest
                await disk.repair()
                await eventually(lambda: outbox.storage_fault is None)
        _, dead = read_status(tmp_path / "outbox.db")
        assert [d.action for d in dead] == [EVENT]
        assert '"n":1' in dead[0].payload

    asyncio.run(main())


def test_stored_entries_in_backoff_hold_back_the_held_ones(tmp_path: Path) -> None:
    async def main() -> None:
        central = FakeCentral()
        central.plan[0] = [callerror()]
        link = asyncio.Event()
        link.set()
        async with outbox_on(tmp_path / "outbox.db") as (outbox, disk, _):
            async with pumping(outbox, central, link):
                await emit_big(outbox, range(1))
                await eventually(lambda: central.received == [0])
                await disk.fill()
                await emit_big(outbox, range(1, 4))
                await eventually(lambda: len(central.received) == 5)
                assert central.received == [0, 0, 1, 2, 3]

    asyncio.run(main())


def test_a_flapping_disk_is_one_fault_not_many(tmp_path: Path) -> None:
    """A nearly full disk takes one commit and refuses the next: report it once."""

    async def main() -> None:
        central = FakeCentral()
        link = asyncio.Event()
        async with outbox_on(tmp_path / "outbox.db", settle=100 * UNIT) as (
            outbox,
            disk,
            transitions,
        ):
            async with pumping(outbox, central, link):
                await disk.fill()
                await emit_big(outbox, range(10))
                for round_ in range(3):
                    await disk.repair()
                    await eventually(lambda: getattr(outbox.storage_fault, "held", 0) == 0)
                    await disk.fill()
                    await emit_big(outbox, range(10 * (round_ + 1), 10 * (round_ + 2)))
                assert len(transitions) == 1, transitions
                await disk.repair()
                await eventually(lambda: outbox.storage_fault is None)
                assert [t is None for t in transitions] == [False, True]
                link.set()
                await eventually(lambda: len(central.received) == 40)
                assert central.received == list(range(40))

    asyncio.run(main())


def test_a_clean_stop_stores_what_is_held_if_the_disk_works_again(tmp_path: Path) -> None:
    async def main() -> None:
        async with outbox_on(tmp_path / "outbox.db") as (outbox, disk, _):
            await disk.read_only()
            await emit_big(outbox, range(3))
            assert outbox.depth() == 3
            await disk.repair()  # no recover_loop running: close must do it
        status, _ = read_status(tmp_path / "outbox.db")
        assert status.depth == 3

    asyncio.run(main())


def test_a_held_entry_acked_while_it_is_moved_in_is_never_sent_again(tmp_path: Path) -> None:
    """The ack of an in-flight held entry can land while `take_over` commits it.

    The store row is then stale; a `peek` queued on the DB thread before its
    DELETE must not hand it to the pump as a new entry (CI saw [0, 0, 1, 2, 2, 3]).
    The DB thread is blocked so the three jobs queue in exactly that order.
    """

    async def main() -> None:
        async with outbox_on(tmp_path / "outbox.db") as (outbox, disk, _):
            await disk.fill()
            await emit_big(outbox, range(3))  # the first may still fit: the rest is held
            before = await outbox.peek(3)
            first = next(e for e in before if e.seq < 0)
            rest = [json.loads(e.payload)["n"] for e in before if e is not first]
            await disk.repair()
            gate = threading.Event()
            try:
                blocker = asyncio.ensure_future(outbox._thread.run(gate.wait))
                take_over = asyncio.ensure_future(outbox._take_over())
                await asyncio.sleep(0)  # its transaction is queued behind the blocker
                assert await outbox.ack(first.seq)  # delivered meanwhile
                peek = asyncio.ensure_future(outbox.peek(3))
                await asyncio.sleep(0)  # queued behind the transaction, before any DELETE
            finally:
                gate.set()
            await asyncio.gather(blocker, take_over)
            entries = await peek
            assert [json.loads(e.payload)["n"] for e in entries] == rest
            assert [json.loads(e.payload)["n"] for e in await outbox.peek(3)] == rest
            assert outbox.depth() == 2

    asyncio.run(main())
