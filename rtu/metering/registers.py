"""Modbus register maps of power analysers and I/O modules: the pure core.

No I/O (STYLE.md practice 1): a `Point` says where one quantity lives and how
to turn its 16-bit words into an OS³P sample; `plan_reads` groups points into
as few Modbus reads as the protocol allows; `decode` turns words into a value.

Word order: Modbus itself only fixes the byte order inside a register (big
endian). A 32-bit quantity spans two registers and vendors disagree on which
comes first: "big" = high word first (Modicon convention, most analysers),
"little" = low word first (word-swapped).

Scaling: value = raw × scale, computed in Decimal (`scale` is given as a
decimal string in the config, e.g. "0.1"), so 2301 × 0.1 is exactly 230.1.
float32 registers are converted through the shortest decimal that is the same
float32, which is what the device meant (49.98, not 49.97999954223633).
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Final, Literal

from os3p.messages import Location, Measurand, UnitOfMeasure

__all__ = [
    "DEFAULT_POINTS",
    "MAX_REGISTERS_PER_READ",
    "WORDS",
    "Block",
    "DataType",
    "Point",
    "Table",
    "WordOrder",
    "decode",
    "encode",
    "plan_reads",
    "scaled",
]

DataType = Literal["int16", "uint16", "int32", "uint32", "float32"]
WordOrder = Literal["big", "little"]
Table = Literal["holding", "input"]

WORDS: Final[Mapping[DataType, int]] = {
    "int16": 1,
    "uint16": 1,
    "int32": 2,
    "uint32": 2,
    "float32": 2,
}
_FORMATS: Final[Mapping[DataType, str]] = {
    "int16": ">h",
    "uint16": ">H",
    "int32": ">i",
    "uint32": ">I",
    "float32": ">f",
}
# Modbus Application Protocol V1.1b3 §6.3/§6.4: at most 125 registers per read.
MAX_REGISTERS_PER_READ: Final = 125


@dataclasses.dataclass(frozen=True, slots=True)
class Point:
    """One quantity of the register map."""

    measurand: str  # OS³P wire name (checked against the enum)
    address: int  # 0-based register address (protocol address, not 3xxxx/4xxxx)
    type: DataType = "uint16"
    unit: str | None = None  # OS³P unit; None for unitless (power factor)
    scale: Decimal = Decimal(1)
    table: Table = "holding"
    word_order: WordOrder = "big"
    location: str | None = None

    def __post_init__(self) -> None:
        Measurand(self.measurand)  # ValueError for a name OS³P does not have
        if self.unit is not None:
            UnitOfMeasure(self.unit)
        if self.location is not None:
            Location(self.location)
        if not 0 <= self.address <= 0xFFFF - WORDS[self.type] + 1:
            raise ValueError(f"register address {self.address} out of range")

    @property
    def words(self) -> int:
        return WORDS[self.type]


def decode(words: Sequence[int], type_: DataType, word_order: WordOrder = "big") -> int | float:
    """The raw number held by `words` (each 0..65535)."""
    if len(words) != WORDS[type_]:
        raise ValueError(f"{type_} needs {WORDS[type_]} register(s), got {len(words)}")
    ordered = list(words) if word_order == "big" else list(reversed(words))
    raw = b"".join(word.to_bytes(2, "big") for word in ordered)
    value: int | float = struct.unpack(_FORMATS[type_], raw)[0]
    return value


def encode(value: int | float, type_: DataType, word_order: WordOrder = "big") -> list[int]:
    """The words a device would hold for `value` (the inverse of `decode`; simulators)."""
    raw = struct.pack(_FORMATS[type_], value)
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    return words if word_order == "big" else list(reversed(words))


def scaled(point: Point, words: Sequence[int]) -> Decimal:
    """The point's value in its unit."""
    raw = decode(words, point.type, point.word_order)
    number = Decimal(_float32_text(raw)) if isinstance(raw, float) else Decimal(raw)
    return number * point.scale


def _float32_text(value: float) -> str:
    """The shortest decimal that reads back as the same float32 (at most 9 digits do)."""
    stored = struct.pack(">f", value)
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if struct.pack(">f", float(text)) == stored:
            return text
    return repr(value)


@dataclasses.dataclass(frozen=True, slots=True)
class Block:
    """One Modbus read: `count` registers of `table` from `start`, serving `points`."""

    table: Table
    start: int
    count: int
    points: tuple[Point, ...]

    def words_of(self, point: Point, registers: Sequence[int]) -> Sequence[int]:
        offset = point.address - self.start
        return registers[offset : offset + point.words]


def plan_reads(points: Sequence[Point], *, max_hole: int = 8) -> list[Block]:
    """Group points into reads: same table, holes of at most `max_hole` unused
    registers bridged (one round trip costs more than a few extra words), never
    more than 125 registers at once."""
    blocks: list[Block] = []
    for table in ("holding", "input"):
        ordered = sorted((p for p in points if p.table == table), key=lambda p: p.address)
        current: list[Point] = []
        start = end = 0
        for point in ordered:
            point_end = point.address + point.words
            if current and (
                point.address - end > max_hole or point_end - start > MAX_REGISTERS_PER_READ
            ):
                blocks.append(Block(table, start, end - start, tuple(current)))
                current = []
            if not current:
                start, end = point.address, point_end
            current.append(point)
            end = max(end, point_end)
        if current:
            blocks.append(Block(table, start, end - start, tuple(current)))
    return blocks


def _p(
    measurand: str,
    /,
    address: int,
    type_: DataType,
    unit: str | None,
    scale: str,
    *,
    table: Table = "input",
) -> Point:
    return Point(measurand, address, type_, unit, Decimal(scale), table)


# The register map of the station analyser when the config gives none: the
# layout `hil.analyser` serves (input registers for measurements, holding
# registers for the temperature inputs of the I/O module). It follows the
# common pattern of panel analysers: 32-bit values high word first.
DEFAULT_POINTS: Final[tuple[Point, ...]] = (
    _p("Voltage.L1N", 0, "uint32", "V", "0.1"),
    _p("Voltage.L2N", 2, "uint32", "V", "0.1"),
    _p("Voltage.L3N", 4, "uint32", "V", "0.1"),
    _p("Current.L1", 6, "uint32", "A", "0.001"),
    _p("Current.L2", 8, "uint32", "A", "0.001"),
    _p("Current.L3", 10, "uint32", "A", "0.001"),
    _p("Current.N", 12, "uint32", "A", "0.001"),
    _p("ActivePower.L1", 14, "int32", "W", "1"),
    _p("ActivePower.L2", 16, "int32", "W", "1"),
    _p("ActivePower.L3", 18, "int32", "W", "1"),
    _p("ActivePower.Sum", 20, "int32", "W", "1"),
    _p("ReactivePower.L1", 22, "int32", "var", "1"),
    _p("ReactivePower.L2", 24, "int32", "var", "1"),
    _p("ReactivePower.L3", 26, "int32", "var", "1"),
    _p("ReactivePower.Sum", 28, "int32", "var", "1"),
    _p("ApparentPower.Sum", 30, "uint32", "VA", "1"),
    _p("PowerFactor.Sum", 32, "int16", None, "0.001"),
    _p("Frequency", 33, "uint16", "Hz", "0.01"),
    _p("THDv.L1N", 34, "uint16", "%", "0.1"),
    _p("THDv.L2N", 35, "uint16", "%", "0.1"),
    _p("THDv.L3N", 36, "uint16", "%", "0.1"),
    _p("THDc.L1", 37, "uint16", "%", "0.1"),
    _p("THDc.L2", 38, "uint16", "%", "0.1"),
    _p("THDc.L3", 39, "uint16", "%", "0.1"),
    _p("OilTemperature", 100, "int16", "C", "0.1", table="holding"),
    _p("AmbientTemperature", 101, "int16", "C", "0.1", table="holding"),
)
