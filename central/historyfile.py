"""The RTU's GetFile `MeterValueHistory` file, read back into a MeterValues payload.

The format is the one `rtu/files/content.py` writes (docs/metering.md): CSV
(RFC 4180, UTF-8, CRLF line ends), the header row
`timestamp,measurand,value,unit,location,context,source`, rows oldest first,
timestamps UTC ISO 8601 with `Z`, empty `unit` / `location` where the sample has
none, `source` the station's `[[meters]]` name (the central does not store it:
MeterValues do not carry it either).

`history_payload` turns the rows into the payload of one §6.5 MeterValuesRequest
(one `meterValue` per timestamp, the empty fields left out so that the Table 3
defaults apply exactly as for a live MeterValues), which the caller validates
against the OS³P schema before storing — the same gate live values pass. Pure: no
I/O; every problem of the file is reported with its line (`HistoryFileInvalid`).
"""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import UTC, datetime
from typing import Any, Final

__all__ = ["HEADER", "HistoryFileInvalid", "HistoryRow", "history_payload", "parse_history"]

HEADER: Final = ("timestamp", "measurand", "value", "unit", "location", "context", "source")


class HistoryFileInvalid(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems[:10]) + (" ..." if len(problems) > 10 else ""))
        self.problems = problems


@dataclasses.dataclass(frozen=True)
class HistoryRow:
    line: int
    timestamp: datetime
    measurand: str
    value: str
    unit: str
    location: str
    context: str
    source: str


def _timestamp(text: str) -> datetime | None:
    if not text.endswith("Z"):
        return None
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00")
    except ValueError:
        return None
    return moment.astimezone(UTC)


def parse_history(data: bytes) -> list[HistoryRow]:
    """The rows of a MeterValueHistory file; `HistoryFileInvalid` lists every bad line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HistoryFileInvalid([f"not UTF-8 (byte {exc.start})"]) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    problems: list[str] = []
    rows: list[HistoryRow] = []
    try:
        header = next(reader, None)
        if header is None or tuple(header) != HEADER:
            raise HistoryFileInvalid([f"line 1: the header must be {','.join(HEADER)}"])
        line = reader.line_num + 1
        for fields in reader:
            if fields:
                row = _row(line, fields, problems)
                if row is not None:
                    rows.append(row)
            line = reader.line_num + 1
    except csv.Error as exc:
        problems.append(f"line {reader.line_num}: not CSV: {exc}")
    if problems:
        raise HistoryFileInvalid(problems)
    return rows


def _row(line: int, fields: list[str], problems: list[str]) -> HistoryRow | None:
    if len(fields) != len(HEADER):
        problems.append(f"line {line}: {len(fields)} fields, expected {len(HEADER)}")
        return None
    stamp, measurand, value, unit, location, context, source = fields
    moment = _timestamp(stamp)
    if moment is None:
        problems.append(f"line {line}: timestamp: not UTC ISO 8601 with Z: {stamp!r}")
    for name, field in (("measurand", measurand), ("value", value), ("context", context)):
        if not field:
            problems.append(f"line {line}: {name}: empty")
    if moment is None or not (measurand and value and context):
        return None
    return HistoryRow(line, moment, measurand, value, unit, location, context, source)


def history_payload(rows: list[HistoryRow]) -> dict[str, Any]:
    """One MeterValuesRequest payload: a `meterValue` per timestamp, oldest first."""
    by_time: dict[datetime, list[dict[str, str]]] = {}
    for row in rows:
        sample = {"value": row.value, "measurand": row.measurand, "context": row.context}
        if row.unit:
            sample["unit"] = row.unit
        if row.location:
            sample["location"] = row.location
        by_time.setdefault(row.timestamp, []).append(sample)
    return {
        "meterValue": [
            {"timestamp": moment.isoformat().replace("+00:00", "Z"), "sampledValue": samples}
            for moment, samples in sorted(by_time.items())
        ]
    }
