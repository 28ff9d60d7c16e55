"""The command queue's decisions, as pure functions over plain data.

Theory of operation
-------------------
Every accepted command is stored `queued`. The dispatcher (`central.dispatcher`)
repeatedly asks `plan(...)` what to do *now*:

- a queued command whose deadline has passed is **expired** (never started);
- a command is **due** when its `scheduleTime` (not before) has come and its retry
  backoff has run out — or the station has connected since the last attempt
  failed: the usual reason for a retry (station offline) is gone, so waiting for
  the rest of the backoff would only add latency;
- a command already tried once waits for its station to be connected: the first
  attempt against an absent station records why the command waits
  (`station_offline`), but retrying into the void would spend its attempts, and a
  station away for longer than the backoff series would see its commands fail.
  Its next connection wakes the dispatcher; only the deadline limits the wait;
- per station at most one command is in flight: of a station's due commands the
  highest priority runs first (0..9, higher first, OSGP's rule), FIFO (submission
  order, `seq`) within one priority;
- the global limit caps the commands in flight over all stations (throttling);
  the free slots go to the best candidates over all stations, by the same order;
- `wake_at` is the earliest future instant at which the plan could change by time
  alone (a schedule time, a backoff's end, a deadline); completions, submissions
  and connections wake the dispatcher themselves.

After an attempt, `after_attempt(...)` decides: done; failed (not retryable,
`bypassRetry`, or out of attempts); expired (the retry would fall after the
deadline); or queued again with `retry_at = now + backoff(attempts)`.

Backoff is exponential without jitter: `base * 2**(attempts-1)`, capped. Jitter
spreads retries of many clients hitting one server; here the load is one station
per command queue, and a reconnecting station waives the backoff anyway.

Time is never read here: `now` is passed in (aware UTC datetimes).
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = [
    "DEFAULT_PRIORITY",
    "MAX_PRIORITY",
    "Candidate",
    "CommandStatus",
    "Plan",
    "QueuePolicy",
    "Verdict",
    "after_attempt",
    "backoff",
    "order_key",
    "plan",
]

DEFAULT_PRIORITY = 4
MAX_PRIORITY = 9


class CommandStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    EXPIRED = "expired"

    @property
    def final(self) -> bool:
        return self in (CommandStatus.DONE, CommandStatus.FAILED, CommandStatus.EXPIRED)


@dataclass(frozen=True)
class QueuePolicy:
    """Limits of the queue. Defaults: up to 6 attempts, 10 s doubling to 10 min apart;
    attempts after the first happen only while the station is connected."""

    max_in_flight: int = 16
    max_attempts: int = 6
    backoff_base: timedelta = timedelta(seconds=10)
    backoff_cap: timedelta = timedelta(minutes=10)

    def __post_init__(self) -> None:
        if self.max_in_flight < 1 or self.max_attempts < 1:
            raise ValueError("max_in_flight and max_attempts must be at least 1")


@dataclass(frozen=True)
class Candidate:
    """A queued command as the planner sees it."""

    correlation_id: str
    station_id: str
    priority: int
    seq: int
    schedule_time: datetime | None = None
    deadline: datetime | None = None
    retry_at: datetime | None = None
    last_attempt_at: datetime | None = None


@dataclass(frozen=True)
class Plan:
    start: tuple[Candidate, ...]
    expire: tuple[Candidate, ...]
    wake_at: datetime | None


def order_key(candidate: Candidate) -> tuple[int, int]:
    """Higher priority first, then submission order."""
    return (-candidate.priority, candidate.seq)


def _backoff_waived(candidate: Candidate, connected_since: Mapping[str, datetime]) -> bool:
    since = connected_since.get(candidate.station_id)
    last = candidate.last_attempt_at
    return since is not None and last is not None and last < since


def plan(
    queued: Iterable[Candidate],
    *,
    now: datetime,
    busy_stations: Collection[str],
    in_flight: int,
    policy: QueuePolicy,
    connected_since: Mapping[str, datetime],
) -> Plan:
    """What to start and expire now, and when to look again.

    `busy_stations`: stations with a command in flight; `in_flight`: how many
    commands are in flight over all stations; `connected_since`: every connected
    station (of those with queued commands), with when its current connection
    started (`datetime.min` in UTC if that is not known).
    """
    expire: list[Candidate] = []
    best: dict[str, Candidate] = {}
    wake_at: datetime | None = None

    def wake(at: datetime | None) -> None:
        nonlocal wake_at
        if at is not None and at > now and (wake_at is None or at < wake_at):
            wake_at = at

    for candidate in queued:
        if candidate.deadline is not None and candidate.deadline <= now:
            expire.append(candidate)
            continue
        wake(candidate.deadline)
        if candidate.schedule_time is not None and candidate.schedule_time > now:
            wake(candidate.schedule_time)
            continue
        if candidate.last_attempt_at is not None and candidate.station_id not in connected_since:
            continue  # its station's next connection wakes the dispatcher
        retry_at = candidate.retry_at
        if (
            retry_at is not None
            and retry_at > now
            and not _backoff_waived(candidate, connected_since)
        ):
            wake(retry_at)
            continue
        if candidate.station_id in busy_stations:
            continue
        current = best.get(candidate.station_id)
        if current is None or order_key(candidate) < order_key(current):
            best[candidate.station_id] = candidate
    free = max(0, policy.max_in_flight - in_flight)
    start = sorted(best.values(), key=order_key)[:free]
    return Plan(start=tuple(start), expire=tuple(expire), wake_at=wake_at)


def backoff(attempts: int, *, base: timedelta, cap: timedelta) -> timedelta:
    """The wait after the `attempts`-th failed attempt (1-based): base × 2^(n-1), capped.
    Also used for webhook deliveries (`central.webhooks`)."""
    exponent = min(max(attempts - 1, 0), 30)  # 2**30 × any sane base is past every cap
    delay: timedelta = base * (2**exponent)
    return min(cap, delay)


@dataclass(frozen=True)
class Verdict:
    status: CommandStatus
    retry_at: datetime | None = None


def after_attempt(
    *,
    succeeded: bool,
    retryable: bool,
    attempts: int,
    bypass_retry: bool,
    deadline: datetime | None,
    now: datetime,
    policy: QueuePolicy,
) -> Verdict:
    """The command's status after its `attempts`-th attempt ended at `now`.

    `succeeded`: every operation is done; `retryable`: every failed operation
    failed for a reason worth another attempt (offline, timeout, ...).
    """
    if succeeded:
        return Verdict(CommandStatus.DONE)
    if bypass_retry or not retryable or attempts >= policy.max_attempts:
        return Verdict(CommandStatus.FAILED)
    retry_at = now + backoff(attempts, base=policy.backoff_base, cap=policy.backoff_cap)
    if deadline is not None and retry_at >= deadline:
        return Verdict(CommandStatus.EXPIRED)
    return Verdict(CommandStatus.QUEUED, retry_at)
