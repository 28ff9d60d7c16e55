"""How many MeterValues the central's store commits per second, SQLite vs PostgreSQL.

    .venv/bin/python bench/central_storage.py [--seconds 3] [--postgres URL]

Each MeterValues message carries 10 sampled values (the Table 1 measurands a
station analyzer reports every interval). Measured, per backend:
  - per message: one message (1 meterValue x 10 sampled values) per transaction,
    synchronously and through AsyncStore (the event loop -> one thread path);
  - batched: one message carrying 100 meterValues (a backlog drained after an
    outage) = 1000 sampled values in one transaction.
Durability as in production: SQLite WAL + synchronous=FULL; PostgreSQL with fsync
on and synchronous_commit on. Without --postgres a throwaway cluster is started
(central.storage.pgtemp) when the server binaries are installed.

--ceiling adds the same measurements without the disk's flush cost (SQLite on
/dev/shm, PostgreSQL with fsync off): what the code and the one-thread design
cost by themselves. On a shared machine the fsync-bound figures vary several-fold
from run to run; the ceiling figures are the stable ones.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

from central.storage import AsyncStore, MeterValue, SampledValue, Store, open_store
from central.storage.pgtemp import TemporaryPostgres, find_postgres_bin

MEASURANDS = (
    ("Voltage.L1N", "V"),
    ("Voltage.L2N", "V"),
    ("Voltage.L3N", "V"),
    ("Current.L1", "A"),
    ("Current.L2", "A"),
    ("Current.L3", "A"),
    ("ActivePower.Sum", "W"),
    ("ReactivePower.Sum", "var"),
    ("PowerFactor.Sum", "-"),
    ("Frequency", "Hz"),
)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def meter_value(index: int) -> MeterValue:
    return MeterValue(
        T0 + timedelta(seconds=index),
        tuple(
            SampledValue(measurand, f"{230 + (index % 7) * 0.1:.1f}", unit=unit)
            for measurand, unit in MEASURANDS
        ),
    )


Result = tuple[int, int, float, float]


def messages(batch: int) -> Iterator[list[MeterValue]]:
    """Fresh MeterValues messages of `batch` meterValues each (new timestamps)."""
    counter = itertools.count()
    while True:
        yield [meter_value(next(counter)) for _ in range(batch)]


def bench_sync(store: Store, seconds: float, batch: int, station: str) -> Result:
    """Store messages until `seconds` of storing elapsed; (transactions, values stored,
    seconds, CPU seconds of this process). Building the messages is not timed. The
    CPU time is the stable figure on a loaded machine; PostgreSQL's own CPU is not
    in it."""
    calls = values = 0
    elapsed = cpu = 0.0
    for message in messages(batch):
        if elapsed >= seconds:
            break
        cpu_start, start = time.process_time(), time.perf_counter()
        values += store.record_meter_values(station, message, received_at=NOW)
        elapsed += time.perf_counter() - start
        cpu += time.process_time() - cpu_start
        calls += 1
    return calls, values, elapsed, cpu


def bench_async(url: str, seconds: float) -> Result:
    """As `bench_sync` with one message per transaction, through AsyncStore."""

    async def run() -> Result:
        calls = values = 0
        elapsed = cpu = 0.0
        async with await AsyncStore.open(url) as store:
            for message in messages(1):
                if elapsed >= seconds:
                    break
                cpu_start, start = time.process_time(), time.perf_counter()
                values += await store.record_meter_values("async", message, received_at=NOW)
                elapsed += time.perf_counter() - start
                cpu += time.process_time() - cpu_start
                calls += 1
        return calls, values, elapsed, cpu

    return asyncio.run(run())


def report(backend: str, mode: str, result: Result) -> None:
    calls, values, elapsed, cpu = result
    print(
        f"{backend:<11} {mode:<34} {calls / elapsed:>7.0f} tx/s {values / elapsed:>8.0f} values/s"
        f"  client CPU {cpu / calls * 1e3:6.2f} ms/tx  ({calls} tx in {elapsed:.1f} s)"
    )


def run_backend(backend: str, url: str, seconds: float) -> None:
    store = open_store(url)
    try:
        report(backend, "1 msg x 10 values / tx", bench_sync(store, seconds, 1, "single"))
        report(
            backend, "100 meterValues x 10 values / tx", bench_sync(store, seconds, 100, "batch")
        )
    finally:
        store.close()
    report(backend, "1 msg x 10 values / tx, AsyncStore", bench_async(url, seconds))


def temporary_postgres(stack: ExitStack, *, fsync: bool) -> str | None:
    if find_postgres_bin() is None:
        print("postgresql  skipped: no server binaries (Debian package postgresql)")
        return None
    server = TemporaryPostgres(fsync=fsync)
    server.start()
    stack.callback(server.stop, mode="immediate")
    return server.create_database("bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--postgres", help="postgresql:// URL of an empty database to use")
    parser.add_argument("--ceiling", action="store_true", help="also measure without flush cost")
    args = parser.parse_args()
    print(f"sqlite {sqlite3.sqlite_version}; each row = one measurement of {args.seconds} s")
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        run_backend("sqlite", f"sqlite://{directory / 'central.db'}", args.seconds)
        url = args.postgres or temporary_postgres(stack, fsync=True)
        if url is not None:
            run_backend("postgresql", url, args.seconds)
        if args.ceiling:
            shm = Path(stack.enter_context(tempfile.TemporaryDirectory(dir="/dev/shm")))
            run_backend("sqlite/shm", f"sqlite://{shm / 'central.db'}", args.seconds)
            url = temporary_postgres(stack, fsync=False)
            if url is not None:
                run_backend("pg/nofsync", url, args.seconds)


if __name__ == "__main__":
    main()
