"""The sampler loop with real (short) intervals: periodic and clock-aligned readings,
live interval changes, day extremes at local midnight, failures reported and healed,
a DLMS outage filled from the meter's load profile, TriggerMessage readings."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hil.analyser import AnalyserSimulator
from hil.dlms_meter import DlmsMeterSimulator
from os3p.actions import Action
from os3p.messages import MeterValuesRequest, to_payload
from os3p.validation import Validator
from rtu.metering.analyser import AnalyserConfig, ModbusAnalyser
from rtu.metering.dlms import DlmsConfig, DlmsMeter
from rtu.metering.history import History
from rtu.metering.model import MeterSource, Sample, SourceError
from rtu.metering.sampler import Sampler
from rtu.metering.sampling import day_end
from tests.support.aio import UNIT, eventually, run

AMS = ZoneInfo("Europe/Amsterdam")
VALIDATOR = Validator()


class ShiftedClock:
    """Real time moved by `offset`: lets a real 1 s interval cross local midnight."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def monotonic(self) -> float:
        return time.monotonic()


class FakeSource:
    """A meter whose voltage the test sets and which fails on command."""

    def __init__(self, name: str, clock: ShiftedClock) -> None:
        self.name = name
        self.clock = clock
        self.voltage = Decimal("230.0")
        self.failure: str | None = None
        self.reads = 0

    async def read(self) -> Sequence[Sample]:
        if self.failure is not None:
            raise SourceError(self.name, self.failure)
        self.reads += 1
        now = self.clock.now()
        return [
            Sample("Voltage.L1N", self.voltage, "V", now),
            Sample("Current.L1", Decimal("10.5"), "A", now),
            Sample("Frequency", Decimal("50.00"), "Hz", now),
        ]

    async def close(self) -> None:
        return None


class Health:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str | None]] = []
        self.readings: list[tuple[str, int]] = []  # (meter, number of samples)

    def on_source_error(self, name: str, reason: str) -> None:
        self.events.append(("error", name, reason))

    def on_source_ok(self, name: str) -> None:
        self.events.append(("ok", name, None))

    def on_samples(self, name: str, samples: Sequence[Sample]) -> None:
        self.readings.append((name, len(samples)))


class Rig:
    def __init__(self, sampler: Sampler, history: History, sent: list[dict[str, Any]]) -> None:
        self.sampler = sampler
        self.history = history
        self.sent = sent

    def contexts(self, message: dict[str, Any]) -> set[str]:
        return {sv["context"] for mv in message["meterValue"] for sv in mv["sampledValue"]}

    def of_context(self, context: str) -> list[dict[str, Any]]:
        return [
            mv
            for message in self.sent
            for mv in message["meterValue"]
            if {sv["context"] for sv in mv["sampledValue"]} == {context}
        ]


@contextlib.asynccontextmanager
async def sampling(
    tmp_path: Path,
    sources: Sequence[MeterSource],
    *,
    clock: ShiftedClock | None = None,
    sample_interval: int = 0,
    clock_interval: int = 0,
    health: Health | None = None,
    prepare: Any = None,
) -> AsyncIterator[Rig]:
    sent: list[dict[str, Any]] = []

    async def emit(message: MeterValuesRequest) -> None:
        payload = to_payload(message)
        VALIDATOR.check_outgoing(Action.METER_VALUES, "Request", payload)
        sent.append(payload)

    history = await History.open(tmp_path / "metering.db", now=lambda: datetime.now(UTC))
    if prepare is not None:
        await prepare(history)
    sampler = Sampler(
        sources,
        emit=emit,
        history=history,
        clock=clock or ShiftedClock(),
        zone=AMS,
        sample_interval=sample_interval,
        clock_interval=clock_interval,
        health=health,
        retry_interval=0.1 * UNIT,
    )
    try:
        async with asyncio.TaskGroup() as tasks:
            loops = [tasks.create_task(sampler.source_loop(s)) for s in sources]
            try:
                yield Rig(sampler, history, sent)
            finally:
                for loop in loops:
                    loop.cancel()
    finally:
        for source in sources:
            await source.close()
        await history.close()


def when(meter_value: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(meter_value["timestamp"].replace("Z", "+00:00"))


def test_periodic_and_clock_aligned_readings_follow_live_interval_changes(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = ShiftedClock()
        source = FakeSource("trafo", clock)
        async with sampling(tmp_path, [source], clock=clock) as rig:
            rig.sampler.set_sample_interval(1)
            await eventually(lambda: len(rig.of_context("Sample.Periodic")) >= 2, what="periodic")
            periodic = rig.of_context("Sample.Periodic")
            assert {sv["measurand"] for sv in periodic[0]["sampledValue"]} == {
                "Voltage.L1N", "Current.L1", "Frequency",
            }  # fmt: skip
            assert 0.5 < (when(periodic[1]) - when(periodic[0])).total_seconds() < 2.5

            rig.sampler.set_sample_interval(0)
            rig.sampler.set_clock_interval(1)
            await eventually(lambda: len(rig.of_context("Sample.Clock")) >= 2, what="clock")
            aligned = rig.of_context("Sample.Clock")
            for meter_value in aligned:
                assert when(meter_value).microsecond == 0  # on the second
                measurands = {sv["measurand"] for sv in meter_value["sampledValue"]}
                assert {"DayMax.Voltage.L1", "DayMin.Voltage.L1", "DayMax.Current.L1"} <= measurands
            # One MeterValues per interval per source.
            assert all(len(message["meterValue"]) == 1 for message in rig.sent)
            rows = await rig.history.rows_between(when(aligned[0]), when(aligned[-1]))
            assert {r.context for r in rows} == {"Sample.Clock"}
            assert {r.source for r in rows} == {"trafo"}

    run(scenario())


def test_the_midnight_reading_carries_the_days_final_extremes(tmp_path: Path) -> None:
    async def scenario() -> None:
        real = datetime.now(UTC)
        midnight = day_end(real.astimezone(AMS).date(), AMS)
        clock = ShiftedClock(midnight - real - timedelta(seconds=2.2))
        source = FakeSource("trafo", clock)
        source.voltage = Decimal("241.0")
        async with sampling(tmp_path, [source], clock=clock, clock_interval=1) as rig:

            def at_or_after_midnight() -> list[dict[str, Any]]:
                return [mv for mv in rig.of_context("Sample.Clock") if when(mv) >= midnight]

            await eventually(lambda: len(rig.of_context("Sample.Clock")) >= 1, what="a reading")
            source.voltage = Decimal("229.0")
            await eventually(lambda: len(at_or_after_midnight()) >= 2, what="past midnight")
        at_midnight, after = at_or_after_midnight()[:2]
        assert when(at_midnight) == midnight

        def values(meter_value: dict[str, Any]) -> dict[str, str]:
            return {sv["measurand"]: sv["value"] for sv in meter_value["sampledValue"]}

        assert values(at_midnight)["DayMax.Voltage.L1"] == "241.0"  # the old day's maximum
        assert values(after)["DayMax.Voltage.L1"] == "229.0"  # a new day started
        assert values(after)["DayMin.Voltage.L1"] == "229.0"

    run(scenario())


def test_every_failed_read_is_reported_and_the_recovery_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        health = Health()
        async with AnalyserSimulator() as sim:
            meter = ModbusAnalyser(
                "station",
                AnalyserConfig("127.0.0.1", sim.port, timeout=0.5 * UNIT, board_temperature=False),
            )
            async with sampling(tmp_path, [meter], sample_interval=1, health=health) as rig:
                await eventually(lambda: len(rig.sent) >= 1, what="a first reading")
                await sim.stop()
                await eventually(lambda: len(health.events) >= 1, what="on_source_error")
                kind, name, reason = health.events[0]
                assert (kind, name) == ("error", "station")
                assert reason
                failures = rig.sampler.status["station"].failures
                await eventually(
                    lambda: rig.sampler.status["station"].failures > failures + 1,
                    what="retries while failing",
                )
                # Each failed read: supervision counts them in a row (`meter_errors`).
                assert len(health.events) >= 3
                assert {(kind, name) for kind, name, _ in health.events} == {("error", "station")}
                assert rig.sampler.snapshot()["station"]["failing"] is True
                await sim.start()
                await eventually(lambda: health.events[-1][0] == "ok", what="on_source_ok")
                assert health.events[-1] == ("ok", "station", None)
                assert [kind for kind, _, _ in health.events].count("ok") == 1
                sent = len(rig.sent)
                await eventually(lambda: len(rig.sent) > sent, what="readings again")
                snapshot = rig.sampler.snapshot()["station"]
                assert snapshot["failing"] is False
                assert snapshot["last_values"]["Frequency"] == "49.98 Hz"

    run(scenario(), timeout=60 * UNIT)


def test_an_outage_of_a_dlms_meter_is_filled_from_its_load_profile(tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    last_row = now - timedelta(minutes=now.minute % 15)
    simulator = DlmsMeterSimulator(
        profile_start=last_row - timedelta(minutes=15 * 95), profile_periods=96
    )
    rows = simulator.profile_rows
    assert rows[-1][0] == last_row
    simulator.start()  # picks the port the meter keeps across restarts
    simulator.stop()  # and the outage begins
    # Stored before the outage: the reading two hours before the profile's last row.
    stored = last_row - timedelta(hours=2)

    async def prepare(history: History) -> None:
        await history.append(
            "trafo", "Sample.Clock", stored, [Sample("Voltage.L1N", Decimal(230), "V", stored)]
        )

    async def scenario() -> None:
        health = Health()
        meter = DlmsMeter("trafo", DlmsConfig(port=simulator.port, timeout=UNIT))
        async with sampling(
            tmp_path,
            [meter],
            sample_interval=1,
            clock_interval=900,
            health=health,
            prepare=prepare,
        ) as rig:
            await eventually(
                lambda: (
                    health.events[:1] == [("error", "trafo", health.events[0][2])]
                    if health.events
                    else False
                ),
                what="meter down",
            )
            simulator.start()
            await eventually(
                lambda: rig.sampler.status["trafo"].filled_from_profile > 0,
                timeout=20 * UNIT,
                what="gap filled",
            )
            await eventually(lambda: ("ok", "trafo", None) in health.events, what="on_source_ok")
            filled = rig.of_context("Sample.Clock")
            rows_after = await rig.history.rows_between(stored + timedelta(seconds=1), last_row)
        stamps = [when(mv) for mv in filled]
        expected = [stored + timedelta(minutes=15 * k) for k in range(1, 9)]
        assert stamps == expected  # every quarter of the outage, none missing, none twice
        for meter_value, (_, energy_in, energy_out) in zip(filled, rows[-8:], strict=True):
            values = {
                sv["measurand"]: (sv["value"], sv["unit"]) for sv in meter_value["sampledValue"]
            }
            assert values == {
                "RealEnergyConsumed.Sum": (str(energy_in), "Wh"),
                "RealEnergyDelivered.Sum": (str(energy_out), "Wh"),
            }
        # One MeterValues carried them all.
        assert any(len(message["meterValue"]) == 8 for message in rig.sent)
        assert sorted({r.timestamp for r in rows_after}) == expected

    try:
        run(scenario(), timeout=60 * UNIT)
    finally:
        simulator.close()


def test_trigger_reads_every_source_and_skips_a_failing_one(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = ShiftedClock()
        good, bad = FakeSource("a", clock), FakeSource("b", clock)
        bad.failure = "unplugged"
        health = Health()
        async with sampling(tmp_path, [good, bad], health=health) as rig:
            messages = await rig.sampler.trigger(None)
        assert len(messages) == 1
        payload = to_payload(messages[0])
        VALIDATOR.check_outgoing(Action.METER_VALUES, "Request", payload)
        assert {sv["context"] for sv in payload["meterValue"][0]["sampledValue"]} == {"Trigger"}
        assert health.events == [("error", "b", "unplugged")]

    run(scenario())
