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
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
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


def timed(seconds: float, step: Callable[[], int]) -> tuple[int, int, float]:
    """Run `step` until `seconds` elapsed; (calls, values stored, elapsed)."""
    calls = values = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        values += step()
        calls += 1
    return calls, values, elapsed


def bench_sync(store: Store, seconds: float, batch: int, station: str) -> tuple[int, int, float]:
    counter = itertools.count()

    def step() -> int:
        message = [meter_value(next(counter)) for _ in range(batch)]
        return store.record_meter_values(station, message, received_at=NOW)

    return timed(seconds, step)


def bench_async(url: str, seconds: float) -> tuple[int, int, float]:
    async def run() -> tuple[int, int, float]:
        async with await AsyncStore.open(url) as store:
            counter = itertools.count()
            calls = values = 0
            start = time.perf_counter()
            while (elapsed := time.perf_counter() - start) < seconds:
                values += await store.record_meter_values(
                    "async", [meter_value(next(counter))], received_at=NOW
                )
                calls += 1
            return calls, values, elapsed

    return asyncio.run(run())


def report(backend: str, mode: str, result: tuple[int, int, float]) -> None:
    calls, values, elapsed = result
    print(
        f"{backend:<11} {mode:<34} {calls / elapsed:>9.0f} tx/s  {values / elapsed:>10.0f} values/s"
        f"  ({calls} tx, {values} values, {elapsed:.1f} s)"
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


def postgres_urls(stack: ExitStack, given: str | None) -> Iterator[str]:
    if given is not None:
        yield given
        return
    if find_postgres_bin() is None:
        print("postgresql  skipped: no server binaries (Debian package postgresql)")
        return
    server = TemporaryPostgres(fsync=True)
    server.start()
    stack.callback(server.stop, mode="immediate")
    yield server.create_database("bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--postgres", help="postgresql:// URL of an empty database to use")
    args = parser.parse_args()
    print(f"sqlite {sqlite3.sqlite_version}; each row = one measurement of {args.seconds} s")
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        run_backend("sqlite", f"sqlite://{directory / 'central.db'}", args.seconds)
        for url in postgres_urls(stack, args.postgres):
            run_backend("postgresql", url, args.seconds)


if __name__ == "__main__":
    main()
