"""The controller's pure decisions: tables for the rules, hypothesis for the invariants."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from os3p.messages import StreetlightMode
from rtu.io.model import IOSnapshot
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

T0 = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)
TIMEOUT = 2.0
LOCAL, REMOTE, SCHEDULE = (
    StreetlightMode.LOCAL_OVERRIDE,
    StreetlightMode.REMOTE_OVERRIDE,
    StreetlightMode.SCHEDULE,
)


def snap(
    coils: dict[int, bool], feedback: dict[int, bool] | None = None, switch: bool = False
) -> IOSnapshot:
    return IOSnapshot(
        feedback=coils if feedback is None else feedback,
        coils=coils,
        local_switch=switch,
        indicators={},
    )


def wants(schedule: dict[int, bool], overrides: dict[int, bool] | None = None) -> Inputs:
    return Inputs(schedule, overrides or {})


def started(coils: dict[int, bool], reported: dict[int, Reported] | None = None) -> Reconciler:
    """A reconciler that adopted a module showing `coils` (feedback agreeing)."""
    core = Reconciler(coils, feedback_timeout=TIMEOUT, reported=reported)
    assert core.step(wants(coils), snap(coils), T0, 0.0) == []
    return core


@pytest.mark.parametrize(
    ("switch", "overrides", "expected"),
    [
        (True, {1: True}, LOCAL),
        (True, {}, LOCAL),
        (False, {1: False}, REMOTE),
        (False, {2: True}, SCHEDULE),
        (False, {}, SCHEDULE),
    ],
    ids=["local-beats-remote", "local", "remote", "other-contactor-overridden", "schedule"],
)
def test_precedence(switch: bool, overrides: dict[int, bool], expected: StreetlightMode) -> None:
    assert mode_of(1, switch, overrides) is expected


@pytest.mark.parametrize(
    ("coil", "schedule", "override", "expected"),
    [
        (False, True, None, [Command(1, True)]),
        (True, False, None, [Command(1, False)]),
        (True, True, None, []),
        (False, False, None, []),
        (False, False, True, [Command(1, True)]),
        (True, True, False, [Command(1, False)]),
        (True, False, True, []),
    ],
    ids=[
        "schedule-on",
        "schedule-off",
        "on-matches",
        "off-matches",
        "override-on-beats-schedule",
        "override-off-beats-schedule",
        "override-matches",
    ],
)
def test_commands_only_a_difference(
    coil: bool, schedule: bool, override: bool | None, expected: list[Effect]
) -> None:
    core = Reconciler([1], feedback_timeout=TIMEOUT)
    overrides = {} if override is None else {1: override}
    effects = core.step(wants({1: schedule}, overrides), snap({1: coil}), T0, 0.0)
    assert [e for e in effects if isinstance(e, Command)] == expected


def test_restart_with_lights_on_adopts_and_reports_nothing() -> None:
    core = Reconciler([1, 2], feedback_timeout=TIMEOUT)
    assert core.step(wants({1: True, 2: False}), snap({1: True, 2: False}), T0, 0.0) == []
    assert core.feedback(1) is True


def test_a_commanded_switch_is_expected_and_a_write_is_not_repeated() -> None:
    core = started({1: False})
    assert core.step(wants({1: True}), snap({1: False}), T0, 1.0) == [Command(1, True)]
    core.write_done(1, ok=True)
    # A read that started before the write still shows the old coil: no second write.
    assert core.step(wants({1: True}), snap({1: False}), T0, 1.05) == []
    # Coil on, relay not yet pulled in.
    assert core.step(wants({1: True}), snap({1: True}, {1: False}), T0, 1.1) == []
    at = T0 + timedelta(seconds=1)
    assert core.step(wants({1: True}), snap({1: True}), at, 1.2) == [
        LightsSwitched(1, on=True, unexpected=False, at=at)
    ]


def test_a_failed_write_is_retried() -> None:
    core = started({1: False})
    assert core.step(wants({1: True}), snap({1: False}), T0, 1.0) == [Command(1, True)]
    assert core.step(wants({1: True}), snap({1: False}), T0, 1.1) == []  # still writing
    core.write_done(1, ok=False)
    assert core.step(wants({1: True}), snap({1: False}), T0, 1.2) == [Command(1, True)]


def test_a_write_that_did_not_take_is_retried_once_per_timeout() -> None:
    core = started({1: False})
    assert core.step(wants({1: True}), snap({1: False}), T0, 1.0) == [Command(1, True)]
    core.write_done(1, ok=True)
    assert core.step(wants({1: True}), snap({1: False}), T0, 1.0 + TIMEOUT / 2) == []
    core.step(wants({1: True}), snap({1: False}), T0, 1.1 + TIMEOUT)  # forgets it
    assert core.step(wants({1: True}), snap({1: False}), T0, 1.2 + TIMEOUT) == [Command(1, True)]


@pytest.mark.parametrize(
    ("coil", "feedback"), [(False, True), (True, False)], ids=["hand-on", "hand-off"]
)
def test_a_change_nobody_commanded_is_unexpected(coil: bool, feedback: bool) -> None:
    core = started({1: not feedback})
    effects = core.step(wants({1: coil}), snap({1: coil}, {1: feedback}), T0, 1.0)
    assert LightsSwitched(1, on=feedback, unexpected=True, at=T0) in effects


def test_local_switch_wins_commands_nothing_and_reports_modes() -> None:
    core = started({1: False, 2: True})
    effects = core.step(wants({1: True, 2: False}), snap({1: False, 2: True}, switch=True), T0, 1)
    assert effects == [ModeChanged(1, LOCAL, T0), ModeChanged(2, LOCAL, T0)]
    # The technician switches contactor 1 on by hand: reported, unexpected, not fought.
    by_hand = snap({1: False, 2: True}, {1: True, 2: True}, switch=True)
    effects = core.step(wants({1: False}), by_hand, T0, 2)
    assert effects == [LightsSwitched(1, on=True, unexpected=True, at=T0)]
    # Released: back to the schedule, which switches.
    effects = core.step(
        wants({1: False, 2: True}, {2: False}), snap({1: False, 2: True}, {1: True, 2: True}), T0, 3
    )
    assert effects == [
        Command(2, False),
        ModeChanged(1, SCHEDULE, T0),
        ModeChanged(2, REMOTE, T0),
    ]


def test_override_and_resume_owe_a_mode_report_even_without_a_change() -> None:
    core = started({1: True})
    core.report_mode([1])
    assert core.step(wants({1: True}), snap({1: True}), T0, 1.0) == [ModeChanged(1, SCHEDULE, T0)]
    assert core.step(wants({1: True}), snap({1: True}), T0, 1.1) == []


def test_feedback_that_does_not_follow_is_a_failure_until_it_agrees() -> None:
    core = started({1: False})
    assert core.step(wants({1: True}), snap({1: False}), T0, 0.0) == [Command(1, True)]
    core.write_done(1, ok=True)
    stuck = snap({1: True}, {1: False})
    assert core.step(wants({1: True}), stuck, T0, 0.1) == []
    assert core.step(wants({1: True}), stuck, T0, 0.1 + TIMEOUT) == [
        SwitchFailure(1, failed=True, at=T0)
    ]
    assert core.step(wants({1: True}), stuck, T0, 0.2 + TIMEOUT) == []  # once
    effects = core.step(wants({1: True}), snap({1: True}), T0, 5.0)
    assert effects == [
        LightsSwitched(1, on=True, unexpected=False, at=T0),
        SwitchFailure(1, failed=False, at=T0),
    ]


def test_what_changed_while_down_is_reported_against_the_persisted_state() -> None:
    reported = {1: Reported(SCHEDULE, lights=True), 2: Reported(REMOTE, lights=False)}
    core = Reconciler([1, 2], feedback_timeout=TIMEOUT, reported=reported)
    effects = core.step(wants({1: False}, {2: False}), snap({1: False, 2: False}), T0, 0.0)
    assert effects == [LightsSwitched(1, on=False, unexpected=True, at=T0)]


def test_unreachable_module_changes_nothing() -> None:
    core = started({1: False})
    assert core.step(wants({1: True}), None, T0, 1.0) == []
    assert not core.available
    assert core.step(wants({1: True}), snap({1: False}), T0, 2.0) == [Command(1, True)]


def test_unwired_contactor_is_left_alone() -> None:
    core = Reconciler([1, 2], feedback_timeout=TIMEOUT)
    assert core.step(wants({1: False, 2: True}), snap({1: False}), T0, 0.0) == []


# -- invariants under arbitrary sequences -------------------------------------

step_inputs = st.tuples(
    st.booleans(),  # schedule wants on
    st.sampled_from([None, True, False]),  # remote override
    st.booleans(),  # coil
    st.booleans(),  # feedback
    st.booleans(),  # local switch
    st.booleans(),  # the previous write succeeded
)


@settings(max_examples=120, deadline=None)
@given(st.lists(step_inputs, min_size=1, max_size=30))
def test_never_writes_a_matching_coil_and_local_switch_always_wins(
    steps: list[tuple[bool, bool | None, bool, bool, bool, bool]],
) -> None:
    core = Reconciler([1], feedback_timeout=TIMEOUT)
    for i, (schedule, override, coil, feedback, switch, ok) in enumerate(steps):
        overrides = {} if override is None else {1: override}
        effects = core.step(
            wants({1: schedule}, overrides), snap({1: coil}, {1: feedback}, switch), T0, i * 0.5
        )
        commands = [e for e in effects if isinstance(e, Command)]
        for command in commands:
            assert command.on != coil, "wrote a coil that already matched"
            assert command.on == (schedule if override is None else override)
            core.write_done(1, ok=ok)
        if switch:
            assert commands == []
        modes = [e.mode for e in effects if isinstance(e, ModeChanged)]
        assert all(m is LOCAL for m in modes) if switch else LOCAL not in modes
        assert len(commands) <= 1


@settings(max_examples=80, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=30))
def test_every_feedback_change_is_reported_exactly_once(feedback: list[bool]) -> None:
    core = Reconciler([1], feedback_timeout=TIMEOUT)
    reported = []
    for i, on in enumerate(feedback):
        effects = core.step(wants({1: False}), snap({1: False}, {1: on}), T0, float(i))
        reported += [e.on for e in effects if isinstance(e, LightsSwitched)]
        if isinstance(effects[0] if effects else None, Command):
            core.write_done(1, ok=True)
    changes = [b for a, b in itertools.pairwise(feedback) if a != b]
    assert reported == changes
