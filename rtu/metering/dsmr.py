"""DSMR P1 telegrams in, OS³P samples out: the pure core of the P1 driver.

No I/O and no clock (STYLE.md practice 1): `TelegramDecoder.feed` takes the bytes
the serial port delivered and returns, in order, one `Reading` per good telegram
and one `Rejected` per bad one. Peer input never raises out of it: a meter (or a
noisy line) cannot crash the driver, only move its counters.

Splitting uses dsmr-parser's `TelegramBuffer`, parsing its `TelegramParser`
with the CRC16 checked for DSMR 4 and 5 (DSMR 2.2 and 3 telegrams carry none).
Two things are ours:

- The parser gets a *narrowed* specification: only the lines in `MAPPING` (and
  the timestamp). Lines we do not read cannot reject a telegram, regexes we do
  not need cost nothing, and dsmr-parser's `ProfileGenericParser` (the 99.97.0
  power-failure log) is never run: it extends its shared parser list on every
  parse (dsmr-parser 1.11.2), a slow leak in a daemon that parses once a second.
- `TelegramBuffer` keeps everything until a telegram completes: on a line that
  never delivers one (wrong baud rate, a foreign device) it would grow without
  bound. We start afresh after `max_pending` characters without a telegram and
  count that as a parse error.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, Literal

from rtu.metering.model import Sample

__all__ = [
    "LOCATION",
    "MAPPING",
    "Decoded",
    "DsmrVersion",
    "Quantity",
    "Reading",
    "Rejected",
    "TelegramDecoder",
    "telegram_interval",
]

LOCATION: Final = "P1Meter"  # OS³P §6.5: the location of every streetlight-supply quantity


class DsmrVersion(enum.StrEnum):
    V2_2 = "2.2"
    V3 = "3"
    V4 = "4"
    V5 = "5"

    @property
    def has_crc(self) -> bool:
        return self in (DsmrVersion.V4, DsmrVersion.V5)


@dataclasses.dataclass(frozen=True, slots=True)
class Quantity:
    """One OS³P measurand and the telegram lines it is read from."""

    measurand: str  # OS³P §6.5 wire name
    unit: str  # OS³P unit; also the unit the DSMR line must carry (checked)
    obis: tuple[str, ...]  # the OBIS codes whose values are summed
    required: bool = False  # a telegram without it is rejected


# The mapping, OS³P 0.4 §6.5 rows with location "P1Meter" (plus voltage):
#
#   OS³P measurand                 unit  DSMR line(s)               DSMR versions
#   Energy.Active.Import.Register  kWh   1-0:1.8.1 + 1-0:1.8.2      all  (required)
#   Power.Active.Import            kW    1-0:1.7.0                  all  (required)
#   ActivePower.L1 / L2 / L3       kW    1-0:21.7.0 / 41.7.0 / 61.7.0  4, 5
#   Current.L1 / L2 / L3           A     1-0:31.7.0 / 51.7.0 / 71.7.0  4, 5
#   Voltage.L1N / L2N / L3N        V     1-0:32.7.0 / 52.7.0 / 72.7.0  5
#
# 1.8.x is energy delivered *to* the client (the streetlights), tariff 1 and 2;
# 2.8.x, energy the client delivered back, has no P1Meter row. The spec's table
# writes the current unit "Amp" but its schema only allows "A": we send "A".
# Phase lines are optional (a single-phase meter has no L2/L3 lines).
MAPPING: Final[tuple[Quantity, ...]] = (
    Quantity("Energy.Active.Import.Register", "kWh", ("1-0:1.8.1", "1-0:1.8.2"), required=True),
    Quantity("Power.Active.Import", "kW", ("1-0:1.7.0",), required=True),
    Quantity("ActivePower.L1", "kW", ("1-0:21.7.0",)),
    Quantity("ActivePower.L2", "kW", ("1-0:41.7.0",)),
    Quantity("ActivePower.L3", "kW", ("1-0:61.7.0",)),
    Quantity("Current.L1", "A", ("1-0:31.7.0",)),
    Quantity("Current.L2", "A", ("1-0:51.7.0",)),
    Quantity("Current.L3", "A", ("1-0:71.7.0",)),
    Quantity("Voltage.L1N", "V", ("1-0:32.7.0",)),
    Quantity("Voltage.L2N", "V", ("1-0:52.7.0",)),
    Quantity("Voltage.L3N", "V", ("1-0:72.7.0",)),
)

_TIMESTAMP: Final = "0-0:1.0.0"
# dsmr-parser (with the DLMS stack it pulls in) is imported on first use, by a
# station that has a P1 port: it is a third of an idle daemon's memory otherwise.
_LINES: Final = (
    (_TIMESTAMP, "P1_MESSAGE_TIMESTAMP"),
    ("1-0:1.8.1", "ELECTRICITY_USED_TARIFF_1"),
    ("1-0:1.8.2", "ELECTRICITY_USED_TARIFF_2"),
    ("1-0:1.7.0", "CURRENT_ELECTRICITY_USAGE"),
    ("1-0:21.7.0", "INSTANTANEOUS_ACTIVE_POWER_L1_POSITIVE"),
    ("1-0:41.7.0", "INSTANTANEOUS_ACTIVE_POWER_L2_POSITIVE"),
    ("1-0:61.7.0", "INSTANTANEOUS_ACTIVE_POWER_L3_POSITIVE"),
    ("1-0:31.7.0", "INSTANTANEOUS_CURRENT_L1"),
    ("1-0:51.7.0", "INSTANTANEOUS_CURRENT_L2"),
    ("1-0:71.7.0", "INSTANTANEOUS_CURRENT_L3"),
    ("1-0:32.7.0", "INSTANTANEOUS_VOLTAGE_L1"),
    ("1-0:52.7.0", "INSTANTANEOUS_VOLTAGE_L2"),
    ("1-0:72.7.0", "INSTANTANEOUS_VOLTAGE_L3"),
)
_SPECIFICATION_NAMES: Final[Mapping[DsmrVersion, str]] = {
    DsmrVersion.V2_2: "V2_2",
    DsmrVersion.V3: "V3",
    DsmrVersion.V4: "V4",
    DsmrVersion.V5: "V5",
}
# Far above the largest DSMR telegram (about 1 kB; a 1024-character text message
# at most doubles it), far below anything that matters for memory.
DEFAULT_MAX_PENDING: Final = 16 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class Reading:
    """The quantities of one good telegram."""

    meter_time: datetime | None  # 0-0:1.0.0 as aware UTC; None for DSMR 2.2 and 3
    values: tuple[tuple[Quantity, Decimal], ...]  # exactly as in the telegram (sums exact)

    def samples(self, received_at: datetime) -> list[Sample]:
        """OS³P samples, stamped with the meter's time or, lacking one, `received_at`."""
        timestamp = self.meter_time or received_at
        return [
            Sample(quantity.measurand, value, quantity.unit, timestamp, LOCATION)
            for quantity, value in self.values
        ]


@dataclasses.dataclass(frozen=True, slots=True)
class Rejected:
    """A telegram (or a stretch of line noise) that yields no reading."""

    kind: Literal["crc", "parse"]
    reason: str


Decoded = Reading | Rejected


def _narrowed(version: DsmrVersion) -> tuple[dict[str, Any], dict[str, str]]:
    """dsmr-parser's specification for `version` cut down to the lines we read,
    and the OBIS code → dsmr-parser value name of each line it still parses."""
    from dsmr_parser import obis_references, telegram_specifications

    full: dict[str, Any] = getattr(telegram_specifications, _SPECIFICATION_NAMES[version])
    # OBIS code → dsmr-parser's line signature for it, inverted.
    wanted = {getattr(obis_references, name): code for code, name in _LINES}
    objects = [entry for entry in full["objects"] if entry["obis_reference"] in wanted]
    names = {wanted[entry["obis_reference"]]: entry["value_name"] for entry in objects}
    return {**full, "objects": objects}, names


class TelegramDecoder:
    """Bytes from a P1 port in, `Reading`s and `Rejected`s out, in line order."""

    def __init__(self, version: DsmrVersion, *, max_pending: int = DEFAULT_MAX_PENDING) -> None:
        from dsmr_parser.clients.telegram_buffer import TelegramBuffer
        from dsmr_parser.parsers import TelegramParser

        self._new_buffer = TelegramBuffer
        self.version = version
        specification, self._names = _narrowed(version)
        # Our own check (throw_ex) rejects a telegram with a malformed line we read.
        self._parser = TelegramParser(specification, apply_checksum_validation=version.has_crc)
        self._max_pending = max_pending
        self._buffer = TelegramBuffer()
        # Upper bound on what the buffer holds: what came in since it last gave a
        # telegram (after one, only the rest of that chunk can remain).
        self._pending = 0

    def feed(self, data: bytes) -> list[Decoded]:
        # Latin-1 maps every byte to one character, so the CRC (computed over
        # characters) covers exactly the bytes on the wire and no byte raises.
        text = data.decode("latin-1")
        self._buffer.append(text)
        self._pending += len(text)
        telegrams = list(self._buffer.get_all())
        if telegrams:
            self._pending = len(text)
        decoded: list[Decoded] = [self.decode(telegram) for telegram in telegrams]
        if self._pending > self._max_pending:
            self._buffer = self._new_buffer()
            self._pending = 0
            decoded.append(Rejected("parse", f"no telegram in {self._max_pending} characters"))
        return decoded

    def decode(self, telegram: str) -> Decoded:
        """One whole telegram, from '/' to the end of its '!' line."""
        if not telegram.isascii():  # IEC 62056-21 telegrams are 7-bit ISO 646 text
            return Rejected("parse", "non-ASCII character in telegram")
        from dsmr_parser.exceptions import InvalidChecksumError, ParseError

        try:
            parsed = self._parser.parse(telegram, throw_ex=True)
        except InvalidChecksumError as exc:
            return Rejected("crc", str(exc))
        except ParseError as exc:
            return Rejected("parse", str(exc))
        except Exception as exc:
            # dsmr-parser lets the value types' own errors through on malformed
            # values (decimal.InvalidOperation for "1-0:1.8.1(1x*kWh)", ValueError,
            # IndexError): they are the peer's fault all the same.
            return Rejected("parse", f"{type(exc).__name__}: {exc}")
        return self._reading(parsed)

    def _reading(self, parsed: Any) -> Decoded:
        meter_time: datetime | None = None
        if self.version.has_crc:
            stamp = self._line(parsed, _TIMESTAMP)
            if stamp is None or not isinstance(stamp.value, datetime):
                return Rejected("parse", f"no valid {_TIMESTAMP} timestamp")
            meter_time = stamp.value
        values: list[tuple[Quantity, Decimal]] = []
        for quantity in MAPPING:
            lines = [self._line(parsed, code) for code in quantity.obis]
            present = [line for line in lines if line is not None]
            if len(present) < len(lines):
                if quantity.required:
                    missing = [
                        code
                        for code, line in zip(quantity.obis, lines, strict=True)
                        if line is None
                    ]
                    return Rejected("parse", f"telegram lacks {', '.join(missing)}")
                continue
            for code, line in zip(quantity.obis, present, strict=True):
                if not isinstance(line.value, Decimal) or line.unit != quantity.unit:
                    return Rejected(
                        "parse", f"{code} is {line.value}*{line.unit}, expected {quantity.unit}"
                    )
            values.append((quantity, sum((line.value for line in present), Decimal(0))))
        return Reading(meter_time, tuple(values))

    def _line(self, parsed: Any, code: str) -> Any:
        name = self._names.get(code)
        return None if name is None else getattr(parsed, name, None)


def telegram_interval(version: DsmrVersion) -> float:
    """Seconds between telegrams: DSMR 5 sends every second, earlier versions every 10 s."""
    return 1.0 if version is DsmrVersion.V5 else 10.0
