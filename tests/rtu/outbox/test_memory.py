"""MemoryQueue: the in-memory tail of the outbox during a disk fault (pure, no I/O)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from rtu.outbox import METER_VALUES, FailOutcome, MemoryQueue

T0 = datetime(2026, 11, 23, 12, tzinfo=UTC)
EVENT = "StreetlightStatusNotification"


def test_ids_are_negative_and_peek_is_fifo() -> None:
    queue = MemoryQueue()
    ids = [queue.append(EVENT, f'{{"n":{n}}}', T0) for n in range(3)]
    assert ids == [-1, -2, -3]
    assert [e.seq for e in queue.peek(10, T0)] == ids
    assert [e.seq for e in queue.peek(2, T0)] == ids[:2]
    assert queue.ack(-2) is True
    assert queue.ack(-2) is False
    assert [e.payload for e in queue.peek(10, T0)] == ['{"n":0}', '{"n":2}']


def test_over_the_bound_meter_values_give_way_oldest_first() -> None:
    queue = MemoryQueue(max_entries=3)
    queue.append(METER_VALUES, "m1", T0)
    queue.append(EVENT, "e1", T0)
    queue.append(METER_VALUES, "m2", T0)
    queue.append(EVENT, "e2", T0)
    assert [e.payload for e in queue.peek(10, T0)] == ["e1", "m2", "e2"]
    assert queue.evicted_meter_values == 1


def test_events_are_never_dropped_and_the_bound_is_logged_loudly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue = MemoryQueue(max_entries=2)
    with caplog.at_level(logging.ERROR):
        for n in range(9):
            queue.append(EVENT, str(n), T0)
    assert len(queue) == 9
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    # At 3, then each time the excess doubles (6): loud, not one line per event.
    assert len(errors) == 2
    assert "never dropped" in errors[0].getMessage()


def test_callerror_backs_off_holds_the_queue_then_dead_letters() -> None:
    queue = MemoryQueue(
        dead_letter_after=2, retry_base=timedelta(seconds=5), retry_cap=timedelta(seconds=60)
    )
    first = queue.append(EVENT, "a", T0)
    queue.append(EVENT, "b", T0)
    assert queue.failed(first, "InternalError", "x", T0) is FailOutcome.RETRY
    assert queue.peek(10, T0) == []  # the head in backoff holds back the rest
    assert queue.first_blocked(T0)
    assert queue.earliest_retry(T0) == T0 + timedelta(seconds=5)
    later = T0 + timedelta(seconds=5)
    assert [e.payload for e in queue.peek(10, later)] == ["a", "b"]
    assert queue.failed(first, "InternalError", "x", later) is FailOutcome.DEAD_LETTERED
    assert [d.held.payload for d in queue.dead_letters] == ["a"]
    assert queue.failed(first, "InternalError", "x", later) is FailOutcome.UNKNOWN
    assert not queue.is_empty()
    queue.taken([h.id for h in queue], dead=1, evicted=0)
    assert queue.is_empty()
