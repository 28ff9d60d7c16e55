"""Heartbeats: grouped commits, and every answer given only after its commit."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from central.liveness import LivenessWriter
from central.storage import StorageError, open_store
from os3p.formats import parse_date_time
from tests.central.support import running_central, scripted_station
from tests.support.aio import UNIT, run

T0 = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


class GatedWrites:
    """A store write that holds each commit until the test opens the gate."""

    def __init__(self) -> None:
        self.batches: list[dict[str, datetime]] = []
        self.gate = asyncio.Event()
        self.fail_next: Exception | None = None

    async def __call__(self, seen: Mapping[str, datetime]) -> None:
        self.batches.append(dict(seen))
        await self.gate.wait()
        if self.fail_next is not None:
            failure, self.fail_next = self.fail_next, None
            raise failure


def test_heartbeats_arriving_during_a_commit_share_the_next_one() -> None:
    async def scenario() -> None:
        writes = GatedWrites()
        writer = LivenessWriter(writes)
        first = asyncio.create_task(writer.note("st0", at(0)))
        await asyncio.sleep(0)
        others = [asyncio.create_task(writer.note(f"st{i}", at(i))) for i in range(1, 50)]
        later = asyncio.create_task(writer.note("st1", at(99)))  # same station again: latest wins
        await asyncio.sleep(0)
        assert not first.done(), "answered before its commit"
        writes.gate.set()
        await asyncio.gather(first, *others, later)
        assert writes.batches[0] == {"st0": at(0)}
        assert len(writes.batches) == 2
        assert writes.batches[1] == {**{f"st{i}": at(i) for i in range(1, 50)}, "st1": at(99)}

    run(scenario())


def test_a_failed_commit_fails_its_group_only() -> None:
    async def scenario() -> None:
        writes = GatedWrites()
        writer = LivenessWriter(writes)
        writes.fail_next = StorageError("disk full")
        group = [asyncio.create_task(writer.note(f"st{i}", at(i))) for i in range(3)]
        await asyncio.sleep(0)
        writes.gate.set()
        results = await asyncio.gather(*group, return_exceptions=True)
        assert all(isinstance(r, StorageError) for r in results)
        await writer.note("st0", at(10))  # the next group commits
        assert writes.batches[-1] == {"st0": at(10)}

    run(scenario())


def test_a_cancelled_waiter_does_not_cancel_its_group() -> None:
    async def scenario() -> None:
        writes = GatedWrites()
        writer = LivenessWriter(writes)
        gone = asyncio.create_task(writer.note("gone", at(1)))
        stays = asyncio.create_task(writer.note("stays", at(2)))
        await asyncio.sleep(0)
        gone.cancel()
        writes.gate.set()
        await stays
        assert writes.batches == [{"gone": at(1), "stays": at(2)}]
        with pytest.raises(asyncio.CancelledError):
            await gone

    run(scenario())


def test_every_heartbeat_answer_follows_its_commit(tmp_path: Path) -> None:
    """Read the database from a second connection after each answer: last_seen is there."""

    async def scenario() -> None:
        async with running_central(tmp_path) as (central, api):
            await api.add_station("SUBS001", password="s3cret-pass")
            reader = open_store(f"sqlite://{tmp_path / 'central.db'}")
            try:
                async with scripted_station(
                    central.ws_url, "SUBS001", password="s3cret-pass"
                ) as st:
                    await st.boot()
                    for _ in range(5):
                        answer = await st.result("Heartbeat", {})
                        told = parse_date_time(answer["currentTime"])
                        liveness = reader.get_liveness("SUBS001")
                        assert liveness is not None
                        assert liveness.last_seen is not None
                        assert abs(liveness.last_seen - told) < timedelta(milliseconds=1)
                        await asyncio.sleep(0.01 * UNIT)
            finally:
                reader.close()

    run(scenario())
