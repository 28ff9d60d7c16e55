"""The firmware update as a pure state machine: `step(state, event) -> Outcome`.

This file holds the phases, the events, the transition table and the state's
JSON form, and nothing that does I/O or reads a clock: `now` arrives inside
events. The agent (`rtu.firmware.agent`) and the pre-start rollback check
(`rtu.firmware.rollback`) feed it events and carry out the returned actions
*after* persisting the new state, so a crash at any point leaves a state that
`Started` can resume or fail cleanly.

Theory of operation
-------------------
    IDLE ─Requested─▶ SCHEDULED ─DownloadBegan─▶ DOWNLOADING ─Downloaded─▶ DOWNLOADED
                          ▲                        │ attempt failed, retries left
                          └────────────────────────┘ (no retries left: DownloadFailed → IDLE)
    DOWNLOADED ─InstallBegan─▶ INSTALLING ─InstallFailed─▶ IDLE (InstallationFailed)
    INSTALLING ─ReleaseReady─▶ TRIAL   actions: switch `current` to the new release, restart
    TRIAL ─Accepted(new version)─▶ IDLE (Installed)
    TRIAL ─deadline passed / too many starts─▶ ROLLED_BACK  actions: switch back, restart
    ROLLED_BACK ─Started(old version)─▶ IDLE (InstallationFailed)
    TRIAL, ROLLED_BACK ─a rollback due, previous release missing─▶ IDLE (InstallationFailed)

Rules the property tests hold us to: at most one release is designated current
(`designated_current`), and `Installed` is only ever emitted on an `Accepted`
whose version is the one being installed.

A new `Requested` while an update runs (the response to UpdateFirmware has no
status, §7.13): before INSTALLING it replaces the running request (the old one
gets no further notification); from INSTALLING on, the running update finishes
and the new request is refused with DownloadFailed under its own requestId.

Crash recovery (`Started`, at daemon start before READY): an interrupted
download counts as a failed attempt and is retried per the request; DOWNLOADED
carries on installing; an interrupted INSTALLING fails cleanly (the half-built
release is discarded; `current` was never touched); TRIAL and ROLLED_BACK are
decided by which version runs and where `current` points.

The trial deadline is an instant on the machine's boot clock (`BootInstant`, see
`rtu.firmware.bootclock`), never wall time: a clock correction from the central, an
NTP step or an RTC reset neither triggers nor postpones a rollback, and a daemon
restart (same boot) keeps the deadline it had. A *reboot* during the trial starts a
fresh window of `window` seconds at the first start after it: the instants of two
boots cannot be compared, and a power cut, not the release, used up the time; the
start counter (`max_starts`) still bounds how often that can happen.

A rollback is only carried out when the release to fall back to is installed
(events carry `installed`, the release directories present). If it is gone, the
running release stays current, the trial ends with InstallationFailed and the reason
says why: switching `current` to a missing directory would leave nothing to start.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeAlias

__all__ = [
    "TRANSITIONS",
    "Accepted",
    "BootInstant",
    "DeadlineExpired",
    "DiscardDownload",
    "DiscardRelease",
    "DownloadAttemptFailed",
    "DownloadBegan",
    "Downloaded",
    "Event",
    "FirmwareState",
    "InstallBegan",
    "InstallFailed",
    "Outcome",
    "Phase",
    "ReleaseReady",
    "Request",
    "Requested",
    "Restart",
    "StartAttempt",
    "Started",
    "Status",
    "SwitchCurrent",
    "designated_current",
    "reported_status",
    "step",
]


class Phase(enum.StrEnum):
    IDLE = "idle"
    SCHEDULED = "scheduled"
    DOWNLOADING = "downloading"
    DOWNLOADED = "downloaded"
    INSTALLING = "installing"
    TRIAL = "trial"  # `current` is the new release; waiting for its Accepted boot
    ROLLED_BACK = "rolled_back"  # `current` is the old release again; report when it runs


class Status(enum.StrEnum):
    """FirmwareStatusNotification `status` (§6.3.1); same wire values as os3p's enum."""

    NONE = "None"
    DOWNLOADING = "Downloading"
    DOWNLOADED = "Downloaded"
    DOWNLOAD_FAILED = "DownloadFailed"
    INSTALLING = "Installing"
    INSTALLATION_FAILED = "InstallationFailed"
    INSTALLED = "Installed"


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    """An UpdateFirmware (§7.13), with the station's defaults filled in."""

    location: str
    retrieve_at: datetime
    retries: int
    retry_interval: int  # seconds
    request_id: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class BootInstant:
    """`seconds` on CLOCK_BOOTTIME during the boot `boot_id`; comparable only within
    one boot."""

    boot_id: str
    seconds: float


@dataclasses.dataclass(frozen=True, slots=True)
class FirmwareState:
    phase: Phase = Phase.IDLE
    request: Request | None = None
    attempts: int = 0  # download attempts begun for `request`
    not_before: datetime | None = None  # SCHEDULED: earliest next attempt
    target: str | None = None  # version being installed (known once downloaded)
    previous: str | None = None  # TRIAL/ROLLED_BACK: the release to fall back to
    deadline: BootInstant | None = None  # TRIAL: Accepted must come before this
    window: float = 0.0  # TRIAL: seconds from the switch (or a reboot) to the deadline
    max_starts: int = 0  # TRIAL: more starts than this without Accepted roll back
    starts: int = 0  # TRIAL: starts of the new release so far
    last_invocation: str | None = None  # the start last counted (systemd INVOCATION_ID)
    reason: str | None = None  # why the last attempt or install failed

    @property
    def request_id(self) -> str | None:
        return self.request.request_id if self.request else None

    def to_json(self) -> str:
        def plain(value: object) -> object:
            if isinstance(value, datetime):
                return value.isoformat()
            if isinstance(value, Request | BootInstant):
                return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
            return value

        return json.dumps(
            {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)},
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> FirmwareState:
        raw: dict[str, Any] = json.loads(text)

        def when(value: str | None) -> datetime | None:
            return None if value is None else datetime.fromisoformat(value)

        request = raw.get("request")
        deadline = raw.get("deadline")
        return cls(
            phase=Phase(raw["phase"]),
            request=None
            if request is None
            else Request(
                location=request["location"],
                retrieve_at=datetime.fromisoformat(request["retrieve_at"]),
                retries=request["retries"],
                retry_interval=request["retry_interval"],
                request_id=request["request_id"],
            ),
            attempts=raw["attempts"],
            not_before=when(raw["not_before"]),
            target=raw["target"],
            previous=raw["previous"],
            deadline=None
            if not isinstance(deadline, dict)  # None, or a wall-clock deadline of 0.1.0
            else BootInstant(deadline["boot_id"], deadline["seconds"]),
            window=raw.get("window", 0.0),
            max_starts=raw["max_starts"],
            starts=raw["starts"],
            last_invocation=raw["last_invocation"],
            reason=raw["reason"],
        )


# --- events -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Requested:
    request: Request


@dataclasses.dataclass(frozen=True, slots=True)
class DownloadBegan:
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class DownloadAttemptFailed:
    reason: str
    now: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Downloaded:
    version: str  # from the (not yet trusted) manifest: checked again at install


@dataclasses.dataclass(frozen=True, slots=True)
class InstallBegan:
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class InstallFailed:
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class ReleaseReady:
    """The new release is built and verified; `previous` is where `current` points now."""

    previous: str
    at: BootInstant  # when the switch happens
    window: float  # seconds the new release has to reach Accepted
    max_starts: int


@dataclasses.dataclass(frozen=True, slots=True)
class StartAttempt:
    """A start of the daemon is about to happen (ExecStartPre) or happening (before READY).

    Both count the same start once: `invocation` is systemd's INVOCATION_ID,
    shared by ExecStartPre= and ExecStart= of one start.
    """

    current: str | None  # the release `current` points at
    invocation: str
    boot: BootInstant
    installed: frozenset[str]  # the release directories present


@dataclasses.dataclass(frozen=True, slots=True)
class Started:
    """The daemon runs `running` (its own version); `current` as in StartAttempt."""

    running: str
    current: str | None
    now: datetime
    installed: frozenset[str]


@dataclasses.dataclass(frozen=True, slots=True)
class Accepted:
    """The link reached Accepted while running `running`."""

    running: str


@dataclasses.dataclass(frozen=True, slots=True)
class DeadlineExpired:
    running: str
    boot: BootInstant
    installed: frozenset[str]


Event: TypeAlias = (
    Requested
    | DownloadBegan
    | DownloadAttemptFailed
    | Downloaded
    | InstallBegan
    | InstallFailed
    | ReleaseReady
    | StartAttempt
    | Started
    | Accepted
    | DeadlineExpired
)


# --- actions: carried out by the shell after the new state is persisted ---------------------


@dataclasses.dataclass(frozen=True, slots=True)
class SwitchCurrent:
    version: str


@dataclasses.dataclass(frozen=True, slots=True)
class Restart:
    """Stop the daemon cleanly so systemd starts it again through `current`."""


@dataclasses.dataclass(frozen=True, slots=True)
class DiscardRelease:
    version: str


@dataclasses.dataclass(frozen=True, slots=True)
class DiscardDownload:
    pass


Action: TypeAlias = SwitchCurrent | Restart | DiscardRelease | DiscardDownload


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    state: FirmwareState
    emit: tuple[tuple[Status, str | None], ...] = ()  # (status, requestId)
    actions: tuple[Action, ...] = ()


# --- transitions ----------------------------------------------------------------------------

_IDLE = FirmwareState()


def _scheduled(request: Request) -> Outcome:
    return Outcome(
        FirmwareState(Phase.SCHEDULED, request=request, not_before=request.retrieve_at),
        actions=(DiscardDownload(),),
    )


def _requested_replaces(state: FirmwareState, event: Requested) -> Outcome:
    return _scheduled(event.request)


def _requested_refused(state: FirmwareState, event: Requested) -> Outcome:
    # Busy installing: the running update finishes; the newcomer is told it failed.
    return Outcome(state, emit=((Status.DOWNLOAD_FAILED, event.request.request_id),))


def _download_began(state: FirmwareState, event: DownloadBegan) -> Outcome:
    return Outcome(
        dataclasses.replace(state, phase=Phase.DOWNLOADING, attempts=state.attempts + 1),
        emit=((Status.DOWNLOADING, state.request_id),),
    )


def _attempt_failed(state: FirmwareState, event: DownloadAttemptFailed) -> Outcome:
    assert state.request is not None
    if state.attempts > state.request.retries:  # §7.13 `retries`: attempts after the first
        return Outcome(
            dataclasses.replace(_IDLE, reason=event.reason),
            emit=((Status.DOWNLOAD_FAILED, state.request_id),),
            actions=(DiscardDownload(),),
        )
    return Outcome(
        dataclasses.replace(
            state,
            phase=Phase.SCHEDULED,
            not_before=event.now + timedelta(seconds=state.request.retry_interval),
            reason=event.reason,
        ),
        actions=(DiscardDownload(),),
    )


def _downloaded(state: FirmwareState, event: Downloaded) -> Outcome:
    return Outcome(
        dataclasses.replace(state, phase=Phase.DOWNLOADED, target=event.version),
        emit=((Status.DOWNLOADED, state.request_id),),
    )


def _install_began(state: FirmwareState, event: InstallBegan) -> Outcome:
    return Outcome(
        dataclasses.replace(state, phase=Phase.INSTALLING),
        emit=((Status.INSTALLING, state.request_id),),
    )


def _install_failed(state: FirmwareState, event: InstallFailed) -> Outcome:
    actions: tuple[Action, ...] = (DiscardDownload(),)
    if state.target is not None:
        actions = (DiscardRelease(state.target), DiscardDownload())
    return Outcome(
        dataclasses.replace(_IDLE, reason=event.reason),
        emit=((Status.INSTALLATION_FAILED, state.request_id),),
        actions=actions,
    )


def _release_ready(state: FirmwareState, event: ReleaseReady) -> Outcome:
    assert state.target is not None
    return Outcome(
        dataclasses.replace(
            state,
            phase=Phase.TRIAL,
            previous=event.previous,
            deadline=BootInstant(event.at.boot_id, event.at.seconds + event.window),
            window=event.window,
            max_starts=event.max_starts,
            starts=0,
            last_invocation=None,
        ),
        actions=(DiscardDownload(), SwitchCurrent(state.target), Restart()),
    )


def _roll_back(
    state: FirmwareState, reason: str, *, restart: bool, installed: frozenset[str]
) -> Outcome:
    assert state.previous is not None
    if state.previous not in installed:
        return _cannot_roll_back(state, reason)
    actions: tuple[Action, ...] = (SwitchCurrent(state.previous),)
    return Outcome(
        dataclasses.replace(state, phase=Phase.ROLLED_BACK, reason=reason),
        actions=(*actions, Restart()) if restart else actions,
    )


def _cannot_roll_back(state: FirmwareState, reason: str) -> Outcome:
    """The release to fall back to is gone: keep the running one, end the trial."""
    return Outcome(
        dataclasses.replace(
            _IDLE,
            reason=f"{reason}; cannot roll back: release {state.previous} is not installed,"
            f" {state.target} stays current",
        ),
        emit=((Status.INSTALLATION_FAILED, state.request_id),),
    )


def _expired(deadline: BootInstant | None, now: BootInstant) -> bool:
    if deadline is None or deadline.boot_id != now.boot_id:
        return False
    return now.seconds >= deadline.seconds


def _trial_start_attempt(state: FirmwareState, event: StartAttempt) -> Outcome:
    if event.current != state.target or event.invocation == state.last_invocation:
        return Outcome(state)
    counted = dataclasses.replace(state, starts=state.starts + 1, last_invocation=event.invocation)
    if counted.deadline is not None and counted.deadline.boot_id != event.boot.boot_id:
        # Rebooted during the trial: a fresh window from this start (theory above).
        fresh = BootInstant(event.boot.boot_id, event.boot.seconds + counted.window)
        counted = dataclasses.replace(counted, deadline=fresh)
    if counted.starts > counted.max_starts:
        return _roll_back(
            counted,
            f"{counted.starts - 1} starts without an Accepted boot",
            restart=False,
            installed=event.installed,
        )
    if _expired(counted.deadline, event.boot):
        return _roll_back(
            counted,
            "no Accepted boot before the deadline",
            restart=False,
            installed=event.installed,
        )
    return Outcome(counted)


def _started_downloading(state: FirmwareState, event: Started) -> Outcome:
    return _attempt_failed(state, DownloadAttemptFailed("interrupted by a restart", event.now))


def _started_installing(state: FirmwareState, event: Started) -> Outcome:
    return _install_failed(state, InstallFailed("installation interrupted by a restart"))


def _started_trial(state: FirmwareState, event: Started) -> Outcome:
    if event.running == state.target:
        return Outcome(state)  # the new release runs: wait for Accepted or the deadline
    if event.current == state.target:
        return Outcome(state, actions=(Restart(),))  # switched, but this is the old process
    # `current` never reached the new release (killed between persisting and switching).
    return _install_failed(state, InstallFailed("interrupted before the switch to the release"))


def _rolled_back_start_attempt(state: FirmwareState, event: StartAttempt) -> Outcome:
    # Killed between persisting ROLLED_BACK and switching: finish the switch now.
    if state.previous is not None and event.current != state.previous:
        if state.previous not in event.installed:
            return _cannot_roll_back(state, state.reason or "rolled back")
        return Outcome(state, actions=(SwitchCurrent(state.previous),))
    return Outcome(state)


def _started_rolled_back(state: FirmwareState, event: Started) -> Outcome:
    if event.running == state.target:
        return _roll_back(
            state, state.reason or "rolled back", restart=True, installed=event.installed
        )
    assert state.target is not None
    return Outcome(
        dataclasses.replace(_IDLE, reason=state.reason),
        emit=((Status.INSTALLATION_FAILED, state.request_id),),
        actions=(DiscardRelease(state.target),),
    )


def _accepted(state: FirmwareState, event: Accepted) -> Outcome:
    if event.running != state.target:
        return Outcome(state)
    return Outcome(_IDLE, emit=((Status.INSTALLED, state.request_id),))


def _deadline_expired(state: FirmwareState, event: DeadlineExpired) -> Outcome:
    if event.running != state.target or not _expired(state.deadline, event.boot):
        return Outcome(state)
    return _roll_back(
        state, "no Accepted boot before the deadline", restart=True, installed=event.installed
    )


_Handler: TypeAlias = Callable[[FirmwareState, Any], Outcome]

# (phase, event type) → handler. A pair that is not listed leaves the state unchanged.
TRANSITIONS: Mapping[tuple[Phase, type[Any]], _Handler] = {
    (Phase.IDLE, Requested): _requested_replaces,
    (Phase.SCHEDULED, Requested): _requested_replaces,
    (Phase.SCHEDULED, DownloadBegan): _download_began,
    (Phase.DOWNLOADING, Requested): _requested_replaces,
    (Phase.DOWNLOADING, DownloadAttemptFailed): _attempt_failed,
    (Phase.DOWNLOADING, Downloaded): _downloaded,
    (Phase.DOWNLOADING, Started): _started_downloading,
    (Phase.DOWNLOADED, Requested): _requested_replaces,
    (Phase.DOWNLOADED, InstallBegan): _install_began,
    (Phase.INSTALLING, Requested): _requested_refused,
    (Phase.INSTALLING, InstallFailed): _install_failed,
    (Phase.INSTALLING, ReleaseReady): _release_ready,
    (Phase.INSTALLING, Started): _started_installing,
    (Phase.TRIAL, Requested): _requested_refused,
    (Phase.TRIAL, StartAttempt): _trial_start_attempt,
    (Phase.TRIAL, Started): _started_trial,
    (Phase.TRIAL, Accepted): _accepted,
    (Phase.TRIAL, DeadlineExpired): _deadline_expired,
    (Phase.ROLLED_BACK, Requested): _requested_refused,
    (Phase.ROLLED_BACK, StartAttempt): _rolled_back_start_attempt,
    (Phase.ROLLED_BACK, Started): _started_rolled_back,
}


def step(state: FirmwareState, event: Event) -> Outcome:
    handler = TRANSITIONS.get((state.phase, type(event)))
    if handler is None:
        return Outcome(state)
    return handler(state, event)


def reported_status(state: FirmwareState) -> Status:
    """What TriggerMessage FirmwareStatusNotification answers (§4.1: None when idle).

    SCHEDULED reports None: nothing has happened yet and §6.3 has no "scheduled".
    TRIAL reports Installing: the release is in place but not yet confirmed.
    """
    return {
        Phase.IDLE: Status.NONE,
        Phase.SCHEDULED: Status.NONE,
        Phase.DOWNLOADING: Status.DOWNLOADING,
        Phase.DOWNLOADED: Status.DOWNLOADED,
        Phase.INSTALLING: Status.INSTALLING,
        Phase.TRIAL: Status.INSTALLING,
        Phase.ROLLED_BACK: Status.INSTALLATION_FAILED,
    }[state.phase]


def designated_current(state: FirmwareState) -> str | None:
    """The release the state says `current` must point at (None: whatever runs)."""
    if state.phase is Phase.TRIAL:
        return state.target
    if state.phase is Phase.ROLLED_BACK:
        return state.previous
    return None
