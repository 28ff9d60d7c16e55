"""Outbox benchmark: durable appends per second, and draining a backlog.

    .venv/bin/python bench/outbox.py [--entries 10000] [--latency 0.020] [--dir DIR]

1. appends/s: `OutboxStore.append` in this process, each one a committed
   transaction with WAL + synchronous=FULL (one fsync per event). The figure
   depends on the disk: run it on the station's own storage to size a burst.
2. drain: a backlog of `--entries` entries delivered through a fake `send` that
   answers after `--latency` seconds (a round trip to the central), with
   window 1 (strict order) and window 32 (pipelined).

Run it on the data disk (`--dir`): a tmpfs would report fsyncs that cost nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from rtu.outbox import Outbox, OutboxStore, pump_loop

EVENT = "StreetlightStatusNotification"


def now() -> datetime:
    return datetime.now(UTC)


def payload(n: int) -> dict[str, object]:
    return {"contactorId": 1 + n % 4, "status": "On", "timestamp": "2026-11-23T17:03:00Z", "n": n}


def bench_appends(directory: Path, count: int) -> float:
    store = OutboxStore.open(directory / "appends.db", now=now, max_entries=count * 2)
    try:
        start = time.perf_counter()
        for n in range(count):
            store.append(EVENT, payload(n), now())
        elapsed = time.perf_counter() - start
    finally:
        store.close()
    return count / elapsed


def fill_backlog(path: Path, entries: int) -> None:
    store = OutboxStore.open(path, now=now, max_entries=entries * 2)
    try:
        for n in range(entries):
            store.append(EVENT, payload(n), now())
    finally:
        store.close()


async def drain(path: Path, window: int, latency: float) -> float:
    outbox = await Outbox.open(path, clock=now, max_entries=10_000_000)

    async def send(action: str, text: str) -> None:
        await asyncio.sleep(latency)

    link = asyncio.Event()
    link.set()
    try:
        start = time.perf_counter()
        async with asyncio.TaskGroup() as tasks:
            pump = tasks.create_task(
                pump_loop(outbox, send, window=window, wake=link), name="outbox-pump"
            )
            # Poll from outside: the outbox's wake-up belongs to its one pump.
            while outbox.depth():  # noqa: ASYNC110 - 5 ms resolution is plenty here
                await asyncio.sleep(0.005)
            elapsed = time.perf_counter() - start
            pump.cancel()
    finally:
        await outbox.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--appends", type=int, default=2_000)
    parser.add_argument("--latency", type=float, default=0.020)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the files")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="outbox-bench-") as name:
        directory = Path(name)
        rate = bench_appends(directory, args.appends)
        print(f"appends (WAL, synchronous=FULL, commit each): {rate:,.0f}/s")
        for window in (1, 32):
            path = directory / f"drain-{window}.db"
            fill_backlog(path, args.entries)
            elapsed = asyncio.run(drain(path, window, args.latency))
            print(
                f"drain {args.entries:,} entries, {args.latency * 1000:.0f} ms round trip,"
                f" window {window:>2}: {elapsed:7.1f} s ({args.entries / elapsed:,.0f} entries/s)"
            )


if __name__ == "__main__":
    main()
