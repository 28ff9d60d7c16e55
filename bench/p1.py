"""Benchmark: the P1 reader against the simulated meter at one telegram a second.

    .venv/bin/python bench/p1.py [--seconds 30] [--version 5] [--interval 1]

Runs `python -m hil.p1_meter --trace` in its own process and reads its pty with
`P1Port` in this one, then prints

- the CPU time of this (the reader's) process over the run, as % of one core
  (target: at most 2 %); it includes reading the simulator's trace lines,
  a few dozen bytes a second;
- the latency from "telegram written" (the simulator's `time.monotonic_ns()`
  right after its write: CLOCK_MONOTONIC is one clock for the whole host) to
  "telegram parsed" (when `telegrams()` hands it to the consumer): median, p99.

Telegrams are paired by their meter time (0-0:1.0.0, whole seconds), unique at an
interval of one second or more.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

from rtu.metering.dsmr import DsmrVersion
from rtu.metering.p1 import P1Port, P1Settings

ROOT = Path(__file__).resolve().parent.parent


async def read_trace(stdout: asyncio.StreamReader, written: dict[datetime, int]) -> None:
    """Collect `written <seq> <meter time> <monotonic ns>` lines from the simulator."""
    while line := await stdout.readline():
        _, _, meter_time, written_ns = line.decode().split()
        written[datetime.fromisoformat(meter_time).replace(microsecond=0)] = int(written_ns)


async def read_telegrams(port: P1Port, seconds: float, parsed: dict[datetime, int]) -> float:
    """Consume telegrams for `seconds` after the first; return the CPU seconds spent."""
    telegrams = port.telegrams()
    first = await anext(telegrams)  # start measuring in the steady state
    assert first.meter_time is not None
    parsed[first.meter_time] = time.monotonic_ns()
    cpu_start = time.process_time()
    try:
        async with asyncio.timeout(seconds):
            async for telegram in telegrams:
                assert telegram.meter_time is not None
                parsed[telegram.meter_time] = time.monotonic_ns()
    except TimeoutError:
        pass  # the run is over
    finally:
        await telegrams.aclose()
    return time.process_time() - cpu_start


async def bench(version: str, interval: float, seconds: float) -> None:
    simulator = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hil.p1_meter",
        "--version",
        version,
        "--interval",
        str(interval),
        "--trace",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert simulator.stdout is not None
    device = (await simulator.stdout.readline()).decode().strip()
    written: dict[datetime, int] = {}
    parsed: dict[datetime, int] = {}
    try:
        async with (
            P1Port(P1Settings(device, DsmrVersion(version), max_age=3 * interval)) as port,
            asyncio.TaskGroup() as tasks,
        ):
            trace = tasks.create_task(read_trace(simulator.stdout, written), name="trace")
            cpu = await read_telegrams(port, seconds, parsed)
            counters = port.counters
            trace.cancel()
    finally:
        simulator.terminate()
        await simulator.wait()

    latencies_ms = sorted(
        (parsed[key] - written[key]) / 1e6 for key in parsed.keys() & written.keys()
    )
    print(
        f"P1 reader, DSMR {version}, a telegram every {interval:g} s for {seconds:g} s: "
        f"{counters.telegrams} telegrams, {counters.crc_errors} CRC errors, "
        f"{counters.parse_errors} parse errors"
    )
    print(f"CPU of the reader process: {100 * cpu / seconds:.2f} % of one core (target <= 2 %)")
    if len(latencies_ms) >= 2:
        p99 = statistics.quantiles(latencies_ms, n=100, method="inclusive")[98]
        print(
            f"latency written -> parsed: median {statistics.median(latencies_ms):.2f} ms, "
            f"p99 {p99:.2f} ms, max {latencies_ms[-1]:.2f} ms (n={len(latencies_ms)})"
        )
    else:
        print(f"latency: only {len(latencies_ms)} telegram(s) paired; run longer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--version", choices=["4", "5"], default="5")
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    asyncio.run(bench(args.version, args.interval, args.seconds))


if __name__ == "__main__":
    main()
