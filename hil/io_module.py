"""A Modbus I/O module simulator with the physics of the station behind it.

It speaks real Modbus (pymodbus server: TCP, or RTU on a pseudo-terminal) on
the wiring of an `IOMap`, so the daemon's real driver talks to it exactly as
to the module in the cabinet; only the endpoint in the config differs.

Theory of operation
-------------------
`StationPhysics` is the model and does no I/O: every call takes `now`, and
values are computed from timestamps when asked for, so there are no timers to
own. The `IOModuleSimulator` shell owns the pymodbus server and hands every
coil and discrete-input request to the model through pymodbus's `SimDevice`
action hook: reads are filled from the model, coil writes are fed into it.

What the model simulates:

- **Contactors.** Each coil drives a relay whose auxiliary contact (the
  feedback input) follows the coil after `relay_delay` seconds.
  `force_feedback(n, on)` holds a feedback input regardless of the coil (a
  technician operating the contactor by hand, or a welded contact);
  `force_feedback(n, None)` lets it follow the coil again.
- **Local override switch.** Station-wide; `set_local_switch(True/False)`.
- **MV fault indicators.** `trip(group, kind)` makes a fault cause present
  and latches the indicator; `clear(group, kind)` removes the cause, and the
  indicator stays latched, as a fault passage indicator does, until a reset.
  A rising edge on the group's test coil latches over-current (and ground
  fault, where the group has ground-fault detection, i.e. a ground-fault
  input) with the `test` flag set. A rising edge on the reset coil clears the
  latch and the test flag, then re-latches at once every cause still present.
  `unhealthy(group)` / `restore_health(group)` drive the healthy contact.
- **Disconnects.** `stop()` / `start()` take the server off the wire and
  back on the same port or tty; the physics carries on (a pulled cable, not a
  power cycle).

Every coil write is recorded with its time (`coil_writes`), so tests can
assert what the driver did on the wire, e.g. that no OFF was ever written.

Run standalone (the demo rig does) with `python -m hil.io_module --port N`;
it prints `listening HOST PORT` once serving and then takes one command per
line on stdin, answering `ok` or `error: ...` (see `COMMANDS`), until `quit`,
SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import math
import os
import signal
import sys
import time
import tty
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Literal

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from rtu.io.model import DEFAULT_IO_MAP, IndicatorPoints, IOMap

__all__ = [
    "COMMANDS",
    "KINDS",
    "CoilWrite",
    "IOModuleSimulator",
    "IndicatorView",
    "StationPhysics",
    "apply_command",
    "main",
]

_log = logging.getLogger(__name__)

Kind = Literal["overcurrent", "groundfault"]
KINDS: tuple[Kind, ...] = ("overcurrent", "groundfault")

# Modbus function codes the model serves (Modbus Application Protocol §6).
_READ_COILS, _READ_INPUTS, _WRITE_COIL, _WRITE_COILS = 1, 2, 5, 15
_BITS_PER_REGISTER = 16


@dataclasses.dataclass(frozen=True, slots=True)
class CoilWrite:
    """One coil write as it arrived on the wire."""

    at: float  # simulator clock
    address: int
    value: bool


@dataclasses.dataclass(frozen=True, slots=True)
class IndicatorView:
    """The latched state of one indicator group, for observation."""

    overcurrent: bool
    groundfault: bool
    test: bool  # latched by a test pulse, until the next reset
    healthy: bool
    causes: frozenset[Kind]  # faults present on the line right now


@dataclasses.dataclass(slots=True)
class _Relay:
    coil: bool = False
    changed_at: float = -math.inf
    before_change: bool = False  # feedback just before the last coil change
    forced: bool | None = None

    def natural_feedback(self, now: float, delay: float) -> bool:
        return self.coil if now - self.changed_at >= delay else self.before_change

    def drive(self, on: bool, now: float, delay: float) -> None:
        if on != self.coil:
            self.before_change = self.natural_feedback(now, delay)
            self.coil = on
            self.changed_at = now


@dataclasses.dataclass(slots=True)
class _Indicator:
    points: IndicatorPoints
    causes: set[Kind] = dataclasses.field(default_factory=set)
    latched: set[Kind] = dataclasses.field(default_factory=set)
    test: bool = False
    healthy: bool = True

    def detects(self, kind: Kind) -> bool:
        wired = self.points.overcurrent if kind == "overcurrent" else self.points.groundfault
        return wired is not None

    def run_test(self) -> None:
        self.latched |= {k for k in KINDS if self.detects(k)}
        self.test = True

    def reset(self) -> None:
        self.latched = set(self.causes)  # cleared, then re-tripped by what is still there
        self.test = False


class StationPhysics:
    """The field side of the module: relays, switch and indicators, driven by coil writes."""

    def __init__(self, iomap: IOMap, *, relay_delay: float = 0.05) -> None:
        self.iomap = iomap
        self.relay_delay = relay_delay
        self.coil_channels = _channels(iomap.coil_addresses())
        self.input_channels = _channels(iomap.input_addresses())
        self.coil_writes: list[CoilWrite] = []
        self.local_switch = False
        self._pulse_coils: dict[int, bool] = {
            a: False for g in iomap.indicators for a in (g.test_coil, g.reset_coil)
        }
        self._relays = {c.number: _Relay() for c in iomap.contactors}
        self._relay_by_coil = {c.coil: self._relays[c.number] for c in iomap.contactors}
        self._indicators = {g.name: _Indicator(g) for g in iomap.indicators}
        self._edge_actions: dict[int, Callable[[], None]] = {}
        for indicator in self._indicators.values():
            self._edge_actions[indicator.points.test_coil] = indicator.run_test
            self._edge_actions[indicator.points.reset_coil] = indicator.reset

    # -- the wire side --------------------------------------------------------

    def write_coils(self, address: int, values: Sequence[bool], now: float) -> None:
        """Apply a coil write (FC 5 or 15) arriving at `now`."""
        for offset, raw in enumerate(values):
            coil, value = address + offset, bool(raw)
            self.coil_writes.append(CoilWrite(now, coil, value))
            if relay := self._relay_by_coil.get(coil):
                relay.drive(value, now, self.relay_delay)
            elif coil in self._pulse_coils:
                rising = value and not self._pulse_coils[coil]
                self._pulse_coils[coil] = value
                if rising:
                    self._edge_actions[coil]()

    def coil_bits(self) -> list[bool]:
        """The coil table, one bool per channel."""
        bits = [False] * self.coil_channels
        for address, on in self._pulse_coils.items():
            bits[address] = on
        for address, relay in self._relay_by_coil.items():
            bits[address] = relay.coil
        return bits

    def input_bits(self, now: float) -> list[bool]:
        """The discrete-input table at `now`, as raw levels (inverted inputs flipped)."""
        logical: dict[int, bool] = {self.iomap.local_switch: self.local_switch}
        for points in self.iomap.contactors:
            logical[points.feedback] = self.feedback(points.number, now)
        for indicator in self._indicators.values():
            p = indicator.points
            wired = (
                (p.overcurrent, "overcurrent" in indicator.latched),
                (p.groundfault, "groundfault" in indicator.latched),
                (p.healthy, indicator.healthy),
            )
            logical.update({a: v for a, v in wired if a is not None})
        bits = [False] * self.input_channels
        for address, value in logical.items():
            bits[address] = value != (address in self.iomap.inverted_inputs)
        return bits

    # -- controls -------------------------------------------------------------

    def force_feedback(self, contactor: int, on: bool | None) -> None:
        """Hold contactor `contactor`'s feedback at `on`; None lets it follow the coil again."""
        self._relay(contactor).forced = on

    def trip(self, group: str, kind: Kind) -> None:
        """A fault of `kind` appears on the line: the indicator latches."""
        indicator = self._detecting(group, kind)
        indicator.causes.add(kind)
        indicator.latched.add(kind)

    def clear(self, group: str, kind: Kind) -> None:
        """The fault goes away; the indicator stays latched until reset."""
        self._detecting(group, kind).causes.discard(kind)

    def set_healthy(self, group: str, healthy: bool) -> None:
        """Drive the group's healthy (self-supervision) contact."""
        self._indicator(group).healthy = healthy

    def press_test(self, group: str) -> None:
        """The indicator's own test button, as a technician would press it."""
        self._indicator(group).run_test()

    def press_reset(self, group: str) -> None:
        """The indicator's own reset button."""
        self._indicator(group).reset()

    # -- observation ----------------------------------------------------------

    def coil(self, address: int) -> bool:
        """The current state of coil `address`."""
        return self.coil_bits()[address]

    def feedback(self, contactor: int, now: float) -> bool:
        """The logical feedback of contactor `contactor` at `now`."""
        relay = self._relay(contactor)
        if relay.forced is not None:
            return relay.forced
        return relay.natural_feedback(now, self.relay_delay)

    def indicator(self, group: str) -> IndicatorView:
        """The state of indicator group `group`."""
        i = self._indicator(group)
        return IndicatorView(
            overcurrent="overcurrent" in i.latched,
            groundfault="groundfault" in i.latched,
            test=i.test,
            healthy=i.healthy,
            causes=frozenset(i.causes),
        )

    def _relay(self, contactor: int) -> _Relay:
        self.iomap.contactor(contactor)  # ValueError for an unmapped contactor
        return self._relays[contactor]

    def _indicator(self, group: str) -> _Indicator:
        self.iomap.indicator(group)  # ValueError for an unmapped group
        return self._indicators[group]

    def _detecting(self, group: str, kind: Kind) -> _Indicator:
        indicator = self._indicator(group)
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {KINDS}")
        if not indicator.detects(kind):
            raise ValueError(f"indicator group {group} has no {kind} detection")
        return indicator


def _channels(addresses: Sequence[int]) -> int:
    """The module's channel count: the mapped range rounded up to whole 16-bit words.

    Real modules come in 8/16-channel multiples; reading past the last channel
    gets an ILLEGAL DATA ADDRESS exception response, as from real hardware.
    """
    highest = max(addresses, default=0)
    return (highest // _BITS_PER_REGISTER + 1) * _BITS_PER_REGISTER


def _bits(channels: int) -> SimData:
    return SimData(0, count=channels, values=False, datatype=DataType.BITS)


def _pack(bits: Sequence[bool]) -> list[int]:
    """Bits to 16-bit words, bit 0 first: pymodbus's bit-block layout."""
    return [
        sum(1 << i for i, on in enumerate(bits[w : w + _BITS_PER_REGISTER]) if on)
        for w in range(0, len(bits), _BITS_PER_REGISTER)
    ]


class _PtyCable:
    """A serial cable between two pseudo-terminals, which can be cut.

    The simulator's serial server opens one end (`module_end`) and the driver
    the other (`station_end`), both ordinary tty paths, so the driver runs its
    real serial code. The two pty masters are bridged in the event loop; while
    the cable is cut, bytes are dropped as on a pulled RS-485 pair, so a
    request sent during an outage is never answered late after it.
    """

    def __init__(self) -> None:
        self._module_master, self._module_slave = os.openpty()
        self._station_master, self._station_slave = os.openpty()
        # Raw from the start, so nothing is echoed or translated before
        # pyserial configures the ports; the slave fds stay open so a master
        # never reads EIO while neither side has its end open.
        for fd in (self._module_slave, self._station_slave):
            tty.setraw(fd)
        for fd in (self._module_master, self._station_master):
            os.set_blocking(fd, False)
        self.module_end = os.ttyname(self._module_slave)
        self.station_end = os.ttyname(self._station_slave)
        self.connected = True
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(
            self._module_master, self._carry, self._module_master, self._station_master
        )
        self._loop.add_reader(
            self._station_master, self._carry, self._station_master, self._module_master
        )

    def _carry(self, source: int, sink: int) -> None:
        # A spurious wake-up (BlockingIOError) or a hung-up end (EIO) has
        # nothing to carry; a sink that cannot take the bytes loses them, as
        # a UART overrun would.
        try:
            data = os.read(source, 4096)
            if self.connected:
                os.write(sink, data)
        except OSError:
            return

    def close(self) -> None:
        self._loop.remove_reader(self._module_master)
        self._loop.remove_reader(self._station_master)
        for fd in (
            self._module_master,
            self._module_slave,
            self._station_master,
            self._station_slave,
        ):
            os.close(fd)


Link = Literal["tcp", "rtu-over-tcp", "rtu-pty"]


class IOModuleSimulator:
    """The physics behind a real Modbus server.

    `link` picks the wire:

    - `"tcp"`: Modbus TCP on `host:port`. `port=0` picks a free port on the
      first `start()`; later starts reuse it, so a driver reconnects to the
      same endpoint.
    - `"rtu-over-tcp"`: RTU frames on `host:port`, as a transparent
      serial-to-Ethernet gateway speaks; a serial driver reaches it through
      pyserial's `socket://host:port` URL.
    - `"rtu-pty"`: Modbus RTU on a pseudo-terminal; the driver opens the tty
      at `device`. `stop()` cuts the cable, `start()` mends it.

    Use it as an async context manager, or call `start()` and `close()`.
    """

    def __init__(
        self,
        iomap: IOMap = DEFAULT_IO_MAP,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        relay_delay: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        link: Link = "tcp",
    ) -> None:
        self.physics = StationPhysics(iomap, relay_delay=relay_delay)
        # Requests served, by Modbus function code (what a driver costs the module).
        self.requests: Counter[int] = Counter()
        self._host = host
        self._port = port
        self._clock = clock
        self._link = link
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self._cable: _PtyCable | None = None

    @property
    def port(self) -> int:
        """The TCP port; known once a TCP simulator has started."""
        return self._port

    @property
    def device(self) -> str:
        """The tty the driver opens, for `link="rtu-pty"`; known once started."""
        if self._cable is None:
            raise RuntimeError("the pty exists once an rtu-pty simulator has started")
        return self._cable.station_end

    @property
    def running(self) -> bool:
        """Whether the module is on the wire."""
        return self._server is not None

    async def start(self) -> None:
        """Serve, on the same port or tty as before if there was a before."""
        if self._server is not None:
            return
        device = SimDevice(
            id=self.physics.iomap.device_id,
            simdata=(
                [_bits(self.physics.coil_channels)],
                [_bits(self.physics.input_channels)],
                [SimData(0, datatype=DataType.INVALID)],  # no holding registers
                [SimData(0, datatype=DataType.INVALID)],  # no input registers
            ),
            action=self._on_request,
        )
        if self._link == "rtu-pty":
            if self._cable is None:
                self._cable = _PtyCable()
            self._server = ModbusSerialServer(device, port=self._cable.module_end)
            await self._server.serve_forever(background=True)
            self._cable.connected = True
            _log.info("I/O module simulator on %s", self._cable.station_end)
            return
        framer = FramerType.RTU if self._link == "rtu-over-tcp" else FramerType.SOCKET
        server = ModbusTcpServer(device, framer=framer, address=(self._host, self._port))
        await server.serve_forever(background=True)
        # The listener's transport is the asyncio.Server: ask it which port port 0 became.
        listener = server.transport
        if not isinstance(listener, asyncio.Server):
            raise TypeError(f"pymodbus listener is {type(listener).__name__}, not asyncio.Server")
        self._port = listener.sockets[0].getsockname()[1]
        self._server = server
        _log.info("I/O module simulator listening on %s:%d", self._host, self._port)

    async def stop(self) -> None:
        """Go off the wire: stop serving, drop TCP clients, cut the serial cable."""
        if self._cable is not None:
            self._cable.connected = False
        if self._server is not None:
            server, self._server = self._server, None
            await server.shutdown()  # type: ignore[no-untyped-call]  # pymodbus leaves it unannotated

    async def close(self) -> None:
        """Stop, and release the pseudo-terminals if there are any."""
        await self.stop()
        if self._cable is not None:
            self._cable.close()
            self._cable = None

    async def __aenter__(self) -> IOModuleSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # Controls and observation, in the simulator's clock.

    @property
    def coil_writes(self) -> list[CoilWrite]:
        """Every coil write received, oldest first."""
        return self.physics.coil_writes

    def set_local_switch(self, engaged: bool) -> None:
        """Engage or release the station-wide technician override switch."""
        self.physics.local_switch = engaged

    def force_feedback(self, contactor: int, on: bool | None) -> None:
        """See `StationPhysics.force_feedback`."""
        self.physics.force_feedback(contactor, on)

    def trip(self, group: str, kind: Kind) -> None:
        """See `StationPhysics.trip`."""
        self.physics.trip(group, kind)

    def clear(self, group: str, kind: Kind) -> None:
        """See `StationPhysics.clear`."""
        self.physics.clear(group, kind)

    def unhealthy(self, group: str) -> None:
        """Open the group's healthy contact (indicator failed its self-supervision)."""
        self.physics.set_healthy(group, False)

    def restore_health(self, group: str) -> None:
        """Close the group's healthy contact again."""
        self.physics.set_healthy(group, True)

    def feedback(self, contactor: int) -> bool:
        """Contactor `contactor`'s feedback now."""
        return self.physics.feedback(contactor, self._clock())

    def coil(self, address: int) -> bool:
        """Coil `address` now."""
        return self.physics.coil(address)

    def indicator(self, group: str) -> IndicatorView:
        """Indicator group `group` now."""
        return self.physics.indicator(group)

    async def _on_request(
        self,
        function_code: int,
        _start_address: int,
        address: int,
        _count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """pymodbus's hook: refresh the accessed block from the model, feed writes into it.

        pymodbus calls it for the block the request touches (coils or discrete
        inputs), before it applies a write to `registers`; writing the model's
        words in place is how a read sees the physics.
        """
        now = self._clock()
        self.requests[function_code] += 1
        if set_values is not None and function_code in (_WRITE_COIL, _WRITE_COILS):
            self.physics.write_coils(address, [bool(v) for v in set_values], now)
        if function_code == _READ_INPUTS:
            words = _pack(self.physics.input_bits(now))
        elif function_code in (_READ_COILS, _WRITE_COIL, _WRITE_COILS):
            words = _pack(self.physics.coil_bits())
        else:
            return ExcCodes.ILLEGAL_FUNCTION
        registers[: len(words)] = words
        return None


COMMANDS = """\
switch on|off                        engage / release the local override switch
trip GROUP overcurrent|groundfault   a fault appears (the indicator latches)
clear GROUP overcurrent|groundfault  the fault goes away (stays latched until reset)
unhealthy GROUP                      open the healthy contact
healthy GROUP                        close it again
test GROUP                           press the indicator's own test button
reset GROUP                          press the indicator's own reset button
flip N on|off|auto                   hold contactor N's feedback; auto: follow the coil
disconnect                           stop serving (clients are dropped)
connect                              serve again on the same port
status                               print the state as one JSON line
help                                 print this list
quit                                 stop and exit"""


async def apply_command(sim: IOModuleSimulator, line: str) -> str:
    """Run one stdin command against `sim`; the answer is one line for the caller."""
    words = line.split()
    try:
        match words:
            case ["switch", ("on" | "off") as state]:
                sim.set_local_switch(state == "on")
            case ["trip", group, ("overcurrent" | "groundfault") as kind]:
                sim.trip(group, kind)
            case ["clear", group, ("overcurrent" | "groundfault") as kind]:
                sim.clear(group, kind)
            case ["unhealthy", group]:
                sim.unhealthy(group)
            case ["healthy", group]:
                sim.restore_health(group)
            case ["test", group]:
                sim.physics.press_test(group)
            case ["reset", group]:
                sim.physics.press_reset(group)
            case ["flip", number, ("on" | "off" | "auto") as state] if number.isdigit():
                sim.force_feedback(int(number), None if state == "auto" else state == "on")
            case ["disconnect"]:
                await sim.stop()
            case ["connect"]:
                await sim.start()
            case ["status"]:
                return json.dumps(_status(sim), sort_keys=True)
            case ["help"]:
                return COMMANDS
            case _:
                return f"error: unknown command {line.strip()!r}; try 'help'"
    except ValueError as exc:
        return f"error: {exc}"
    return "ok"


def _status(sim: IOModuleSimulator) -> dict[str, object]:
    iomap = sim.physics.iomap
    return {
        "running": sim.running,
        "port": sim.port,
        # Every coil write since start, oldest first: [seconds, coil address, value].
        "coil_writes": [[w.at, w.address, w.value] for w in sim.coil_writes],
        "local_switch": sim.physics.local_switch,
        "contactors": {
            str(c.number): {"coil": sim.coil(c.coil), "feedback": sim.feedback(c.number)}
            for c in iomap.contactors
        },
        "indicators": {
            g.name: {
                "overcurrent": (v := sim.indicator(g.name)).overcurrent,
                "groundfault": v.groundfault,
                "test": v.test,
                "healthy": v.healthy,
                "causes": sorted(v.causes),
            }
            for g in iomap.indicators
        },
    }


async def _serve(host: str, port: int, relay_delay: float) -> None:
    """Serve until `quit` or SIGTERM/SIGINT.

    The end of stdin does not stop the simulator: a rig that has no commands
    to give may start it with stdin closed or on /dev/null.
    """
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, done.set)
    sim = IOModuleSimulator(host=host, port=port, relay_delay=relay_delay)
    await sim.start()
    print(f"listening {host} {sim.port}", flush=True)
    try:
        async with asyncio.TaskGroup() as tasks:
            commands = tasks.create_task(_command_loop(sim, done), name="stdin commands")
            await done.wait()
            commands.cancel()
    finally:
        await sim.close()


async def _command_loop(sim: IOModuleSimulator, done: asyncio.Event) -> None:
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    except ValueError:  # a regular file: asyncio cannot watch it, and reading it cannot block
        reader.feed_data(sys.stdin.buffer.read())
        reader.feed_eof()
    while line := (await reader.readline()).decode():
        if line.split() == ["quit"]:
            done.set()
            return
        if line.strip():
            print(await apply_command(sim, line), flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: serve the default map until stdin says `quit` or a signal arrives."""
    parser = argparse.ArgumentParser(
        prog="python -m hil.io_module",
        description="Modbus TCP I/O module simulator. Commands on stdin:\n\n" + COMMANDS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1502, help="0 picks a free port")
    parser.add_argument("--relay-delay", type=float, default=0.05, help="seconds")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    asyncio.run(_serve(args.host, args.port, args.relay_delay))


if __name__ == "__main__":
    main()
