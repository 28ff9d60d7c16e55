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
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, Protocol

from os3p.backoff import Backoff
from os3p.errors import CallErrorReceived, CallTimeout, ConnectionLost, InvalidResponse
from rtu.outbox.store import DeadLetter, Entry, FailOutcome, OutboxStatus, OutboxStore
from rtu.storage import DatabaseThread

__all__ = ["LinkUp", "Outbox", "Send", "pump_loop"]

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


class Outbox:
    """The daemon's handle on the outbox: emit from anywhere on the event loop."""

    def __init__(
        self, store: OutboxStore, thread: DatabaseThread, clock: Callable[[], datetime]
    ) -> None:
        self._store = store
        self._thread = thread
        self._clock = clock
        self._changed = asyncio.Event()

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
        return cls(store, thread, clock)

    @property
    def moved_aside(self) -> Path | None:
        """Set when the outbox file was corrupt at open and replaced (report it)."""
        return self._store.moved_aside

    async def close(self) -> None:
        await self._thread.run(self._store.close)
        self._thread.shutdown()

    async def emit(self, action: str, payload: Mapping[str, Any]) -> int:
        """Queue a CALL; returns its seq after the commit. Wakes the pump."""
        seq = await self._thread.run(self._store.append, action, payload, self._clock())
        self._changed.set()
        return seq

    async def peek(self, limit: int, after_seq: int | None = None) -> list[Entry]:
        return await self._thread.run(self._store.peek, limit, self._clock(), after_seq)

    async def ack(self, seq: int) -> bool:
        return await self._thread.run(self._store.ack, seq)

    async def failed(self, seq: int, code: str, description: str) -> FailOutcome:
        return await self._thread.run(self._store.failed, seq, code, description, self._clock())

    async def seconds_until_retry(self) -> float | None:
        """Seconds until the next entry in backoff is due; None if none waits."""
        now = self._clock()
        when = await self._thread.run(self._store.earliest_retry, now)
        return None if when is None else max(0.0, (when - now).total_seconds())

    async def status(self) -> OutboxStatus:
        return await self._thread.run(self._store.status)

    async def dead_letters(self) -> list[DeadLetter]:
        return await self._thread.run(self._store.dead_letters)

    def depth(self) -> int:
        """Entries queued (cheap: kept in memory by the store, read without the thread)."""
        return self._store.depth()

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
