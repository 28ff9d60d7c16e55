"""Where events wait while the data disk cannot take them (full, read-only, failing).

Issue 4: "a read-only or full data disk is reported, not crashed on". When
`OutboxStore.append` raises `StorageUnavailable`, the event is not lost and
not refused: it is held here, in memory, in emission order, and every later
event queues behind it (the outbox is FIFO, so nothing may overtake an event
that is waiting for the disk). The pump delivers held entries like stored
ones; `Outbox` moves whatever is still held into the store, in order, once a
write succeeds again (see `rtu.outbox.pump.Outbox.recover_loop`).

What this costs: a held entry survives a lost connection or a central restart,
but not a power cut or a SIGKILL of the daemon during the disk fault. That is
the one window in which an emitted event can be lost, and it is documented in
docs/faults.md; the alternative (refusing the event, or crashing) loses it too,
and stops the station from switching its lights as well.

The bound. `max_entries` keeps a month-long disk fault from eating the RAM:
past it the oldest MeterValues give way, as in the store. Other events are
never dropped, even past the bound (a few hundred bytes each, and a station
produces a handful per day); crossing the bound with nothing left to evict
is logged at ERROR each time the excess doubles, so the log says so loudly
without one line per event.

Ids are negative (-1, -2, ...), so they never collide with the store's
positive AUTOINCREMENT sequence numbers in the pump's in-flight set.

Synchronous, no I/O, time passed in: runs on the event loop inside `Outbox`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

from rtu.outbox.store import METER_VALUES, Entry, FailOutcome

__all__ = ["Held", "HeldDeadLetter", "MemoryQueue"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(slots=True)
class Held:
    """One entry waiting in memory; mirrors a row of the store's `outbox` table."""

    id: int  # negative
    action: str
    payload: str  # the wire text, byte-identical on every send
    created: datetime
    attempts: int = 0
    not_before: datetime | None = None
    last_error: str | None = None

    def entry(self) -> Entry:
        return Entry(
            self.id, self.action, self.payload, self.created, self.attempts, self.not_before
        )


@dataclasses.dataclass(frozen=True, slots=True)
class HeldDeadLetter:
    """A held entry the central refused N times: written to `dead_letter` at recovery."""

    held: Held
    code: str
    description: str
    dead_since: datetime


class MemoryQueue:
    """The in-memory tail of the outbox; same rules as `OutboxStore` (FIFO, backoff)."""

    def __init__(
        self,
        *,
        max_entries: int = 10_000,
        dead_letter_after: int = 5,
        retry_base: timedelta = timedelta(seconds=5),
        retry_cap: timedelta = timedelta(minutes=5),
    ) -> None:
        if max_entries < 1 or dead_letter_after < 1:
            raise ValueError("max_entries and dead_letter_after must be at least 1")
        self._max_entries = max_entries
        self._dead_letter_after = dead_letter_after
        self._retry_base = retry_base
        self._retry_cap = retry_cap
        self._entries: dict[int, Held] = {}  # insertion order is emission order
        self._dead: list[HeldDeadLetter] = []
        self._next_id = -1
        self.evicted_meter_values = 0  # since the last `taken`
        self._loud_at = max_entries + 1  # next size at which an over-bound ERROR is logged

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Held]:
        return iter(list(self._entries.values()))

    @property
    def dead_letters(self) -> list[HeldDeadLetter]:
        return list(self._dead)

    def is_empty(self) -> bool:
        """Nothing held, nothing dead-lettered, nothing evicted still to be counted."""
        return not self._entries and not self._dead and not self.evicted_meter_values

    def append(self, action: str, payload: str, created: datetime) -> int:
        """Hold an entry behind the others; returns its (negative) id."""
        held = Held(self._next_id, action, payload, created)
        self._next_id -= 1
        self._entries[held.id] = held
        excess = len(self._entries) - self._max_entries
        if excess > 0:
            self._evict(excess)
        return held.id

    def _evict(self, count: int) -> None:
        victims = [h.id for h in self._entries.values() if h.action == METER_VALUES][:count]
        for victim in victims:
            del self._entries[victim]
        self.evicted_meter_values += len(victims)
        if victims:
            log.warning(
                "outbox held in memory over its bound of %d: evicted %d oldest MeterValues",
                self._max_entries,
                len(victims),
            )
        if len(self._entries) >= self._loud_at:
            log.error(
                "outbox held in memory: %d entries, over the bound of %d with no MeterValues"
                " left to evict; events are kept (never dropped) while the data disk is unusable",
                len(self._entries),
                self._max_entries,
            )
            self._loud_at = 2 * len(self._entries)

    def peek(self, limit: int, now: datetime) -> list[Entry]:
        """The due prefix, like `OutboxStore.peek`: stops at the first entry in backoff."""
        entries: list[Entry] = []
        for held in self._entries.values():
            if len(entries) >= limit or (held.not_before is not None and held.not_before > now):
                break
            entries.append(held.entry())
        return entries

    def first_blocked(self, now: datetime) -> bool:
        """True if the head waits out a backoff (holds back everything behind it)."""
        head = next(iter(self._entries.values()), None)
        return head is not None and head.not_before is not None and head.not_before > now

    def ack(self, held_id: int) -> bool:
        return self._entries.pop(held_id, None) is not None

    def failed(self, held_id: int, code: str, description: str, now: datetime) -> FailOutcome:
        """A CALLERROR for a held entry: same backoff and dead-letter rule as the store."""
        held = self._entries.get(held_id)
        if held is None:
            return FailOutcome.UNKNOWN
        held.attempts += 1
        held.last_error = f"{code}: {description}"
        if held.attempts >= self._dead_letter_after:
            del self._entries[held_id]
            self._dead.append(HeldDeadLetter(held, code, description, now))
            log.error(
                "held outbox entry %d (%s) refused %d times (%s: %s): dead letter"
                " (written to the store when the disk is back)",
                held_id,
                held.action,
                held.attempts,
                code,
                description,
            )
            return FailOutcome.DEAD_LETTERED
        delay = min(self._retry_cap, self._retry_base * 2 ** (held.attempts - 1))
        held.not_before = now + delay
        return FailOutcome.RETRY

    def earliest_retry(self, now: datetime) -> datetime | None:
        waiting = [h.not_before for h in self._entries.values() if h.not_before is not None]
        future = [moment for moment in waiting if moment > now]
        return min(future, default=None)

    def taken(self, ids: list[int], dead: int, evicted: int) -> None:
        """The first `ids`, `dead` dead letters and `evicted` evictions are in the store now."""
        for held_id in ids:
            self._entries.pop(held_id, None)
        del self._dead[:dead]
        self.evicted_meter_values -= evicted
