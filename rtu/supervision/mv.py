"""MV fault indicators: the decision logic, as a pure state machine.

Pure core: no I/O, no clock, no asyncio. `rtu.supervision.mvmonitor` feeds it
the I/O poller's snapshots and the operator's commands, and hands what it
returns to the `FaultBoard`.

Theory of operation
-------------------
Each configured indicator group has up to three status contacts (`IOMap`
decides which are wired). Each contact is *active* when it signals a problem:
over-current or ground-fault closed (the indicator tripped and latched), or
the healthy contact open (the indicator failed its self-supervision).

1. **Debounce.** A contact's debounced state changes only when every reading
   for at least `debounce` seconds, and at least `debounce_polls` readings in a
   row, showed the new value. A contact that flips back inside that time
   (chatter) changes nothing and produces no notification. A reading gap (the
   module not answering) restarts the count. The moment of detection, the
   notification's `timestamp`, is the first reading that showed the new value.

2. **Alarms.** A debounced contact becoming active raises its fault
   (`OverCurrentFailure`, `GroundFailure`, `MVFaultIndicatorError`) for the
   group; becoming inactive resolves it. Nothing else raises or resolves a
   contact's fault except step 4's re-entry, which resolves and raises in one
   go, so per fault the notifications always alternate raise / resolve.

3. **Test (§7.11).** `start_test` puts every group in test mode: alarms raised
   from then until the group's reset is confirmed carry `test: true` and, like
   real ones, stay until reset. `settle` seconds after a group's test pulse,
   an over-current (or ground-fault, where wired) contact that did not trip is
   the "opto not working correctly" of §7.11: `MVFaultIndicatorError` for
   `"<group> self-test"`, with `test: true`; a test pulse the module refused
   is the same finding. A test is refused (`RejectedAlreadyFaulted`, Table 19)
   while any group is in test mode, has an over-current or ground-fault alarm
   open, or has such a contact active in the latest reading.

4. **Reset (§7.9).** `start_reset` opens a reset job per group with a
   deadline `reset_timeout` away. A latched contact that clears after the
   pulse resolves its fault through step 2. `settle` seconds after the pulse,
   the job is judged on the next reading: a contact still active is the
   indicator that "will re-enter the fault state" because the cause was not
   fixed: its fault is resolved and raised again, now with `test: false`. The
   group leaves test mode, and a self-test or ResetFailure fault of the group
   is resolved. A job not judged by its deadline (the pulse failed, or no
   reading came) raises `ResetFailure` for the group: nobody can say the
   indicator cleared. The contacts themselves cannot tell "cause still
   present" from "indicator did not reset", so we report what §7.9 describes
   for a contact that stays active, and ResetFailure for a reset we could not
   carry out or confirm.

5. **I/O module.** When the poller reports the module gone (`observe(None)`)
   for `debounce` seconds, `MVFaultIndicatorError` for `"I/O module"` is
   raised (the indicators are unsupervised), resolved by the next reading.
   Debounced states are kept across the gap; pending changes are dropped.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal

from os3p.messages import StationErrorCode
from rtu.io.model import IndicatorPoints, IndicatorState
from rtu.supervision.ledger import Change, FaultKey

__all__ = [
    "IO_MODULE_SOURCE",
    "Contact",
    "MVMachine",
    "MVSettings",
    "Pulse",
]

IO_MODULE_SOURCE = "I/O module"

Pulse = Literal["test", "reset"]


class Contact(enum.StrEnum):
    OVERCURRENT = "overcurrent"
    GROUNDFAULT = "groundfault"
    HEALTHY = "healthy"


_CODE = {
    Contact.OVERCURRENT: StationErrorCode.OVER_CURRENT_FAILURE,
    Contact.GROUNDFAULT: StationErrorCode.GROUND_FAILURE,
    Contact.HEALTHY: StationErrorCode.MV_FAULT_INDICATOR_ERROR,
}
_LATCHING = (Contact.OVERCURRENT, Contact.GROUNDFAULT)


@dataclasses.dataclass(frozen=True, slots=True)
class MVSettings:
    debounce: float = 0.2  # seconds a contact must hold a new value
    debounce_polls: int = 2  # and in at least this many readings in a row
    settle: float = 1.0  # after a test/reset pulse, before the outcome is judged
    reset_timeout: float = 5.0  # a reset not confirmed by then is a ResetFailure

    def __post_init__(self) -> None:
        if self.debounce < 0 or self.debounce_polls < 1:
            raise ValueError("debounce must be >= 0 s and debounce_polls >= 1")
        if self.settle <= self.debounce:
            raise ValueError("settle must be longer than debounce")
        if self.reset_timeout <= self.settle:
            raise ValueError("reset_timeout must be longer than settle")


@dataclasses.dataclass(slots=True)
class _Candidate:
    active: bool
    first_mono: float
    first_wall: datetime
    readings: int


@dataclasses.dataclass(slots=True)
class _ResetJob:
    deadline: float
    pulsed_at: float | None = None
    error: str | None = None


@dataclasses.dataclass(slots=True)
class _Group:
    points: IndicatorPoints
    contacts: tuple[Contact, ...]
    stable: dict[Contact, bool]
    raw: dict[Contact, bool]
    candidate: dict[Contact, _Candidate]
    alarm: dict[Contact, bool]  # open alarms -> their test flag
    test_mode: bool = False
    test_pulsed_at: float | None = None
    tripped_in_test: set[Contact] = dataclasses.field(default_factory=set)
    reset: _ResetJob | None = None

    @property
    def name(self) -> str:
        return self.points.name

    def key(self, contact: Contact) -> FaultKey:
        return FaultKey(_CODE[contact], self.name)

    def self_test_key(self) -> FaultKey:
        return FaultKey(StationErrorCode.MV_FAULT_INDICATOR_ERROR, f"{self.name} self-test")

    def reset_failure_key(self) -> FaultKey:
        return FaultKey(StationErrorCode.RESET_FAILURE, self.name)


def _wired(points: IndicatorPoints) -> tuple[Contact, ...]:
    wiring = (
        (Contact.OVERCURRENT, points.overcurrent),
        (Contact.GROUNDFAULT, points.groundfault),
        (Contact.HEALTHY, points.healthy),
    )
    return tuple(c for c, address in wiring if address is not None)


def _active(contact: Contact, state: IndicatorState) -> bool | None:
    match contact:
        case Contact.OVERCURRENT:
            return state.overcurrent
        case Contact.GROUNDFAULT:
            return state.groundfault
        case Contact.HEALTHY:
            return None if state.healthy is None else not state.healthy


class MVMachine:
    """The MV indicators of one station; see the module docstring."""

    def __init__(self, groups: Sequence[IndicatorPoints], settings: MVSettings) -> None:
        self.settings = settings
        self._groups = {
            p.name: _Group(
                points=p,
                contacts=_wired(p),
                stable=dict.fromkeys(_wired(p), False),
                raw=dict.fromkeys(_wired(p), False),
                candidate={},
                alarm={},
            )
            for p in groups
        }
        self._unavailable_since: float | None = None
        self._io_alarm = False
        # Open self-test and ResetFailure faults, by key: the machine owns them too.
        self._open_extra: set[FaultKey] = set()

    # -- queries ---------------------------------------------------------------

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(self._groups)

    def in_alarm(self) -> bool:
        """Table 19's "already in alarm state (due to fault or due to test)"."""
        return any(
            g.test_mode
            or g.reset is not None
            or any(c in g.alarm or g.raw[c] or g.stable[c] for c in _LATCHING if c in g.contacts)
            for g in self._groups.values()
        )

    def next_deadline(self) -> float | None:
        """The monotonic time at which `tick` has something to do, if any."""
        deadlines = [g.reset.deadline for g in self._groups.values() if g.reset is not None]
        if self._unavailable_since is not None and not self._io_alarm and self._groups:
            deadlines.append(self._unavailable_since + self.settings.debounce)
        return min(deadlines, default=None)

    def describe(self) -> dict[str, dict[str, object]]:
        """Per group: debounced contacts, open alarms, test and reset state."""
        return {
            g.name: {
                "active": sorted(c.value for c in g.contacts if g.stable[c]),
                "alarms": {c.value: ("test" if t else "fault") for c, t in g.alarm.items()},
                "test_mode": g.test_mode,
                "reset_pending": g.reset is not None,
            }
            for g in self._groups.values()
        }

    # -- inputs ----------------------------------------------------------------

    def observe(
        self, mono: float, wall: datetime, indicators: Mapping[str, IndicatorState] | None
    ) -> list[Change]:
        """One poller reading taken at `mono` / `wall`; None: the module did not answer."""
        changes: list[Change] = []
        if indicators is None:
            if self._unavailable_since is None:
                self._unavailable_since = mono
            for g in self._groups.values():
                g.candidate.clear()
            return changes
        self._unavailable_since = None
        if self._io_alarm:
            self._io_alarm = False
            changes.append(Change(False, self._io_key(), wall))
        for g in self._groups.values():
            state = indicators.get(g.name)
            if state is not None:
                for contact in g.contacts:
                    active = _active(contact, state)
                    if active is not None:
                        changes += self._debounce(g, contact, active, mono, wall)
            changes += self._judge(g, mono, wall)
        return changes

    def tick(self, mono: float, wall: datetime) -> list[Change]:
        """Deadlines: reset jobs not confirmed in time, the module gone for too long."""
        changes: list[Change] = []
        if (
            self._unavailable_since is not None
            and not self._io_alarm
            and self._groups
            and mono - self._unavailable_since >= self.settings.debounce
        ):
            self._io_alarm = True
            names = ", ".join(self._groups)
            changes.append(
                Change(True, self._io_key(), wall, info=f"{names}: I/O module not answering")
            )
        for g in self._groups.values():
            job = g.reset
            if job is not None and mono >= job.deadline:
                g.reset = None
                reason = job.error or "no reading after the pulse"
                changes += self._open(
                    g.reset_failure_key(),
                    wall,
                    f"{g.name}: reset not confirmed within {self.settings.reset_timeout:g} s"
                    f" ({reason})",
                )
        return changes

    def start_test(self) -> None:
        """TestMVFaultIndicator accepted: every group is in test mode until reset."""
        for g in self._groups.values():
            g.test_mode = True
            g.tripped_in_test.clear()

    def start_reset(self, mono: float) -> None:
        """ResetMVFaultIndicator accepted: a reset job per group, due by `reset_timeout`."""
        for g in self._groups.values():
            g.reset = _ResetJob(deadline=mono + self.settings.reset_timeout)

    def pulse_done(self, group: str, pulse: Pulse, mono: float) -> None:
        g = self._groups[group]
        if pulse == "test":
            g.test_pulsed_at = mono
        elif g.reset is not None:
            g.reset.pulsed_at = mono

    def pulse_failed(self, group: str, pulse: Pulse, reason: str, wall: datetime) -> list[Change]:
        g = self._groups[group]
        if pulse == "reset":
            if g.reset is not None:
                g.reset.error = f"reset pulse failed: {reason}"
            return []
        return self._open(g.self_test_key(), wall, f"{g.name}: test pulse failed: {reason}", True)

    # -- internals -------------------------------------------------------------

    def _io_key(self) -> FaultKey:
        return FaultKey(StationErrorCode.MV_FAULT_INDICATOR_ERROR, IO_MODULE_SOURCE)

    def _open(self, key: FaultKey, wall: datetime, info: str, test: bool = False) -> list[Change]:
        if key in self._open_extra:
            return []
        self._open_extra.add(key)
        return [Change(True, key, wall, info=info, test=test)]

    def _close(self, key: FaultKey, wall: datetime) -> list[Change]:
        if key not in self._open_extra:
            return []
        self._open_extra.discard(key)
        return [Change(False, key, wall)]

    def _debounce(
        self, g: _Group, contact: Contact, active: bool, mono: float, wall: datetime
    ) -> list[Change]:
        g.raw[contact] = active
        if active == g.stable[contact]:
            g.candidate.pop(contact, None)
            return []
        candidate = g.candidate.get(contact)
        if candidate is None or candidate.active != active:
            candidate = g.candidate[contact] = _Candidate(active, mono, wall, 0)
        candidate.readings += 1
        held = mono - candidate.first_mono >= self.settings.debounce
        if not (held and candidate.readings >= self.settings.debounce_polls):
            return []
        del g.candidate[contact]
        g.stable[contact] = active
        return self._edge(g, contact, active, candidate.first_wall)

    def _edge(self, g: _Group, contact: Contact, active: bool, at: datetime) -> list[Change]:
        key = g.key(contact)
        if active and g.test_mode:
            g.tripped_in_test.add(contact)
        if active and contact not in g.alarm:
            test = g.test_mode and g.reset is None
            g.alarm[contact] = test
            info = g.name if contact is not Contact.HEALTHY else f"{g.name}: healthy contact open"
            return [Change(True, key, at, info=info, test=test)]
        if not active and contact in g.alarm:
            test = g.alarm.pop(contact)
            return [Change(False, key, at, test=test)]
        return []

    def _judge(self, g: _Group, mono: float, wall: datetime) -> list[Change]:
        changes: list[Change] = []
        pulsed = g.test_pulsed_at
        if pulsed is not None and mono >= pulsed + self.settings.settle:
            g.test_pulsed_at = None
            # Judged on what tripped since the pulse: a reset may have cleared it already.
            silent = [c.value for c in _LATCHING if c in g.contacts and c not in g.tripped_in_test]
            if silent:
                info = f"{g.name}: self-test did not trip {' and '.join(silent)}"
                changes += self._open(g.self_test_key(), wall, info, True)
        job = g.reset
        if job is not None and job.pulsed_at is not None:
            if mono < job.pulsed_at + self.settings.settle:
                return changes
            g.reset = None
            g.test_mode = False
            for contact in _LATCHING:
                if contact in g.alarm and g.stable[contact]:
                    # §7.9: the cause is still there, the indicator re-entered the fault.
                    test = g.alarm[contact]
                    g.alarm[contact] = False
                    key = g.key(contact)
                    changes.append(Change(False, key, wall, test=test, reraised=True))
                    changes.append(Change(True, key, wall, info=g.name, test=False))
            changes += self._close(g.self_test_key(), wall)
            changes += self._close(g.reset_failure_key(), wall)
        return changes
