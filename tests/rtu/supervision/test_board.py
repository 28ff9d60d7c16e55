"""FaultBoard: changes committed to a real outbox, in order, one status for the station."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from os3p.messages import StationErrorCode, StationStatus
from os3p.validation import Validator
from rtu.events import EventSink
from rtu.outbox import Outbox
from rtu.supervision.board import FaultBoard
from rtu.supervision.ledger import Change, FaultKey
from tests.support.aio import run

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SWITCH = StationErrorCode.POWER_SWITCH_FAILURE
METER = StationErrorCode.POWER_METER_FAILURE


def wall() -> datetime:
    return datetime.now(UTC)


def test_changes_are_committed_in_order_with_the_station_status(tmp_path: Path) -> None:
    async def scenario() -> list[dict[str, object]]:
        outbox = await Outbox.open(tmp_path / "outbox.db", clock=wall)
        try:
            board = FaultBoard(EventSink(outbox, Validator()), wall)
            # Concurrent callers (lights, metering) each commit before they go on.
            await asyncio.gather(
                board.raise_fault(SWITCH, "contactor 2", info="contactor 2: no feedback", at=T0),
                board.raise_fault(METER, "p1", at=T0),
            )
            assert await board.raise_fault(SWITCH, "contactor 2") is False  # once
            assert await board.resolve_fault(SWITCH, "contactor 2", at=T0) is True
            assert await board.resolve_fault(SWITCH, "contactor 2") is False  # once
            assert await board.apply(Change(False, FaultKey(METER, "p1"), T0)) is True
            entries = await outbox.peek(10)
        finally:
            await outbox.close()
        assert {e.action for e in entries} == {"StatusNotification"}
        return [json.loads(e.payload) for e in entries]

    payloads = run(scenario())
    assert [(p["status"], p["errorCode"], p.get("info")) for p in payloads] == [
        ("Faulted", "PowerSwitchFailure", "contactor 2: no feedback"),
        ("Faulted", "PowerMeterFailure", "p1"),
        ("Faulted", "NoError", "PowerSwitchFailure resolved: contactor 2"),
        ("Ok", "NoError", "PowerMeterFailure resolved: p1"),
    ]
    assert all(p["timestamp"] == "2026-11-23T12:00:00Z" for p in payloads)


class Broken:
    async def emit(self, message: msgspec.Struct) -> int:
        raise OSError("disk full")


def test_a_change_whose_event_is_not_committed_is_undone() -> None:
    async def scenario() -> None:
        board = FaultBoard(Broken(), wall)
        with pytest.raises(OSError, match="disk full"):
            await board.raise_fault(SWITCH, "contactor 1")
        assert not board.is_open(SWITCH, "contactor 1")
        assert board.summary().status is StationStatus.OK

    run(scenario())


def test_summary_and_description_list_open_faults() -> None:
    class Sink:
        async def emit(self, message: msgspec.Struct) -> int:
            return 1

    async def scenario() -> None:
        board = FaultBoard(Sink(), wall)
        await board.raise_fault(StationErrorCode.OVER_CURRENT_FAILURE, "MV1", test=True, at=T0)
        summary = board.summary()
        assert summary.status is StationStatus.FAULTED
        assert summary.info == "OverCurrentFailure MV1 (test)"
        assert board.describe() == [
            "OverCurrentFailure MV1 (test) since 2026-11-23T12:00:00+00:00: MV1"
        ]
        assert [f.key for f in board.open_faults()] == [
            FaultKey(StationErrorCode.OVER_CURRENT_FAILURE, "MV1")
        ]

    run(scenario())
