"""The queue's pure decisions: properties over random queues (hypothesis) and the
cases the properties do not pin down (backoff waived on connect, retry verdicts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from central.queueing import (
    Candidate,
    CommandStatus,
    QueuePolicy,
    after_attempt,
    backoff,
    order_key,
    plan,
)
from tests.test_pure_cores import FORBIDDEN, imported_roots

T0 = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
STATIONS = ["S1", "S2", "S3", "S4"]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_the_queue_core_imports_no_io_or_clock() -> None:
    path = Path(__file__).resolve().parents[2] / "central" / "queueing.py"
    assert imported_roots(path) & FORBIDDEN == set()


optional_time = st.one_of(st.none(), st.integers(-100, 100).map(at))


@st.composite
def queues(draw: st.DrawFn) -> list[Candidate]:
    size = draw(st.integers(0, 30))
    return [
        Candidate(
            correlation_id=f"c{seq}",
            station_id=draw(st.sampled_from(STATIONS)),
            priority=draw(st.integers(0, 9)),
            seq=seq,
            schedule_time=draw(optional_time),
            deadline=draw(optional_time),
            retry_at=draw(optional_time),
            last_attempt_at=draw(optional_time),
        )
        for seq in range(size)
    ]


def _due(c: Candidate, now: datetime, connected_since: dict[str, datetime]) -> bool:
    if c.deadline is not None and c.deadline <= now:
        return False
    if c.schedule_time is not None and c.schedule_time > now:
        return False
    if c.last_attempt_at is not None and c.station_id not in connected_since:
        return False  # tried once: waits for its station to connect
    since = connected_since.get(c.station_id)
    waived = since is not None and c.last_attempt_at is not None and c.last_attempt_at < since
    return c.retry_at is None or c.retry_at <= now or waived


@settings(max_examples=300, deadline=None)
@given(
    queue=queues(),
    busy=st.sets(st.sampled_from(STATIONS)),
    limit=st.integers(1, 6),
    extra_in_flight=st.integers(0, 3),
    connected=st.dictionaries(st.sampled_from(STATIONS), st.integers(-100, 0).map(at)),
)
def test_plan_properties(
    queue: list[Candidate],
    busy: set[str],
    limit: int,
    extra_in_flight: int,
    connected: dict[str, datetime],
) -> None:
    now = at(0)
    in_flight = len(busy) + extra_in_flight
    policy = QueuePolicy(max_in_flight=limit)
    result = plan(
        queue,
        now=now,
        busy_stations=busy,
        in_flight=in_flight,
        policy=policy,
        connected_since=connected,
    )
    started = {c.station_id for c in result.start}
    # Never two in flight per station: one start per station, none on a busy one.
    assert len(started) == len(result.start)
    assert not started & busy
    # The global limit.
    assert len(result.start) <= max(0, limit - in_flight)
    for c in result.start:
        # Never before scheduleTime, never past the deadline, never inside an unwaived backoff.
        assert _due(c, now, connected)
        # Highest priority first, FIFO within one priority, per station.
        rivals = [d for d in queue if d.station_id == c.station_id and _due(d, now, connected)]
        assert order_key(c) == min(order_key(d) for d in rivals)
    # Every queued command past its deadline is expired, and only those.
    assert {c.correlation_id for c in result.expire} == {
        c.correlation_id for c in queue if c.deadline is not None and c.deadline <= now
    }
    # The global slots go to the best candidates: no idle station's best is skipped
    # for a worse one.
    skipped = [
        c
        for c in queue
        if _due(c, now, connected) and c.station_id not in busy and c.station_id not in started
    ]
    if result.start and skipped:
        assert max(order_key(c) for c in result.start) <= min(order_key(c) for c in skipped)
    if skipped:
        assert len(result.start) == max(0, limit - in_flight)
    # wake_at is in the future and is one of the candidates' times.
    if result.wake_at is not None:
        assert result.wake_at > now
        times = {t for c in queue for t in (c.schedule_time, c.deadline, c.retry_at)}
        assert result.wake_at in times


@settings(max_examples=200, deadline=None)
@given(queue=queues(), limit=st.integers(1, 4))
def test_draining_a_queue_runs_each_station_in_priority_then_fifo_order(
    queue: list[Candidate], limit: int
) -> None:
    """Simulated dispatcher: everything is due (no times), attempts finish one by one."""
    queue = [
        Candidate(c.correlation_id, c.station_id, c.priority, c.seq) for c in queue
    ]  # strip times
    pending = list(queue)
    running: dict[str, str] = {}
    order: dict[str, list[Candidate]] = {}
    while pending or running:
        result = plan(
            pending,
            now=at(0),
            busy_stations=set(running.values()),
            in_flight=len(running),
            policy=QueuePolicy(max_in_flight=limit),
            connected_since={},
        )
        for c in result.start:
            running[c.correlation_id] = c.station_id
            pending.remove(c)
            order.setdefault(c.station_id, []).append(c)
        assert len(running) <= limit
        assert len(set(running.values())) == len(running)
        done = min(running)  # any one finishes
        del running[done]
    for station, ran in order.items():
        assert ran == sorted((c for c in queue if c.station_id == station), key=order_key)


def test_a_connection_after_the_last_attempt_waives_the_backoff() -> None:
    waiting = Candidate("c1", "S1", 4, 1, retry_at=at(300), last_attempt_at=at(-10))
    policy = QueuePolicy()
    offline = plan([waiting], now=at(0), busy_stations=(), in_flight=0, policy=policy,
                   connected_since={})  # fmt: skip
    assert offline.start == ()
    assert offline.wake_at is None  # no retry into the void: its connection wakes us
    later = plan([waiting], now=at(400), busy_stations=(), in_flight=0, policy=policy,
                 connected_since={})  # fmt: skip
    assert later.start == ()  # still absent after the backoff: still waiting
    earlier = plan([waiting], now=at(0), busy_stations=(), in_flight=0, policy=policy,
                   connected_since={"S1": at(-20)})  # fmt: skip
    assert earlier.start == ()  # connected before the failure: the backoff stands
    assert earlier.wake_at == at(300)
    reconnected = plan([waiting], now=at(0), busy_stations=(), in_flight=0, policy=policy,
                       connected_since={"S1": at(-5)})  # fmt: skip
    assert reconnected.start == (waiting,)


def test_a_scheduled_command_is_not_started_early_even_after_a_reconnect() -> None:
    scheduled = Candidate("c1", "S1", 9, 1, schedule_time=at(60), last_attempt_at=at(-10))
    result = plan([scheduled], now=at(0), busy_stations=(), in_flight=0, policy=QueuePolicy(),
                  connected_since={"S1": at(-5)})  # fmt: skip
    assert (result.start, result.wake_at) == ((), at(60))


def test_backoff_doubles_up_to_its_cap() -> None:
    base, cap = timedelta(seconds=10), timedelta(seconds=100)
    assert [backoff(n, base=base, cap=cap).total_seconds() for n in range(1, 7)] == [
        10,
        20,
        40,
        80,
        100,
        100,
    ]
    assert backoff(10_000, base=base, cap=cap) == cap


POLICY = QueuePolicy(max_attempts=3, backoff_base=timedelta(seconds=10))


def verdict(**overrides: object) -> tuple[CommandStatus, datetime | None]:
    args: dict[str, object] = {
        "succeeded": False,
        "retryable": True,
        "attempts": 1,
        "bypass_retry": False,
        "deadline": None,
        "now": at(0),
        "policy": POLICY,
    }
    args.update(overrides)
    result = after_attempt(**args)  # type: ignore[arg-type]
    return result.status, result.retry_at


def test_verdicts_after_an_attempt() -> None:
    assert verdict(succeeded=True) == (CommandStatus.DONE, None)
    assert verdict() == (CommandStatus.QUEUED, at(10))
    assert verdict(attempts=2) == (CommandStatus.QUEUED, at(20))
    assert verdict(attempts=3) == (CommandStatus.FAILED, None)  # out of attempts
    assert verdict(bypass_retry=True) == (CommandStatus.FAILED, None)
    assert verdict(retryable=False) == (CommandStatus.FAILED, None)
    assert verdict(deadline=at(10)) == (CommandStatus.EXPIRED, None)
    assert verdict(deadline=at(11)) == (CommandStatus.QUEUED, at(10))
