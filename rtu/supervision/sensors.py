"""The station alarms' asyncio shell: what feeds `StationAlarms`, and where its changes go.

- Metering hands every reading to `on_samples` and reports each source's
  failures and recoveries through `on_source_error(name, reason)` /
  `on_source_ok(name)` (PowerMeterFailure).
- `board_temperature_loop` reads the host's own temperature (Linux thermal
  zones; the hottest zone counts) and feeds it as a `BoardTemperature` sample.
- `signal_loop` reads the modem's signal level where a reader is configured.

Readers are injected, so tests (and stations with other hardware) replace them.
One lock keeps decide-and-apply atomic: concurrent meter loops cannot reorder
an alarm's raise and resolve on the board.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import NoReturn

from rtu.metering.model import Sample
from rtu.supervision.alarms import StationAlarms
from rtu.supervision.board import FaultBoard
from rtu.supervision.ledger import Change

__all__ = [
    "AlarmMonitor",
    "SignalReader",
    "TemperatureReader",
    "file_signal_reader",
    "thermal_zone_reader",
]

log = logging.getLogger(__name__)

THERMAL_ROOT = Path("/sys/class/thermal")

# °C, or None when the host has no sensor (or it could not be read).
TemperatureReader = Callable[[], Awaitable[float | None]]
# dBm, or None when the modem does not say.
SignalReader = Callable[[], Awaitable[float | None]]


def _read_zones(root: Path) -> float | None:
    # The kernel reports millidegrees Celsius, one integer per zone.
    values: list[float] = []
    for path in sorted(root.glob("thermal_zone*/temp")):
        try:
            values.append(int(path.read_text(encoding="ascii").strip()) / 1000)
        except (OSError, ValueError) as exc:
            log.debug("thermal zone %s unreadable: %s", path, exc)
    return max(values, default=None)


def thermal_zone_reader(root: Path = THERMAL_ROOT) -> TemperatureReader:
    """The hottest of `root/thermal_zone*/temp`; None where there are none."""

    async def read() -> float | None:
        return await asyncio.to_thread(_read_zones, root)

    return read


def file_signal_reader(path: Path) -> SignalReader:
    """A file the modem manager keeps up to date with the signal level in dBm."""

    def read_sync() -> float | None:
        try:
            return float(path.read_text(encoding="ascii").strip())
        except (OSError, ValueError) as exc:
            log.debug("signal level %s unreadable: %s", path, exc)
            return None

    async def read() -> float | None:
        return await asyncio.to_thread(read_sync)

    return read


class AlarmMonitor:
    def __init__(
        self,
        alarms: StationAlarms,
        board: FaultBoard,
        *,
        now: Callable[[], datetime],
        board_temperature: TemperatureReader | None = None,
        signal: SignalReader | None = None,
        board_period: float = 30.0,
        signal_period: float = 60.0,
    ) -> None:
        self.alarms = alarms
        self._board = board
        self._now = now
        self.board_temperature = board_temperature
        self.signal = signal
        self._board_period = board_period
        self._signal_period = signal_period
        self._lock = asyncio.Lock()

    async def on_samples(self, samples: Iterable[Sample]) -> None:
        """Readings from any meter source (measurands without an alarm are ignored)."""
        async with self._lock:
            for sample in samples:
                await self._apply(self.alarms.feed(sample))

    async def on_source_error(self, name: str, reason: str) -> None:
        async with self._lock:
            await self._apply(self.alarms.source_error(name, reason, self._now()))

    async def on_source_ok(self, name: str) -> None:
        async with self._lock:
            await self._apply(self.alarms.source_ok(name, self._now()))

    async def board_temperature_loop(self) -> NoReturn:
        reader = self.board_temperature
        if reader is None:
            raise RuntimeError("no board temperature reader configured")
        while True:
            celsius = await reader()
            if celsius is not None:
                sample = Sample(
                    measurand="BoardTemperature",
                    value=Decimal(str(celsius)),
                    unit="C",
                    timestamp=self._now(),
                )
                await self.on_samples([sample])
            await asyncio.sleep(self._board_period)

    async def signal_loop(self) -> NoReturn:
        reader = self.signal
        if reader is None:
            raise RuntimeError("no modem signal reader configured")
        while True:
            dbm = await reader()
            if dbm is not None:
                async with self._lock:
                    await self._apply(self.alarms.signal(dbm, self._now()))
            await asyncio.sleep(self._signal_period)

    async def _apply(self, changes: list[Change]) -> None:
        for done, change in enumerate(changes):
            try:
                await self._board.apply(change)
            except BaseException:
                # Not committed, so not raised: the next reading tries again.
                for lost in changes[done:]:
                    self.alarms.undo(lost)
                raise
