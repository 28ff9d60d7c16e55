"""The lights controller's decisions, as a pure state machine: inputs in, effects out.

No I/O and no clock: `Reconciler.step` is given what the schedule and the
remote overrides want, one snapshot of the I/O module, the wall time to stamp
events with and a monotonic time for timeouts; it returns what to do (coil
commands, then the events they and the snapshot call for). The asyncio shell
(`rtu.lights.controller`) performs the effects. Tests drive this class with
tables and hypothesis, without a module or a loop.

Per contactor, at every step:

1. **Mode** (§6.7). LocalOverride while the station-wide switch is engaged,
   else RemoteOverride while an OverrideStreetlight holds the contactor, else
   Schedule (DESIGN.md "Lights: safety rules"). A change, or a report owed
   because an Override/Resume was accepted (§7.6, §7.7 send one "with the
   current mode" even when it did not change), gives a `ModeChanged`.
2. **Transitions** (§6.8). The feedback input is the truth about the lights.
   A value different from the last one reported gives a `LightsSwitched`; it
   is *expected* only if it reaches the target of a command we issued and the
   local switch is released; anything else (a hand-flipped or welded
   contactor, the technician's switch) is `unexpected`.
3. **Command**. Desired = the remote override's held state, else the
   schedule's. A coil is written only when the module reports it different
   from desired *and* no command for that value is already under way: a coil
   that matches is never written, so a restart (which adopts the module's
   state) never blinks the lights. Nothing is commanded while the local
   switch is engaged: the technician has the station.
4. **Power switch failure**. Coil and feedback disagreeing for longer than
   `feedback_timeout` gives `SwitchFailure(failed=True)` once; agreement again
   gives `SwitchFailure(failed=False)` (the NoError that resolves it). Not
   judged under local override, where the switch may bypass the coils.

A command that was written but whose coil still reads otherwise after
`feedback_timeout` (lost write, another Modbus master) is forgotten, so the
next step writes it again: one retry per timeout, never a write storm.

What was last *reported* (mode, lights, failure) is the state that matters
across restarts: the shell persists it after the events are committed and
hands it back at start, so a change that happened while the daemon was down
is reported once, and nothing is reported twice in a row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import datetime

from os3p.messages import StreetlightMode
from rtu.io.model import IOSnapshot

__all__ = [
    "Command",
    "Effect",
    "Inputs",
    "LightsSwitched",
    "ModeChanged",
    "Reconciler",
    "Reported",
    "SwitchFailure",
    "mode_of",
]


@dataclasses.dataclass(frozen=True, slots=True)
class Command:
    """Write contactor `contactor`'s coil."""

    contactor: int
    on: bool


@dataclasses.dataclass(frozen=True, slots=True)
class LightsSwitched:
    """The feedback input changed: StreetlightStatusNotification (§6.8)."""

    contactor: int
    on: bool
    unexpected: bool
    at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class ModeChanged:
    """StreetlightModeStatusNotification (§6.7) for one contactor."""

    contactor: int
    mode: StreetlightMode
    at: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class SwitchFailure:
    """StatusNotification PowerSwitchFailure (`failed`) or its resolution (NoError)."""

    contactor: int
    failed: bool
    at: datetime


Effect = Command | LightsSwitched | ModeChanged | SwitchFailure


@dataclasses.dataclass(frozen=True, slots=True)
class Inputs:
    """What is wanted, per contactor."""

    schedule: Mapping[int, bool]  # the schedule engine's verdict now
    overrides: Mapping[int, bool]  # contactors under remote override -> the state held


@dataclasses.dataclass(frozen=True, slots=True)
class Reported:
    """What the central was last told about one contactor; None: never told."""

    mode: StreetlightMode | None = None
    lights: bool | None = None
    failed: bool = False


@dataclasses.dataclass(slots=True)
class _Track:
    reported: Reported
    feedback: bool | None = None  # last seen on the module
    coil: bool | None = None
    pending: bool | None = None  # target of the command under way
    pending_since: float = 0.0
    writing: bool = False  # the shell has not finished the write yet
    disagree_since: float | None = None
    mode_due: bool = False


def mode_of(contactor: int, local_switch: bool, overrides: Mapping[int, bool]) -> StreetlightMode:
    """Precedence: local switch > remote override > schedule."""
    if local_switch:
        return StreetlightMode.LOCAL_OVERRIDE
    if contactor in overrides:
        return StreetlightMode.REMOTE_OVERRIDE
    return StreetlightMode.SCHEDULE


class Reconciler:
    """Per-contactor memory of what was seen, commanded and reported."""

    def __init__(
        self,
        contactors: Iterable[int],
        *,
        feedback_timeout: float,
        reported: Mapping[int, Reported] | None = None,
    ) -> None:
        known = reported or {}
        self._tracks = {c: _Track(known.get(c, Reported())) for c in sorted(contactors)}
        self._timeout = feedback_timeout
        self.local_switch: bool | None = None  # None until the module has been read
        self.available = False

    @property
    def contactors(self) -> tuple[int, ...]:
        return tuple(self._tracks)

    def reported(self, contactor: int) -> Reported:
        return self._tracks[contactor].reported

    def feedback(self, contactor: int) -> bool | None:
        """The lights as last seen (None: never read)."""
        return self._tracks[contactor].feedback

    def coil(self, contactor: int) -> bool | None:
        return self._tracks[contactor].coil

    def report_mode(self, contactors: Iterable[int]) -> None:
        """Owe a mode notification at the next step (an Override or Resume was accepted)."""
        for contactor in contactors:
            self._tracks[contactor].mode_due = True

    @property
    def settled(self) -> bool:
        """Nothing under way whose outcome depends on time passing.

        After a step that had no effects, a settled reconciler given the same
        snapshot and inputs again has none either: only a new snapshot or new
        inputs can change anything. The shell uses this to skip the identical
        snapshots a fast poll delivers.
        """
        return all(
            t.pending is None and t.disagree_since is None and not t.writing and not t.mode_due
            for t in self._tracks.values()
        )

    def write_done(self, contactor: int, *, ok: bool) -> None:
        """The shell finished a `Command`; a failed write is retried at the next step."""
        track = self._tracks[contactor]
        track.writing = False
        if not ok:
            track.pending = None

    @staticmethod
    def desired(contactor: int, inputs: Inputs) -> bool | None:
        if contactor in inputs.overrides:
            return inputs.overrides[contactor]
        return inputs.schedule.get(contactor)

    def step(
        self, inputs: Inputs, snapshot: IOSnapshot | None, now: datetime, mono: float
    ) -> list[Effect]:
        """Commands first (they are the time-critical part), then events in order."""
        if snapshot is None:
            # Unreachable: remember nothing new. What changed meanwhile is seen
            # (and reported) against the last known state when it is back.
            self.available = False
            return []
        self.available = True
        self.local_switch = switch = snapshot.local_switch
        commands: list[Effect] = []
        events: list[Effect] = []
        for contactor, track in self._tracks.items():
            feedback = snapshot.feedback.get(contactor)
            coil = snapshot.coils.get(contactor)
            if feedback is None or coil is None:
                continue  # not wired on this module
            self._note_mode(track, mode_of(contactor, switch, inputs.overrides))
            events.extend(self._take_mode_event(contactor, track, now))
            events.extend(self._transition(contactor, track, feedback, switch, now))
            track.feedback, track.coil = feedback, coil
            if switch:
                track.pending = None
                track.disagree_since = None
                continue
            commands.extend(self._command(contactor, track, self.desired(contactor, inputs), mono))
            events.extend(self._judge(contactor, track, now, mono))
        return commands + events

    # The mode event is decided in two halves so `step` reads top to bottom.
    @staticmethod
    def _note_mode(track: _Track, mode: StreetlightMode) -> None:
        if track.reported.mode is None:
            # First sight ever: adopt silently, like the lights (nothing *changed*).
            track.reported = dataclasses.replace(track.reported, mode=mode)
        elif track.reported.mode is not mode:
            track.mode_due = True
            track.reported = dataclasses.replace(track.reported, mode=mode)

    @staticmethod
    def _take_mode_event(contactor: int, track: _Track, now: datetime) -> list[Effect]:
        if not track.mode_due or track.reported.mode is None:
            return []
        track.mode_due = False
        return [ModeChanged(contactor, track.reported.mode, now)]

    @staticmethod
    def _transition(
        contactor: int, track: _Track, feedback: bool, switch: bool, now: datetime
    ) -> list[Effect]:
        events: list[Effect] = []
        if track.reported.lights is None:
            track.reported = dataclasses.replace(track.reported, lights=feedback)
        elif feedback != track.reported.lights:
            expected = not switch and track.pending == feedback
            events.append(LightsSwitched(contactor, feedback, not expected, now))
            track.reported = dataclasses.replace(track.reported, lights=feedback)
        if track.pending is not None and feedback == track.pending:
            track.pending = None
        return events

    def _command(
        self, contactor: int, track: _Track, want: bool | None, mono: float
    ) -> list[Effect]:
        if want is None or track.writing:
            return []
        # Neither the module's coil nor a write under way already says `want`.
        if want not in (track.coil, track.pending):
            track.pending, track.pending_since, track.writing = want, mono, True
            return [Command(contactor, want)]
        if (
            track.pending is not None
            and track.coil != track.pending
            and mono - track.pending_since > self._timeout
        ):
            track.pending = None  # the write did not take: the next step writes again
        return []

    def _judge(self, contactor: int, track: _Track, now: datetime, mono: float) -> list[Effect]:
        if track.coil != track.feedback:
            if track.disagree_since is None:
                track.disagree_since = mono
            if not track.reported.failed and mono - track.disagree_since >= self._timeout:
                track.reported = dataclasses.replace(track.reported, failed=True)
                return [SwitchFailure(contactor, failed=True, at=now)]
            return []
        track.disagree_since = None
        if track.reported.failed:
            track.reported = dataclasses.replace(track.reported, failed=False)
            return [SwitchFailure(contactor, failed=False, at=now)]
        return []
