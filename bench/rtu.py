"""RTU daemon figures: start → READY, idle RSS and CPU, input → CALL latency, backlog drain.

    python bench/rtu.py [--idle-seconds 60] [--flips 200] [--events 10000] [--rtt-ms 20]
                        [--window 1 32] [--poll-period 0.02]

Runs the real daemon (`python -m rtu.cli run`) as a subprocess against a
scripted central (the same one the tests use) on 127.0.0.1:

- start → READY: from exec to the READY=1 datagram on a real notify socket;
- idle RSS (VmRSS of the process) and idle CPU (utime+stime over the idle
  window, as % of one core) once connected and Accepted, with every subsystem
  running on simulators: the I/O module (Modbus TCP, polled every
  `--poll-period`), a DLMS meter, a P1 meter on a pseudo-terminal, a Modbus
  power analyser, and an MQTT broker when Mosquitto is installed;
- input → CALL: the local override switch of the simulated I/O module is
  flipped (in this process, at a random phase of the daemon's poll) and the
  time until the StreetlightModeStatusNotification CALL arrives at the central
  (in this process too: one clock) is taken, p50 / p99 / max over `--flips`;
- backlog: the outbox is pre-filled with N StreetlightStatusNotification events
  (as a long outage would leave it), the daemon starts behind a proxy adding
  the round-trip delay, and we time until the central has received all N, for
  each outbox window given (1 = strict OCPP-J order, one event per round trip).
Targets (issue "RTU daemon core"): RSS ≤ 45 MB, CPU ≤ 1 %, READY ≤ 1.5 s,
input → CALL p99 ≤ 50 ms, 10,000 events ≤ 20 s with 20 ms RTT.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import random
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hil.io_module import IOModuleSimulator
from hil.proxy import FaultyProxy
from hil.rig import free_port
from os3p.messages import ChangeConfigurationRequest
from rtu.outbox.store import OutboxStore
from tests.support.central import ScriptedCentral

CONFIG = """\
[station]
id = "BENCH001"
vendor = "OpenGrid"
model = "RTU-BENCH"
station_number = "0001"
serial_number = "SN-BENCH"
iccid = ""
imsi = ""
[central]
url = "{url}"
call_timeout = 30
[data]
dir = "{data}"
[site]
latitude = 51.98
longitude = 5.91
timezone = "Europe/Amsterdam"
[link]
heartbeat_interval = 3600
outbox_window = {window}
outbox_max_entries = 1000000
reconnect_backoff_base = 0.05
reconnect_backoff_cap = 0.5
"""

# Every device subsystem, each on its simulator (appended to CONFIG for the idle run).
DEVICES = """\
[io]
transport = "tcp"
host = "127.0.0.1"
port = {io_port}
poll_period = {poll_period}
[lights]
feedback_timeout = 2.0
[mv]
debounce = 0.1
[metering]
retention_days = 7
[[meters]]
kind = "dlms"
name = "transformer"
host = "127.0.0.1"
port = {dlms_port}
authentication = "low"
password = "12345678"
client_address = 17
[[meters]]
kind = "p1"
name = "streetlights"
device = "{p1_device}"
[[meters]]
kind = "analyser"
name = "station"
host = "127.0.0.1"
port = {analyser_port}
[firmware]
trusted_keys = ["{trusted_key}"]
releases_root = "{releases}"
"""

MQTT = """\
[mqtt]
host = "127.0.0.1"
port = {mqtt_port}
"""


def proc_stat(pid: int) -> tuple[float, int]:
    """(cpu seconds used, RSS bytes) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss_kb = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmRSS:")
    )
    return cpu, rss_kb * 1024


class Station:
    def __init__(self, workdir: Path, url: str, window: int, devices: str = "") -> None:
        self.workdir = workdir
        self.data = workdir / "data"
        self.config = workdir / "rtu.toml"
        self.config.write_text(CONFIG.format(url=url, data=self.data, window=window) + devices)
        self.notify_path = workdir / "notify.sock"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(self.notify_path))
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> float:
        """Start the daemon; returns seconds from exec to READY=1."""
        loop = asyncio.get_running_loop()
        env = {**os.environ, "NOTIFY_SOCKET": str(self.notify_path)}
        started = time.perf_counter()
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "rtu.cli", "run", "--config", str(self.config),
            "--log-level", "warning", env=env, stderr=(self.workdir / "daemon.log").open("wb"),
        )  # fmt: skip
        self.notify.setblocking(False)
        while True:
            message = (await loop.sock_recv(self.notify, 4096)).decode()
            if "READY=1" in message:
                return time.perf_counter() - started

    async def stop(self) -> None:
        if self.process and self.process.returncode is None:
            self.process.terminate()
            try:
                async with asyncio.timeout(10):
                    await self.process.wait()
            except TimeoutError:
                print("daemon still running 10 s after SIGTERM: killed (see daemon.log)")
                self.process.kill()
                await self.process.wait()
        self.notify.close()


def prefill(data: Path, events: int) -> None:
    data.mkdir(parents=True, exist_ok=True)
    base = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)
    store = OutboxStore.open(data / "outbox.db", now=lambda: base, max_entries=10 * events)
    try:
        for n in range(events):
            at = base + timedelta(milliseconds=n)
            payload = {
                "contactorId": 1 + n % 4,
                "status": "On" if n % 2 else "Off",
                "timestamp": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            }
            store.append("StreetlightStatusNotification", payload, at)
    finally:
        store.close()


async def wait_until(condition: object, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():  # type: ignore[operator]
        if time.perf_counter() > deadline:
            raise TimeoutError
        await asyncio.sleep(0.01)


async def _spawn(workdir: Path, name: str, *argv: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=(workdir / f"{name}.log").open("wb"),
    )


@contextlib.asynccontextmanager
async def simulators(
    workdir: Path, poll_period: float
) -> AsyncIterator[tuple[str, IOModuleSimulator]]:
    """Every field device on its simulator; yields the daemon's device config and the I/O module."""
    dlms_port, analyser_port = free_port(), free_port()
    python = sys.executable
    processes = [
        await _spawn(workdir, "dlms", python, "-m", "hil.dlms_meter", "--port", str(dlms_port)),
        await _spawn(
            workdir, "analyser", python, "-m", "hil.analyser", "--port", str(analyser_port)
        ),
        await _spawn(workdir, "p1", python, "-m", "hil.p1_meter"),
    ]
    mosquitto = shutil.which("mosquitto")
    mqtt_port = free_port()
    if mosquitto is not None:
        (workdir / "mosquitto.conf").write_text(
            f"listener {mqtt_port} 127.0.0.1\nallow_anonymous true\n"
        )
        processes.append(
            await _spawn(workdir, "mosquitto", mosquitto, "-c", str(workdir / "mosquitto.conf"))
        )
    try:
        p1_stdout = processes[2].stdout
        assert p1_stdout is not None
        p1_device = (await p1_stdout.readline()).decode().strip()
        async with IOModuleSimulator() as io:
            devices = DEVICES.format(
                io_port=io.port,
                poll_period=poll_period,
                dlms_port=dlms_port,
                p1_device=p1_device,
                analyser_port=analyser_port,
                trusted_key=base64.b64encode(bytes(range(32))).decode(),  # any 32 bytes
                releases=workdir / "releases",
            )
            if mosquitto is not None:
                devices += MQTT.format(mqtt_port=mqtt_port)
            await asyncio.sleep(0.5)  # the subprocess servers are listening
            yield devices, io
    finally:
        for process in processes:
            if process.returncode is None:
                process.terminate()
                await process.wait()


async def switch_latency(central: ScriptedCentral, io: IOModuleSimulator, flips: int) -> None:
    """Local override switch flipped → StreetlightModeStatusNotification at the central."""
    loop = asyncio.get_running_loop()
    rng = random.Random(4)
    action = "StreetlightModeStatusNotification"
    latencies: list[float] = []
    engaged = False
    for _ in range(flips):
        # A random phase against the poll period, and time for the lights to settle.
        await asyncio.sleep(0.2 + rng.random() * 0.1)
        before = central.count(action)
        engaged = not engaged
        flipped = loop.time()
        io.set_local_switch(engaged)
        await wait_until(lambda n=before: central.count(action) > n, 10)
        arrived = next(t for t, a, _ in central.received[::-1] if a == action)
        latencies.append(arrived - flipped)
    ms = sorted(1000 * x for x in latencies)
    p99 = ms[min(len(ms) - 1, round(0.99 * len(ms)))]
    print(
        f"input → CALL ({flips} switch flips): p50 {statistics.median(ms):5.1f} ms  "
        f"p99 {p99:5.1f} ms  max {ms[-1]:5.1f} ms   (target p99 ≤ 50 ms)"
    )


async def idle_figures(idle_seconds: float, flips: int, poll_period: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        central = ScriptedCentral()
        url = await central.start()
        async with simulators(workdir, poll_period) as (devices, io):
            station = Station(workdir, url, window=1, devices=devices)
            try:
                ready = await station.start()
                await wait_until(
                    lambda: central.current is not None and central.count("BootNotification") == 1,
                    30,
                )
                await asyncio.sleep(5)  # settle: imports done, status written
                assert station.process is not None
                pid = station.process.pid
                print(f"devices: I/O module polled every {poll_period * 1000:.0f} ms, DLMS, P1, "
                      f"analyser{', MQTT' if '[mqtt]' in devices else ''}")  # fmt: skip
                print(f"start → READY        {ready * 1000:8.0f} ms   (target ≤ 1500 ms)")
                # Twice: meters at their default reads (every 15 min, on the quarter: none
                # in the window), then read every 10 s, so the figures include real meter
                # traffic on every bus (and the libraries it loads).
                for label, interval in (("default meter reads", None), ("meters every 10 s", 10)):
                    if interval is not None:
                        connection = central.current
                        assert connection is not None
                        await connection.call(
                            ChangeConfigurationRequest(
                                key="MeterValueSampleInterval", value=str(interval)
                            )
                        )
                        await asyncio.sleep(5)  # the first reads, their imports
                    cpu0, _ = proc_stat(pid)
                    metered_before = central.count("MeterValues")
                    t0 = time.perf_counter()
                    await asyncio.sleep(idle_seconds)
                    cpu1, rss = proc_stat(pid)
                    cpu_pct = 100 * (cpu1 - cpu0) / (time.perf_counter() - t0)
                    metered = central.count("MeterValues") - metered_before
                    print(f"{label} ({metered} MeterValues in the window):")
                    print(f"  idle RSS           {rss / 2**20:8.1f} MB   (target ≤ 45 MB)")
                    print(
                        f"  idle CPU over {idle_seconds:.0f} s {cpu_pct:8.2f} %    "
                        "(target ≤ 1 % of a core)"
                    )
                if flips:
                    await switch_latency(central, io, flips)
            finally:
                await station.stop()
        await central.stop()


async def backlog_figure(events: int, rtt_ms: float, window: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        central = ScriptedCentral()
        await central.start()
        port = int(central.endpoint.split(":")[2].split("/")[0])
        async with FaultyProxy("127.0.0.1", port) as proxy:
            proxy.delay = rtt_ms / 2000  # one way
            station = Station(Path(tmp), f"ws://127.0.0.1:{proxy.port}/OS3P", window=window)
            prefill(station.data, events)
            try:
                await station.start()
                await wait_until(lambda: central.count("BootNotification") == 1, 30)
                start = time.perf_counter()
                await wait_until(
                    lambda: central.count("StreetlightStatusNotification") >= events, 600
                )
                took = time.perf_counter() - start
                received = central.of("StreetlightStatusNotification")
                stamps = [datetime.fromisoformat(p["timestamp"]) for p in received]
                order = "in order" if stamps == sorted(stamps) else "NOT in order"
                print(
                    f"backlog {events} events, {rtt_ms:.0f} ms RTT, window {window:>2}: "
                    f"{took:7.1f} s ({events / took:,.0f}/s, {order})  (target ≤ 20 s)"
                )
            finally:
                await station.stop()
        await central.stop()


async def main_async(args: argparse.Namespace) -> None:
    await idle_figures(args.idle_seconds, args.flips, args.poll_period)
    for window in args.window:
        await backlog_figure(args.events, args.rtt_ms, window)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--flips", type=int, default=200)
    parser.add_argument("--poll-period", type=float, default=0.03)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rtt-ms", type=float, default=20.0)
    parser.add_argument("--window", type=int, nargs="+", default=[32])
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
