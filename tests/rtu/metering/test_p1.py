"""P1Port against the simulated meter, through a real pseudo-terminal."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hil.p1_meter import TEMPLATES, P1Meter, initial_state, render_telegram
from rtu.metering.dsmr import DsmrVersion, Rejected, TelegramDecoder
from rtu.metering.model import MeterSource, Sample, SourceError
from rtu.metering.p1 import P1Port, P1Settings, P1Telegram, SerialSettings

T = TypeVar("T")
UNIT = 0.05  # seconds: the simulator's interval; every deadline is a multiple of it
DEADLINE = 40 * UNIT


def run(coro: Coroutine[Any, Any, T]) -> T:
    async def bounded() -> T:
        async with asyncio.timeout(4 * DEADLINE):
            return await coro

    return asyncio.run(bounded(), debug=True)


async def next_telegram(port: P1Port, accept: Callable[[P1Telegram], bool]) -> P1Telegram:
    async with asyncio.timeout(DEADLINE), contextlib.aclosing(port.telegrams()) as telegrams:
        async for telegram in telegrams:
            if accept(telegram):
                return telegram
    raise AssertionError("telegrams() ended")


def by_measurand(samples: Sequence[Sample]) -> dict[str, Sample]:
    return {sample.measurand: sample for sample in samples}


class FakeClock:
    """Wall and monotonic time that move only when the test says so."""

    def __init__(self) -> None:
        self.wall = datetime(2026, 11, 23, 17, 0, 0, tzinfo=UTC)
        self.seconds = 1000.0

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.seconds


@contextlib.asynccontextmanager
async def opened(settings: P1Settings, clock: FakeClock | None = None) -> AsyncIterator[P1Port]:
    async with P1Port(settings, clock=clock) as port:
        await port.open()
        yield port


# dsmr-parser's sample telegrams (hil.p1_meter.TEMPLATES); expected values copied
# from their text: energy is tariff 1 + tariff 2 delivered to the client.
V5_TIME = datetime(2017, 1, 2, 18, 20, 2, tzinfo=UTC)  # 170102192002W, Dutch winter time
V4_TIME = datetime(2016, 11, 13, 19, 57, 57, tzinfo=UTC)  # 161113205757W
EXPECTED = {
    "5": [
        ("Energy.Active.Import.Register", Decimal("000004.426") + Decimal("000002.399"), "kWh"),
        ("Power.Active.Import", Decimal("00.244"), "kW"),
        ("ActivePower.L1", Decimal("00.070"), "kW"),
        ("ActivePower.L2", Decimal("00.032"), "kW"),
        ("ActivePower.L3", Decimal("00.142"), "kW"),
        ("Current.L1", Decimal("0.48"), "A"),
        ("Current.L2", Decimal("0.44"), "A"),
        ("Current.L3", Decimal("0.86"), "A"),
        ("Voltage.L1N", Decimal("0230.0"), "V"),
        ("Voltage.L2N", Decimal("0230.0"), "V"),
        ("Voltage.L3N", Decimal("0229.0"), "V"),
    ],
    "4": [
        ("Energy.Active.Import.Register", Decimal("001581.123") + Decimal("001435.706"), "kWh"),
        ("Power.Active.Import", Decimal("02.027"), "kW"),
        ("ActivePower.L1", Decimal("00.170"), "kW"),
        ("ActivePower.L2", Decimal("01.247"), "kW"),
        ("ActivePower.L3", Decimal("00.209"), "kW"),
        ("Current.L1", Decimal("000"), "A"),
        ("Current.L2", Decimal("006"), "A"),
        ("Current.L3", Decimal("002"), "A"),
    ],
    "2.2": [
        ("Energy.Active.Import.Register", Decimal("00001.001") + Decimal("00001.001"), "kWh"),
        ("Power.Active.Import", Decimal("0001.01"), "kW"),
    ],
}


@pytest.mark.parametrize(
    ("version", "meter_time"),
    [
        pytest.param("5", V5_TIME, id="dsmr5"),
        pytest.param("4", V4_TIME, id="dsmr4"),
        pytest.param("2.2", None, id="dsmr2.2-clock-time"),
    ],
)
def test_samples_from_sample_telegrams(version: str, meter_time: datetime | None) -> None:
    clock = FakeClock()

    async def scenario() -> list[Sample]:
        meter = P1Meter(version)  # not started: we put the verbatim telegram on the line
        try:
            async with opened(P1Settings(meter.device, DsmrVersion(version)), clock) as port:
                meter.write_raw(("\r\n".join(TEMPLATES[version]) + "\r\n").encode("ascii"))
                return list(await port.read())
        finally:
            meter.stop()

    samples = run(scenario())
    expected = [
        Sample(measurand, value, unit, meter_time or clock.wall, "P1Meter")
        for measurand, value, unit in EXPECTED[version]
    ]
    assert samples == expected
    # Exactly as in the telegram: same digits, same exponent (no float on the way).
    assert [s.value.as_tuple() for s in samples] == [s.value.as_tuple() for s in expected]


def test_line_settings_follow_the_version_unless_configured() -> None:
    assert P1Settings("/dev/x", DsmrVersion.V2_2).line == SerialSettings(9600, 7, "E", 1)
    assert P1Settings("/dev/x", DsmrVersion.V3).line == SerialSettings(9600, 7, "E", 1)
    assert P1Settings("/dev/x", DsmrVersion.V4).line == SerialSettings(115200, 8, "N", 1)
    assert P1Settings("/dev/x", DsmrVersion.V5).line == SerialSettings(115200, 8, "N", 1)
    custom = SerialSettings(115200, 7, "E", 1)  # some DSMR 4 meters speak 7E1
    assert P1Settings("/dev/x", DsmrVersion.V4, serial=custom).line == custom
    assert P1Settings("/dev/x", DsmrVersion.V5).freshness == 3.0
    assert P1Settings("/dev/x", DsmrVersion.V4).freshness == 30.0
    assert P1Settings("/dev/x", DsmrVersion.V4, max_age=5).freshness == 5


def test_p1_port_is_a_meter_source() -> None:
    port: MeterSource = P1Port(P1Settings("/dev/null"))
    assert port.name == "p1"


def test_power_set_on_the_meter_reaches_the_samples() -> None:
    async def scenario() -> None:
        with P1Meter("5", interval=UNIT) as meter:
            async with opened(P1Settings(meter.device, max_age=DEADLINE)) as port:
                first = by_measurand(await port.read())
                meter.set_power(Decimal("1.234"), Decimal("0.5"), Decimal("0"))
                changed = await next_telegram(
                    port,
                    lambda t: by_measurand(t.samples)["ActivePower.L1"].value == Decimal("1.234"),
                )
        values = by_measurand(changed.samples)
        assert values["ActivePower.L2"].value == Decimal("0.500")
        assert values["Power.Active.Import"].value == Decimal("1.734")
        assert values["Current.L1"].value == Decimal("5.37")  # 1234 W / 230.0 V
        assert (
            values["Energy.Active.Import.Register"].value
            >= first["Energy.Active.Import.Register"].value
        )

    run(scenario())


def test_a_bad_crc_is_counted_and_skipped_and_the_next_good_one_used() -> None:
    state = initial_state("5")

    def telegram(total_kw: str, *, corrupt: bool = False) -> bytes:
        with_total = dataclasses.replace(state, total=Decimal(total_kw))
        return render_telegram("5", with_total, V5_TIME, corrupt_crc=corrupt).encode("ascii")

    def total(samples: Sequence[Sample]) -> Decimal:
        return by_measurand(samples)["Power.Active.Import"].value

    async def scenario() -> None:
        meter = P1Meter("5")
        try:
            async with opened(P1Settings(meter.device, max_age=DEADLINE)) as port:
                meter.write_raw(telegram("1.111"))
                assert total(await port.read()) == Decimal("1.111")
                meter.write_raw(telegram("2.222", corrupt=True))
                meter.write_raw(telegram("3.333"))
                good = await next_telegram(port, lambda t: True)
                assert total(good.samples) == Decimal("3.333")
                assert total(await port.read()) == Decimal("3.333")
                assert port.counters.crc_errors == 1
                assert port.counters.telegrams == 2
                assert port.counters.parse_errors == 0
        finally:
            meter.stop()

    run(scenario())


def test_corrupt_next_crc_on_the_running_meter_is_counted() -> None:
    async def scenario() -> None:
        with P1Meter("4", interval=UNIT) as meter:
            async with opened(P1Settings(meter.device, DsmrVersion.V4, max_age=DEADLINE)) as port:
                await port.read()
                meter.corrupt_next_crc()
                # The spoilt telegram is followed by a good one: wake on each good one.
                await next_telegram(port, lambda t: port.counters.crc_errors == 1)
                seen = port.counters.telegrams
                await next_telegram(port, lambda t: True)
                assert port.counters.telegrams == seen + 1
                assert port.counters.crc_errors == 1

    run(scenario())


def test_cable_pulled_gives_source_error_after_max_age_and_heals() -> None:
    clock = FakeClock()

    async def scenario() -> None:
        meter = P1Meter("5", interval=UNIT)
        try:
            async with opened(P1Settings(meter.device, max_age=10), clock) as port:
                meter.start()  # after opening: the port sees every telegram written
                await port.read()
                meter.pause()
                # Let what was on the wire when the cable came out arrive (no await
                # between the check and the subscription: no telegram slips through).
                if port.counters.telegrams < meter.written:
                    await next_telegram(port, lambda t: port.counters.telegrams == meter.written)
                clock.seconds += 10  # exactly max age: still fresh
                await port.read()
                clock.seconds += 2
                with pytest.raises(SourceError, match=r"no telegram for 12\.0 s"):
                    await port.read()
                meter.resume()
                await next_telegram(port, lambda t: True)
                assert len(await port.read()) == 11
        finally:
            meter.stop()

    run(scenario())


def test_a_silent_line_gives_source_error_after_max_age() -> None:
    async def scenario() -> None:
        meter = P1Meter("5", interval=UNIT)
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            async with opened(P1Settings(meter.device, max_age=4 * UNIT)) as port:
                with pytest.raises(SourceError, match=r"no telegram for 0\.2 s"):
                    await port.read()  # waits for a first telegram, up to max age
                assert loop.time() - started >= 4 * UNIT
                meter.start()
                await next_telegram(port, lambda t: True)
                assert len(await port.read()) == 11
        finally:
            meter.stop()

    run(scenario())


def test_noise_on_the_line_is_counted_never_raised() -> None:
    async def scenario() -> None:
        meter = P1Meter("5")
        try:
            async with opened(P1Settings(meter.device, max_age=DEADLINE)) as port:
                meter.write_raw(b"\x00\xff\xfe line noise \x80")
                meter.write_raw(b"/ISk5 truncated!\r\n")  # a telegram shape, no CRC
                meter.write_raw(b"/ISk5\r\n1-0:1.8.1(12x*kWh)\r\n!0000\r\n")  # bad CRC
                meter.write_raw(("\r\n".join(TEMPLATES["5"]) + "\r\n").encode("ascii"))
                assert len(await port.read()) == 11
                assert port.counters.parse_errors == 1
                assert port.counters.crc_errors == 1
        finally:
            meter.stop()

    run(scenario())


def test_dsmr22_over_a_7e1_line() -> None:
    async def scenario() -> None:
        with P1Meter("2.2", interval=UNIT) as meter:
            settings = P1Settings(meter.device, DsmrVersion.V2_2, max_age=DEADLINE)
            async with opened(settings) as port:
                samples = by_measurand(await port.read())
        assert samples["Power.Active.Import"].value == Decimal("1.01")
        assert set(samples) == {"Energy.Active.Import.Register", "Power.Active.Import"}

    run(scenario())


def test_line_lost_raises_source_error_then_reopening_fails_cleanly() -> None:
    async def scenario() -> None:
        meter = P1Meter("5", interval=UNIT)
        async with opened(P1Settings(meter.device, max_age=DEADLINE)) as port:
            meter.start()
            await port.read()
            meter.stop()  # the adapter is unplugged: the pty goes away
            with pytest.raises(SourceError, match="line lost"):
                await next_telegram(port, lambda t: False)
            with pytest.raises(SourceError, match="line lost"):
                await port.read()
            # Reopening fails: the device is gone ("cannot open"), or, if another
            # process was just given the same /dev/pts number, it is silent.
            with pytest.raises(SourceError, match=r"cannot open|no telegram"):
                await port.read()

    run(scenario())


def test_open_failure_is_a_source_error() -> None:
    async def scenario() -> None:
        port = P1Port(P1Settings("/dev/does-not-exist", name="streetlights"))
        with pytest.raises(SourceError, match="streetlights: cannot open /dev/does-not-exist"):
            await port.read()
        await port.close()

    run(scenario())


def test_telegrams_end_when_the_port_is_closed() -> None:
    async def scenario() -> None:
        with P1Meter("5", interval=UNIT) as meter:
            port = P1Port(P1Settings(meter.device))
            received: list[P1Telegram] = []
            two = asyncio.Event()

            async def consume() -> None:
                async for telegram in port.telegrams():
                    received.append(telegram)
                    if len(received) == 2:
                        two.set()

            async with asyncio.timeout(DEADLINE), asyncio.TaskGroup() as tasks:
                tasks.create_task(consume())
                await two.wait()
                await port.close()  # consume() returns: the TaskGroup can exit
        assert received[0].received <= received[1].received

    run(scenario())


def test_close_ends_a_read_waiting_for_the_first_telegram() -> None:
    async def scenario() -> None:
        meter = P1Meter("5")  # silent
        try:
            port = P1Port(P1Settings(meter.device, max_age=DEADLINE))
            waiting = asyncio.create_task(port.read())
            await port.open()  # read() queues on the opening lock meanwhile
            await asyncio.sleep(0)  # one loop turn: read() takes the open port, starts waiting
            await port.close()
            with pytest.raises(SourceError, match="port closed while reading"):
                await waiting
        finally:
            meter.stop()

    run(scenario())


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_arbitrary_bytes_on_the_line_are_only_counted(noise: bytes) -> None:
    good = ("\r\n".join(TEMPLATES["5"]) + "\r\n").encode("ascii")
    rejected = [
        item for item in TelegramDecoder(DsmrVersion.V5).feed(noise) if isinstance(item, Rejected)
    ]

    async def scenario() -> None:
        meter = P1Meter("5")
        try:
            async with opened(P1Settings(meter.device, max_age=DEADLINE)) as port:
                meter.write_raw(noise + good)
                samples = by_measurand(await port.read())  # the first good telegram
                assert samples["Power.Active.Import"].value == Decimal("0.244")
                counters = port.counters
                assert counters.crc_errors == sum(r.kind == "crc" for r in rejected)
                assert counters.parse_errors == sum(r.kind == "parse" for r in rejected)
        finally:
            meter.stop()

    run(scenario())
