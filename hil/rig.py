"""The HIL rig: the central system, N stations and their simulators, as real processes.

Everything runs on 127.0.0.1 in one work directory:

    <workdir>/central/       central.toml, central.db (SQLite), files/, central.log
    <workdir>/SUBS001/       rtu.toml, data/ (the daemon's databases), rtu.log, io.log

Each station is the real daemon (`python -m rtu.cli run`) talking Modbus TCP to
its own I/O module simulator (`python -m hil.io_module`), and OS³P to the real
central (`python -m central.cli serve`). The daemon's config is the same schema
a real substation uses: point `[io]` at real hardware and nothing else changes.
The rig drives the simulators through their stdin commands and the central
through its operator API, like a test engineer would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.proxy import FaultyProxy

__all__ = ["Rig", "StationProcess", "free_port", "running_rig"]

CENTRAL_CONFIG = """\
[listen]
host = "127.0.0.1"
port = {ws_port}
prefix = "/OS3P"
ping_interval = 0

[api]
host = "127.0.0.1"
port = {api_port}
token = "{token}"

[storage]
url = "sqlite:///{db}"

[files]
data_dir = "{files}"

[commands]
timeout = 10

[logging]
level = "WARNING"
"""

STATION_CONFIG = """\
[station]
id = "{station_id}"
vendor = "OpenGrid"
model = "RTU-HIL"
station_number = "{number}"
serial_number = "SN-{station_id}"
iccid = ""
imsi = ""

[central]
url = "{endpoint}"
password = "{password}"
call_timeout = {call_timeout}

[data]
dir = "{data}"

[site]
latitude = 51.98
longitude = 5.91
timezone = "Europe/Amsterdam"

[link]
heartbeat_interval = {heartbeat}
websocket_ping_interval = {ping_interval}
reconnect_backoff_base = 0.2
reconnect_backoff_cap = 2.0
outbox_window = 8

[io]
transport = "tcp"
host = "127.0.0.1"
port = {io_port}
poll_period = 0.03

[lights]
feedback_timeout = 2.0

[mv]
debounce = 0.1
"""

# Appended to a station's config when the rig runs meter simulators for it: the
# transformer's DLMS meter (TCP) and the streetlight supply's P1 port (a pty).
METER_CONFIG = """
[metering]
retry_interval = 0.5

[[meters]]
kind = "p1"
name = "streetlights"
device = "{p1_device}"

[[meters]]
kind = "dlms"
name = "transformer"
host = "127.0.0.1"
port = {meter_port}
transport = "wrapper"
authentication = "low"
password = "12345678"
timeout = 2
"""


def _device_named(log: Path) -> str:
    """The tty a simulator printed as its first line ("" until it has)."""
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return next((line for line in lines if line.startswith("/dev/")), "")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ApiError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


@dataclass
class StationProcess:
    station_id: str
    directory: Path
    io_port: int
    password: str
    daemon: asyncio.subprocess.Process | None = None
    io: asyncio.subprocess.Process | None = None
    io_replies: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    meter_port: int = 0
    meter: asyncio.subprocess.Process | None = None
    p1: asyncio.subprocess.Process | None = None
    p1_device: str = ""
    # Where the daemon keeps its databases; a test may point it at a small tmpfs.
    data_dir: Path | None = None
    # Extra environment of the daemon process (e.g. libfaketime's LD_PRELOAD).
    env: dict[str, str] = field(default_factory=dict)

    @property
    def config(self) -> Path:
        return self.directory / "rtu.toml"

    @property
    def data(self) -> Path:
        return self.data_dir if self.data_dir is not None else self.directory / "data"

    @property
    def log(self) -> Path:
        return self.directory / "rtu.log"


async def _spawn(
    *argv: str, log: Path, stdin: bool = False, env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    stream = log.open("ab")
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE if stdin else stream,
            stderr=stream,
            env={**os.environ, **env} if env else None,
        )
    finally:
        stream.close()


async def _stop(process: asyncio.subprocess.Process | None, timeout: float = 10.0) -> None:
    if process is None or process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        async with asyncio.timeout(timeout):
            await process.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


class Rig:
    """The processes of one rig.

    `proxy=True` puts a `FaultyProxy` (in this process, on the caller's event loop)
    between every daemon and the central; `ping_interval` sets the daemons'
    websocket pings (what detects a half-open link); `meters=True` gives every
    station a DLMS meter and a P1 meter simulator, and their `[[meters]]` sections.
    """

    def __init__(
        self,
        workdir: Path,
        stations: int,
        *,
        heartbeat: int = 30,
        ping_interval: int = 0,
        call_timeout: float = 10,
        proxy: bool = False,
        meters: bool = False,
    ) -> None:
        self.workdir = workdir
        self.token = secrets.token_hex(16)
        self.ws_port = free_port()
        self.api_port = free_port()
        self.heartbeat = heartbeat
        self.ping_interval = ping_interval
        self.call_timeout = call_timeout
        self.meters = meters
        self.proxy: FaultyProxy | None = (
            FaultyProxy("127.0.0.1", self.ws_port, port=free_port()) if proxy else None
        )
        self.central: asyncio.subprocess.Process | None = None
        self.stations = [
            StationProcess(
                station_id=f"SUBS{n:03d}",
                directory=workdir / f"SUBS{n:03d}",
                io_port=free_port(),
                password=secrets.token_hex(8),
                meter_port=free_port() if meters else 0,
            )
            for n in range(1, stations + 1)
        ]

    @property
    def endpoint(self) -> str:
        """The central's endpoint as the daemons see it (through the proxy, if any)."""
        port = self.proxy.port if self.proxy is not None else self.ws_port
        return f"ws://127.0.0.1:{port}/OS3P"

    # ------------------------------------------------------------ the central
    async def start_central(self) -> None:
        directory = self.workdir / "central"
        directory.mkdir(parents=True, exist_ok=True)
        config = directory / "central.toml"
        config.write_text(
            CENTRAL_CONFIG.format(
                ws_port=self.ws_port,
                api_port=self.api_port,
                token=self.token,
                db=directory / "central.db",
                files=directory / "files",
            )
        )
        self.central = await _spawn(
            "-m", "central.cli", "--config", str(config), "serve", log=directory / "central.log"
        )
        await self._until_api_answers()

    async def stop_central(self) -> None:
        await _stop(self.central)
        self.central = None

    async def _until_api_answers(self, timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            while True:
                if self.central is not None and self.central.returncode is not None:
                    log = (self.workdir / "central" / "central.log").read_text(errors="replace")
                    raise RuntimeError(f"the central exited:\n{log[-2000:]}")
                try:
                    await self.api("GET", "/api/stations")
                except (OSError, ApiError):
                    await asyncio.sleep(0.1)
                else:
                    return

    def _request(self, method: str, path: str, body: Any) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.api_port}{path}", data=data, method=method
        )
        request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as exc:
            raw = exc.read().decode(errors="replace")
            raise ApiError(exc.code, raw) from None
        return json.loads(text) if text else None

    async def api(self, method: str, path: str, body: Any = None) -> Any:
        return await asyncio.to_thread(self._request, method, path, body)

    async def command(self, station_id: str, action: str, payload: dict[str, Any]) -> Any:
        sid = urllib.parse.quote(station_id, safe="")
        return await self.api("POST", f"/api/stations/{sid}/commands/{action}", payload)

    # ------------------------------------------------------------ stations
    async def add_stations(self) -> None:
        for station in self.stations:
            await self.api(
                "POST",
                "/api/stations",
                {
                    "id": station.station_id,
                    "password": station.password,
                    "policy": "Accepted",
                    "heartbeatInterval": self.heartbeat,
                },
            )

    async def start_io(self, station: StationProcess) -> None:
        station.directory.mkdir(parents=True, exist_ok=True)
        station.io = await _spawn(
            "-m", "hil.io_module", "--port", str(station.io_port),
            log=station.directory / "io.log", stdin=True,
        )  # fmt: skip
        assert station.io.stdout is not None
        async with asyncio.timeout(30):
            line = (await station.io.stdout.readline()).decode()
        if not line.startswith("listening"):
            raise RuntimeError(f"I/O simulator for {station.station_id} did not start: {line!r}")
        asyncio.get_running_loop().create_task(self._read_io_replies(station))

    async def _read_io_replies(self, station: StationProcess) -> None:
        assert station.io is not None
        assert station.io.stdout is not None
        while line := await station.io.stdout.readline():
            station.io_replies.put_nowait(line.decode().strip())

    async def io_command(self, station: StationProcess, command: str) -> str:
        """One stdin command to a station's I/O simulator (e.g. "trip MV1 overcurrent")."""
        assert station.io is not None
        assert station.io.stdin is not None
        station.io.stdin.write(command.encode() + b"\n")
        await station.io.stdin.drain()
        async with asyncio.timeout(10):
            return await station.io_replies.get()

    async def stop_io(self, station: StationProcess) -> None:
        """The I/O module loses power: its process ends (coil states are lost with it)."""
        if station.io is not None and station.io.stdin is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                station.io.stdin.write(b"quit\n")
        await _stop(station.io)
        station.io = None
        station.io_replies = asyncio.Queue()

    async def start_meter(self, station: StationProcess) -> None:
        station.meter = await _spawn(
            "-m", "hil.dlms_meter", "--port", str(station.meter_port),
            log=station.directory / "meter.log",
        )  # fmt: skip
        async with asyncio.timeout(30):
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", station.meter_port)
                except OSError:
                    await asyncio.sleep(0.1)
                else:
                    writer.close()
                    return

    async def stop_meter(self, station: StationProcess) -> None:
        await _stop(station.meter)
        station.meter = None

    async def start_p1(self, station: StationProcess) -> None:
        """The P1 meter writes a DSMR telegram a second to a pseudo-terminal it names."""
        log = station.directory / "p1.log"
        station.p1 = await _spawn("-m", "hil.p1_meter", log=log)
        async with asyncio.timeout(30):
            while not station.p1_device:
                await asyncio.sleep(0.05)
                station.p1_device = _device_named(log)

    async def stop_p1(self, station: StationProcess) -> None:
        await _stop(station.p1)
        station.p1 = None

    async def start_daemon(self, station: StationProcess) -> None:
        station.data.mkdir(parents=True, exist_ok=True)
        config = STATION_CONFIG.format(
            station_id=station.station_id,
            number=station.station_id[-4:],
            endpoint=self.endpoint,
            password=station.password,
            data=station.data,
            heartbeat=self.heartbeat,
            ping_interval=self.ping_interval,
            call_timeout=self.call_timeout,
            io_port=station.io_port,
        )
        if station.meter_port:
            config += METER_CONFIG.format(
                meter_port=station.meter_port, p1_device=station.p1_device
            )
        station.config.write_text(config)
        station.daemon = await _spawn(
            "-m", "rtu.cli", "run", "--config", str(station.config),
            log=station.log, env=station.env,
        )  # fmt: skip

    async def kill_daemon(self, station: StationProcess) -> None:
        """Power cut: SIGKILL, no clean shutdown."""
        if station.daemon is not None and station.daemon.returncode is None:
            station.daemon.kill()
            await station.daemon.wait()

    async def stop_daemon(self, station: StationProcess) -> None:
        await _stop(station.daemon)

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        await self.start_central()
        if self.proxy is not None:
            await self.proxy.start()
        await self.add_stations()
        for station in self.stations:
            await self.start_io(station)
            if station.meter_port:
                await self.start_meter(station)
                await self.start_p1(station)
            await self.start_daemon(station)

    async def stop(self) -> None:
        for station in self.stations:
            await _stop(station.daemon)
        if self.proxy is not None:
            await self.proxy.stop()
        await self.stop_central()
        for station in self.stations:
            await self.stop_io(station)
            await self.stop_meter(station)
            await self.stop_p1(station)

    async def until_all_accepted(self, timeout: float = 60.0) -> None:
        """Wait until every station is connected and its boot was Accepted."""
        async with asyncio.timeout(timeout):
            while True:
                views = await self.station_views()
                if all(v.get("connected") and v.get("bootStatus") == "Accepted" for v in views):
                    return
                await asyncio.sleep(0.2)

    async def station_views(self) -> list[dict[str, Any]]:
        body: dict[str, list[dict[str, Any]]] = await self.api("GET", "/api/stations")
        return body["stations"]


@contextlib.asynccontextmanager
async def running_rig(workdir: Path, stations: int, **kwargs: Any) -> AsyncIterator[Rig]:
    rig = Rig(workdir, stations, **kwargs)
    try:
        await rig.start()
        yield rig
    finally:
        await rig.stop()
