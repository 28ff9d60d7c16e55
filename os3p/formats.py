"""The OS³P `date-time` format, shared by the schema validator and the typed messages.

The schemas declare `"format": "date-time"` (JSON Schema draft-04 §7.3.1: RFC 3339
`date-time`), but every date-time in the spec's own examples except those copied from
OCPP omits the UTC offset (OS³P 0.4 §7.4.2 `"at": "2015-07-07T00:00:00"`, §7.10.3
`validFrom`/`validTo`). Rejecting the spec's examples would make us incompatible with
stations built from them, so our format is RFC 3339 `date-time` whose offset may be
omitted (docs/spec-errata.md, "date-time"):

- a value without an offset is read as UTC where it denotes an instant;
- where the spec says only the date part counts (§7.4 `at`, §7.10.1 `validFrom`,
  `validTo`), the date is taken as written, before any conversion.

`parse_date_time` therefore keeps the offset it was given rather than converting to UTC:
converting `2015-07-07T00:00:00+02:00` to UTC would move its date part to the 6th.

The pattern is the one place the syntax is defined; the validator hands it to
fastjsonschema as the `date-time` format, the tests to jsonschema's FormatChecker, and
`parse_date_time` uses it too, so the three cannot disagree on what is well-formed.
Calendar validity (February 30th, hour 24) is beyond a regular expression: the pattern
bounds each field, `parse_date_time` rejects the rest. Leap seconds (`:60`, allowed by
RFC 3339) are rejected: Python's `datetime` cannot hold them and no OS³P field needs one.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

__all__ = ["DATE_TIME_PATTERN", "parse_date_time"]

# RFC 3339 §5.6 `date-time` with `time-offset` optional. §5.6 NOTE allows lower-case `t`
# and `z`; so do we, since we promise RFC 3339. The pattern is for Python's `re` (the
# validator applies it with `re.search`): it ends in `\Z` because `$` would also match
# before a trailing newline.
DATE_TIME_PATTERN: str = (
    r"^(?P<year>[0-9]{4})-(?P<month>0[1-9]|1[0-2])-(?P<day>0[1-9]|[12][0-9]|3[01])"
    r"[Tt](?P<hour>[01][0-9]|2[0-3]):(?P<minute>[0-5][0-9]):(?P<second>[0-5][0-9])"
    r"(?:\.(?P<fraction>[0-9]+))?"
    r"(?P<offset>[Zz]|(?P<sign>[+-])(?P<off_hour>[01][0-9]|2[0-3]):(?P<off_minute>[0-5][0-9]))?\Z"
)

_DATE_TIME = re.compile(DATE_TIME_PATTERN)


def parse_date_time(s: str) -> datetime:
    """Parse an OS³P date-time into an aware `datetime`, keeping the offset it carries.

    An omitted offset means UTC (see the module docstring for why it is allowed at all).
    Fractions finer than a microsecond are rounded to a microsecond the way msgspec does
    when it decodes the same string, so both decoding paths yield the same value.

    Raises `ValueError` for anything the pattern or the calendar rejects.
    """
    match = _DATE_TIME.fullmatch(s)
    if match is None:
        raise ValueError(f"not an OS³P date-time (RFC 3339, offset optional): {s!r}")
    tz = UTC
    if match["sign"] is not None:
        offset = timedelta(hours=int(match["off_hour"]), minutes=int(match["off_minute"]))
        tz = timezone(-offset if match["sign"] == "-" else offset)
    whole = datetime(
        int(match["year"]),
        int(match["month"]),
        int(match["day"]),
        int(match["hour"]),
        int(match["minute"]),
        int(match["second"]),
        tzinfo=tz,
    )
    fraction = match["fraction"]
    if fraction is None:
        return whole
    # Half-up on the seventh digit, exactly as msgspec rounds (checked by the tests).
    digits = fraction[:7].ljust(7, "0")
    microseconds = int(digits[:6]) + (digits[6] >= "5")
    return whole + timedelta(microseconds=microseconds)
