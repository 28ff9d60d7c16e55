"""The meter-value history table: append, range, last clock reading, purge, stats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from rtu.metering.history import History, HistoryStore
from rtu.metering.model import Sample
from tests.support.aio import run

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


def sample(measurand: str, value: str, unit: str | None, location: str | None = None) -> Sample:
    return Sample(measurand, Decimal(value), unit, T0, location)


def test_append_and_query_a_range(tmp_path: Path) -> None:
    store = HistoryStore.open(tmp_path / "metering.db", now=lambda: T0)
    try:
        for minutes in (0, 15, 30, 45):
            store.append(
                "trafo",
                "Sample.Clock",
                T0 + timedelta(minutes=minutes),
                [
                    sample("Voltage.L1N", f"23{minutes // 15}.5", "V"),
                    sample("PowerFactor.Sum", "1.2E+0", None),
                ],
            )
        store.append(
            "p1",
            "Sample.Periodic",
            T0 + timedelta(minutes=20),
            [sample("Power.Active.Import", "0.5", "kW", "P1Meter")],
        )
        rows = store.rows_between(T0 + timedelta(minutes=15), T0 + timedelta(minutes=30))
        assert [(r.timestamp.minute, r.source, r.measurand, r.value) for r in rows] == [
            (15, "trafo", "Voltage.L1N", "231.5"),
            (15, "trafo", "PowerFactor.Sum", "1.2"),
            (20, "p1", "Power.Active.Import", "0.5"),
            (30, "trafo", "Voltage.L1N", "232.5"),
            (30, "trafo", "PowerFactor.Sum", "1.2"),
        ]
        assert rows[2].location == "P1Meter"
        assert rows[1].unit is None
        assert store.last_time("trafo", "Sample.Clock") == T0 + timedelta(minutes=45)
        assert store.last_time("p1", "Sample.Clock") is None
        assert store.stats()["rows"] == 9
        assert store.purge(T0 + timedelta(minutes=20)) == 4
        assert store.stats()["rows"] == 5
    finally:
        store.close()


def test_the_async_face_runs_on_its_thread(tmp_path: Path) -> None:
    async def scenario() -> None:
        history = await History.open(tmp_path / "metering.db", now=lambda: T0)
        try:
            await history.append("m", "Trigger", T0, [sample("Frequency", "50.01", "Hz")])
            assert [r.value for r in await history.rows_between(T0, T0)] == ["50.01"]
            assert await history.last_time("m", "Trigger") == T0
            assert (await history.stats())["rows"] == 1
        finally:
            await history.close()

    run(scenario())
