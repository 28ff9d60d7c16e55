"""The central under load: simulated stations in a separate process, real sockets.

Four figures, each printed with its target:

1. Heartbeat round trips/s, 100 busy stations (each sends the next CALL as soon as
   the answer arrives), against three servers run in turn in this process:
   a bare `websockets` echo server (the ceiling of the transport), our central, and
   a central built on the `ocpp` package (`ocpp.v16.ChargePoint`, `@on(Heartbeat)`).
   Targets: central ≥ 0.6 × echo, central ≥ 2.5 × ocpp.
2. MeterValues with 10 sampled values each, stored per second (every message is one
   committed transaction before it is answered; SQLite file in a temp dir).
3. 10,000 idle stations held by one central process (a subprocess, so that its RSS
   is its own): memory per connection, target ≤ 40 KB.
4. The central restarted with those 10,000 connected: time until all have
   reconnected, target ≤ 60 s, none refused.
5. A password check after a restart (the credential cache) against a scrypt check.

The load generator is this file run as `_load` in a second process: raw websockets
clients writing OS³P frames, not the RTU daemon.

    python bench/central.py                    # everything, a few minutes
    python bench/central.py --idle 2000        # smaller idle test
    python bench/central.py --skip-idle
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import resource
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from central.config import ApiConfig, CentralConfig, ListenConfig  # noqa: E402
from central.service import CentralService  # noqa: E402
from central.storage import BootNotification, BootPolicy, open_store  # noqa: E402
from os3p.backoff import Backoff  # noqa: E402

TOKEN = "bench-token-0123456789abcdef"
HEARTBEAT = "Heartbeat"
METER_VALUES = "MeterValues"


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


BENCH_BOOT = BootNotification("Bench", "RTU", "1", "SN-1", "1.0", "", "")


def station_ids(n: int) -> list[str]:
    return [f"BENCH{i:05d}" for i in range(n)]


def populate(db: Path, ids: list[str]) -> None:
    """Register stations through the real store (one commit each, as the API would),
    each with an Accepted boot on record: the stations booted before the bench began."""
    store = open_store(f"sqlite://{db}")
    try:
        existing = {s.station_id for s in store.list_stations()}
        now = datetime.now(UTC)
        for sid in ids:
            if sid not in existing:
                store.add_station(sid, created_at=now, policy=BootPolicy.ACCEPTED)
                store.record_boot(sid, BENCH_BOOT, answered=BootPolicy.ACCEPTED, received_at=now)
    finally:
        store.close()


def central_config(directory: Path, ws_port: int = 0, api_port: int = 0) -> CentralConfig:
    return CentralConfig(
        listen=ListenConfig(host="127.0.0.1", port=ws_port, ping_interval=0),
        api=ApiConfig(host="127.0.0.1", port=api_port, token=TOKEN),
        storage_url=f"sqlite://{directory / 'central.db'}",
        data_dir=directory / "files",
        command_timeout=30.0,
    )


# ------------------------------------------------------------------ the load generator
def meter_values_payload(station_index: int, seq: int) -> dict[str, Any]:
    at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seq * 1000 + station_index)
    return {
        "meterValue": [
            {
                "timestamp": at.isoformat().replace("+00:00", "Z"),
                "sampledValue": [
                    {"value": f"{230 + i}.0", "measurand": m, "unit": u}
                    for i, (m, u) in enumerate(
                        [
                            ("Voltage.L1N", "V"),
                            ("Voltage.L2N", "V"),
                            ("Voltage.L3N", "V"),
                            ("Current.L1", "A"),
                            ("Current.L2", "A"),
                            ("Current.L3", "A"),
                            ("ActivePower.Sum", "W"),
                            ("ReactivePower.Sum", "var"),
                            ("Frequency", "Hz"),
                            ("RealEnergyConsumed.Sum", "Wh"),
                        ]
                    )
                ],
            }
        ]
    }


async def _busy_station(
    websocket: ClientConnection, index: int, action: str, stop_at: float, counts: list[int]
) -> None:
    for seq in itertools.count():
        if time.monotonic() >= stop_at:
            return
        payload = meter_values_payload(index, seq) if action == METER_VALUES else {}
        await websocket.send(json.dumps([2, f"{index}-{seq}", action, payload]))
        answer = json.loads(await websocket.recv())
        # A CALLRESULT, or the echo server's copy of our CALL; a CALLERROR is an error.
        if answer[0] != 4:
            counts[0] += 1
        else:
            counts[1] += 1


async def load(url: str, stations: int, seconds: float, action: str, subprotocol: str) -> None:
    ids = station_ids(stations)
    sockets = [
        await connect(f"{url}/{sid}", subprotocols=[subprotocol], compression=None)  # type: ignore[list-item]
        for sid in ids
    ]
    counts = [0, 0]
    started = time.monotonic()
    async with asyncio.TaskGroup() as tasks:
        for index, websocket in enumerate(sockets):
            tasks.create_task(_busy_station(websocket, index, action, started + seconds, counts))
    elapsed = time.monotonic() - started
    for websocket in sockets:
        await websocket.close()
    print(json.dumps({"ok": counts[0], "errors": counts[1], "seconds": elapsed}), flush=True)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run_load(
    url: str, stations: int, seconds: float, action: str, subprotocol: str
) -> dict[str, float]:
    """Run the load generator against `url`; adds this process's CPU time (the server's)."""
    cpu = cpu_seconds()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "_load",
        url,
        str(stations),
        str(seconds),
        action,
        subprotocol,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"load generator failed ({process.returncode})")
    result: dict[str, float] = json.loads(out.decode().strip().splitlines()[-1])
    result["server_cpu"] = cpu_seconds() - cpu
    return result


# ------------------------------------------------------------------ servers under test
@contextlib.asynccontextmanager
async def echo_server() -> AsyncIterator[str]:
    async def echo(websocket: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in websocket:
                await websocket.send(message)

    server = await serve(
        echo,
        "127.0.0.1",
        0,
        compression=None,
        select_subprotocol=lambda conn, offered: offered[0] if offered else None,
    )
    try:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/OS3P"
    finally:
        server.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def shell_server() -> AsyncIterator[str]:
    """The `os3p` shell alone (Session, Router, Connection) with a Heartbeat handler that
    touches nothing: what the protocol layer costs before the central adds anything."""
    from os3p.connection import Connection
    from os3p.messages import HeartbeatRequest, HeartbeatResponse
    from os3p.router import Router
    from os3p.server import open_server
    from os3p.session import Role, Session
    from os3p.validation import Validator

    validator = Validator()
    router: Router[str] = Router()

    async def heartbeat(request: HeartbeatRequest, station_id: str) -> HeartbeatResponse:
        return HeartbeatResponse(current_time=datetime.now(UTC))

    router.add(HeartbeatRequest, heartbeat)

    class OpenGate:
        def is_known(self, station_id: str) -> bool:
            return True

        def check_password(self, station_id: str, password: str | None) -> bool:
            return True

    async def handle(websocket: ServerConnection, station_id: str) -> None:
        session = Session(Role.CENTRAL, validator, implemented=router.actions)
        await Connection(websocket, session, router, station_id, peer=station_id).run()

    server = await open_server(handle, OpenGate())
    try:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/OS3P"
    finally:
        server.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def ocpp_server() -> AsyncIterator[str]:
    from ocpp.routing import on
    from ocpp.v16 import ChargePoint, call_result
    from ocpp.v16.enums import Action

    class BenchChargePoint(ChargePoint):  # type: ignore[misc]
        @on(Action.heartbeat)  # type: ignore[misc]
        async def on_heartbeat(self) -> Any:
            return call_result.Heartbeat(current_time=datetime.now(UTC).isoformat())

    async def handler(websocket: ServerConnection) -> None:
        assert websocket.request is not None
        charge_point = BenchChargePoint(websocket.request.path.rsplit("/", 1)[-1], websocket)
        with contextlib.suppress(ConnectionClosed):
            await charge_point.start()

    server = await serve(
        handler,
        "127.0.0.1",
        0,
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        compression=None,
    )
    try:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/OCPP"
    finally:
        server.close()
        await server.wait_closed()


# ------------------------------------------------------------------ 1 and 2: busy stations
async def busy_benchmarks(stations: int, seconds: float, rounds: int) -> None:
    print(
        f"== {stations} busy stations, {rounds} interleaved rounds of {seconds:g} s per server,"
        " best round kept; load generator in a second process"
    )
    best: dict[str, dict[str, float]] = {}

    def keep(name: str, result: dict[str, float]) -> None:
        if (
            name not in best
            or result["ok"] / result["seconds"] > best[name]["ok"] / best[name]["seconds"]
        ):
            best[name] = result

    with tempfile.TemporaryDirectory() as tmp:
        populate(Path(tmp) / "central.db", station_ids(stations))
        for _ in range(rounds):
            async with echo_server() as url:
                keep("echo", await run_load(url, stations, seconds, HEARTBEAT, "OS3P1.0"))
            async with shell_server() as url:
                keep("os3p shell", await run_load(url, stations, seconds, HEARTBEAT, "OS3P1.0"))
            async with CentralService(central_config(Path(tmp))) as central:
                keep(
                    "central",
                    await run_load(central.ws_url, stations, seconds, HEARTBEAT, "OS3P1.0"),
                )
            async with ocpp_server() as url:
                keep("ocpp", await run_load(url, stations, seconds, HEARTBEAT, "ocpp1.6"))
    rate = {name: r["ok"] / r["seconds"] for name, r in best.items()}
    errors = sum(r["errors"] for r in best.values())
    print(
        f"Heartbeat round trips/s: echo {rate['echo']:,.0f}  os3p shell {rate['os3p shell']:,.0f}"
        f"  central {rate['central']:,.0f}  ocpp {rate['ocpp']:,.0f}  (CALLERRORs {errors:g})"
    )
    for name, r in best.items():
        print(
            f"  {name}: server CPU {r['server_cpu'] / r['seconds'] * 100:.0f}% of one core,"
            f" {r['server_cpu'] / max(r['ok'], 1) * 1e6:.0f} us per round trip"
        )
    cpu = {name: r["server_cpu"] / max(r["ok"], 1) for name, r in best.items()}
    print(
        f"  central / echo = {rate['central'] / rate['echo']:.2f} by rate,"
        f" {cpu['echo'] / cpu['central']:.2f} by server CPU per round trip  (target >= 0.6)"
    )
    print(
        f"  central / ocpp = {rate['central'] / rate['ocpp']:.2f} by rate,"
        f" {cpu['ocpp'] / cpu['central']:.2f} by server CPU per round trip  (target >= 2.5)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        populate(Path(tmp) / "central.db", station_ids(stations))
        async with CentralService(central_config(Path(tmp))) as central:
            result = await run_load(central.ws_url, stations, seconds, METER_VALUES, "OS3P1.0")
            stored = await central.server.store.meter_values(
                station_ids(stations)[0],
                since=datetime(2025, 1, 1, tzinfo=UTC),
                until=datetime(2030, 1, 1, tzinfo=UTC),
            )
    per_second = result["ok"] / result["seconds"]
    print(
        f"MeterValues (10 samples) stored: {per_second:,.0f} messages/s = {per_second * 10:,.0f}"
        f" samples/s, each committed before its answer (errors {result['errors']:g};"
        f" station 0 has {len(stored)} samples)"
    )


# ------------------------------------------------------------------ 3 and 4: idle stations
async def serve_central(directory: str, ws_port: int, api_port: int) -> None:
    """The central as its own process, for the idle test (`_central`)."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with CentralService(central_config(Path(directory), ws_port, api_port)) as central:
        print(json.dumps({"ready": True, "ws": central.server.port}), flush=True)
        await stop.wait()


class IdleStation:
    """Holds one connection; reconnects as the RTU's link does when it closes: capped
    exponential backoff with full jitter (`os3p.backoff`, base 1 s, cap 60 s)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.connected = asyncio.Event()
        self.connects = 0
        self.refused = 0

    async def run(self) -> None:
        backoff = Backoff(base=1.0, cap=60.0)
        while True:
            try:
                async with connect(
                    self.url,
                    subprotocols=["OS3P1.0"],  # type: ignore[list-item]
                    compression=None,
                    open_timeout=30,
                    ping_interval=None,
                ) as websocket:
                    self.connects += 1
                    self.connected.set()
                    backoff.reset()
                    await websocket.wait_closed()
            except InvalidStatus:
                self.refused += 1  # an HTTP error answer: 404, 401, 5xx
            except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake):
                pass  # not listening yet, or closed mid-handshake by the stopping process
            self.connected.clear()
            await asyncio.sleep(backoff.next_delay())


async def _wait_all(stations: list[IdleStation]) -> None:
    for station in stations:
        await station.connected.wait()


async def start_central_process(
    directory: Path, ws_port: int, api_port: int
) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "_central",
        str(directory),
        str(ws_port),
        str(api_port),
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 60)
    if not line:
        raise RuntimeError("the central process did not start")
    return process


async def idle_benchmark(count: int) -> None:
    limit = raise_fd_limit()
    print(f"== {count:,} idle stations (file descriptor limit {limit:,})")
    if limit < count + 100:
        print("  skipped: raise the hard limit of open files")
        return
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        ids = station_ids(count)
        started = time.monotonic()
        populate(directory / "central.db", ids)
        print(
            f"  registered {count:,} stations in {time.monotonic() - started:.1f} s"
            " (one commit each)"
        )
        probe = await serve(lambda ws: asyncio.sleep(0), "127.0.0.1", 0)
        ws_port = probe.sockets[0].getsockname()[1]
        probe.close()
        await probe.wait_closed()
        process = await start_central_process(directory, ws_port, 0)
        await asyncio.sleep(1.0)
        before = rss_kib(process.pid)
        stations = [IdleStation(f"ws://127.0.0.1:{ws_port}/OS3P/{sid}") for sid in ids]
        started = time.monotonic()
        async with asyncio.TaskGroup() as tasks:
            runners = []
            for station in stations:
                runners.append(tasks.create_task(station.run()))
                await asyncio.sleep(0)  # spread the dial-in a little
            await asyncio.wait_for(_wait_all(stations), 300)
            connected_in = time.monotonic() - started
            await asyncio.sleep(3.0)  # let record_connected drain and the heap settle
            after = rss_kib(process.pid)
            per_connection = (after - before) * 1024 / count
            print(
                f"  all connected in {connected_in:.1f} s;"
                f" central RSS {before / 1024:.0f} MiB -> {after / 1024:.0f} MiB"
            )
            print(f"  memory per connection: {per_connection / 1024:.1f} KB  (target <= 40 KB)")

            refused_before = sum(s.refused for s in stations)
            stopping = time.monotonic()
            process.send_signal(signal.SIGTERM)
            await process.wait()
            down = time.monotonic()
            print(
                f"  old central closed {count:,} connections and exited in {down - stopping:.1f} s"
            )
            for station in stations:
                station.connected.clear()
            process = await start_central_process(directory, ws_port, 0)
            restarted = time.monotonic()
            await asyncio.wait_for(_wait_all(stations), 300)
            done = time.monotonic()
            refused = sum(s.refused for s in stations) - refused_before
            reconnected = sum(1 for s in stations if s.connects >= 2)
            print(
                f"  restart: {reconnected:,}/{count:,} reconnected {done - restarted:.1f} s after"
                f" the new process was ready ({done - down:.1f} s after the old one exited);"
                f" refused: {refused}"
                "  (target <= 60 s, none refused)"
            )
            for runner in runners:
                runner.cancel()
        process.send_signal(signal.SIGTERM)
        await process.wait()


# ------------------------------------------------------------------ 5: password checks
async def password_figure(stations: int = 20, rounds: int = 200) -> None:
    """What a password-protected station's reconnect costs the central after a restart:
    its first check ever is scrypt; after that, one keyed digest (the credential cache)."""
    from central.registry import Registry
    from central.storage import AsyncStore
    from central.storage.passwords import load_or_create_key

    with tempfile.TemporaryDirectory() as tmp:
        key = load_or_create_key(Path(tmp) / "credential-cache.key")
        ids = [f"PW{i:03d}" for i in range(stations)]
        async with await AsyncStore.open(f"sqlite://{Path(tmp) / 'central.db'}") as store:
            registry = Registry(store, lambda: datetime.now(UTC), credential_key=key)
            for sid in ids:
                await registry.add(sid, password=f"secret-{sid}", policy=BootPolicy.ACCEPTED,
                                   heartbeat_interval=300)  # fmt: skip
            started = time.perf_counter()
            for sid in ids:
                assert await registry.check_password(sid, f"secret-{sid}")
            scrypt = (time.perf_counter() - started) / stations
            restarted = Registry(store, lambda: datetime.now(UTC), credential_key=key)
            await restarted.load()
            started = time.perf_counter()
            for _ in range(rounds):
                for sid in ids:
                    assert await restarted.check_password(sid, f"secret-{sid}")
            remembered = (time.perf_counter() - started) / (stations * rounds)
    print(
        f"password check after a restart: {remembered * 1e6:.1f} us remembered vs"
        f" {scrypt * 1e3:.0f} ms scrypt ({scrypt / remembered:,.0f}x); for 10,000 stations"
        f" {remembered * 1e4:.2f} s instead of {scrypt * 1e4:.0f} s"
    )


async def main_async(args: argparse.Namespace) -> None:
    raise_fd_limit()
    await password_figure()
    if not args.skip_busy:
        await busy_benchmarks(args.stations, args.seconds, args.rounds)
    if not args.skip_idle:
        await idle_benchmark(args.idle)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_load":
        url, stations, seconds, action, subprotocol = sys.argv[2:7]
        raise_fd_limit()
        asyncio.run(load(url, int(stations), float(seconds), action, subprotocol))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_central":
        raise_fd_limit()
        asyncio.run(serve_central(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stations", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle", type=int, default=10_000)
    parser.add_argument("--skip-idle", action="store_true")
    parser.add_argument("--skip-busy", action="store_true")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
