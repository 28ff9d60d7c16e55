"""What every fault case needs: the four checks, read from the real processes.

Issue 9 part 3: each case asserts (1) no event lost, (2) none stored twice,
(3) the lights in the state the schedule or override demands, (4) the daemon
still running and reporting the fault. The evidence comes from outside the
daemon, the way an operator would gather it:

- *sent*: the daemon's own log. Every StreetlightStatusNotification it emits
  is preceded by one "contactor N switched on|off" line (rtu.lights.controller),
  and `EventSink.emit` no longer fails (a full disk holds events in memory), so
  the log lists exactly the emitted transitions, in order.
- *stored*: the central's operator API, events in arrival order.
- *lights*: the I/O simulator's `status` (coil and feedback per contactor).
- *running / reporting*: the process, status.json, and the central's open faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from hil.rig import Rig, StationProcess

STATUS_KIND = "StreetlightStatusNotification"
_SWITCHED = re.compile(r"rtu\.lights\.controller: contactor (\d+) switched (on|off)")


@dataclasses.dataclass
class FaultRow:
    fault: str
    cases: int = 0
    sent: int = 0
    stored: int = 0
    lost: int = 0
    doubled: int = 0


class FaultTable:
    """Rows of the summary table printed at the end of the run (tests/faults/conftest.py)."""

    def __init__(self) -> None:
        self.rows: dict[str, FaultRow] = {}

    def record(self, fault: str, *, sent: int, stored: int, lost: int, doubled: int) -> None:
        row = self.rows.setdefault(fault, FaultRow(fault))
        row.cases += 1
        row.sent += sent
        row.stored += stored
        row.lost += lost
        row.doubled += doubled

    def render(self) -> list[str]:
        header = ("fault", "cases", "events sent", "events stored", "lost", "stored twice")
        rows = [
            (r.fault, str(r.cases), str(r.sent), str(r.stored), str(r.lost), str(r.doubled))
            for r in self.rows.values()
        ]
        widths = [max(len(line[i]) for line in [header, *rows]) for i in range(len(header))]

        def line(cells: tuple[str, ...]) -> str:
            return "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )

        total = FaultRow("total")
        for r in self.rows.values():
            total.cases += r.cases
            total.sent += r.sent
            total.stored += r.stored
            total.lost += r.lost
            total.doubled += r.doubled
        rule = "  ".join("-" * w for w in widths)
        return [
            line(header),
            rule,
            *(line(r) for r in rows),
            rule,
            line(
                (
                    "total",
                    str(total.cases),
                    str(total.sent),
                    str(total.stored),
                    str(total.lost),
                    str(total.doubled),
                )
            ),
        ]


async def wait_for(condition: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Poll `condition` (it asks another process) until it holds; fail naming `what`."""
    try:
        async with asyncio.timeout(timeout):
            while not await condition():  # noqa: ASYNC110 - another process: no event to await
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}") from None


async def light_events(rig: Rig, station_id: str) -> list[dict[str, Any]]:
    """StreetlightStatusNotifications the central stored, in arrival order.

    The window is wide on both sides: a station whose clock jumped stamps events
    in the "future" or "past", and they must still be counted.
    """
    now = datetime.now(UTC)
    since = (now - timedelta(days=2)).isoformat()
    until = (now + timedelta(days=2)).isoformat()
    query = f"kind={STATUS_KIND}&limit=10000&from={since}&to={until}".replace("+", "%2B")
    body = await rig.api("GET", f"/api/stations/{station_id}/events?{query}")
    events: list[dict[str, Any]] = body["events"]
    return sorted(events, key=lambda e: datetime.fromisoformat(e["receivedAt"]))


def statuses(events: list[dict[str, Any]], contactor: int) -> list[str]:
    return [e["details"]["status"] for e in events if e["details"]["contactorId"] == contactor]


def emitted(station: StationProcess, contactor: int) -> list[str]:
    """The transitions of `contactor` the daemon emitted, from its log, oldest first."""
    text = station.log.read_text(errors="replace") if station.log.exists() else ""
    return [
        state.capitalize() for number, state in _SWITCHED.findall(text) if int(number) == contactor
    ]


async def io_status(rig: Rig, station: StationProcess) -> dict[str, Any]:
    status: dict[str, Any] = json.loads(await rig.io_command(station, "status"))
    return status


async def open_faults(rig: Rig, station_id: str) -> list[dict[str, Any]]:
    view = await rig.api("GET", f"/api/stations/{station_id}")
    faults: list[dict[str, Any]] = view["openFaults"]
    return faults


def snapshot(station: StationProcess) -> dict[str, Any]:
    """The daemon's status.json (what `rtu status` shows)."""
    data: dict[str, Any] = json.loads((station.data / "status.json").read_text())
    return data


def assert_running(station: StationProcess) -> None:
    assert station.daemon is not None
    assert station.daemon.returncode is None, (
        f"the daemon exited ({station.daemon.returncode}):\n"
        + station.log.read_text(errors="replace")[-3000:]
    )


async def flip(rig: Rig, station: StationProcess, contactor: int, state: str) -> None:
    answer = await rig.io_command(station, f"flip {contactor} {state}")
    assert answer == "ok", answer


async def assert_delivered(
    rig: Rig,
    station: StationProcess,
    table: FaultTable,
    fault: str,
    *,
    contactors: tuple[int, ...] = (1,),
    timeout: float = 60.0,
) -> None:
    """Checks 1 and 2: the central stored exactly what the daemon emitted, in order.

    Waits until the central caught up, then records the row and asserts zero
    lost and zero stored twice for this case.
    """

    async def caught_up() -> bool:
        events = await light_events(rig, station.station_id)
        return all(len(statuses(events, c)) >= len(emitted(station, c)) > 0 for c in contactors)

    with contextlib.suppress(AssertionError):  # the comparison below says what is wrong
        await wait_for(caught_up, timeout, "the central to store every emitted event")
    await asyncio.sleep(1.0)  # a late duplicate would arrive now
    events = await light_events(rig, station.station_id)
    sent = stored = lost = doubled = 0
    for contactor in contactors:
        ours, theirs = emitted(station, contactor), statuses(events, contactor)
        identities = [
            (e["occurredAt"], e["details"]["status"])
            for e in events
            if e["details"]["contactorId"] == contactor
        ]
        sent += len(ours)
        stored += len(theirs)
        doubled += len(identities) - len(set(identities))
        lost += max(0, len(ours) - len(set(identities)))
    table.record(fault, sent=sent, stored=stored, lost=lost, doubled=doubled)
    for contactor in contactors:
        ours, theirs = emitted(station, contactor), statuses(events, contactor)
        assert ours, f"contactor {contactor}: the daemon emitted nothing; the case proves nothing"
        assert theirs == ours, f"contactor {contactor}: emitted {ours}, stored {theirs}"
    assert lost == 0
    assert doubled == 0
