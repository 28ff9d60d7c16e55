"""Periodic meter reads from stored samples: which instants, which values, which gaps.

Pure (no I/O, no clock): `periodic_reads(samples, kind, since, until, zone=, series=)`.
OSGP GetPeriodicMeterReads semantics, on the registers a station reports:

- DAILY: the register value at each local midnight in the period;
- MONTHLY: the value at local 00:00 on the first of each month;
- INTERVAL: the 15-minute profile — the value at each quarter hour, counted in
  elapsed seconds from local midnight, exactly as the RTU aligns its
  `Sample.Clock` readings (docs/metering.md): 92 quarters on the day the clocks go
  forward, 100 on the day they go back, none skipped or doubled.

Every kind is "the register's value at instant t"; the kinds differ only in their
instants (`log_times`). A value counts for t only when a sample is stamped exactly
t: the RTU stamps clock-aligned readings with the boundary itself, and a reading
taken minutes later is not the value at midnight. Several samples at t (different
contexts) prefer `Sample.Clock`, then `Sample.Periodic`, `Trigger`, others.

Time zone: the station's (`timezone` of its shipment record) when the inventory
knows it, else UTC; the result names the zone used. A day starts at its first
instant: where midnight does not exist (a DST jump at 00:00), 01:00 — the same
rule as the RTU's `sampling._local_midnight`.

A **gap** is an instant at which at least one wanted series (measurand, location)
has no sample; `meterreads` fetches those with GetFile MeterValueHistory and
computes again. The period is half-open, `since <= t < until`.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Final

__all__ = [
    "INTERVAL",
    "MAX_LOG_TIMES",
    "Gap",
    "PeriodError",
    "PeriodicReads",
    "Read",
    "ReadKind",
    "Sample",
    "Series",
    "log_times",
    "periodic_reads",
]

INTERVAL: Final = timedelta(minutes=15)
# A bound on one answer: 10 000 quarter hours are 104 days of INTERVAL reads.
MAX_LOG_TIMES: Final = 10_000
_CONTEXT_PREFERENCE: Final = ("Sample.Clock", "Sample.Periodic", "Trigger")


class ReadKind(enum.StrEnum):
    DAILY = "DAILY"
    MONTHLY = "MONTHLY"
    INTERVAL = "INTERVAL"


class PeriodError(ValueError):
    """The period is empty, naive or too long for one answer."""


@dataclasses.dataclass(frozen=True, order=True)
class Series:
    """One register as the station reports it: measurand and location ("-" for none)."""

    measurand: str
    location: str


@dataclasses.dataclass(frozen=True)
class Sample:
    timestamp: datetime
    series: Series
    value: str
    unit: str
    context: str


@dataclasses.dataclass(frozen=True)
class Read:
    """The values at one instant; a series without a value there is absent."""

    log_time: datetime
    values: Mapping[Series, Sample]


@dataclasses.dataclass(frozen=True)
class Gap:
    """An instant at which wanted series have no value."""

    log_time: datetime
    missing: tuple[Series, ...]


@dataclasses.dataclass(frozen=True)
class PeriodicReads:
    kind: ReadKind
    series: tuple[Series, ...]
    reads: tuple[Read, ...]
    gaps: tuple[Gap, ...]


def _midnight(day: date, zone: tzinfo) -> datetime:
    # fold=0 on a non-existent local midnight gives the first instant of the day.
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _days(since: datetime, until: datetime, zone: tzinfo) -> Iterator[date]:
    day = since.astimezone(zone).date()
    while _midnight(day, zone) < until:
        yield day
        day += timedelta(days=1)


def _instants(kind: ReadKind, since: datetime, until: datetime, zone: tzinfo) -> Iterator[datetime]:
    if kind is ReadKind.DAILY:
        yield from (_midnight(day, zone) for day in _days(since, until, zone))
    elif kind is ReadKind.MONTHLY:
        first = since.astimezone(zone).date().replace(day=1)
        while (moment := _midnight(first, zone)) < until:
            yield moment
            first = (first + timedelta(days=32)).replace(day=1)
    else:
        for day in _days(since, until, zone):
            start, end = _midnight(day, zone), _midnight(day + timedelta(days=1), zone)
            moment = start
            while moment < end:
                yield moment
                moment += INTERVAL


def log_times(kind: ReadKind, since: datetime, until: datetime, zone: tzinfo) -> list[datetime]:
    """The instants of `kind` in [since, until), aware UTC, oldest first."""
    if since.tzinfo is None or until.tzinfo is None:
        raise PeriodError("the period's ends must carry a time zone")
    if until <= since:
        raise PeriodError("the period is empty: `to` must be after `from`")
    times: list[datetime] = []
    for moment in _instants(kind, since.astimezone(UTC), until.astimezone(UTC), zone):
        if since <= moment < until:
            times.append(moment)
            if len(times) > MAX_LOG_TIMES:
                raise PeriodError(f"more than {MAX_LOG_TIMES} {kind} reads: ask a shorter period")
    return times


def _rank(context: str) -> int:
    try:
        return _CONTEXT_PREFERENCE.index(context)
    except ValueError:
        return len(_CONTEXT_PREFERENCE)


def periodic_reads(
    samples: Iterable[Sample],
    kind: ReadKind,
    since: datetime,
    until: datetime,
    *,
    zone: tzinfo,
    series: Sequence[Series] | None = None,
) -> PeriodicReads:
    """The reads of `kind` in the period from `samples`.

    `series`: the registers wanted (and whose absence makes a gap); None: every
    series that has a sample at one of the instants.
    """
    times = log_times(kind, since, until, zone)
    wanted_times = set(times)
    best: dict[tuple[datetime, Series], Sample] = {}
    for sample in samples:
        moment = sample.timestamp.astimezone(UTC)
        if moment not in wanted_times:
            continue
        key = (moment, sample.series)
        current = best.get(key)
        if current is None or _rank(sample.context) < _rank(current.context):
            best[key] = sample
    chosen = tuple(series) if series is not None else tuple(sorted({s for _, s in best}))
    reads: list[Read] = []
    gaps: list[Gap] = []
    for moment in times:
        values = {s: best[moment, s] for s in chosen if (moment, s) in best}
        if values:
            reads.append(Read(moment, values))
        if len(values) < len(chosen):
            gaps.append(Gap(moment, tuple(s for s in chosen if s not in values)))
    return PeriodicReads(kind, chosen, tuple(reads), tuple(gaps))
