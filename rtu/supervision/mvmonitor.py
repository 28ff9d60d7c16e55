"""The MV monitor's asyncio shell: poller snapshots in, pulses out, changes to the board.

`MVMachine` (rtu.supervision.mv) decides; this module only moves data:

- `on_snapshot` is the I/O poller's subscriber. It must be quick (the poller
  calls it in its own loop), so it stamps the reading with the clocks and
  queues it; `monitor_loop` feeds the queue to the machine, runs its deadlines
  and applies the resulting changes to the `FaultBoard`.
- TestMVFaultIndicator / ResetMVFaultIndicator are answered at once from the
  machine's state (§7.11 Table 19, §7.9 Table 14); the pulses, 0.5 s each and
  one at a time on the module, run afterwards in `command_loop`, so the answer
  never waits for the field.
- Every change, whichever loop caused it, goes through one queue drained by
  `monitor_loop` alone: the board sees them in the order the machine decided
  them, which is what keeps each fault's notifications alternating.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import NoReturn

from os3p.messages import (
    ResetMVFaultIndicatorRequest,
    ResetMVFaultIndicatorResponse,
    ResetMVFaultIndicatorStatus,
    TestMVFaultIndicatorRequest,
    TestMVFaultIndicatorResponse,
    TestMVFaultIndicatorStatus,
)
from rtu.io.errors import IOModuleError
from rtu.io.interface import IOModule
from rtu.io.model import IndicatorPoints, IndicatorState, IOSnapshot
from rtu.supervision.board import FaultBoard
from rtu.supervision.ledger import Change
from rtu.supervision.mv import MVMachine, MVSettings, Pulse

__all__ = ["MVMonitor"]

log = logging.getLogger(__name__)

# Readings waiting for the machine. At the poller's 50 ms this is 10 s of
# backlog; older readings are dropped first (the debouncer copes with gaps).
_MAX_BACKLOG = 200

_Reading = tuple[float, datetime, dict[str, IndicatorState] | None]


class MVMonitor:
    def __init__(
        self,
        groups: Sequence[IndicatorPoints],
        settings: MVSettings,
        board: FaultBoard,
        module: IOModule | None,
        *,
        now: Callable[[], datetime],
        monotonic: Callable[[], float],
    ) -> None:
        if groups and module is None:
            raise ValueError("MV indicator groups need an I/O module")
        self.machine = MVMachine(groups, settings)
        self._board = board
        self._module = module
        self._now = now
        self._monotonic = monotonic
        self._readings: collections.deque[_Reading] = collections.deque(maxlen=_MAX_BACKLOG)
        self._changes: collections.deque[Change] = collections.deque()
        self._wake = asyncio.Event()
        self._commands: asyncio.Queue[Pulse] = asyncio.Queue()
        self._closed = False

    # -- the poller's subscriber -------------------------------------------------

    def on_snapshot(self, snapshot: IOSnapshot | None) -> None:
        if self._closed:
            return
        indicators = None if snapshot is None else dict(snapshot.indicators)
        self._readings.append((self._monotonic(), self._now(), indicators))
        self._wake.set()

    # -- OS³P handlers (the router's ctx is not needed) --------------------------

    async def handle_test(
        self, request: TestMVFaultIndicatorRequest, ctx: object
    ) -> TestMVFaultIndicatorResponse:
        # Errata T32: no indicator is a `Rejected` answer (Table 19), not NotSupported.
        if not self.machine.groups or self._closed:
            return TestMVFaultIndicatorResponse(status=TestMVFaultIndicatorStatus.REJECTED)
        self._feed_readings()  # decide on the newest reading, not one a loop turn old
        if self.machine.in_alarm():
            log.info("TestMVFaultIndicator refused: an indicator is in alarm")
            return TestMVFaultIndicatorResponse(
                status=TestMVFaultIndicatorStatus.REJECTED_ALREADY_FAULTED
            )
        self.machine.start_test()
        self._commands.put_nowait("test")
        log.info("TestMVFaultIndicator accepted for %s", ", ".join(self.machine.groups))
        return TestMVFaultIndicatorResponse(status=TestMVFaultIndicatorStatus.ACCEPTED)

    async def handle_reset(
        self, request: ResetMVFaultIndicatorRequest, ctx: object
    ) -> ResetMVFaultIndicatorResponse:
        if not self.machine.groups or self._closed:
            return ResetMVFaultIndicatorResponse(status=ResetMVFaultIndicatorStatus.REJECTED)
        self._feed_readings()
        self.machine.start_reset(self._monotonic())
        self._commands.put_nowait("reset")
        self._wake.set()  # the reset's deadline is new: the monitor re-arms its timer
        log.info("ResetMVFaultIndicator accepted for %s", ", ".join(self.machine.groups))
        return ResetMVFaultIndicatorResponse(status=ResetMVFaultIndicatorStatus.ACCEPTED)

    # -- loops -------------------------------------------------------------------

    async def monitor_loop(self) -> NoReturn:
        """Feed readings and deadlines to the machine; apply its changes, in order."""
        while True:
            self._feed_readings()
            self._changes.extend(self.machine.tick(self._monotonic(), self._now()))
            while self._changes:
                # Taken off the queue only once applied: if the board's commit fails,
                # the supervisor restarts this loop and the change is applied then.
                await self._board.apply(self._changes[0])
                self._changes.popleft()
            deadline = self.machine.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - self._monotonic())
            if not self._readings:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()
            self._wake.clear()

    async def command_loop(self) -> NoReturn:
        """Run the test and reset pulses the handlers accepted, group after group."""
        while True:
            pulse = await self._commands.get()
            await self._pulse_all(pulse)

    async def _pulse_all(self, pulse: Pulse) -> None:
        module = self._module
        if module is None:
            return
        for group in self.machine.groups:
            try:
                if pulse == "test":
                    await module.pulse_test(group)
                else:
                    await module.pulse_reset(group)
            except IOModuleError as exc:
                log.warning("MV %s pulse for %s failed: %s", pulse, group, exc)
                self._changes.extend(self.machine.pulse_failed(group, pulse, str(exc), self._now()))
            else:
                self.machine.pulse_done(group, pulse, self._monotonic())
            self._wake.set()

    def _feed_readings(self) -> None:
        while self._readings:
            mono, wall, indicators = self._readings.popleft()
            self._changes.extend(self.machine.observe(mono, wall, indicators))

    def close(self) -> None:
        """Stop taking readings and commands; nothing queued is carried out any more."""
        self._closed = True
        self._readings.clear()
        while not self._commands.empty():
            self._commands.get_nowait()
