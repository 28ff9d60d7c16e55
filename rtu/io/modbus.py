"""The I/O module driver over pymodbus: Modbus TCP or Modbus RTU on a serial line.

Theory of operation
-------------------
The driver owns at most one pymodbus client. Every request passes one choke
point, `_execute`, which connects when there is no live client, bounds the
request with the endpoint's timeout, and translates whatever pymodbus does
into `rtu.io.errors`: a raised exception, a timeout or a garbled answer is
`IOModuleUnavailable` and drops the client (the next call builds a fresh one,
so reconnecting needs no background task); an exception response is
`IOModuleFault` and keeps the connection, since the link itself is fine.
pymodbus's own reconnect task and retries are switched off so that the
driver, not the library, decides when to talk to the module.

Pulses and owed OFF writes
--------------------------
A test or reset output left on is a hazard (an indicator held in test, a
reset held on hides a real fault), so a pulse records its coil as *owed an
OFF* before writing ON and clears the debt only once OFF is acknowledged.
Every later call first settles the debts, which is how an OFF lost with the
connection is written as soon as the module answers again. A pulse whose
caller is cancelled mid-pulse still tries to write OFF before giving up.

Coils are read when they can have changed
-----------------------------------------
A poll reads the inputs every time (the local switch, feedback and MV
indicators are what the fast poll is for) but re-reads the coils only when
they may differ from the last reading: after any write of ours, after the
connection dropped (the module may have restarted with its outputs off),
whenever any input changed (a relay that drops, whoever caused it, shows on
its feedback contact), and at least every `coil_refresh` seconds (another
Modbus master). In a quiet station that halves the requests per poll, which is
most of the daemon's idle CPU and what lets the poll run fast enough for the
input → CALL budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Literal

from pymodbus import ModbusException
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU

from rtu.io.errors import IOModuleFault, IOModuleUnavailable
from rtu.io.model import IndicatorState, IOMap, IOSnapshot

__all__ = ["ModbusIOModule", "SerialEndpoint", "TcpEndpoint", "contiguous_runs"]

_log = logging.getLogger(__name__)

#: Modbus Application Protocol V1.1b3 §6.1/§6.2: at most 2000 bits per read.
MAX_BITS_PER_READ = 2000

Sleep = Callable[[float], Awaitable[None]]
_Client = AsyncModbusTcpClient | AsyncModbusSerialClient


@dataclasses.dataclass(frozen=True, slots=True)
class TcpEndpoint:
    """A module reached over Modbus TCP (or through a TCP gateway)."""

    host: str
    port: int = 502
    timeout: float = 1.0  # seconds, for connecting and for each answer

    def describe(self) -> str:
        """How logs and errors name the endpoint."""
        return f"tcp {self.host}:{self.port}"


@dataclasses.dataclass(frozen=True, slots=True)
class SerialEndpoint:
    """A module on an RS-485 line, spoken to in Modbus RTU.

    `device` is anything pyserial opens: a device path, or a URL such as
    `socket://host:port` for RTU framing through a transparent serial server.
    """

    device: str
    baudrate: int = 19200
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    timeout: float = 1.0

    def describe(self) -> str:
        """How logs and errors name the endpoint."""
        return f"rtu {self.device} {self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"


Endpoint = TcpEndpoint | SerialEndpoint


def _cancellations() -> int:
    task = asyncio.current_task()
    return 0 if task is None else task.cancelling()


def _honour_cancellation(before: int) -> None:
    """Re-raise a cancellation pymodbus swallowed while we awaited it.

    pymodbus awaits connects and answers with `asyncio.wait_for`, which on
    Python 3.11 returns the result and drops a cancellation that arrives as the
    result lands (cpython gh-86296). The task then stays marked as cancelling
    but runs on, and a loop polling every 50 ms would outlive its TaskGroup.
    Compared with the count at the start, so the OFF a cancelled pulse still
    writes (while its own cancellation is being handled) goes through.
    """
    if _cancellations() > before:
        raise asyncio.CancelledError


def contiguous_runs(
    addresses: Iterable[int], max_count: int = MAX_BITS_PER_READ
) -> tuple[tuple[int, int], ...]:
    """Group addresses into (start, count) runs of consecutive addresses.

    Runs never bridge a gap: an unmapped address in between may not exist on
    the module, and reading it would turn a good read into an exception
    response.
    """
    runs: list[tuple[int, int]] = []
    for address in sorted(set(addresses)):
        if runs:
            start, count = runs[-1]
            if address == start + count and count < max_count:
                runs[-1] = (start, count + 1)
                continue
        runs.append((address, 1))
    return tuple(runs)


def _bit_read(
    function_code: Literal[1, 2], start: int, count: int, device_id: int
) -> Callable[[_Client], Awaitable[ModbusPDU]]:
    def request(client: _Client) -> Awaitable[ModbusPDU]:
        if function_code == 1:
            return client.read_coils(start, count=count, device_id=device_id)
        return client.read_discrete_inputs(start, count=count, device_id=device_id)

    return request


class ModbusIOModule:
    """`rtu.io.interface.IOModule` over pymodbus.

    `sleep` times the pulses; tests pass a fake to make pulse length
    irrelevant to their run time.
    """

    def __init__(
        self,
        iomap: IOMap,
        endpoint: Endpoint,
        *,
        sleep: Sleep = asyncio.sleep,
        coil_refresh: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._map = iomap
        self._endpoint = endpoint
        self._sleep = sleep
        self._coil_refresh = coil_refresh
        self._clock = clock
        # The last coil reading and when it was taken; None: read them next poll.
        self._coils: dict[int, bool] | None = None
        self._coils_at = 0.0
        self._raw_inputs: dict[int, bool] | None = None
        self._name = f"{endpoint.describe()} unit {iomap.device_id}"
        self._coil_runs = contiguous_runs(iomap.coil_addresses())
        self._input_runs = contiguous_runs(iomap.input_addresses())
        self._client: _Client | None = None
        self._connect_lock = asyncio.Lock()
        # One request on the wire at a time: the poller's reads and the lights'
        # and MV monitor's writes share this client, and pymodbus mismatches
        # answers to requests that overlap ("received pdu without a
        # corresponding request"), losing both. Modbus RTU is half-duplex anyway.
        self._request_lock = asyncio.Lock()
        self._owed_off: set[int] = set()
        self._pulse_lock = asyncio.Lock()
        self._pulsing: int | None = None

    @property
    def name(self) -> str:
        """The endpoint and unit, as logs and errors name it."""
        return self._name

    @property
    def owed_off(self) -> frozenset[int]:
        """Pulse coils whose OFF write has not been acknowledged yet (for status reports)."""
        return frozenset(self._owed_off)

    async def read(self) -> IOSnapshot:
        """Read the inputs, and the coils when they may have changed (module docstring)."""
        await self._settle_owed()
        raw_inputs = await self._read_bits(2, self._input_runs)
        coils = self._coils
        if (
            coils is None
            or raw_inputs != self._raw_inputs
            or self._clock() - self._coils_at >= self._coil_refresh
        ):
            coils = await self._read_bits(1, self._coil_runs)
            self._coils, self._coils_at = coils, self._clock()
        self._raw_inputs = raw_inputs
        inputs = {a: v != (a in self._map.inverted_inputs) for a, v in raw_inputs.items()}

        def optional(address: int | None) -> bool | None:
            return None if address is None else inputs[address]

        return IOSnapshot(
            feedback={c.number: inputs[c.feedback] for c in self._map.contactors},
            coils={c.number: coils[c.coil] for c in self._map.contactors},
            local_switch=inputs[self._map.local_switch],
            indicators={
                g.name: IndicatorState(
                    overcurrent=optional(g.overcurrent),
                    groundfault=optional(g.groundfault),
                    healthy=optional(g.healthy),
                )
                for g in self._map.indicators
            },
        )

    async def set_contactor(self, contactor: int, on: bool) -> None:
        """Write the contactor's coil."""
        address = self._map.contactor(contactor).coil
        await self._settle_owed()
        await self._write_coil(address, on)

    async def pulse_test(self, group: str) -> None:
        """Pulse the group's test output."""
        await self._pulse(self._map.indicator(group).test_coil)

    async def pulse_reset(self, group: str) -> None:
        """Pulse the group's reset output."""
        await self._pulse(self._map.indicator(group).reset_coil)

    async def close(self) -> None:
        """Drop the connection; owed OFF writes stay owed for the next call."""
        self._drop()

    async def _pulse(self, address: int) -> None:
        # One pulse at a time: pulses are rare, and two overlapping on one
        # coil would cut each other short.
        async with self._pulse_lock:
            await self._settle_owed()
            # Owed before the ON write: an ON whose answer is lost may still
            # have reached the module.
            self._owed_off.add(address)
            self._pulsing = address
            try:
                await self._drive_pulse(address)
            finally:
                self._pulsing = None

    async def _drive_pulse(self, address: int) -> None:
        try:
            await self._write_coil(address, True)
        except IOModuleFault:
            self._owed_off.discard(address)  # refused, so the output never went on
            raise
        try:
            await self._sleep(self._map.pulse_seconds)
        except asyncio.CancelledError:
            with contextlib.suppress(IOModuleUnavailable, IOModuleFault):
                await self._release(address)
            raise
        await self._release(address)

    async def _release(self, address: int) -> None:
        await self._write_coil(address, False)
        self._owed_off.discard(address)

    async def _settle_owed(self) -> None:
        """Write the OFFs still owed; a refused one is logged and stays owed.

        The coil of a pulse in progress is owed too, but its pulse will settle
        it: a read in the meantime must not cut the pulse short.
        """
        for address in sorted(self._owed_off - {self._pulsing}):
            try:
                await self._release(address)
            except IOModuleFault:
                _log.exception("%s: OFF for pulse coil %d refused; will retry", self._name, address)
            else:
                _log.warning("%s: owed OFF for pulse coil %d written", self._name, address)

    async def _read_bits(
        self, function_code: Literal[1, 2], runs: Sequence[tuple[int, int]]
    ) -> dict[int, bool]:
        values: dict[int, bool] = {}
        device_id = self._map.device_id
        for start, count in runs:
            response = await self._execute(
                f"fc {function_code} read {start}+{count}",
                _bit_read(function_code, start, count, device_id),
            )
            # Answers carry whole bytes, so up to 7 padding bits follow the ones asked for.
            if len(response.bits) < count:
                self._drop()
                raise IOModuleUnavailable(
                    self._name, f"answer to fc {function_code} at {start} has too few bits"
                )
            values.update(zip(range(start, start + count), response.bits, strict=False))
        return values

    async def _write_coil(self, address: int, on: bool) -> None:
        device_id = self._map.device_id
        self._coils = None  # whatever the outcome, read them back
        await self._execute(
            f"write coil {address}={'on' if on else 'off'}",
            lambda c: c.write_coil(address, on, device_id=device_id),
        )

    async def _execute(
        self, what: str, request: Callable[[_Client], Awaitable[ModbusPDU]]
    ) -> ModbusPDU:
        """The one place requests go out and pymodbus errors are translated."""
        async with self._request_lock:
            return await self._execute_alone(what, request)

    async def _execute_alone(
        self, what: str, request: Callable[[_Client], Awaitable[ModbusPDU]]
    ) -> ModbusPDU:
        pending = _cancellations()
        client = await self._connected()
        _honour_cancellation(pending)
        try:
            # pymodbus times each answer itself; this outer bound also covers
            # a stalled send, and is wide enough never to race the inner one.
            async with asyncio.timeout(2 * self._endpoint.timeout):
                response = await request(client)
                _honour_cancellation(pending)
        except (ModbusException, OSError, TimeoutError) as exc:
            self._drop()
            raise IOModuleUnavailable(self._name, f"{what}: {exc}") from exc
        if response.isError():
            function_code = response.function_code & 0x7F
            exception_code = response.exception_code
            raise IOModuleFault(
                self._name,
                f"{what}: exception response {exception_code}",
                function_code=function_code,
                exception_code=exception_code,
            )
        return response

    async def _connected(self) -> _Client:
        async with self._connect_lock:
            if self._client is not None and self._client.connected:
                return self._client
            self._drop()
            client = self._new_client()
            try:
                connected = await client.connect()
            except (ModbusException, OSError) as exc:
                client.close()
                raise IOModuleUnavailable(self._name, f"connect: {exc}") from exc
            if not connected:
                client.close()
                raise IOModuleUnavailable(self._name, "connect failed")
            _log.info("%s: connected", self._name)
            self._client = client
            return client

    def _new_client(self) -> _Client:
        # reconnect_delay=0 and retries=0: the driver reconnects on the next
        # call and the caller's loop decides how often to retry.
        endpoint = self._endpoint
        if isinstance(endpoint, TcpEndpoint):
            return AsyncModbusTcpClient(
                endpoint.host,
                port=endpoint.port,
                timeout=endpoint.timeout,
                retries=0,
                reconnect_delay=0,
            )
        return AsyncModbusSerialClient(
            endpoint.device,
            framer=FramerType.RTU,
            baudrate=endpoint.baudrate,
            bytesize=endpoint.bytesize,
            parity=endpoint.parity,
            stopbits=endpoint.stopbits,
            timeout=endpoint.timeout,
            retries=0,
            reconnect_delay=0,
        )

    def _drop(self) -> None:
        self._coils = None
        if self._client is not None:
            self._client.close()
            self._client = None
