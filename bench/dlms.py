"""One full DLMS poll (clock + every default register) over loopback.

Target: median ≤ 50 ms per poll. The association is opened once (as in the
daemon, which keeps it between polls); the first poll, which also reads every
register's scaler/unit, is reported separately.

    .venv/bin/python bench/dlms.py [--polls 50] [--hdlc]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from hil.dlms_meter import DlmsMeterSimulator
from rtu.metering.dlms import DEFAULT_REGISTERS, DlmsConfig, DlmsMeter

TARGET_MS = 50.0


async def bench(port: int, transport: str, polls: int) -> tuple[float, list[float]]:
    config = DlmsConfig(
        port=port,
        transport="hdlc" if transport == "hdlc" else "wrapper",
        authentication="low",
        password="12345678",
        client_address=17,
    )
    meter = DlmsMeter("bench", config)
    try:
        start = time.perf_counter()
        await meter.read()
        first = (time.perf_counter() - start) * 1000
        times = []
        for _ in range(polls):
            start = time.perf_counter()
            samples = await meter.read()
            times.append((time.perf_counter() - start) * 1000)
            assert len(samples) == len(DEFAULT_REGISTERS)
    finally:
        await meter.close()
    return first, times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=50)
    parser.add_argument("--hdlc", action="store_true")
    args = parser.parse_args()
    transport = "hdlc" if args.hdlc else "wrapper"
    with DlmsMeterSimulator(hdlc=args.hdlc) as sim:
        first, times = asyncio.run(bench(sim.port, transport, args.polls))
    times.sort()
    median = statistics.median(times)
    p95 = times[min(len(times) - 1, round(0.95 * len(times)) - 1)]
    print(
        f"dlms {transport}: {len(DEFAULT_REGISTERS)} registers + clock, {args.polls} polls: "
        f"median {median:.1f} ms, p95 {p95:.1f} ms; first poll (imports, association,"
        f" scaler/unit) {first:.1f} ms; "
        f"target <= {TARGET_MS:.0f} ms: {'met' if median <= TARGET_MS else 'MISSED'}"
    )
    return 0 if median <= TARGET_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
