"""Shared by the supervision tests: a recording emitter and an MV station on the simulator."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import msgspec

from hil.io_module import IOModuleSimulator
from os3p.actions import Action
from os3p.messages import StatusNotificationRequest, to_payload
from os3p.validation import Validator
from rtu.io.model import DEFAULT_IO_MAP, IndicatorPoints, IOMap, IOSnapshot
from rtu.io.poller import IOPoller
from rtu.supervision.board import FaultBoard
from rtu.supervision.mv import MVSettings
from rtu.supervision.mvmonitor import MVMonitor
from tests.hil.support import UNIT, rig
from tests.support.aio import eventually

VALIDATOR = Validator()

#: Every duration a multiple of the I/O tests' unit (RTU_TEST_UNIT scales them all).
MV_SETTINGS = MVSettings(
    debounce=2 * UNIT, debounce_polls=2, settle=6 * UNIT, reset_timeout=20 * UNIT
)
WAIT = 40 * UNIT


def wall() -> datetime:
    return datetime.now(UTC)


class Recorder:
    """An emitter that validates like EventSink and keeps what it got, in order."""

    def __init__(self) -> None:
        self.notes: list[StatusNotificationRequest] = []

    async def emit(self, message: msgspec.Struct) -> int:
        assert isinstance(message, StatusNotificationRequest)
        VALIDATOR.check_outgoing(Action.STATUS_NOTIFICATION, "Request", to_payload(message))
        self.notes.append(message)
        return len(self.notes)

    def summary(self, start: int = 0) -> list[tuple[str, str, str | None, bool | None]]:
        return [(n.error_code, n.status, n.info, n.test) for n in self.notes[start:]]


class Readings:
    """A poller subscriber stamping each reading, to wait for "enough readings since t"."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def __call__(self, snapshot: IOSnapshot | None) -> None:
        if snapshot is not None:
            self.stamps.append(time.monotonic())

    def span_since(self, t: float) -> float:
        after = [s for s in self.stamps if s >= t]
        return after[-1] - after[0] if len(after) > 1 else 0.0

    async def wait_span(self, t: float, seconds: float) -> None:
        """Until readings taken after `t` cover `seconds`: the monitor has seen them all."""
        await eventually(lambda: self.span_since(t) >= seconds, timeout=WAIT, what="readings")


@dataclasses.dataclass
class MVStation:
    sim: IOModuleSimulator
    poller: IOPoller
    monitor: MVMonitor
    board: FaultBoard
    recorder: Recorder
    readings: Readings

    async def notes(self, count: int) -> list[tuple[str, str, str | None, bool | None]]:
        await eventually(
            lambda: len(self.recorder.notes) >= count, timeout=WAIT, what=f"{count} notes"
        )
        return self.recorder.summary()


@contextlib.asynccontextmanager
async def mv_station(
    iomap: IOMap = DEFAULT_IO_MAP, groups: Sequence[IndicatorPoints] | None = None
) -> AsyncIterator[MVStation]:
    """The simulator, the real driver and poller, and an MV monitor recording to a board."""
    async with rig(iomap) as (sim, driver):
        poller = IOPoller(driver, period=UNIT / 5, retry=UNIT / 2)
        recorder = Recorder()
        board = FaultBoard(recorder, wall)
        chosen = iomap.indicators if groups is None else groups
        monitor = MVMonitor(chosen, MV_SETTINGS, board, driver, now=wall, monotonic=time.monotonic)
        readings = Readings()
        poller.subscribe(monitor.on_snapshot)
        poller.subscribe(readings)
        async with asyncio.TaskGroup() as tasks:
            loops = [
                tasks.create_task(poller.poll_loop(), name="io-poller"),
                tasks.create_task(monitor.monitor_loop(), name="mv-monitor"),
                tasks.create_task(monitor.command_loop(), name="mv-commands"),
            ]
            try:
                await eventually(lambda: poller.available, timeout=WAIT, what="poller")
                yield MVStation(sim, poller, monitor, board, recorder, readings)
            finally:
                for loop in loops:
                    loop.cancel()
