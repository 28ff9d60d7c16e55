"""Periodic reads from stored samples: instants per kind, time zones and DST, gaps."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from central.periodic import (
    INTERVAL,
    MAX_LOG_TIMES,
    Gap,
    PeriodError,
    ReadKind,
    Sample,
    Series,
    log_times,
    periodic_reads,
)

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
IMPORT = Series("RealEnergyConsumed.Sum", "-")
EXPORT = Series("RealEnergyDelivered.Sum", "-")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def sample(
    moment: datetime, value: str, series: Series = IMPORT, context: str = "Sample.Clock"
) -> Sample:
    return Sample(moment, series, value, "Wh", context)


# (kind, from, to, zone, first instant, last instant, count)
INSTANTS = [
    pytest.param(
        (ReadKind.DAILY, utc(2026, 1, 15), utc(2026, 1, 18), UTC,
        utc(2026, 1, 15), utc(2026, 1, 17), 3), id="daily-utc-half-open",
    ),
    pytest.param(
        (ReadKind.DAILY, utc(2026, 1, 15), utc(2026, 1, 18), AMSTERDAM,
        utc(2026, 1, 15, 23), utc(2026, 1, 17, 23), 3), id="daily-amsterdam-winter-midnight-23Z",
    ),
    pytest.param(
        (ReadKind.DAILY, utc(2026, 3, 28), utc(2026, 3, 31), AMSTERDAM,
        utc(2026, 3, 28, 23), utc(2026, 3, 30, 22), 3), id="daily-across-spring-forward",
    ),
    pytest.param(
        (ReadKind.MONTHLY, utc(2026, 1, 1), utc(2026, 5, 1), UTC,
        utc(2026, 1, 1), utc(2026, 4, 1), 4), id="monthly-utc",
    ),
    pytest.param(
        (ReadKind.MONTHLY, utc(2026, 1, 15), utc(2026, 5, 1), AMSTERDAM,
        utc(2026, 1, 31, 23), utc(2026, 4, 30, 22), 4), id="monthly-amsterdam-dst-changes-offset",
    ),
    pytest.param(
        (ReadKind.INTERVAL, utc(2026, 1, 15), utc(2026, 1, 16), UTC,
        utc(2026, 1, 15), utc(2026, 1, 15, 23, 45), 96), id="interval-normal-day",
    ),
    pytest.param(
        (ReadKind.INTERVAL, utc(2026, 3, 28, 23), utc(2026, 3, 29, 22), AMSTERDAM,
        utc(2026, 3, 28, 23), utc(2026, 3, 29, 21, 45), 92), id="interval-spring-forward-92",
    ),
    pytest.param(
        (ReadKind.INTERVAL, utc(2026, 10, 24, 22), utc(2026, 10, 25, 23), AMSTERDAM,
        utc(2026, 10, 24, 22), utc(2026, 10, 25, 22, 45), 100), id="interval-fall-back-100",
    ),
    pytest.param(
        (ReadKind.DAILY, utc(2026, 3, 7, 12), utc(2026, 3, 9, 12), ZoneInfo("America/Havana"),
        utc(2026, 3, 8, 5), utc(2026, 3, 9, 4), 2), id="daily-midnight-in-a-dst-gap-is-01:00",
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", INSTANTS)
def test_log_times(
    case: tuple[ReadKind, datetime, datetime, ZoneInfo, datetime, datetime, int],
) -> None:
    kind, since, until, zone, first, last, count = case
    times = log_times(kind, since, until, zone)
    assert (times[0], times[-1], len(times)) == (first, last, count)
    assert times == sorted(set(times))


def test_interval_times_are_quarter_hours_counted_from_local_midnight() -> None:
    times = log_times(ReadKind.INTERVAL, utc(2026, 6, 1), utc(2026, 6, 2), ZoneInfo("Asia/Kolkata"))
    assert all(b - a == INTERVAL for a, b in itertools.pairwise(times))
    assert times[0] == utc(2026, 6, 1, 0, 0)
    assert utc(2026, 5, 31, 18, 30) not in times  # local midnight, before the period


@pytest.mark.parametrize(
    ("since", "until", "reason"),
    [
        (utc(2026, 1, 2), utc(2026, 1, 1), "empty"),
        (utc(2026, 1, 1), utc(2026, 1, 1), "empty"),
        (datetime(2026, 1, 1), utc(2026, 1, 2), "time zone"),  # naive: the point
    ],
)
def test_bad_periods(since: datetime, until: datetime, reason: str) -> None:
    with pytest.raises(PeriodError, match=reason):
        log_times(ReadKind.DAILY, since, until, UTC)


def test_a_period_with_too_many_reads_is_refused() -> None:
    until = utc(2026, 1, 1) + INTERVAL * (MAX_LOG_TIMES + 1)
    with pytest.raises(PeriodError, match="shorter period"):
        log_times(ReadKind.INTERVAL, utc(2026, 1, 1), until, UTC)


def test_daily_reads_take_the_value_at_midnight_and_list_the_gaps() -> None:
    samples = [
        sample(utc(2026, 1, 15), "1000"),
        sample(utc(2026, 1, 15), "50", EXPORT),
        sample(utc(2026, 1, 15, 0, 15), "1010"),  # a quarter later: not a daily value
        sample(utc(2026, 1, 16, 0, 0, 3), "1100", context="Sample.Periodic"),  # 3 s late
        sample(utc(2026, 1, 17), "1200"),
        sample(utc(2026, 1, 17), "60", EXPORT),
    ]
    reads = periodic_reads(
        samples,
        ReadKind.DAILY,
        utc(2026, 1, 15),
        utc(2026, 1, 18),
        zone=UTC,
        series=[IMPORT, EXPORT],
    )
    assert [
        (r.log_time, {s.measurand: v.value for s, v in r.values.items()}) for r in reads.reads
    ] == [
        (utc(2026, 1, 15), {"RealEnergyConsumed.Sum": "1000", "RealEnergyDelivered.Sum": "50"}),
        (utc(2026, 1, 17), {"RealEnergyConsumed.Sum": "1200", "RealEnergyDelivered.Sum": "60"}),
    ]
    assert reads.gaps == (Gap(utc(2026, 1, 16), (IMPORT, EXPORT)),)


def test_a_partly_missing_instant_is_a_gap_for_the_missing_series_only() -> None:
    samples = [sample(utc(2026, 1, 15), "1000")]
    reads = periodic_reads(
        samples,
        ReadKind.DAILY,
        utc(2026, 1, 15),
        utc(2026, 1, 16),
        zone=UTC,
        series=[IMPORT, EXPORT],
    )
    assert len(reads.reads) == 1
    assert reads.gaps == (Gap(utc(2026, 1, 15), (EXPORT,)),)


@pytest.mark.parametrize(
    ("contexts", "chosen"),
    [
        (["Sample.Periodic", "Sample.Clock"], "Sample.Clock"),
        (["Trigger", "Sample.Periodic"], "Sample.Periodic"),
        (["Other", "Trigger"], "Trigger"),
        (["Other"], "Other"),
    ],
)
def test_several_samples_at_the_instant_prefer_the_clock_aligned_one(
    contexts: list[str], chosen: str
) -> None:
    samples = [sample(utc(2026, 1, 15), c, context=c) for c in contexts]
    reads = periodic_reads(samples, ReadKind.DAILY, utc(2026, 1, 15), utc(2026, 1, 16), zone=UTC)
    (read,) = reads.reads
    assert read.values[IMPORT].context == chosen


def test_without_wanted_series_the_series_found_decide_and_nothing_found_is_no_gap() -> None:
    samples = [sample(utc(2026, 1, 15), "1"), sample(utc(2026, 1, 16), "2", EXPORT)]
    reads = periodic_reads(samples, ReadKind.DAILY, utc(2026, 1, 15), utc(2026, 1, 18), zone=UTC)
    assert reads.series == (IMPORT, EXPORT)
    assert [g.log_time for g in reads.gaps] == [
        utc(2026, 1, 15),
        utc(2026, 1, 16),
        utc(2026, 1, 17),
    ]
    empty = periodic_reads([], ReadKind.DAILY, utc(2026, 1, 15), utc(2026, 1, 18), zone=UTC)
    assert (empty.series, empty.reads, empty.gaps) == ((), (), ())


def test_interval_reads_in_local_time() -> None:
    start = utc(2026, 1, 14, 23)  # local midnight in Amsterdam
    samples = [sample(start + INTERVAL * i, str(1000 + i)) for i in range(96) if i != 40]
    reads = periodic_reads(
        samples,
        ReadKind.INTERVAL,
        start,
        start + timedelta(days=1),
        zone=AMSTERDAM,
        series=[IMPORT],
    )
    assert len(reads.reads) == 95
    assert reads.gaps == (Gap(start + INTERVAL * 40, (IMPORT,)),)
    assert reads.reads[-1].values[IMPORT].value == "1095"
