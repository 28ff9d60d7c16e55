"""Benchmarks of the metering path.

    .venv/bin/python bench/metering.py [--messages 300] [--seconds 15]

1. Sampler overhead per MeterValues, for one clock-aligned reading of the
   station analyser (26 values + 21 day extremes = 47 sampledValues):
   - build: day extremes updated, `sampling.meter_values` (Struct tree);
   - validate: `to_payload` + the JSON-Schema check `EventSink.emit` runs;
   - commit: the outbox append (SQLite WAL, synchronous=FULL: one fsync);
   - history: the rows appended to metering.db (one transaction, one fsync).
   Median and p99 in ms, files in a temporary directory on the current disk.

2. P1 telegram-to-stored latency: the simulated DSMR 5 meter writes a telegram
   a second to a pseudo-terminal; `P1Port` parses it; then the sampler's path:
   `read()`, day extremes, `meter_values`, `EventSink.emit` (validated,
   committed to the outbox), history append. Measured from the simulator's
   `time.monotonic_ns()` after its write to the history commit. This excludes
   the wait for the next sampling instant, which is by design up to one
   interval.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from hil.analyser import INITIAL_VALUES
from hil.p1_meter import P1Meter, Written
from os3p.actions import Action
from os3p.messages import ReadingContext, to_payload
from os3p.validation import Validator
from rtu.events import EventSink
from rtu.metering.dsmr import DsmrVersion
from rtu.metering.history import History
from rtu.metering.model import Sample
from rtu.metering.p1 import P1Port, P1Settings
from rtu.metering.registers import DEFAULT_POINTS
from rtu.metering.sampling import DayStats, Reading, day_of, meter_values
from rtu.outbox.pump import Outbox

ZONE = UTC


def summary(label: str, values_ms: list[float]) -> str:
    ordered = sorted(values_ms)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return f"{label:<10} median {statistics.median(ordered):7.3f} ms   p99 {p99:7.3f} ms"


async def overhead(directory: Path, messages: int) -> None:
    outbox = await Outbox.open(directory / "outbox.db", clock=lambda: datetime.now(UTC))
    history = await History.open(directory / "metering.db", now=lambda: datetime.now(UTC))
    validator = Validator()
    stats = DayStats()
    timings: dict[str, list[float]] = {"build": [], "validate": [], "commit": [], "history": []}
    points = {point.measurand: point for point in DEFAULT_POINTS}
    try:
        for index in range(messages):
            now = datetime.now(UTC)
            samples = tuple(
                Sample(m, v + Decimal(index % 7), points[m].unit, now)
                for m, v in INITIAL_VALUES.items()
            )
            t0 = time.perf_counter()
            stats.add(day_of(now, ZONE), samples, now)
            reading = Reading(now, ReadingContext.SAMPLE_CLOCK, (*samples, *stats.extremes(now)))
            message = meter_values([reading])
            t1 = time.perf_counter()
            payload = to_payload(message)
            validator.check_outgoing(Action.METER_VALUES, "Request", payload)
            t2 = time.perf_counter()
            await outbox.emit(Action.METER_VALUES.value, payload)
            t3 = time.perf_counter()
            await history.append("bench", "Sample.Clock", now, reading.samples)
            t4 = time.perf_counter()
            for key, (a, b) in zip(timings, ((t0, t1), (t1, t2), (t2, t3), (t3, t4)), strict=True):
                timings[key].append((b - a) * 1000)
        entries = len(message.meter_value[0].sampled_value)
    finally:
        await history.close()
        await outbox.close()
    print(f"Sampler overhead per MeterValues ({messages} messages, {entries} sampledValues each)")
    for key, values in timings.items():
        print("  " + summary(key, values))
    totals = [sum(parts) for parts in zip(*timings.values(), strict=True)]
    print("  " + summary("total", totals))


async def p1_latency(directory: Path, seconds: float) -> None:
    written: dict[datetime, int] = {}

    def on_written(event: Written) -> None:
        written[event.meter_time.astimezone(UTC).replace(microsecond=0)] = event.monotonic_ns

    outbox = await Outbox.open(directory / "outbox-p1.db", clock=lambda: datetime.now(UTC))
    history = await History.open(directory / "metering-p1.db", now=lambda: datetime.now(UTC))
    events = EventSink(outbox, Validator())
    stats = DayStats()
    latencies: list[float] = []
    meter = P1Meter("5", 1.0, on_written=on_written)
    meter.start()
    try:
        async with P1Port(P1Settings(device=meter.device, version=DsmrVersion.V5)) as port:
            deadline = time.monotonic() + seconds
            async with contextlib.aclosing(port.telegrams()) as telegrams:
                async for telegram in telegrams:
                    samples = tuple(await port.read())
                    stamp = samples[0].timestamp
                    stats.add(day_of(stamp, ZONE), samples, stamp)
                    reading = Reading(stamp, ReadingContext.SAMPLE_PERIODIC, samples)
                    await events.emit(meter_values([reading]))
                    await history.append("p1", reading.context.value, stamp, samples)
                    stored = time.monotonic_ns()
                    key = telegram.meter_time
                    if key is not None and key.replace(microsecond=0) in written:
                        latencies.append((stored - written[key.replace(microsecond=0)]) / 1e6)
                    if time.monotonic() > deadline:
                        break
    finally:
        meter.stop()
        await history.close()
        await outbox.close()
    print(f"P1 telegram written -> MeterValues committed and stored ({len(latencies)} telegrams)")
    print("  " + summary("latency", latencies))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as directory:
        await overhead(Path(directory), args.messages)
        await p1_latency(Path(directory), args.seconds)


if __name__ == "__main__":
    asyncio.run(main())
