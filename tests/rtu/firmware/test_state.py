"""The firmware state machine: the table row by row, then hypothesis over event sequences."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtu.firmware.state import (
    TRANSITIONS,
    Accepted,
    BootInstant,
    DeadlineExpired,
    DiscardDownload,
    DiscardRelease,
    DownloadAttemptFailed,
    DownloadBegan,
    Downloaded,
    Event,
    FirmwareState,
    InstallBegan,
    InstallFailed,
    Phase,
    ReleaseReady,
    Request,
    Requested,
    Restart,
    StartAttempt,
    Started,
    Status,
    SwitchCurrent,
    designated_current,
    reported_status,
    step,
)

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
REQ = Request("http://x/b.tar", T0, retries=1, retry_interval=30, request_id="r1")
OLD, NEW = "0.1.0", "0.2.0"
B0 = BootInstant("boot-1", 100.0)  # the switch to the new release, on the boot clock
WINDOW = 600.0
LATE = BootInstant("boot-1", 100.0 + WINDOW)
BOTH = frozenset({OLD, NEW})
ONLY_NEW = frozenset({NEW})  # the previous release's directory was deleted


def state(phase: Phase, **changes: object) -> FirmwareState:
    base = FirmwareState(phase, request=REQ, not_before=T0)
    if phase in (Phase.DOWNLOADED, Phase.INSTALLING, Phase.TRIAL, Phase.ROLLED_BACK):
        base = dataclasses.replace(base, target=NEW, attempts=1)
    if phase in (Phase.TRIAL, Phase.ROLLED_BACK):
        base = dataclasses.replace(
            base,
            previous=OLD,
            deadline=BootInstant(B0.boot_id, B0.seconds + WINDOW),
            window=WINDOW,
            max_starts=2,
        )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


# (id, state before, event, phase after, statuses emitted, actions)
CASES = [
    ("request", FirmwareState(), Requested(REQ), Phase.SCHEDULED, [], [DiscardDownload()]),
    ("begin", state(Phase.SCHEDULED), DownloadBegan(), Phase.DOWNLOADING,
     [Status.DOWNLOADING], []),
    ("retry", state(Phase.DOWNLOADING, attempts=1), DownloadAttemptFailed("x", T0),
     Phase.SCHEDULED, [], [DiscardDownload()]),
    ("give-up", state(Phase.DOWNLOADING, attempts=2), DownloadAttemptFailed("x", T0),
     Phase.IDLE, [Status.DOWNLOAD_FAILED], [DiscardDownload()]),
    ("downloaded", state(Phase.DOWNLOADING, attempts=1), Downloaded(NEW), Phase.DOWNLOADED,
     [Status.DOWNLOADED], []),
    ("install", state(Phase.DOWNLOADED), InstallBegan(), Phase.INSTALLING,
     [Status.INSTALLING], []),
    ("install-fails", state(Phase.INSTALLING), InstallFailed("bad signature"), Phase.IDLE,
     [Status.INSTALLATION_FAILED], [DiscardRelease(NEW), DiscardDownload()]),
    ("ready", state(Phase.INSTALLING), ReleaseReady(OLD, B0, WINDOW, 2), Phase.TRIAL, [],
     [DiscardDownload(), SwitchCurrent(NEW), Restart()]),
    ("accepted-new", state(Phase.TRIAL), Accepted(NEW), Phase.IDLE, [Status.INSTALLED], []),
    ("accepted-old-ignored", state(Phase.TRIAL), Accepted(OLD), Phase.TRIAL, [], []),
    ("deadline", state(Phase.TRIAL), DeadlineExpired(NEW, LATE, BOTH),
     Phase.ROLLED_BACK, [], [SwitchCurrent(OLD), Restart()]),
    ("deadline-early", state(Phase.TRIAL), DeadlineExpired(NEW, B0, BOTH), Phase.TRIAL, [], []),
    ("start-counted", state(Phase.TRIAL), StartAttempt(NEW, "a", B0, BOTH), Phase.TRIAL, [], []),
    ("too-many-starts", state(Phase.TRIAL, starts=2, last_invocation="b"),
     StartAttempt(NEW, "c", B0, BOTH), Phase.ROLLED_BACK, [], [SwitchCurrent(OLD)]),
    ("same-start-once", state(Phase.TRIAL, starts=2, last_invocation="c"),
     StartAttempt(NEW, "c", B0, BOTH), Phase.TRIAL, [], []),
    ("rollback-finished", state(Phase.ROLLED_BACK), Started(OLD, OLD, T0, BOTH), Phase.IDLE,
     [Status.INSTALLATION_FAILED], [DiscardRelease(NEW)]),
    ("rollback-switch-resumed", state(Phase.ROLLED_BACK), StartAttempt(NEW, "d", B0, BOTH),
     Phase.ROLLED_BACK, [], [SwitchCurrent(OLD)]),
    ("killed-downloading", state(Phase.DOWNLOADING, attempts=1), Started(OLD, OLD, T0, BOTH),
     Phase.SCHEDULED, [], [DiscardDownload()]),
    ("killed-installing", state(Phase.INSTALLING), Started(OLD, OLD, T0, BOTH), Phase.IDLE,
     [Status.INSTALLATION_FAILED], [DiscardRelease(NEW), DiscardDownload()]),
    ("killed-before-switch", state(Phase.TRIAL), Started(OLD, OLD, T0, BOTH), Phase.IDLE,
     [Status.INSTALLATION_FAILED], [DiscardRelease(NEW), DiscardDownload()]),
    ("old-process-after-switch", state(Phase.TRIAL), Started(OLD, NEW, T0, BOTH), Phase.TRIAL, [],
     [Restart()]),
    ("start-after-the-deadline", state(Phase.TRIAL), StartAttempt(NEW, "a", LATE, BOTH),
     Phase.ROLLED_BACK, [], [SwitchCurrent(OLD)]),
    ("deadline-of-another-boot-ignored", state(Phase.TRIAL),
     DeadlineExpired(NEW, BootInstant("boot-2", 1e6), BOTH), Phase.TRIAL, [], []),
    ("start-after-a-reboot-not-expired", state(Phase.TRIAL),
     StartAttempt(NEW, "a", BootInstant("boot-2", 1e6), BOTH), Phase.TRIAL, [], []),
    ("deadline-previous-missing", state(Phase.TRIAL), DeadlineExpired(NEW, LATE, ONLY_NEW),
     Phase.IDLE, [Status.INSTALLATION_FAILED], []),
    ("too-many-starts-previous-missing", state(Phase.TRIAL, starts=2, last_invocation="b"),
     StartAttempt(NEW, "c", B0, ONLY_NEW), Phase.IDLE, [Status.INSTALLATION_FAILED], []),
    ("rolled-back-new-runs-previous-missing", state(Phase.ROLLED_BACK),
     Started(NEW, NEW, T0, ONLY_NEW), Phase.IDLE, [Status.INSTALLATION_FAILED], []),
    ("rollback-switch-resumed-previous-missing", state(Phase.ROLLED_BACK),
     StartAttempt(NEW, "d", B0, ONLY_NEW), Phase.IDLE, [Status.INSTALLATION_FAILED], []),
    ("second-request-replaces", state(Phase.DOWNLOADING), Requested(dataclasses.replace(
        REQ, request_id="r2")), Phase.SCHEDULED, [], [DiscardDownload()]),
    ("second-request-refused", state(Phase.INSTALLING), Requested(dataclasses.replace(
        REQ, request_id="r2")), Phase.INSTALLING, [Status.DOWNLOAD_FAILED], []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("before", "event", "phase", "emitted", "actions"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_transition_table(
    before: FirmwareState,
    event: Event,
    phase: Phase,
    emitted: list[Status],
    actions: list[object],
) -> None:
    outcome = step(before, event)
    assert outcome.state.phase is phase
    assert [status for status, _ in outcome.emit] == emitted
    assert list(outcome.actions) == actions


def test_statuses_echo_the_request_id_and_the_refused_request_its_own() -> None:
    assert step(state(Phase.SCHEDULED), DownloadBegan()).emit == ((Status.DOWNLOADING, "r1"),)
    other = dataclasses.replace(REQ, request_id="r2")
    assert step(state(Phase.TRIAL), Requested(other)).emit == ((Status.DOWNLOAD_FAILED, "r2"),)


def test_the_deadline_is_the_switch_plus_the_window_on_the_boot_clock() -> None:
    outcome = step(state(Phase.INSTALLING), ReleaseReady(OLD, B0, WINDOW, 2))
    assert outcome.state.deadline == BootInstant("boot-1", 100.0 + WINDOW)
    assert outcome.state.window == WINDOW
    just_before = BootInstant("boot-1", 100.0 + WINDOW - 0.001)
    assert step(outcome.state, DeadlineExpired(NEW, just_before, BOTH)).state == outcome.state
    assert step(outcome.state, DeadlineExpired(NEW, LATE, BOTH)).state.phase is Phase.ROLLED_BACK


def test_a_reboot_during_the_trial_starts_a_fresh_window_at_the_next_start() -> None:
    rebooted = BootInstant("boot-2", 30.0)  # the power came back 30 s ago
    counted = step(state(Phase.TRIAL), StartAttempt(NEW, "a", rebooted, BOTH)).state
    assert counted.deadline == BootInstant("boot-2", 30.0 + WINDOW)
    assert counted.starts == 1
    still_on_time = BootInstant("boot-2", 30.0 + WINDOW - 1)
    assert step(counted, DeadlineExpired(NEW, still_on_time, BOTH)).state == counted
    late = BootInstant("boot-2", 30.0 + WINDOW)
    assert step(counted, DeadlineExpired(NEW, late, BOTH)).state.phase is Phase.ROLLED_BACK


def test_a_missing_previous_release_is_said_in_the_reason_and_nothing_is_switched() -> None:
    outcome = step(state(Phase.TRIAL), DeadlineExpired(NEW, LATE, ONLY_NEW))
    assert outcome.emit == ((Status.INSTALLATION_FAILED, "r1"),)
    assert outcome.actions == ()
    assert outcome.state.reason == (
        "no Accepted boot before the deadline; cannot roll back: release 0.1.0 is not"
        " installed, 0.2.0 stays current"
    )


def test_retry_waits_the_interval() -> None:
    outcome = step(state(Phase.DOWNLOADING, attempts=1), DownloadAttemptFailed("x", T0))
    assert outcome.state.not_before == T0 + timedelta(seconds=30)


def test_trigger_status_is_none_when_idle() -> None:
    assert reported_status(FirmwareState()) is Status.NONE
    assert reported_status(state(Phase.TRIAL)) is Status.INSTALLING


def test_json_round_trip_of_every_phase() -> None:
    for phase in Phase:
        original = state(phase, reason="why", last_invocation="inv")
        assert FirmwareState.from_json(original.to_json()) == original
    assert FirmwareState.from_json(FirmwareState().to_json()) == FirmwareState()


def test_every_table_row_names_a_real_phase_and_event() -> None:
    assert all(isinstance(phase, Phase) for phase, _ in TRANSITIONS)


# --- properties ---------------------------------------------------------------------------

versions = st.sampled_from([OLD, NEW, "0.3.0"])
moments = st.integers(0, 3600).map(lambda s: T0 + timedelta(seconds=s))
requests = st.builds(
    Request,
    location=st.just("http://x/b.tar"),
    retrieve_at=moments,
    retries=st.integers(0, 2),
    retry_interval=st.integers(0, 60),
    request_id=st.sampled_from([None, "a", "b"]),
)
boots = st.builds(BootInstant, st.sampled_from(["boot-1", "boot-2"]), st.floats(0, 3600))
installed = st.frozensets(versions)
events = st.one_of(
    st.builds(Requested, requests),
    st.builds(DownloadBegan),
    st.builds(DownloadAttemptFailed, st.just("x"), moments),
    st.builds(Downloaded, versions),
    st.builds(InstallBegan),
    st.builds(InstallFailed, st.just("x")),
    st.builds(ReleaseReady, st.just(OLD), boots, st.floats(1, 600), st.integers(1, 3)),
    st.builds(
        StartAttempt, st.one_of(st.none(), versions), st.sampled_from("abc"), boots, installed
    ),
    st.builds(Started, versions, st.one_of(st.none(), versions), moments, installed),
    st.builds(Accepted, versions),
    st.builds(DeadlineExpired, versions, boots, installed),
)


@settings(max_examples=400)
@given(st.lists(events, max_size=40))
def test_invariants_over_event_sequences(sequence: list[Event]) -> None:
    current = FirmwareState()
    for event in sequence:
        before = current
        outcome = step(current, event)
        current = outcome.state
        # At most one release is designated current, and switches only ever name it.
        switches = [a.version for a in outcome.actions if isinstance(a, SwitchCurrent)]
        assert len(switches) <= 1
        if switches:
            assert switches == [designated_current(current)]
            # A rollback only ever switches to a release that is there.
            if current.phase is Phase.ROLLED_BACK:
                assert isinstance(event, StartAttempt | Started | DeadlineExpired)
                assert switches[0] in event.installed
        # Installed only on an Accepted boot of the version being installed.
        if any(status is Status.INSTALLED for status, _ in outcome.emit):
            assert isinstance(event, Accepted)
            assert before.phase is Phase.TRIAL
            assert event.running == before.target
        # The release to fall back to is never the one on trial.
        if current.phase in (Phase.TRIAL, Phase.ROLLED_BACK):
            assert current.previous is not None
            assert current.target is not None
        # Never discard the release `current` is designated to point at.
        for action in outcome.actions:
            if isinstance(action, DiscardRelease):
                assert action.version != designated_current(current)
        assert FirmwareState.from_json(current.to_json()) == current
