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


def state(phase: Phase, **changes: object) -> FirmwareState:
    base = FirmwareState(phase, request=REQ, not_before=T0)
    if phase in (Phase.DOWNLOADED, Phase.INSTALLING, Phase.TRIAL, Phase.ROLLED_BACK):
        base = dataclasses.replace(base, target=NEW, attempts=1)
    if phase in (Phase.TRIAL, Phase.ROLLED_BACK):
        base = dataclasses.replace(
            base, previous=OLD, deadline=T0 + timedelta(minutes=10), max_starts=2
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
    ("ready", state(Phase.INSTALLING), ReleaseReady(OLD, T0, 2), Phase.TRIAL, [],
     [DiscardDownload(), SwitchCurrent(NEW), Restart()]),
    ("accepted-new", state(Phase.TRIAL), Accepted(NEW), Phase.IDLE, [Status.INSTALLED], []),
    ("accepted-old-ignored", state(Phase.TRIAL), Accepted(OLD), Phase.TRIAL, [], []),
    ("deadline", state(Phase.TRIAL), DeadlineExpired(NEW, T0 + timedelta(hours=1)),
     Phase.ROLLED_BACK, [], [SwitchCurrent(OLD), Restart()]),
    ("deadline-early", state(Phase.TRIAL), DeadlineExpired(NEW, T0), Phase.TRIAL, [], []),
    ("start-counted", state(Phase.TRIAL), StartAttempt(NEW, "a", T0), Phase.TRIAL, [], []),
    ("too-many-starts", state(Phase.TRIAL, starts=2, last_invocation="b"),
     StartAttempt(NEW, "c", T0), Phase.ROLLED_BACK, [], [SwitchCurrent(OLD)]),
    ("same-start-once", state(Phase.TRIAL, starts=2, last_invocation="c"),
     StartAttempt(NEW, "c", T0), Phase.TRIAL, [], []),
    ("rollback-finished", state(Phase.ROLLED_BACK), Started(OLD, OLD, T0), Phase.IDLE,
     [Status.INSTALLATION_FAILED], [DiscardRelease(NEW)]),
    ("rollback-switch-resumed", state(Phase.ROLLED_BACK), StartAttempt(NEW, "d", T0),
     Phase.ROLLED_BACK, [], [SwitchCurrent(OLD)]),
    ("killed-downloading", state(Phase.DOWNLOADING, attempts=1), Started(OLD, OLD, T0),
     Phase.SCHEDULED, [], [DiscardDownload()]),
    ("killed-installing", state(Phase.INSTALLING), Started(OLD, OLD, T0), Phase.IDLE,
     [Status.INSTALLATION_FAILED], [DiscardRelease(NEW), DiscardDownload()]),
    ("killed-before-switch", state(Phase.TRIAL), Started(OLD, OLD, T0), Phase.IDLE,
     [Status.INSTALLATION_FAILED], [DiscardRelease(NEW), DiscardDownload()]),
    ("old-process-after-switch", state(Phase.TRIAL), Started(OLD, NEW, T0), Phase.TRIAL, [],
     [Restart()]),
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
events = st.one_of(
    st.builds(Requested, requests),
    st.builds(DownloadBegan),
    st.builds(DownloadAttemptFailed, st.just("x"), moments),
    st.builds(Downloaded, versions),
    st.builds(InstallBegan),
    st.builds(InstallFailed, st.just("x")),
    st.builds(ReleaseReady, st.just(OLD), moments, st.integers(1, 3)),
    st.builds(StartAttempt, st.one_of(st.none(), versions), st.sampled_from("abc"), moments),
    st.builds(Started, versions, st.one_of(st.none(), versions), moments),
    st.builds(Accepted, versions),
    st.builds(DeadlineExpired, versions, moments),
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
