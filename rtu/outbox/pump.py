"""The asyncio side of the outbox: `Outbox` (emit) and `pump_loop` (deliver).

`Outbox` runs the synchronous `OutboxStore` on its own `DatabaseThread`, so a
slow fsync never blocks the event loop and nothing else's database work ever
delays an emit. `await outbox.emit(...)` returns once the entry is committed.

Theory of operation of `pump_loop`
----------------------------------
The pump sends the queue's due prefix (see `OutboxStore.peek`) through `send`,
keeping up to `window` CALLs in flight, and reacts to each outcome:

    CALLRESULT                      -> ack: the entry is gone
    CallErrorReceived (a CALLERROR) -> failed: backoff, dead letter after N
    InvalidResponse                 -> failed, like a CALLERROR: the answer is unusable, so
                                       the entry is retried (the central deduplicates) and,
                                       if it keeps happening, shown as a dead letter
    CallTimeout / ConnectionLost    -> nothing recorded: the entry stays where it is; the
                                       pump pauses (capped backoff) and waits for the link
                                       to be up before sending again (at-least-once)

It wakes on: a new emit, a finished send, the link coming up, the next
entry's backoff expiring. It never polls.

Ordering. Entries are *sent* in sequence order and the central stores them in
arrival order. With `window=1` (the default, OCPP-J's one CALL in flight) that
order is strict: an entry in CALLERROR backoff holds back everything behind it.
With a larger window a backlog drains much faster (one round trip per
`window` entries instead of per entry), at a price: when an entry gets a
CALLERROR, the newer entries already in flight arrive before its retry; after a
lost connection the in-flight ones are re-sent from the oldest, so the central
may see some twice (it deduplicates). Choose a window > 1 only where the
central does not rely on the arrival order of different events.

One pump per outbox: the in-flight set lives in the pump.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, Protocol

from os3p.backoff import Backoff
from os3p.errors import CallErrorReceived, CallTimeout, ConnectionLost, InvalidResponse
from rtu.outbox.memory import MemoryQueue
from rtu.outbox.store import (
    DeadLetter,
    Entry,
    FailOutcome,
    OutboxStatus,
    OutboxStore,
    encode_payload,
)
from rtu.storage import DatabaseThread, StorageUnavailable

__all__ = ["LinkUp", "Outbox", "Send", "StorageFault", "pump_loop"]

log = logging.getLogger(__name__)

# The central's answer to a CALL: returns on CALLRESULT, raises os3p.errors.CallFailed
# subclasses otherwise. `payload` is the stored JSON text: the link puts it on the wire
# verbatim (e.g. as msgspec.Raw) so a re-sent entry is byte-identical.
Send = Callable[[str, str], Awaitable[None]]

# Upper bound of one wait for a backoff to expire: the wall clock may be corrected by
# the central while we wait, so we look again at least this often.
_MAX_WAIT = 60.0


class LinkUp(Protocol):
    """Whether CALLs can be sent now. `asyncio.Event` fits; the link sets it once Accepted."""

    def is_set(self) -> bool: ...

    async def wait(self) -> Any: ...


@dataclasses.dataclass(frozen=True, slots=True)
class StorageFault:
    """The data disk refused a write of the outbox: what `rtu status` shows."""

    reason: str  # StorageUnavailable.reason, e.g. "disk full: database or disk is full"
    since: datetime  # corrected wall time of the first failure
    held: int  # entries waiting in memory right now


class Outbox:
    """The daemon's handle on the outbox: emit from anywhere on the event loop.

    Disk faults (issue 4). A write that raises `StorageUnavailable` puts the
    outbox in *fault* mode: the entry is held in a `MemoryQueue` and so is every
    later one, without touching the disk again (FIFO: nothing overtakes a held
    entry); `peek` serves the stored entries first, then the held ones, so the
    pump keeps delivering. An ack whose DELETE cannot be written is remembered
    and hidden from `peek`. `recover_loop` retries the disk with backoff and
    moves everything held into the store in one transaction (`take_over`), after
    which new entries go to the store again; the fault ends once the disk has
    taken every write for `settle` seconds. Listeners (`on_storage_change`) hear
    of each transition, and each is logged once. See rtu/outbox/memory.py for what a
    power cut during the fault costs.
    """

    def __init__(
        self,
        store: OutboxStore,
        thread: DatabaseThread,
        clock: Callable[[], datetime],
        *,
        memory: MemoryQueue | None = None,
        disk_retry: Backoff | None = None,
        settle: float = 10.0,
    ) -> None:
        self._store = store
        self._thread = thread
        self._clock = clock
        self._changed = asyncio.Event()
        self._memory = memory if memory is not None else MemoryQueue()
        # Capped low: a probe is one tiny transaction, and the sooner the held events are
        # durable again, the shorter the window in which a power cut could lose them.
        self._disk_retry = disk_retry if disk_retry is not None else Backoff(base=0.5, cap=10.0)
        self._fault: StorageFault | None = None
        self._faulted = asyncio.Event()  # set while `_fault` is not None
        self._needs_take_over = False  # memory holds entries or acks: keep off the store
        self._last_failure = 0.0  # event loop time of the last StorageUnavailable
        self._settle = settle
        self._failed_again = asyncio.Event()  # wakes `recover_loop` from its settle wait
        self._unacked: set[int] = set()  # delivered, but the DELETE could not be written
        self._alias: dict[int, int] = {}  # held id -> store seq, after take_over, until acked
        self._held_of: dict[int, int] = {}  # the reverse of `_alias`
        self._listeners: list[Callable[[StorageFault | None], None]] = []

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        clock: Callable[[], datetime],
        max_entries: int = 100_000,
        dead_letter_after: int = 5,
        retry_base: timedelta = timedelta(seconds=5),
        retry_cap: timedelta = timedelta(minutes=5),
        memory_max_entries: int = 10_000,
        disk_retry: Backoff | None = None,
        settle: float = 10.0,
    ) -> Outbox:
        """Open the store on a fresh dedicated thread (the connection lives there)."""
        thread = DatabaseThread("outbox-db")
        try:
            store = await thread.run(
                OutboxStore.open,
                path,
                now=clock,
                max_entries=max_entries,
                dead_letter_after=dead_letter_after,
                retry_base=retry_base,
                retry_cap=retry_cap,
            )
        except BaseException:
            thread.shutdown()
            raise
        memory = MemoryQueue(
            max_entries=memory_max_entries,
            dead_letter_after=dead_letter_after,
            retry_base=retry_base,
            retry_cap=retry_cap,
        )
        return cls(store, thread, clock, memory=memory, disk_retry=disk_retry, settle=settle)

    @property
    def moved_aside(self) -> Path | None:
        """Set when the outbox file was corrupt at open and replaced (report it)."""
        return self._store.moved_aside

    async def close(self) -> None:
        if self._needs_take_over:
            with contextlib.suppress(StorageUnavailable):
                await self._take_over()  # the disk may work again by now: one last try
        if len(self._memory):
            log.error(
                "stopping with %d outbox entries held in memory (the data disk is unusable:"
                " %s): they are lost unless the central already acknowledged them",
                len(self._memory),
                self._fault.reason if self._fault else "?",
            )
        await self._thread.run(self._store.close)
        self._thread.shutdown()

    # -- disk faults ------------------------------------------------------------

    @property
    def storage_fault(self) -> StorageFault | None:
        """None while the disk takes writes; else why not, since when, how much is held."""
        if self._fault is None:
            return None
        return dataclasses.replace(self._fault, held=len(self._memory))

    def on_storage_change(self, listener: Callable[[StorageFault | None], None]) -> None:
        """Called with the fault when the disk fails, and with None when it works again."""
        self._listeners.append(listener)

    def _disk_failed(self, exc: StorageUnavailable) -> None:
        self._needs_take_over = True
        self._last_failure = asyncio.get_running_loop().time()
        self._failed_again.set()
        if self._fault is not None:
            return  # one log line and one notification per fault, however it flaps
        self._fault = StorageFault(exc.reason, self._clock(), len(self._memory))
        self._faulted.set()
        log.error(
            "outbox: the data disk refused a write (%s): holding events in memory and"
            " delivering them from there until it works again",
            exc,
        )
        for listener in self._listeners:
            listener(self.storage_fault)

    async def recover_loop(self) -> NoReturn:
        """While the disk is unusable, retry it with backoff; move the held entries in.

        The fault is declared over only once the disk has taken every write for
        `settle` seconds: a nearly full disk accepts a commit that fits in pages
        SQLite already owns and refuses the next, and the central should hear of
        one fault, not of a flapping one.
        """
        loop = asyncio.get_running_loop()
        while True:
            await self._faulted.wait()
            if self._needs_take_over:
                await asyncio.sleep(self._disk_retry.next_delay())
                try:
                    await self._take_over()
                except StorageUnavailable as exc:
                    self._last_failure = loop.time()
                    log.debug("outbox: data disk still unusable: %s", exc)
                    continue
                if self._memory.is_empty() and not self._unacked:
                    self._needs_take_over = False  # new entries go to the store again
                    self._last_failure = loop.time()  # the good streak starts now
                    self._changed.set()
                continue
            quiet = loop.time() - self._last_failure
            if quiet < self._settle:
                self._failed_again.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._settle - quiet):
                        await self._failed_again.wait()
                continue
            held_for = self._clock() - (self._fault.since if self._fault else self._clock())
            self._fault = None
            self._faulted.clear()
            self._disk_retry.reset()
            log.warning(
                "outbox: the data disk takes writes again (fault lasted %.0f s): every held"
                " event is stored",
                held_for.total_seconds(),
            )
            for listener in self._listeners:
                listener(None)

    async def _take_over(self) -> None:
        held = list(self._memory)
        dead = self._memory.dead_letters
        acked = sorted(self._unacked)
        evicted = self._memory.evicted_meter_values
        seqs = await self._thread.run(
            self._store.take_over,
            [
                (h.action, h.payload, h.created, h.attempts, h.not_before, h.last_error)
                for h in held
            ],
            [
                (
                    (d.held.action, d.held.payload, d.held.created, d.held.attempts),
                    d.code,
                    d.description,
                    d.dead_since,
                )
                for d in dead
            ],
            acked,
            evicted,
        )
        self._unacked.difference_update(acked)
        still_held = {h.id for h in self._memory}
        self._memory.taken([h.id for h in held], len(dead), evicted)
        stale: list[int] = []
        for h, seq in zip(held, seqs, strict=True):
            if h.id not in still_held:
                stale.append(seq)  # acknowledged while the transaction ran
            else:
                self._alias[h.id] = seq
                self._held_of[seq] = h.id
        # Hidden from `peek` before the first await: a peek already queued on the
        # thread would otherwise see these rows and the pump would send them again.
        self._unacked.update(stale)
        for seq in stale:
            try:
                await self._thread.run(self._store.ack, seq)
            except StorageUnavailable as exc:
                self._disk_failed(exc)  # stays hidden; the next take_over deletes it
                return
            self._unacked.discard(seq)

    # -- the queue --------------------------------------------------------------

    async def emit(self, action: str, payload: Mapping[str, Any]) -> int:
        """Queue a CALL; returns its seq after the commit (or once held). Wakes the pump."""
        created = self._clock()
        if not self._needs_take_over:
            try:
                seq = await self._thread.run(self._store.append, action, payload, created)
            except StorageUnavailable as exc:
                self._disk_failed(exc)
            else:
                self._changed.set()
                return seq
        seq = self._memory.append(action, encode_payload(payload), created)
        self._changed.set()
        return seq

    async def peek(self, limit: int, after_seq: int | None = None) -> list[Entry]:
        """The due prefix: stored entries, then (during a disk fault) the held ones."""
        now = self._clock()
        hidden = len(self._unacked)
        try:
            stored, whole = await self._thread.run(self._peek_store, limit + hidden, now, after_seq)
        except StorageUnavailable as exc:
            # The file cannot even be read: nothing held may overtake what is in it.
            log.warning("outbox: cannot read the queue (%s): holding back", exc)
            self._disk_failed(exc)
            return []
        entries = [
            dataclasses.replace(e, seq=self._held_of.get(e.seq, e.seq))
            for e in stored
            if e.seq not in self._unacked
        ][:limit]
        if whole and len(entries) < limit:
            entries += self._memory.peek(limit - len(entries), now)
        return entries

    def _peek_store(
        self, limit: int, now: datetime, after_seq: int | None
    ) -> tuple[list[Entry], bool]:
        # On the DB thread: the due prefix, and whether it is the whole queue (only
        # then may held entries follow it).
        entries = self._store.peek(limit, now, after_seq)
        return entries, len(entries) == self._store.depth() and after_seq is None

    async def ack(self, seq: int) -> bool:
        if seq < 0 and seq not in self._alias:
            return self._memory.ack(seq)
        stored = self._alias.pop(seq, seq)
        self._held_of.pop(stored, None)
        if stored in self._unacked:
            return False
        try:
            return await self._thread.run(self._store.ack, stored)
        except StorageUnavailable as exc:
            self._unacked.add(stored)  # delivered: never send it again; delete it later
            self._disk_failed(exc)
            return True

    async def failed(self, seq: int, code: str, description: str) -> FailOutcome:
        if seq < 0 and seq not in self._alias:
            return self._memory.failed(seq, code, description, self._clock())
        stored = self._alias.get(seq, seq)
        try:
            outcome = await self._thread.run(
                self._store.failed, stored, code, description, self._clock()
            )
        except StorageUnavailable as exc:
            # The attempt cannot be recorded: the entry stays due and is sent again.
            self._disk_failed(exc)
            return FailOutcome.RETRY
        if outcome is FailOutcome.DEAD_LETTERED:
            self._alias.pop(seq, None)
            self._held_of.pop(stored, None)
        return outcome

    async def seconds_until_retry(self) -> float | None:
        """Seconds until the next entry in backoff is due; None if none waits."""
        now = self._clock()
        try:
            stored = await self._thread.run(self._store.earliest_retry, now)
        except StorageUnavailable:
            stored = None
        held = self._memory.earliest_retry(now)
        when = min((m for m in (stored, held) if m is not None), default=None)
        return None if when is None else max(0.0, (when - now).total_seconds())

    async def status(self) -> OutboxStatus:
        return await self._thread.run(self._store.status)

    async def dead_letters(self) -> list[DeadLetter]:
        return await self._thread.run(self._store.dead_letters)

    def depth(self) -> int:
        """Entries queued, stored or held (cheap: read without the thread)."""
        return self._store.depth() - len(self._unacked) + len(self._memory)

    def notify(self) -> None:
        """Wake the pump: something it may act on has changed."""
        self._changed.set()

    async def wait_for_change(self, timeout: float | None) -> None:
        """Wait until `notify`/`emit`, or `timeout` seconds; then re-arm.

        For the one pump only: a second waiter would clear wake-ups meant for it.
        """
        try:
            async with asyncio.timeout(timeout):
                await self._changed.wait()
        except TimeoutError:
            pass
        self._changed.clear()


async def pump_loop(
    outbox: Outbox,
    send: Send,
    *,
    window: int,
    wake: LinkUp,
    link_retry: Backoff | None = None,
) -> NoReturn:
    """Deliver the outbox through `send`, FIFO, `window` CALLs at most in flight.

    `wake` is the link-up signal. `link_retry` paces sends after a timeout or a
    lost connection (default: 1 s doubling to 60 s, jittered; reset by the next
    CALLRESULT). Runs until cancelled; an unexpected exception from `send` or
    the store ends it (the entries stay queued) for the supervisor to restart.
    """
    if window < 1:
        raise ValueError("window must be at least 1")
    loop = asyncio.get_running_loop()
    retry = link_retry if link_retry is not None else Backoff(base=1.0, cap=60.0)
    in_flight: set[int] = set()
    paused_until = 0.0

    async def deliver(entry: Entry) -> None:
        nonlocal paused_until
        try:
            await send(entry.action, entry.payload)
        except CallErrorReceived as exc:
            outcome = await outbox.failed(entry.seq, exc.code, exc.description)
            log.warning(
                "outbox entry %d (%s) got CALLERROR %s %r: %s",
                entry.seq,
                entry.action,
                exc.code,
                exc.description,
                outcome.value,
            )
        except InvalidResponse as exc:
            outcome = await outbox.failed(entry.seq, "InvalidResponse", str(exc))
            log.warning(
                "outbox entry %d (%s): invalid CALLRESULT (%s): %s",
                entry.seq,
                entry.action,
                exc,
                outcome.value,
            )
        except (CallTimeout, ConnectionLost) as exc:
            now = loop.time()
            if now >= paused_until:  # one step of backoff per outage, not one per entry
                paused_until = now + retry.next_delay()
            log.info(
                "outbox entry %d (%s) not delivered (%s): stays queued",
                entry.seq,
                entry.action,
                type(exc).__name__,
            )
        else:
            await outbox.ack(entry.seq)
            retry.reset()
        finally:
            in_flight.discard(entry.seq)
            outbox.notify()

    async with asyncio.TaskGroup() as tasks:
        while True:
            pause = paused_until - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)
                continue
            if not wake.is_set():
                await wake.wait()
                continue
            if len(in_flight) < window:
                # The due prefix's first `window` entries hold every in-flight one
                # plus at least as many new ones as there are free slots.
                for entry in await outbox.peek(window):
                    if len(in_flight) >= window:
                        break
                    if entry.seq not in in_flight:
                        in_flight.add(entry.seq)
                        tasks.create_task(deliver(entry), name=f"outbox-send-{entry.seq}")
            until_retry = await outbox.seconds_until_retry()
            await outbox.wait_for_change(
                None if until_retry is None else min(until_retry, _MAX_WAIT)
            )
