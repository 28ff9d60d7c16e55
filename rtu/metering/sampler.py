"""The sampler: one supervised loop per meter source, MeterValues out.

Theory of operation
-------------------
Each source has its own `source_loop` (the daemon runs it under `supervised`,
so one misbehaving meter never stalls another). The loop keeps two deadlines:

- periodic: every `MeterValueSampleInterval` seconds of monotonic time
  (0 disables), readings in context `Sample.Periodic`, stamped with the
  source's own time (the meter clock where it has one);
- clock-aligned: the next `ClockAlignedDataInterval` boundary of the site's
  local day (`sampling.next_aligned`; 0 disables), readings in context
  `Sample.Clock` stamped with the boundary, carrying the source's day
  extremes (`DayMax.*`/`DayMin.*`); the reading at local midnight carries the
  finished day's final extremes.

It sleeps until the earlier deadline, at most a minute at a time (the wall
clock may be corrected by the central meanwhile), and wakes at once when
either key changes (`ConfigurationKeys.on_change` → `set_*_interval`). Both
due at once: one read, one MeterValues with two `meterValue` entries.

Every MeterValues is committed to the outbox (`emit`, which is
`EventSink.emit`) and then to the history table. One MeterValues per
interval per source; catching up puts several entries in one.

Failures: a `SourceError` marks the source failing (logged on the
transition) and the loop then retries every `retry_interval` s so recovery
is noticed promptly (`on_source_ok`, once). Every failed read goes to
`SourceHealth.on_source_error`: supervision raises PowerMeterFailure only
after `[alarms] meter_errors` failed reads in a row, so it must see each one.
Readings missed meanwhile are not invented. After a failure, and on the
first good read after start, a source that keeps a load profile (DLMS,
`ProfileSource`) fills the clock-aligned history from its own records:
every boundary after the last stored `Sample.Clock` reading, up to
`max_gap` back, goes out in one MeterValues (chunked by
`FILL_CHUNK` entries). Sources without a profile leave the gap visible.

TriggerMessage MeterValues: `trigger` reads every source at once and
returns one MeterValues per source that answered (context `Trigger`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any, Final, Protocol, runtime_checkable

from os3p.messages import MeterValuesRequest, ReadingContext
from rtu.metering.dlms import ProfileRow
from rtu.metering.history import History
from rtu.metering.model import MeterSource, Sample, SourceError
from rtu.metering.sampling import (
    DayStats,
    Reading,
    day_end,
    day_of,
    is_midnight,
    meter_values,
    next_aligned,
    render_value,
)

__all__ = [
    "FILL_CHUNK",
    "Emit",
    "ProfileSource",
    "Sampler",
    "SamplerClock",
    "SourceHealth",
    "SourceStatus",
]

log = logging.getLogger(__name__)

# meterValue entries per MeterValues when filling a gap: a day of quarter hours.
FILL_CHUNK: Final = 96
# Longest single sleep: the corrected wall clock may move meanwhile.
_MAX_SLEEP: Final = 60.0

Emit = Callable[[MeterValuesRequest], Awaitable[object]]


class SamplerClock(Protocol):
    """`rtu.clock.Clock` fits."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...


class SourceHealth(Protocol):
    """Where meter failures go (supervision raises PowerMeterFailure from them)."""

    def on_source_error(self, name: str, reason: str) -> None:
        """Every failed read (the receiver counts them in a row)."""
        ...

    def on_source_ok(self, name: str) -> None:
        """The first good read after failures."""
        ...

    def on_samples(self, name: str, samples: Sequence[Sample]) -> None:
        """Every successful reading (station alarms judge voltages and temperatures)."""
        ...


@runtime_checkable
class ProfileSource(Protocol):
    """A source that keeps its own load profile (`DlmsMeter`)."""

    async def read_profile(self, start: datetime, end: datetime) -> list[ProfileRow]: ...


@dataclasses.dataclass(slots=True)
class SourceStatus:
    """What `rtu status` shows per source."""

    failing: bool = False
    last_error: str | None = None
    last_read: datetime | None = None
    last_samples: tuple[Sample, ...] = ()
    reads: int = 0
    failures: int = 0
    filled_from_profile: int = 0
    last_clock: datetime | None = None  # newest Sample.Clock reading stored
    gap_checked: bool = False
    stats: DayStats = dataclasses.field(default_factory=DayStats)

    def snapshot(self) -> dict[str, Any]:
        return {
            "failing": self.failing,
            "last_error": self.last_error,
            "last_read": self.last_read.isoformat() if self.last_read else None,
            "reads": self.reads,
            "failures": self.failures,
            "filled_from_profile": self.filled_from_profile,
            "last_values": {
                sample.measurand + (f"@{sample.location}" if sample.location else ""): (
                    render_value(sample.value) + (f" {sample.unit}" if sample.unit else "")
                )
                for sample in self.last_samples
            },
        }


class Sampler:
    def __init__(
        self,
        sources: Sequence[MeterSource],
        *,
        emit: Emit,
        history: History,
        clock: SamplerClock,
        zone: tzinfo,
        sample_interval: int,
        clock_interval: int,
        health: SourceHealth | None = None,
        retry_interval: float = 30.0,
        max_gap: timedelta = timedelta(days=7),
    ) -> None:
        names = [source.name for source in sources]
        if len(set(names)) != len(names):
            raise ValueError(f"source names must be unique: {names}")
        self.sources = tuple(sources)
        self._emit = emit
        self._history = history
        self._clock = clock
        self._zone = zone
        self._sample_interval = sample_interval
        self._clock_interval = clock_interval
        self._health = health
        self._retry_interval = retry_interval
        self._max_gap = max_gap
        self.status = {name: SourceStatus() for name in names}
        self._changed: dict[str, asyncio.Event] = {name: asyncio.Event() for name in names}

    # -- live configuration -------------------------------------------------

    def set_sample_interval(self, seconds: int) -> None:
        self._sample_interval = int(seconds)
        self._wake_all()

    def set_clock_interval(self, seconds: int) -> None:
        self._clock_interval = int(seconds)
        self._wake_all()

    def _wake_all(self) -> None:
        for event in self._changed.values():
            event.set()

    # -- the loop -----------------------------------------------------------

    async def source_loop(self, source: MeterSource) -> None:
        """Sample `source` until cancelled (run it under `supervised`)."""
        status = self.status[source.name]
        changed = self._changed[source.name]
        if status.last_clock is None:
            status.last_clock = await self._history.last_time(
                source.name, ReadingContext.SAMPLE_CLOCK.value
            )
        status.gap_checked = False
        while True:
            changed.clear()
            sample_interval, clock_interval = self._sample_interval, self._clock_interval
            mono = self._clock.monotonic()
            next_periodic = mono + sample_interval if sample_interval > 0 else None
            pending_clock = (
                next_aligned(self._clock.now(), clock_interval, self._zone)
                if clock_interval > 0
                else None
            )
            next_retry: float | None = None
            while not changed.is_set():
                now, mono = self._clock.now(), self._clock.monotonic()
                clock_due = pending_clock is not None and now >= pending_clock
                periodic_due = next_periodic is not None and mono >= next_periodic
                retry_due = next_retry is not None and mono >= next_retry
                if not (clock_due or periodic_due or retry_due):
                    await self._sleep_until(
                        changed,
                        now=now,
                        mono=mono,
                        pending_clock=pending_clock,
                        next_periodic=next_periodic,
                        next_retry=next_retry,
                    )
                    continue
                next_retry = None
                boundary = pending_clock if clock_due else None
                if clock_due:
                    pending_clock = next_aligned(now, clock_interval, self._zone)
                if periodic_due and next_periodic is not None:
                    while next_periodic <= mono:
                        next_periodic += sample_interval
                ok = await self._sample(source, status, boundary=boundary, periodic=periodic_due)
                if not ok:
                    next_retry = self._clock.monotonic() + self._retry_interval

    async def _sleep_until(
        self,
        changed: asyncio.Event,
        *,
        now: datetime,
        mono: float,
        pending_clock: datetime | None,
        next_periodic: float | None,
        next_retry: float | None,
    ) -> None:
        delays = [_MAX_SLEEP]
        if pending_clock is not None:
            delays.append((pending_clock - now).total_seconds())
        delays.extend(d - mono for d in (next_periodic, next_retry) if d is not None)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, min(delays))):
                await changed.wait()

    async def _sample(
        self,
        source: MeterSource,
        status: SourceStatus,
        *,
        boundary: datetime | None,
        periodic: bool,
    ) -> bool:
        """One read and what follows from it; False when the source failed."""
        samples = await self._read(source, status)
        if samples is None:
            return False
        if not status.gap_checked:
            await self._fill_gap(source, status, upto=boundary or self._clock.now())
        readings = self._account(status, samples, boundary=boundary, periodic=periodic)
        if readings:
            await self._send(source.name, readings)
            if boundary is not None:
                status.last_clock = boundary
        return True

    async def _read(self, source: MeterSource, status: SourceStatus) -> tuple[Sample, ...] | None:
        try:
            samples = tuple(await source.read())
        except SourceError as exc:
            status.failures += 1
            status.last_error = exc.reason
            if not status.failing:
                status.failing = True
                status.gap_checked = False
                log.warning("meter %s failed: %s", source.name, exc.reason)
            if self._health is not None:
                self._health.on_source_error(source.name, exc.reason)
            return None
        status.reads += 1
        status.last_read = self._clock.now()
        status.last_samples = samples
        if self._health is not None:
            self._health.on_samples(source.name, samples)
        if status.failing:
            status.failing = False
            log.info("meter %s answers again", source.name)
            if self._health is not None:
                self._health.on_source_ok(source.name)
        return samples

    def _account(
        self,
        status: SourceStatus,
        samples: tuple[Sample, ...],
        *,
        boundary: datetime | None,
        periodic: bool,
    ) -> list[Reading]:
        """Update the day extremes; the readings to send for this read."""
        readings: list[Reading] = []
        stats = status.stats
        if samples:
            stamp = samples[0].timestamp
            if boundary is not None:
                day = day_of(boundary, self._zone, closing=True)
            else:
                day = day_of(stamp, self._zone)
            previous_day = stats.day
            finished = stats.add(
                day, samples, day_end(previous_day, self._zone) if previous_day else stamp
            )
            if finished:
                # The midnight boundary was missed (source down, clock interval off):
                # the finished day's extremes still go out, stamped at its end.
                assert previous_day is not None
                readings.append(
                    Reading(
                        day_end(previous_day, self._zone),
                        ReadingContext.SAMPLE_CLOCK,
                        tuple(finished),
                    )
                )
            if periodic:
                readings.append(Reading(stamp, ReadingContext.SAMPLE_PERIODIC, samples))
        if boundary is not None:
            extremes = stats.extremes(boundary)
            if is_midnight(boundary, self._zone):
                stats.close(boundary)
            if samples or extremes:
                readings.append(
                    Reading(boundary, ReadingContext.SAMPLE_CLOCK, (*samples, *extremes))
                )
        return readings

    async def _send(self, source: str, readings: Sequence[Reading]) -> None:
        for start in range(0, len(readings), FILL_CHUNK):
            chunk = readings[start : start + FILL_CHUNK]
            await self._emit(meter_values(chunk))
            for reading in chunk:
                await self._history.append(
                    source, reading.context.value, reading.timestamp, reading.samples
                )

    async def _fill_gap(self, source: MeterSource, status: SourceStatus, *, upto: datetime) -> None:
        """Send the clock-aligned readings missed before `upto` from the meter's profile."""
        interval = self._clock_interval
        last = status.last_clock
        if last is None or interval <= 0 or not isinstance(source, ProfileSource):
            status.gap_checked = True
            return
        first = next_aligned(max(last, upto - self._max_gap), interval, self._zone)
        if first >= upto:
            status.gap_checked = True
            return
        try:
            rows = await source.read_profile(first, upto)
        except SourceError as exc:
            log.warning("meter %s: load profile unreadable, gap stays: %s", source.name, exc)
            return  # tried again after the next good read
        status.gap_checked = True
        readings = [
            Reading(row.timestamp, ReadingContext.SAMPLE_CLOCK, row.samples)
            for row in rows
            if last < row.timestamp < upto and row.samples
        ]
        if not readings:
            return
        log.info(
            "meter %s: %d missed interval(s) filled from its load profile",
            source.name,
            len(readings),
        )
        await self._send(source.name, readings)
        status.filled_from_profile += len(readings)
        status.last_clock = max(reading.timestamp for reading in readings)

    # -- TriggerMessage -----------------------------------------------------

    async def trigger(self, _contactor: int | None = None) -> list[MeterValuesRequest]:
        """Fresh readings of every source (§4.1), one MeterValues per source that answered."""

        async def one(source: MeterSource) -> MeterValuesRequest | None:
            status = self.status[source.name]
            samples = await self._read(source, status)
            if not samples:
                return None
            stamp = samples[0].timestamp
            status.stats.add(day_of(stamp, self._zone), samples, stamp)
            return meter_values([Reading(stamp, ReadingContext.TRIGGER, samples)])

        results = await asyncio.gather(*(one(source) for source in self.sources))
        return [result for result in results if result is not None]

    def snapshot(self) -> dict[str, Any]:
        return {name: status.snapshot() for name, status in self.status.items()}
