"""The pure DSMR core: splitting, parsing, mapping, and what it does with noise."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.p1_meter import TEMPLATES, crc16_arc, initial_state, render_telegram
from rtu.metering import dsmr
from rtu.metering.dsmr import DsmrVersion, Reading, Rejected, TelegramDecoder

WHEN = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def verbatim(version: str) -> bytes:
    return ("\r\n".join(TEMPLATES[version]) + "\r\n").encode("ascii")


def measurands(reading: Reading) -> dict[str, tuple[Decimal, str]]:
    return {quantity.measurand: (value, quantity.unit) for quantity, value in reading.values}


def replace_line(telegram: bytes, old: bytes, new: bytes) -> bytes:
    assert old in telegram
    return telegram.replace(old, new)


def test_a_telegram_split_over_many_reads_decodes_once() -> None:
    decoder = TelegramDecoder(DsmrVersion.V5)
    data = verbatim("5")
    decoded = [item for i in range(0, len(data), 7) for item in decoder.feed(data[i : i + 7])]
    assert len(decoded) == 1
    assert isinstance(decoded[0], Reading)
    assert measurands(decoded[0])["Energy.Active.Import.Register"] == (Decimal("6.825"), "kWh")


def test_two_telegrams_in_one_read_decode_in_order() -> None:
    first = render_telegram("4", initial_state("4"), WHEN).encode()
    later = dataclasses.replace(initial_state("4"), total=Decimal("3.333"))
    second = render_telegram("4", later, WHEN).encode()
    decoded = TelegramDecoder(DsmrVersion.V4).feed(first + second)
    powers = [
        measurands(item)["Power.Active.Import"][0] for item in decoded if isinstance(item, Reading)
    ]
    assert powers == [Decimal("2.027"), Decimal("3.333")]


@pytest.mark.parametrize(
    ("version", "mangle", "kind", "reason"),
    [
        pytest.param("5", lambda t: t.replace(b"!6EEE", b"!6EEF"), "crc", "CRC", id="crc"),
        pytest.param("5", lambda t: t.replace(b"!6EEE", b"!"), "parse", "incomplete", id="no-crc"),
        pytest.param(
            "2.2",
            lambda t: replace_line(t, b"1-0:1.7.0(0001.01*kW)", b"1-0:1.7.0(0001.01*W)"),
            "parse",
            "expected kW",
            id="wrong-unit",
        ),
        pytest.param(
            "2.2",
            lambda t: replace_line(t, b"1-0:1.8.2(00001.001*kWh)\r\n", b""),
            "parse",
            "lacks 1-0:1.8.2",
            id="missing-register",
        ),
        pytest.param(
            "2.2",
            lambda t: replace_line(t, b"(00001.001*kWh)", b"(0000x.001*kWh)"),
            "parse",
            "InvalidOperation",
            id="garbled-value",
        ),
        pytest.param(
            "2.2",
            lambda t: replace_line(t, b"MT382", b"MT\xe982"),
            "parse",
            "non-ASCII",
            id="non-ascii",
        ),
    ],
)
def test_bad_telegrams_are_rejected_with_a_reason(
    version: str, mangle: Callable[[bytes], bytes], kind: str, reason: str
) -> None:
    decoded = TelegramDecoder(DsmrVersion(version)).feed(mangle(verbatim(version)))
    assert len(decoded) == 1
    assert isinstance(decoded[0], Rejected)
    assert decoded[0].kind == kind
    assert reason in decoded[0].reason


def test_a_v5_telegram_without_timestamp_is_rejected() -> None:
    telegram = render_telegram("5", initial_state("5"), WHEN)
    stamp = telegram[telegram.index("0-0:1.0.0") :].split("\r\n", 1)[0] + "\r\n"
    body = telegram.replace(stamp, "")
    body = body[: body.index("!") + 1]
    fixed = f"{body}{crc16_arc(body.encode()):04X}\r\n".encode()
    (decoded,) = TelegramDecoder(DsmrVersion.V5).feed(fixed)
    assert decoded == Rejected("parse", "no valid 0-0:1.0.0 timestamp")


def test_single_phase_meter_yields_only_what_it_has() -> None:
    telegram = render_telegram("4", initial_state("4"), WHEN)
    lines = [line for line in telegram.split("\r\n") if not line.startswith(("1-0:51.", "1-0:71."))]
    body = "\r\n".join(lines)
    body = body[: body.index("!") + 1]
    (decoded,) = TelegramDecoder(DsmrVersion.V4).feed(
        f"{body}{crc16_arc(body.encode()):04X}\r\n".encode()
    )
    assert isinstance(decoded, Reading)
    assert "Current.L1" in measurands(decoded)
    assert "Current.L2" not in measurands(decoded)


def test_a_line_that_never_completes_a_telegram_is_bounded_and_recovers() -> None:
    decoder = TelegramDecoder(DsmrVersion.V5, max_pending=4096)
    noise = b"/" + b"x" * 1023  # looks like a telegram start, never ends
    decoded = [item for _ in range(5) for item in decoder.feed(noise)]
    assert decoded == [Rejected("parse", "no telegram in 4096 characters")]
    (reading,) = decoder.feed(verbatim("5"))
    assert isinstance(reading, Reading)


def test_reading_samples_use_meter_time_or_the_receive_time() -> None:
    (v5,) = TelegramDecoder(DsmrVersion.V5).feed(verbatim("5"))
    (v22,) = TelegramDecoder(DsmrVersion.V2_2).feed(verbatim("2.2"))
    assert isinstance(v5, Reading)
    assert isinstance(v22, Reading)
    assert {s.timestamp for s in v5.samples(WHEN)} == {datetime(2017, 1, 2, 18, 20, 2, tzinfo=UTC)}
    assert {s.timestamp for s in v22.samples(WHEN)} == {WHEN}
    assert {s.location for s in v22.samples(WHEN)} == {"P1Meter"}


# No per-example deadline: on a loaded CI machine timing is noise; speed is bench/p1.py's job.
@settings(deadline=None)
@given(st.binary(max_size=3000), st.sampled_from(list(DsmrVersion)))
def test_arbitrary_bytes_never_raise_only_reject(noise: bytes, version: DsmrVersion) -> None:
    decoder = TelegramDecoder(version, max_pending=2048)
    for i in range(0, len(noise), 512):
        for item in decoder.feed(noise[i : i + 512]):
            assert isinstance(item, Reading | Rejected)


# Fragments that look like telegram boundaries: the splitter's hard cases.
BOUNDARY_NOISE = st.lists(
    st.sampled_from([b"/", b"!", b"\r\n", b"\r", b"6EEE", b"!6EEE\r\n", b"/ISk5", b"x", b"\x00"]),
    max_size=30,
).map(b"".join)


@settings(deadline=None)
@given(st.one_of(st.binary(max_size=1000), BOUNDARY_NOISE))
def test_a_good_telegram_after_noise_is_read(noise: bytes) -> None:
    decoder = TelegramDecoder(DsmrVersion.V5)
    decoder.feed(noise)
    decoded = decoder.feed(verbatim("5"))
    assert isinstance(decoded[-1], Reading)


@settings(deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                b"/",
                b"!",
                b"\r\n",
                b"1-0:1.8.1(",
                b"1-0:1.8.2(",
                b"1-0:1.7.0(",
                b"0-0:1.0.0(",
                b"1-0:31.7.0(",
                b"*kWh)",
                b"*kW)",
                b"*A)",
                b"000001.001",
                b"x",
                b"170102192002W)",
                b"6EEE",
                b"\x00",
                b"\xff",
            ]
        ),
        max_size=60,
    )
)
def test_telegram_shaped_noise_never_raises(parts: list[bytes]) -> None:
    # Random bytes rarely get past the splitter; these fragments do, and reach the parser.
    for version in DsmrVersion:
        for item in TelegramDecoder(version).feed(b"".join(parts)):
            assert isinstance(item, Reading | Rejected)


def test_the_core_does_no_io_and_reads_no_clock() -> None:
    source = Path(dsmr.__file__).read_text(encoding="utf-8")
    roots = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    assert roots & {"asyncio", "socket", "serial", "threading", "time", "sqlite3"} == set()
