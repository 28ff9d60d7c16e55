"""The P1 meter simulator: its telegrams, its CRC, its pty and its controls."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import serial
from dsmr_parser import telegram_specifications
from dsmr_parser.exceptions import InvalidChecksumError
from dsmr_parser.parsers import TelegramParser

from hil.p1_meter import (
    TEMPLATES,
    VERSIONS,
    P1Meter,
    crc16_arc,
    dsmr_timestamp,
    initial_state,
    render_telegram,
)

UNIT = 0.05  # seconds: the simulator's interval in these tests; deadlines are multiples
DEADLINE = 40 * UNIT
SPECIFICATIONS = {
    "2.2": telegram_specifications.V2_2,
    "4": telegram_specifications.V4,
    "5": telegram_specifications.V5,
}
# The meter times in the templates' own 0-0:1.0.0 lines, in UTC.
TEMPLATE_TIMES = {
    "2.2": datetime(2016, 11, 7, 18, tzinfo=UTC),  # no timestamp line: any time renders alike
    "4": datetime(2016, 11, 13, 19, 57, 57, tzinfo=UTC),
    "5": datetime(2017, 1, 2, 18, 20, 2, tzinfo=UTC),
}


def verbatim(version: str) -> str:
    return "\r\n".join(TEMPLATES[version]) + "\r\n"


def read_telegram(port: serial.Serial) -> str:
    """The next whole telegram on the port (anything before its '/' is dropped)."""
    lines: list[bytes] = []
    while True:
        line = port.readline()
        if not line.endswith(b"\r\n"):
            raise TimeoutError(f"no complete line within {port.timeout} s: {line!r}")
        if line.startswith(b"/"):
            lines = []
        lines.append(line)
        if line.startswith(b"!") and lines[0].startswith(b"/"):
            return b"".join(lines).decode("ascii")


def values(telegram: str) -> dict[str, str]:
    """OBIS code → value text of the single-value lines."""
    found = {}
    for line in telegram.split("\r\n"):
        code, paren, rest = line.partition("(")
        if paren and rest.count("(") == 0:
            found[code] = rest.rstrip(")").split("*")[0]
    return found


@pytest.mark.parametrize(
    ("version", "crc"),
    [
        pytest.param("4", 0x6796, id="v4-upstream-crc-from-a-real-meter"),
        pytest.param("5", 0x6EEE, id="v5-literal-backslash"),
    ],
)
def test_crc16_matches_the_templates(version: str, crc: int) -> None:
    text = verbatim(version)
    assert crc16_arc(text[: text.index("!") + 1].encode("ascii")) == crc
    assert TelegramParser.crc16(text[: text.index("!") + 1]) == crc


def test_upstream_v5_crc_covers_a_0x02_byte_not_a_backslash() -> None:
    text = verbatim("5").replace("\\2", "\x02")
    assert crc16_arc(text[: text.index("!") + 1].encode("ascii")) == 0x87B3


@pytest.mark.parametrize("version", VERSIONS)
def test_initial_state_renders_the_template_verbatim(version: str) -> None:
    rendered = render_telegram(version, initial_state(version), TEMPLATE_TIMES[version])
    assert rendered == verbatim(version)


@pytest.mark.parametrize("version", VERSIONS)
def test_dsmr_parser_accepts_what_the_meter_renders(version: str) -> None:
    state = initial_state(version)
    when = datetime(2026, 7, 1, 12, 0, 0, tzinfo=UTC)
    telegram = TelegramParser(SPECIFICATIONS[version]).parse(
        render_telegram(version, state, when), throw_ex=True
    )
    assert telegram.ELECTRICITY_USED_TARIFF_1.value == state.energy[0]
    if version != "2.2":
        assert telegram.P1_MESSAGE_TIMESTAMP.value == when


@pytest.mark.parametrize("version", ["4", "5"])
def test_a_corrupted_crc_is_refused_by_dsmr_parser(version: str) -> None:
    text = render_telegram(version, initial_state(version), datetime.now(UTC), corrupt_crc=True)
    with pytest.raises(InvalidChecksumError):
        TelegramParser.validate_checksum(text)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        pytest.param(datetime(2017, 1, 2, 18, 20, 2, tzinfo=UTC), "170102192002W", id="winter"),
        pytest.param(datetime(2026, 7, 1, 10, 0, 0, tzinfo=UTC), "260701120000S", id="summer"),
        pytest.param(datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "261025023000S", id="fold-dst"),
        pytest.param(datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "261025023000W", id="fold-std"),
    ],
)
def test_dsmr_timestamp_is_dutch_local_time_with_dst_flag(moment: datetime, expected: str) -> None:
    assert dsmr_timestamp(moment) == expected


def test_energy_grows_with_power_and_telegrams_reach_the_pty() -> None:
    # 90 kW: enough for the 1 Wh register resolution to move within a few short ticks.
    with P1Meter("5", interval=UNIT) as meter:
        meter.set_power(Decimal("30"), Decimal("30.5"), Decimal("29.5"))
        with serial.Serial(meter.device, 115200, timeout=DEADLINE) as port:
            first = values(read_telegram(port))
            for _ in range(3):
                last = values(read_telegram(port))
    assert first["1-0:21.7.0"] == "30.000"
    assert first["1-0:41.7.0"] == "30.500"
    assert first["1-0:1.7.0"] == "90.000"
    assert first["1-0:31.7.0"] == "130.43"  # 30000 W / 230.0 V
    assert first["1-0:71.7.0"] == "128.82"  # 29500 W / 229.0 V
    assert Decimal(last["1-0:1.8.2"]) > Decimal(first["1-0:1.8.2"])  # tariff 2 is active
    assert last["1-0:1.8.1"] == first["1-0:1.8.1"]


def test_energy_register_counts_exactly() -> None:
    meter = P1Meter("2.2", interval=UNIT)
    try:
        before = meter.state
        meter.set_power(Decimal("3.6"), Decimal(0), Decimal(0))
        meter.start()
        meter.wait_written(3, DEADLINE)
    finally:
        meter.stop()
    per_tick = Decimal("3.6") * Decimal(str(UNIT)) / 3600
    ticks = (meter.state.energy[0] - before.energy[0]) / per_tick
    assert ticks == ticks.to_integral_value()
    assert ticks >= 3


def test_corrupt_next_crc_spoils_exactly_one_telegram() -> None:
    def crc_ok(port: serial.Serial) -> bool:
        try:
            TelegramParser.validate_checksum(read_telegram(port))
        except InvalidChecksumError:
            return False
        return True

    with (
        P1Meter("4", interval=UNIT) as meter,
        serial.Serial(meter.device, 115200, timeout=DEADLINE) as port,
    ):
        read_telegram(port)
        meter.corrupt_next_crc()
        good_before = 0
        while crc_ok(port):  # those already on the wire when we asked
            good_before += 1
            assert good_before < 20, "no corrupted telegram came"
        assert [crc_ok(port), crc_ok(port)] == [True, True]


def test_pause_stops_the_line_and_resume_restarts_it() -> None:
    with P1Meter("5", interval=UNIT) as meter:
        meter.wait_written(1, DEADLINE)
        meter.pause()
        paused_at = meter.written
        with pytest.raises(TimeoutError):
            meter.wait_written(paused_at + 1, 4 * UNIT)  # a negative: wait several intervals
        meter.resume()
        meter.wait_written(paused_at + 1, DEADLINE)


def test_controls_refuse_what_the_meter_cannot_do() -> None:
    meter = P1Meter("2.2", interval=UNIT)
    try:
        with pytest.raises(ValueError, match="no CRC"):
            meter.corrupt_next_crc()
        with pytest.raises(ValueError, match="does not fit"):
            meter.set_power(Decimal("99999"), Decimal(0), Decimal(0))
        with pytest.raises(ValueError, match=">= 0"):
            meter.set_power(Decimal(-1), Decimal(0), Decimal(0))
    finally:
        meter.stop()
    with pytest.raises(ValueError, match="not simulated"):
        P1Meter("3")


def test_entry_point_prints_the_pty_and_writes_telegrams() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "hil.p1_meter", "--version", "4", "--interval", str(UNIT)],
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            device = process.stdout.readline().strip()
            with serial.Serial(device, 115200, timeout=DEADLINE) as port:
                TelegramParser.validate_checksum(read_telegram(port))
        finally:
            process.terminate()
        assert process.wait(timeout=DEADLINE) == 0
