"""pump_loop and the Outbox facade against a real store and a fake central's `send`.

The real link does not exist yet; the fake stands in for it with the contract
the pump relies on: return on CALLRESULT, raise os3p.errors otherwise.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from os3p.backoff import Backoff
from os3p.errors import (
    CallErrorReceived,
    CallTimeout,
    ConnectionLost,
    ErrorCode,
    InvalidResponse,
    PayloadInvalid,
)
from rtu.outbox import Outbox, pump_loop, read_status

UNIT = 0.01  # seconds; every delay in these tests is a multiple of it
EVENT = "StreetlightStatusNotification"


def wall() -> datetime:
    return datetime.now(UTC)


class FakeCentral:
    """Answers CALLs after `latency`; `plan[n]` lists what to raise for payload n, in turn."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.plan: dict[int, list[Exception]] = {}
        self.received: list[int] = []  # payload n of every CALL, in arrival order
        self.raw: list[str] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.on_call: Callable[[int], None] = lambda n: None

    async def send(self, action: str, payload: str) -> None:
        assert action == EVENT
        n = json.loads(payload)["n"]
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            self.received.append(n)
            self.raw.append(payload)
            self.on_call(n)
            await asyncio.sleep(self.latency)
            if self.plan.get(n):
                raise self.plan[n].pop(0)
        finally:
            self.in_flight -= 1


def callerror() -> CallErrorReceived:
    return CallErrorReceived("InternalError", "database locked", {})


async def eventually(condition: Callable[[], bool], timeout: float = 300 * UNIT) -> None:
    # The test watches from outside the system under test, which offers no event
    # for "the fake central saw X": polling at a fraction of the unit is the honest way.
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(UNIT / 4)


async def with_pump(
    tmp_path: Path,
    central: FakeCentral,
    body: Callable[[Outbox, asyncio.Event], Awaitable[None]],
    *,
    window: int = 1,
    dead_letter_after: int = 5,
) -> Outbox:
    outbox = await Outbox.open(
        tmp_path / "outbox.db",
        clock=wall,
        dead_letter_after=dead_letter_after,
        retry_base=timedelta(seconds=UNIT),
        retry_cap=timedelta(seconds=4 * UNIT),
    )
    link = asyncio.Event()
    link.set()
    pinned = Backoff(base=UNIT, cap=4 * UNIT, uniform=lambda low, high: high)
    try:
        async with asyncio.TaskGroup() as tasks:
            pump = tasks.create_task(
                pump_loop(outbox, central.send, window=window, wake=link, link_retry=pinned),
                name="outbox-pump",
            )
            await body(outbox, link)
            pump.cancel()
    finally:
        await outbox.close()
    return outbox


async def emit_all(outbox: Outbox, numbers: range) -> list[int]:
    return [await outbox.emit(EVENT, {"n": n}) for n in numbers]


def test_window_1_delivers_fifo_one_at_a_time(tmp_path: Path) -> None:
    central = FakeCentral(latency=UNIT / 10)

    async def body(outbox: Outbox, link: asyncio.Event) -> None:
        await emit_all(outbox, range(20))
        await eventually(lambda: outbox.depth() == 0)

    asyncio.run(with_pump(tmp_path, central, body))
    assert central.received == list(range(20))
    assert central.most_in_flight == 1


def test_larger_window_pipelines_in_order(tmp_path: Path) -> None:
    central = FakeCentral(latency=UNIT)

    async def body(outbox: Outbox, link: asyncio.Event) -> None:
        link.clear()  # build a backlog first
        await emit_all(outbox, range(40))
        link.set()
        await eventually(lambda: outbox.depth() == 0)

    asyncio.run(with_pump(tmp_path, central, body, window=8))
    assert central.received == list(range(40))  # sent in order
    assert central.most_in_flight == 8


def test_emit_wakes_an_idle_pump_which_does_not_poll(tmp_path: Path) -> None:
    central = FakeCentral()
    peeks = 0

    async def body(outbox: Outbox, link: asyncio.Event) -> None:
        nonlocal peeks
        original = outbox.peek

        async def counting_peek(limit: int, after_seq: int | None = None) -> list[object]:
            nonlocal peeks
            peeks += 1
            return await original(limit, after_seq)  # type: ignore[return-value]

        outbox.peek = counting_peek  # type: ignore[method-assign]
        await outbox.emit(EVENT, {"n": 0})
        await eventually(lambda: central.received == [0])
        await eventually(lambda: outbox.depth() == 0)
        await asyncio.sleep(2 * UNIT)
        idle = peeks
        await asyncio.sleep(20 * UNIT)
        assert peeks == idle  # nothing happens while nothing changes
        loop = asyncio.get_running_loop()
        start = loop.time()
        await outbox.emit(EVENT, {"n": 1})
        await eventually(lambda: central.received == [0, 1])
        assert loop.time() - start < 5 * UNIT

    asyncio.run(with_pump(tmp_path, central, body))


def test_callerror_is_retried_in_place_with_window_1(tmp_path: Path) -> None:
    central = FakeCentral()
    central.plan[1] = [callerror(), callerror()]

    async def body(outbox: Outbox, link: asyncio.Event) -> None:
        await emit_all(outbox, range(4))
        await eventually(lambda: outbox.depth() == 0)
        assert await outbox.dead_letters() == []

    asyncio.run(with_pump(tmp_path, central, body))
    assert central.received == [0, 1, 1, 1, 2, 3]  # 2 never overtakes 1


def test_callerror_n_times_dead_letters_and_the_queue_moves_on(tmp_path: Path) -> None:
    central = FakeCentral()
    central.plan[1] = [callerror() for _ in range(10)]

    async def body(outbox: Outbox, link: asyncio.Event) -> None:
        await emit_all(outbox, range(3))
        await eventually(lambda: outbox.depth() == 0)
        [dead] = await outbox.dead_letters()
        assert json.loads(dead.payload) == {"n": 1}
        assert (dead.attempts, dead.code) == (3, "InternalError")
        assert dead.description == "database locked"
        assert (await outbox.status()).dead_letters == 1

    asyncio.run(with_pump(tmp_path, central, body, dead_letter_after=3))
    assert central.received == [0, 1, 1, 1, 2]


def test_invalid_response_counts_like_a_callerror(tmp_path: Path) -> None:
    central = FakeCentral()
    bad = PayloadInvalid(ErrorCode.FORMATION_VIOLATION, "unexpected property", path="x")
    central.plan[0] = [InvalidResponse(bad), InvalidResponse(bad)]

    async def body(outbox: Outbox, link: asyncio.Event) -> None:
        await emit_all(outbox, range(2))
        await eventually(lambda: outbox.depth() == 0)
        [dead] = await outbox.dead_letters()
        assert dead.code == "InvalidResponse"

    asyncio.run(with_pump(tmp_path, central, body, dead_letter_after=2))
    assert central.received == [0, 0, 1]


def test_window_over_1_lets_newer_entries_overtake_a_callerror_retry(tmp_path: Path) -> None:
    # The documented trade-off: 1..3 were already on the wire when 0's CALLERROR came.
    central = FakeCentral(latency=UNIT)
    central.plan[0] = [callerror()]

    async def body(outbox: Outbox, link: asyncio.Event) -> None:
        link.clear()
        await emit_all(outbox, range(8))
        link.set()
        await eventually(lambda: outbox.depth() == 0)

    asyncio.run(with_pump(tmp_path, central, body, window=4))
    assert central.received[:4] == [0, 1, 2, 3]
    assert central.received.index(0, 1) < central.received.index(4)  # retry before newer ones
    assert sorted(central.received) == [0, 0, 1, 2, 3, 4, 5, 6, 7]


@pytest.mark.parametrize("failure", [ConnectionLost, CallTimeout], ids=["lost", "timeout"])
def test_transport_failures_never_dead_letter(tmp_path: Path, failure: type[Exception]) -> None:
    central = FakeCentral()
    central.plan[1] = [failure() for _ in range(8)]  # more than dead_letter_after

    async def body(outbox: Outbox, link: asyncio.Event) -> None:
        await emit_all(outbox, range(3))
        await eventually(lambda: outbox.depth() == 0)
        assert await outbox.dead_letters() == []

    asyncio.run(with_pump(tmp_path, central, body, dead_letter_after=2))
    assert central.received == [0, *[1] * 9, 2]  # at-least-once, in order


def test_connection_lost_waits_for_the_link(tmp_path: Path) -> None:
    central = FakeCentral()
    central.plan[1] = [ConnectionLost()]
    link_holder: list[asyncio.Event] = []

    def drop_link(n: int) -> None:
        if n == 1 and central.plan[1]:
            link_holder[0].clear()  # what the link does when the socket closes

    central.on_call = drop_link

    async def body(outbox: Outbox, link: asyncio.Event) -> None:
        link_holder.append(link)
        await emit_all(outbox, range(3))
        await eventually(lambda: not link.is_set())
        await asyncio.sleep(20 * UNIT)  # far longer than the pinned pause
        assert central.received == [0, 1]  # nothing sent while the link is down
        assert outbox.depth() == 2
        link.set()
        await eventually(lambda: outbox.depth() == 0)

    asyncio.run(with_pump(tmp_path, central, body))
    assert central.received == [0, 1, 1, 2]


def test_resent_payloads_are_byte_identical(tmp_path: Path) -> None:
    central = FakeCentral()
    central.plan[0] = [ConnectionLost(), callerror()]

    async def body(outbox: Outbox, link: asyncio.Event) -> None:
        await outbox.emit(EVENT, {"n": 0, "timestamp": "2026-01-05T17:03:00Z", "status": "On"})
        await eventually(lambda: outbox.depth() == 0)

    asyncio.run(with_pump(tmp_path, central, body))
    assert len(central.raw) == 3
    assert len(set(central.raw)) == 1


def test_emit_returns_after_commit(tmp_path: Path) -> None:
    async def main() -> None:
        outbox = await Outbox.open(tmp_path / "outbox.db", clock=wall)
        try:
            assert outbox.moved_aside is None
            seq = await outbox.emit(EVENT, {"n": 1})
            status, _ = read_status(tmp_path / "outbox.db")  # another connection sees it
            assert status.depth == 1
            [entry] = await outbox.peek(5)
            assert entry.seq == seq
        finally:
            await outbox.close()

    asyncio.run(main())


def test_window_must_be_positive(tmp_path: Path) -> None:
    async def main() -> None:
        outbox = await Outbox.open(tmp_path / "outbox.db", clock=wall)
        try:
            with pytest.raises(ValueError, match="window"):
                await pump_loop(outbox, FakeCentral().send, window=0, wake=asyncio.Event())
        finally:
            await outbox.close()

    asyncio.run(main())
