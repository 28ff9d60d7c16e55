"""Register maps: decoding every type and word order, and planning the reads."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtu.metering.registers import (
    DEFAULT_POINTS,
    MAX_REGISTERS_PER_READ,
    DataType,
    Point,
    WordOrder,
    decode,
    encode,
    plan_reads,
    scaled,
)


@pytest.mark.parametrize(
    ("words", "type_", "order", "expected"),
    [
        pytest.param([0x0901], "uint16", "big", 2305, id="uint16"),
        pytest.param([0xFFFE], "int16", "big", -2, id="int16-negative"),
        pytest.param([0xFFFE], "uint16", "big", 65534, id="uint16-high"),
        pytest.param([0x0001, 0x86A0], "uint32", "big", 100000, id="uint32-high-word-first"),
        pytest.param([0x86A0, 0x0001], "uint32", "little", 100000, id="uint32-word-swapped"),
        pytest.param([0xFFFF, 0xFFFF], "int32", "big", -1, id="int32-minus-one"),
        pytest.param([0x4366, 0x6666], "float32", "big", 230.39999389648438, id="float32"),
        pytest.param(
            [0x6666, 0x4366], "float32", "little", 230.39999389648438, id="float32-swapped"
        ),
    ],
)
def test_decode(words: list[int], type_: DataType, order: WordOrder, expected: float) -> None:
    assert decode(words, type_, order) == expected


def test_decode_checks_the_word_count() -> None:
    with pytest.raises(ValueError, match="needs 2"):
        decode([1], "uint32")


@given(st.integers(-(2**31), 2**31 - 1), st.sampled_from(["big", "little"]))
def test_int32_round_trip(value: int, order: WordOrder) -> None:
    assert decode(encode(value, "int32", order), "int32", order) == value


@pytest.mark.parametrize(
    ("point", "words", "expected"),
    [
        pytest.param(
            Point("Voltage.L1N", 0, "uint32", "V", Decimal("0.1")),
            [0, 2304],
            Decimal("230.4"),
            id="scale-0.1",
        ),
        pytest.param(
            Point("PowerFactor.Sum", 0, "int16", None, Decimal("0.001")),
            [0xFC2E],
            Decimal("-0.978"),
            id="pf-negative",
        ),
        pytest.param(
            Point("Frequency", 0, "float32", "Hz"),
            encode(49.98, "float32"),
            Decimal("49.98"),
            id="float-shortest-repr",
        ),
        pytest.param(
            Point("ActivePower.Sum", 0, "int32", "W", Decimal(10)),
            [0xFFFF, 0xFFF6],
            Decimal(-100),
            id="scale-10",
        ),
    ],
)
def test_scaled(point: Point, words: list[int], expected: Decimal) -> None:
    assert scaled(point, words) == expected


def test_points_are_checked_against_the_spec_enums() -> None:
    with pytest.raises(ValueError, match=r"Voltage\.L4N"):
        Point("Voltage.L4N", 0)
    with pytest.raises(ValueError, match="Volt"):
        Point("Voltage.L1N", 0, unit="Volt")
    with pytest.raises(ValueError, match="out of range"):
        Point("Frequency", 0xFFFF, "uint32")


def test_plan_groups_contiguous_points_per_table() -> None:
    blocks = plan_reads(DEFAULT_POINTS)
    assert [(b.table, b.start, b.count) for b in blocks] == [("holding", 100, 2), ("input", 0, 40)]
    assert sum(len(b.points) for b in blocks) == len(DEFAULT_POINTS)


def test_plan_splits_on_large_holes_and_the_protocol_limit() -> None:
    points = [Point("Frequency", 0), Point("THDv.L1N", 20), Point("THDv.L2N", 200, "uint32")]
    points.append(Point("THDv.L3N", 200 + MAX_REGISTERS_PER_READ))
    blocks = plan_reads(points, max_hole=8)
    assert [(b.start, b.count) for b in blocks] == [(0, 1), (20, 1), (200, 2), (325, 1)]
    near = plan_reads([Point("Frequency", 0), Point("THDv.L1N", 5)], max_hole=8)
    assert [(b.start, b.count) for b in near] == [(0, 6)]
    assert near[0].words_of(near[0].points[1], list(range(6))) == [5]
