"""`SupervisionSubsystem`: the MV monitor and the station alarms, wired for the daemon.

The daemon builds one, passes `board` (the `FaultBoard`) to the lights
controller (PowerSwitchFailure) and `alarms` to metering (samples,
`on_source_error` / `on_source_ok`), registers the two MV handlers and the
StatusNotification trigger, runs `loops()` under supervision, and puts
`snapshot()` into `rtu status`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import msgspec

from os3p.messages import (
    MessageTrigger,
    ResetMVFaultIndicatorRequest,
    TestMVFaultIndicatorRequest,
)
from os3p.router import Router
from rtu.clock import Clock
from rtu.io.model import IndicatorPoints
from rtu.io.poller import IOPoller
from rtu.supervision.alarms import StationAlarms
from rtu.supervision.board import Emitter, FaultBoard
from rtu.supervision.config import SupervisionConfig
from rtu.supervision.mvmonitor import MVMonitor
from rtu.supervision.sensors import (
    AlarmMonitor,
    SignalReader,
    TemperatureReader,
    file_signal_reader,
    thermal_zone_reader,
)
from rtu.triggers import Triggers

__all__ = ["LoopFactory", "SupervisionSubsystem"]

LoopFactory = Callable[[], Coroutine[Any, Any, object]]


class SupervisionSubsystem:
    def __init__(
        self,
        config: SupervisionConfig,
        *,
        sink: Emitter,
        clock: Clock,
        poller: IOPoller | None,
        indicators: Sequence[IndicatorPoints],
        board_temperature: TemperatureReader | None = None,
        signal: SignalReader | None = None,
    ) -> None:
        """`indicators`: the I/O map's groups; those in `config.groups` are supervised.

        `board_temperature` defaults to the host's thermal zones (unless the config
        sets the period to 0), `signal` to the config's `signal_file` if any.
        """
        # No poller means no I/O module, and no indicator can be read.
        groups = [p for p in indicators if p.name in config.groups] if poller is not None else []
        self.board = FaultBoard(sink, clock.now)
        self.mv = MVMonitor(
            groups,
            config.mv,
            self.board,
            poller.module if poller is not None else None,
            now=clock.now,
            monotonic=clock.monotonic,
        )
        if poller is not None and groups:
            poller.subscribe(self.mv.on_snapshot)
        if board_temperature is None and config.board_temperature_period > 0:
            board_temperature = thermal_zone_reader()
        if signal is None and config.signal_file is not None:
            signal = file_signal_reader(config.signal_file)
        self.alarms = AlarmMonitor(
            StationAlarms(config.alarms),
            self.board,
            now=clock.now,
            board_temperature=board_temperature,
            signal=signal,
            board_period=config.board_temperature_period,
            signal_period=config.signal_period,
        )

    def register(self, router: Router[Any], triggers: Triggers) -> None:
        router.add(TestMVFaultIndicatorRequest, self.mv.handle_test)
        router.add(ResetMVFaultIndicatorRequest, self.mv.handle_reset)
        triggers.provide(MessageTrigger.STATUS_NOTIFICATION, self.status_notifications)

    async def status_notifications(self, contactor: int | None) -> Sequence[msgspec.Struct]:
        """TriggerMessage StatusNotification: the station as a whole (errata S14: the
        contactor is ignored)."""
        return [self.board.summary()]

    def loops(self) -> list[tuple[str, LoopFactory]]:
        loops: list[tuple[str, LoopFactory]] = []
        if self.mv.machine.groups:
            loops += [("mv-monitor", self.mv.monitor_loop), ("mv-commands", self.mv.command_loop)]
        if self.alarms.board_temperature is not None:
            loops.append(("board-temperature", self.alarms.board_temperature_loop))
        if self.alarms.signal is not None:
            loops.append(("modem-signal", self.alarms.signal_loop))
        return loops

    def snapshot(self) -> dict[str, Any]:
        """For `rtu status`: the open faults, and each indicator group's state."""
        return {
            "open_faults": self.board.describe(),
            "station_status": str(self.board.summary().status),
            "mv_indicators": self.mv.machine.describe(),
        }

    def close(self) -> None:
        """Stop taking I/O readings and MV commands (the daemon cancels the loops)."""
        self.mv.close()
