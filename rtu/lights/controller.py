"""The lights controller: switches the streetlight contactors by schedule and override.

Theory of operation
-------------------
One task, `control_loop`, owns the switching. It holds each contactor's
profiles, the remote overrides and the site, all loaded from `lights.db` when
the loop starts (so a restarted loop, or daemon, resumes from what is
persisted), and runs the pure `rtu.lights.reconcile.Reconciler`:

    IOPoller snapshot ─┐
    schedule verdict  ─┼─▶ Reconciler.step ─▶ coil writes (IOModule), then
    remote overrides  ─┘                      events (EventSink: the durable outbox)

**When it steps.** On every snapshot the shared `IOPoller` publishes (every
50 ms; the subscriber only stores it and wakes the loop), on every change of
profiles, overrides, site or clock, and at the schedule's next change: the
loop sleeps until `next_change`, at most `max_sleep` seconds (30 s), and then
recomputes, so a switch happens within one poll period plus one Modbus write
of its computed moment (well inside §7.10's 1 s), and a day change, a clock
correction (`Clock.on_change`) or a Geolocation change
(`ConfigurationKeys.on_change`, wired by `LightsSubsystem`) is picked up.

**Schedule verdict cache.** `desired_state` is cached per contactor until the
earlier of its `next_change` and `max_sleep` from now: the engine (sun
positions) runs once per change, not 20 times a second. `next_change` looks
only two schedule days ahead: beyond that the cap has us look again anyway.

**Start-up never blinks.** Nothing is written before the first snapshot: the
reconciler adopts the module's coils and feedback and writes a coil only when
it differs from what is wanted (see `reconcile`). With the module unreachable,
the poller keeps trying; the loop keeps its state and judges the first
snapshot after the outage against it.

**Events** are committed to the outbox (`EventSink.emit`) in the order the
reconciler produced them, each stamped with `clock.now()` at the step that saw
it. Before they are emitted they are *staged* in `lights.db`, in one
transaction with the "last reported" state they lead to; once committed to the
outbox they are unstaged. A crash in between re-emits the staged events byte for
byte at the next start, so the central stores each once (a re-derived event
would carry a new timestamp and be stored twice); none is ever lost.

**A full or read-only data disk** never stops a contactor command (DESIGN.md
"Lights: safety rules"; issue 4): coils are written before any bookkeeping, and
a failed `lights.db` write (stage, unstage, "last reported") is logged once,
retried with backoff, and the events are emitted all the same (the outbox holds
them in memory while the disk is unusable). What is lost is only the crash
safety of that bookkeeping for the duration: a crash during the fault may
re-derive an event (stored twice, with a new timestamp) or re-emit a staged one
(byte-identical: stored once).

**Mode notifications** (§6.7) are sent one per contactor, with its
`contactorId`, also for the station-wide local switch (the §6.7 note allows
either form). When the switch is released the contactors return to different
modes (one may be under remote override), which a single message without
`contactorId` could not say; sending one form always keeps the central simple.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime, timedelta

import msgspec

from os3p.actions import Action
from os3p.messages import (
    ACTION_OF,
    MESSAGE_TYPES,
    StationErrorCode,
    StreetlightMode,
    StreetlightModeStatusNotificationRequest,
    StreetlightStatus,
    StreetlightStatusNotificationRequest,
    from_payload,
    to_payload,
)
from rtu.clock import Clock
from rtu.events import EventSink
from rtu.io.errors import IOModuleError
from rtu.io.model import IOSnapshot
from rtu.io.poller import IOPoller
from rtu.lights.profiles import LightsStore
from rtu.lights.reconcile import (
    Command,
    Effect,
    Inputs,
    LightsSwitched,
    ModeChanged,
    Reconciler,
    Reported,
    SwitchFailure,
    mode_of,
)
from rtu.schedule import Profile, Site, desired_state, next_change
from rtu.storage import StorageUnavailable
from rtu.supervision.board import FaultBoard


def _canonical_payload(message: msgspec.Struct) -> str:
    return json.dumps(to_payload(message), sort_keys=True, separators=(",", ":"))


__all__ = ["LightsController", "status_of"]

log = logging.getLogger(__name__)

# Schedule days `next_change` scans: the loop looks again after `max_sleep` anyway.
_HORIZON_DAYS = 2


def status_of(on: bool) -> StreetlightStatus:
    return StreetlightStatus.ON if on else StreetlightStatus.OFF


@dataclasses.dataclass(frozen=True, slots=True)
class _Verdict:
    on: bool
    until: datetime  # recompute at or after this instant...
    until_monotonic: float  # ...or after this long, whichever is first: a wall clock
    # stepped back (NTP, RTC) without a correction we hear of must not freeze it


class LightsController:
    """The shell around `Reconciler`: reads time, profiles and snapshots; writes coils."""

    def __init__(
        self,
        *,
        contactors: Iterable[int],
        store: LightsStore,
        poller: IOPoller,
        sink: EventSink,
        clock: Clock,
        site: Site,
        feedback_timeout: float = 2.0,
        max_sleep: float = 30.0,
        faults: FaultBoard | None = None,
    ) -> None:
        """`faults`: the station's fault board, shared with the other subsystems, so
        that PowerSwitchFailure takes part in the one station status (resolving it
        must not say `Ok` while another fault is open); a board of its own if None."""
        self.contactors = tuple(sorted(contactors))
        self._faults = faults if faults is not None else FaultBoard(sink, clock.now)
        self._store = store
        self._poller = poller
        self._sink = sink
        self._clock = clock
        self._site = site
        self._feedback_timeout = feedback_timeout
        self._max_sleep = max_sleep
        self._profiles: dict[int, tuple[Profile, ...]] = {}
        self._overrides: dict[int, bool] = {}
        self._cache: dict[int, _Verdict] = {}
        self._snapshot: IOSnapshot | None = None  # the latest; None: module not answering
        self._wake = asyncio.Event()
        self._quiet = False  # the last step had no effects and nothing is under way
        self._store_error: str | None = None  # why lights.db refused the last write
        self._store_backoff = 0.0
        self._store_retry_at = 0.0  # monotonic; no lights.db write before it
        self._store_failed_at = 0.0  # monotonic time of the last failed write
        # Seconds of successful lights.db writes before a storage error counts as over.
        self.store_settle = 10.0
        self._unstage_later: list[int] = []  # events emitted whose unstage failed
        self.core = Reconciler(self.contactors, feedback_timeout=feedback_timeout)
        poller.subscribe(self._on_snapshot)

    # -- inputs from the rest of the daemon (all synchronous: they only wake the loop)

    @property
    def site(self) -> Site:
        return self._site

    def set_site(self, site: Site) -> None:
        """Geolocation changed (ChangeConfiguration): sunrise and sunset move."""
        self._site = site
        self.recompute()

    def recompute(self) -> None:
        """Forget the cached verdicts (clock corrected, site or profiles changed)."""
        self._cache.clear()
        self._wake.set()

    def set_profiles(self, profiles: Mapping[int, tuple[Profile, ...]]) -> None:
        """The stored profiles changed; `profiles` is the whole new set."""
        self._profiles = dict(profiles)
        self.recompute()

    def profiles(self, contactor: int) -> tuple[Profile, ...]:
        return self._profiles.get(contactor, ())

    def restore_overrides(self, held: Mapping[int, bool]) -> None:
        """The persisted overrides, at start (no mode report owed: nothing changed)."""
        self._overrides = dict(held)
        self._wake.set()

    def override(self, held: Mapping[int, bool]) -> None:
        """Accepted OverrideStreetlight (already persisted): hold these states."""
        self._overrides.update(held)
        self.core.report_mode(held)
        self._wake.set()

    def resume(self, contactors: Iterable[int]) -> None:
        """Accepted ResumeStreetlight (already persisted): back to the schedule."""
        chosen = tuple(contactors)
        for contactor in chosen:
            self._overrides.pop(contactor, None)
        self.core.report_mode(chosen)
        self._wake.set()

    @property
    def local_switch(self) -> bool | None:
        """The technician's switch as last read; None while the module was never read."""
        latest = self._poller.latest
        return latest.local_switch if latest is not None else self.core.local_switch

    def lights(self, contactor: int) -> bool | None:
        """The lights as the feedback input last showed them."""
        return self.core.feedback(contactor)

    def desired(self, contactor: int) -> bool:
        """What override or schedule wants now (ignoring the local switch)."""
        if contactor in self._overrides:
            return self._overrides[contactor]
        return self._verdict(contactor, self._clock.now()).on

    def mode(self, contactor: int) -> StreetlightMode:
        return mode_of(contactor, bool(self.local_switch), self._overrides)

    def snapshot(self) -> dict[str, object]:
        """For `rtu status`: per contactor, desired, actual, mode, coil."""
        return {
            "available": self.core.available,
            "local_switch": self.local_switch,
            "contactors": {
                str(c): {
                    "desired": self.desired(c),
                    "actual": self.core.feedback(c),
                    "coil": self.core.coil(c),
                    "mode": str(self.mode(c)),
                    "override": self._overrides.get(c),
                    "power_switch_failure": self.core.reported(c).failed,
                }
                for c in self.contactors
            },
            "lights_db_error": self._store_error,
        }

    def _on_snapshot(self, snapshot: IOSnapshot | None) -> None:
        # Called by the poller (every poll period): must be quick. The loop does
        # the work, and only when there is any: an unchanged snapshot after a
        # quiet step changes nothing (Reconciler.settled), so most polls cost
        # a comparison here instead of a step of the loop.
        unchanged = snapshot == self._snapshot
        self._snapshot = snapshot
        if not (unchanged and self._quiet):
            self._wake.set()

    # -- the loop ---------------------------------------------------------------

    async def control_loop(self) -> None:
        """Load the persisted state, then step on every wake-up. Runs until cancelled."""
        self._profiles = await self._store.profiles()
        self._overrides = await self._store.overrides()
        reported = await self._store.reported()
        self.core = Reconciler(
            self.contactors, feedback_timeout=self._feedback_timeout, reported=reported
        )
        self._cache.clear()
        self._snapshot = None  # judge only snapshots read from now on
        await self._emit_staged()  # events a crash left between decision and outbox
        saved = {c: self.core.reported(c) for c in self.contactors}
        for contactor, restored in saved.items():
            if restored.failed:  # still open as far as we know: the board starts empty
                await self._report(SwitchFailure(contactor, True, self._clock.now()))
        while True:
            self._wake.clear()
            now = self._clock.now()
            schedule = {c: self._verdict(c, now).on for c in self.contactors}
            effects = self.core.step(
                Inputs(schedule, dict(self._overrides)),
                self._snapshot,
                now,
                self._clock.monotonic(),
            )
            saved = await self._perform(effects, saved)
            # Quiet only with nothing owed to lights.db either: while it fails, the
            # steps that unchanged snapshots trigger are what retries it.
            self._quiet = (
                not effects
                and self.core.settled
                and self._store_error is None
                and not self._unstage_later
            )
            await self._sleep(now)

    async def _perform(
        self, effects: list[Effect], saved: dict[int, Reported]
    ) -> dict[int, Reported]:
        """Switch first (the lights come before the paperwork), then stage, emit, unstage."""
        wrote = False
        messages: list[msgspec.Struct] = []
        failures: list[SwitchFailure] = []
        for effect in effects:
            match effect:
                case Command(contactor, on):
                    wrote = True
                    await self._write(contactor, on=on)
                case LightsSwitched(contactor, on, unexpected, at):
                    log.log(
                        logging.WARNING if unexpected else logging.INFO,
                        "contactor %d switched %s%s",
                        contactor,
                        "on" if on else "off",
                        " unexpectedly" if unexpected else "",
                    )
                    messages.append(
                        StreetlightStatusNotificationRequest(
                            contactor_id=contactor,
                            status=status_of(on),
                            timestamp=at,
                            unexpected=True if unexpected else None,
                        )
                    )
                case ModeChanged(contactor, mode, at):
                    log.info("contactor %d mode %s", contactor, mode)
                    messages.append(
                        StreetlightModeStatusNotificationRequest(
                            contactor_id=contactor, mode=mode, timestamp=at
                        )
                    )
                case SwitchFailure():
                    failures.append(effect)
        if wrote:
            self._poller.poke()  # see the coil and feedback sooner
        # Reported before the new state is saved: a crash in between makes the
        # reconciler find (and report) the failure again, never forget it.
        for failure in failures:
            await self._report(failure)
        current = {c: self.core.reported(c) for c in self.contactors}
        changed = {c: r for c, r in current.items() if saved.get(c) != r}
        later = self._unstage_later
        if later and await self._store_write(lambda: self._store.unstage(later)):
            self._unstage_later = []
        if not messages:
            # While lights.db is failing, rewriting the current state (after the
            # backoff) is also the probe that notices the disk is back.
            pending = changed or (current if self._store_error is not None else {})
            if pending and not await self._store_write(lambda: self._store.save_reported(pending)):
                return saved  # try again at a later step
            return current
        staged = [(ACTION_OF[type(m)].value, _canonical_payload(m)) for m in messages]
        seqs: list[int] = []

        async def stage() -> None:
            seqs.extend(await self._store.stage(changed, staged))

        was_staged = await self._store_write(stage)
        for message in messages:
            await self._sink.emit(message)
        if not was_staged:
            return saved  # not staged: the reported state is saved at a later step
        if not await self._store_write(lambda: self._store.unstage(seqs)):
            # Re-emitted byte for byte after a crash: the central stores it once.
            self._unstage_later += seqs
        return current

    async def _store_write(self, write: Callable[[], Awaitable[object]]) -> bool:
        """A write to lights.db that must never stop the lights (safety first).

        The coils are already written when this runs; a full or read-only disk
        costs only the crash-safety of the bookkeeping (see the module docstring):
        the failure is logged once, writes are skipped for a backoff (1 s doubling
        to 30 s) instead of failing 20 times a second, and retried after it.
        Returns False when the write failed or was skipped.
        """
        now = self._clock.monotonic()
        if now < self._store_retry_at:
            return False
        try:
            await write()
        except StorageUnavailable as exc:
            if self._store_error is None:
                log.error(  # noqa: TRY400 - the reason says it all; the lights carry on
                    "lights.db cannot be written (%s): the contactors keep switching,"
                    " their bookkeeping waits for the disk",
                    exc.reason,
                )
            self._store_error = exc.reason
            self._store_failed_at = now
            self._store_backoff = min(30.0, self._store_backoff * 2 if self._store_backoff else 1.0)
            self._store_retry_at = now + self._store_backoff
            return False
        # A nearly full disk takes one write and refuses the next: declared back only
        # after `store_settle` seconds without a failure, so the log says it once.
        if self._store_error is not None and now - self._store_failed_at >= self.store_settle:
            log.warning("lights.db takes writes again")
            self._store_error = None
            self._store_backoff = 0.0
        return True

    async def _emit_staged(self) -> None:
        staged = await self._store.staged()
        if not staged:
            return
        log.info("re-emitting %d event(s) staged before the last stop", len(staged))
        for _, action, payload in staged:
            request_type = MESSAGE_TYPES[Action(action)][0]
            await self._sink.emit(from_payload(request_type, json.loads(payload)))
        await self._store.unstage([seq for seq, _, _ in staged])

    async def _write(self, contactor: int, *, on: bool) -> None:
        try:
            await self._poller.module.set_contactor(contactor, on)
        except IOModuleError as exc:
            log.warning("contactor %d: could not switch %s: %s", contactor, status_of(on), exc)
            self.core.write_done(contactor, ok=False)
            return
        log.info("contactor %d commanded %s", contactor, status_of(on))
        self.core.write_done(contactor, ok=True)

    async def _report(self, failure: SwitchFailure) -> None:
        """PowerSwitchFailure through the station's fault board (one status for all)."""
        source = f"contactor {failure.contactor}"
        if failure.failed:
            info = f"{source}: feedback does not follow the coil"
            log.error("PowerSwitchFailure: %s", info)
            await self._faults.raise_fault(
                StationErrorCode.POWER_SWITCH_FAILURE, source, info=info, at=failure.at
            )
        else:
            log.info("%s: PowerSwitchFailure resolved", source)
            await self._faults.resolve_fault(
                StationErrorCode.POWER_SWITCH_FAILURE, source, at=failure.at
            )

    async def _sleep(self, now: datetime) -> None:
        until = min(
            (v.until for v in self._cache.values()),
            default=now + timedelta(seconds=self._max_sleep),
        )
        seconds = min(self._max_sleep, max(0.0, (until - now).total_seconds()))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    def _verdict(self, contactor: int, now: datetime) -> _Verdict:
        cached = self._cache.get(contactor)
        mono = self._clock.monotonic()
        if cached is not None and now < cached.until and mono < cached.until_monotonic:
            return cached
        profiles = self._profiles.get(contactor, ())
        cap = now + timedelta(seconds=self._max_sleep)
        change = next_change(profiles, now, self._site, horizon_days=_HORIZON_DAYS)
        until = cap if change is None else min(cap, change)
        verdict = _Verdict(
            desired_state(profiles, now, self._site),
            until,
            mono + (until - now).total_seconds(),
        )
        self._cache[contactor] = verdict
        return verdict
