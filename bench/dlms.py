"""One full DLMS poll (clock + every default register) over loopback.

Target: median ≤ 50 ms per poll. The association is opened once (as in the
daemon, which keeps it between polls); the first poll, which also reads every
register's scaler/unit, is reported separately. The simulated meter runs in
its own process (`python -m hil.dlms_meter`), as a meter is its own device:
in-process it would compete with the client for the GIL and the figure would
measure that contention.

    .venv/bin/python bench/dlms.py [--polls 50] [--hdlc]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import time

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


def _wait_until_listening(port: int, meter: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            if meter.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the simulated meter did not start") from None
            time.sleep(0.01)
        else:
            return


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=50)
    parser.add_argument("--hdlc", action="store_true")
    args = parser.parse_args()
    transport = "hdlc" if args.hdlc else "wrapper"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "hil.dlms_meter", "--port", str(port)]
    meter = subprocess.Popen([*command, "--hdlc"] if args.hdlc else command)
    try:
        _wait_until_listening(port, meter)
        first, times = asyncio.run(bench(port, transport, args.polls))
    finally:
        meter.terminate()
        meter.wait(timeout=10)
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
