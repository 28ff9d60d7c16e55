"""A station power analyser simulator: real Modbus TCP (pymodbus server).

It holds two register tables, holding (function 3) and input (function 4),
of 16-bit words. The register map (`rtu.metering.registers.DEFAULT_POINTS`
unless given) says where each quantity lives; `set_value` encodes a value
into its words as the device would (type, word order, scale), `set_words`
writes raw words (a test of odd encodings). Reads see the current model
through pymodbus's request hook, as in `hil.io_module`. `stop` drops every
client and stops listening (a power cut); `start` serves again on the same
port.

    python -m hil.analyser --port 5020
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Sequence
from decimal import Decimal
from typing import Final

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from rtu.metering.registers import DEFAULT_POINTS, Point, Table, encode

__all__ = ["INITIAL_VALUES", "AnalyserSimulator", "main"]

_log = logging.getLogger(__name__)

_TABLE_SIZE: Final = 256  # registers per table
_READ_HOLDING: Final = 3
_READ_INPUT: Final = 4

# A 400 V / 630 kVA transformer station, lightly loaded, warm day.
INITIAL_VALUES: Final[dict[str, Decimal]] = {
    "Voltage.L1N": Decimal("230.4"),
    "Voltage.L2N": Decimal("229.9"),
    "Voltage.L3N": Decimal("231.2"),
    "Current.L1": Decimal("312.450"),
    "Current.L2": Decimal("298.100"),
    "Current.L3": Decimal("305.000"),
    "Current.N": Decimal("12.300"),
    "ActivePower.L1": Decimal("68900"),
    "ActivePower.L2": Decimal("66210"),
    "ActivePower.L3": Decimal("70200"),
    "ActivePower.Sum": Decimal("205310"),
    "ReactivePower.L1": Decimal("-13810"),
    "ReactivePower.L2": Decimal("13400"),
    "ReactivePower.L3": Decimal("14020"),
    "ReactivePower.Sum": Decimal("13610"),
    "ApparentPower.Sum": Decimal("209720"),
    "PowerFactor.Sum": Decimal("0.979"),
    "Frequency": Decimal("49.98"),
    "THDv.L1N": Decimal("2.1"),
    "THDv.L2N": Decimal("1.9"),
    "THDv.L3N": Decimal("2.4"),
    "THDc.L1": Decimal("8.5"),
    "THDc.L2": Decimal("7.9"),
    "THDc.L3": Decimal("9.2"),
    "OilTemperature": Decimal("54.3"),
    "AmbientTemperature": Decimal("-3.5"),
}


def _raw(point: Point, value: Decimal) -> int | float:
    if point.type == "float32":
        return float(value / point.scale)
    quotient = value / point.scale
    if quotient != quotient.to_integral_value():
        raise ValueError(f"{point.measurand}: {value} is not a multiple of {point.scale}")
    return int(quotient)


class AnalyserSimulator:
    """A Modbus TCP power analyser on `host:port` (port 0: a free one, kept across restarts)."""

    def __init__(
        self,
        points: Sequence[Point] = DEFAULT_POINTS,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        unit_id: int = 1,
        values: dict[str, Decimal] | None = None,
    ) -> None:
        self.points = {(p.measurand, p.location): p for p in points}
        self._host = host
        self._port = port
        self._unit_id = unit_id
        self._lock = threading.Lock()
        self._tables: dict[Table, list[int]] = {
            "holding": [0] * _TABLE_SIZE,
            "input": [0] * _TABLE_SIZE,
        }
        self._server: ModbusTcpServer | None = None
        self.reads = 0
        for measurand, location in self.points:
            initial = (values or INITIAL_VALUES).get(measurand)
            if initial is not None:
                self.set_value(measurand, initial, location=location)

    @property
    def port(self) -> int:
        return self._port

    @property
    def running(self) -> bool:
        return self._server is not None

    def set_value(self, measurand: str, value: Decimal, *, location: str | None = None) -> None:
        """Put `value` (in the point's unit) into the point's registers."""
        point = self.points[(measurand, location)]
        self.set_words(
            point.table, point.address, encode(_raw(point, value), point.type, point.word_order)
        )

    def set_words(self, table: Table, address: int, words: Sequence[int]) -> None:
        with self._lock:
            self._tables[table][address : address + len(words)] = list(words)

    def words(self, table: Table, address: int, count: int) -> list[int]:
        with self._lock:
            return self._tables[table][address : address + count]

    async def start(self) -> None:
        if self._server is not None:
            return
        device = SimDevice(
            id=self._unit_id,
            simdata=(
                # pymodbus needs bit blocks here; an analyser has no coils or inputs
                # of its own, so one unused 16-bit block each.
                [SimData(0, count=16, values=False, datatype=DataType.BITS)],
                [SimData(0, count=16, values=False, datatype=DataType.BITS)],
                [SimData(0, count=_TABLE_SIZE, values=0, datatype=DataType.REGISTERS)],
                [SimData(0, count=_TABLE_SIZE, values=0, datatype=DataType.REGISTERS)],
            ),
            action=self._on_request,
        )
        server = ModbusTcpServer(device, address=(self._host, self._port))
        await server.serve_forever(background=True)
        listener = server.transport
        if not isinstance(listener, asyncio.Server):
            raise TypeError(f"pymodbus listener is {type(listener).__name__}, not asyncio.Server")
        self._port = listener.sockets[0].getsockname()[1]
        self._server = server
        _log.info("analyser simulator listening on %s:%d", self._host, self._port)

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            await server.shutdown()  # type: ignore[no-untyped-call]  # pymodbus leaves it unannotated

    async def __aenter__(self) -> AnalyserSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _on_request(
        self,
        function_code: int,
        start_address: int,
        _address: int,
        _count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """pymodbus's hook: copy the model's words into the block being read."""
        if set_values is not None:
            return ExcCodes.ILLEGAL_FUNCTION  # a meter's measurements are read-only
        if function_code == _READ_HOLDING:
            table: Table = "holding"
        elif function_code == _READ_INPUT:
            table = "input"
        else:
            return ExcCodes.ILLEGAL_FUNCTION
        with self._lock:
            words = self._tables[table][start_address : start_address + len(registers)]
            self.reads += 1
        registers[: len(words)] = words
        return None


async def _serve(host: str, port: int) -> None:
    simulator = AnalyserSimulator(host=host, port=port)
    await simulator.start()
    print(f"analyser on {host}:{simulator.port}", flush=True)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    try:
        await done.wait()
    finally:
        await simulator.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5020)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port))


if __name__ == "__main__":
    main()
