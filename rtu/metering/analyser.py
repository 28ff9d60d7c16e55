"""The station power analyser / I/O module over Modbus TCP, as an OS³P `MeterSource`.

Theory of operation: every `read` runs the planned block reads
(`registers.plan_reads`: as few round trips as the map allows) through one
choke point, `_execute`, which connects when there is no live client, bounds
the request with the timeout and translates whatever pymodbus does into
`SourceError` (the one boundary, and the connection is dropped so the next
read reconnects: no background reconnect task). pymodbus's own retries and
reconnect are off, as in `rtu.io.modbus`: the sampler decides when to retry.

The board temperature (§6.5 Table 1 `BoardTemperature`, errata S4) is not on
the bus: it is the host's own, read from the Linux thermal sysfs
(`/sys/class/thermal/thermal_zone*/temp`, millidegrees Celsius; the hottest
zone is reported). The glob is injectable for tests; with no zone present the
sample is simply absent.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import glob
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Final

from pymodbus import ModbusException
from pymodbus.client import AsyncModbusTcpClient

from rtu.metering.model import Sample, SourceError
from rtu.metering.registers import DEFAULT_POINTS, Block, Point, plan_reads, scaled

__all__ = ["THERMAL_GLOB", "AnalyserConfig", "ModbusAnalyser", "board_temperature"]

_log = logging.getLogger(__name__)

THERMAL_GLOB: Final = "/sys/class/thermal/thermal_zone*/temp"


@dataclasses.dataclass(frozen=True, slots=True)
class AnalyserConfig:
    host: str
    port: int = 502
    unit_id: int = 1
    timeout: float = 1.0  # seconds, for connecting and for each answer
    points: tuple[Point, ...] = DEFAULT_POINTS
    board_temperature: bool = True
    thermal_glob: str = THERMAL_GLOB

    def __post_init__(self) -> None:
        names = [(p.measurand, p.location) for p in self.points]
        if len(set(names)) != len(names):
            raise ValueError("a measurand (with its location) appears twice in the register map")


def board_temperature(pattern: str = THERMAL_GLOB) -> Decimal | None:
    """The hottest thermal zone in °C (sysfs gives millidegrees), None if there is none."""
    readings: list[Decimal] = []
    for path in sorted(glob.glob(pattern)):
        with contextlib.suppress(OSError, ValueError, ArithmeticError):
            readings.append(Decimal(int(Path(path).read_text().strip())).scaleb(-3))
    return max(readings) if readings else None


class ModbusAnalyser:
    """A power analyser (or an I/O module with analogue inputs) read over Modbus TCP."""

    def __init__(
        self,
        name: str,
        config: AnalyserConfig,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._name = name
        self._config = config
        self._now = now
        self._blocks = plan_reads(config.points)
        self._client: AsyncModbusTcpClient | None = None
        self._lock = asyncio.Lock()

    @property
    def name(self) -> str:
        return self._name

    async def read(self) -> Sequence[Sample]:
        async with self._lock:
            samples: list[Sample] = []
            when = self._now()
            for block in self._blocks:
                registers = await self._read_block(block)
                for point in block.points:
                    value = scaled(point, block.words_of(point, registers))
                    samples.append(Sample(point.measurand, value, point.unit, when, point.location))
        if self._config.board_temperature:
            temperature = await asyncio.to_thread(board_temperature, self._config.thermal_glob)
            if temperature is not None:
                samples.append(Sample("BoardTemperature", temperature, "C", when))
        return samples

    async def close(self) -> None:
        async with self._lock:
            self._drop()

    async def _read_block(self, block: Block) -> list[int]:
        what = f"{block.table} registers {block.start}..{block.start + block.count - 1}"
        client = await self._connected()
        unit = self._config.unit_id
        try:
            async with asyncio.timeout(2 * self._config.timeout):
                if block.table == "holding":
                    response = await client.read_holding_registers(
                        block.start, count=block.count, device_id=unit
                    )
                else:
                    response = await client.read_input_registers(
                        block.start, count=block.count, device_id=unit
                    )
        except (ModbusException, OSError, TimeoutError) as exc:
            self._drop()
            raise SourceError(self._name, f"{what}: {exc or type(exc).__name__}") from exc
        if response.isError():
            raise SourceError(self._name, f"{what}: exception response {response.exception_code}")
        registers = list(response.registers)
        if len(registers) < block.count:
            self._drop()
            raise SourceError(self._name, f"{what}: short answer ({len(registers)} registers)")
        return registers

    async def _connected(self) -> AsyncModbusTcpClient:
        if self._client is not None and self._client.connected:
            return self._client
        self._drop()
        config = self._config
        client = AsyncModbusTcpClient(
            config.host, port=config.port, timeout=config.timeout, retries=0, reconnect_delay=0
        )
        try:
            connected = await client.connect()
        except (ModbusException, OSError) as exc:
            client.close()
            raise SourceError(self._name, f"connect: {exc}") from exc
        if not connected:
            client.close()
            raise SourceError(self._name, f"cannot connect to {config.host}:{config.port}")
        _log.info("%s: connected to %s:%d", self._name, config.host, config.port)
        self._client = client
        return client

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()
