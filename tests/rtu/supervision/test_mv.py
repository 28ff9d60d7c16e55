"""MVMachine, the pure MV indicator logic: table-driven scripts and hypothesis.

A script is a list of steps at times in seconds; the machine's changes go
through a FaultLedger, so the expectations are the StatusNotifications the
central would receive: (errorCode, status, info, test).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from os3p.messages import StationErrorCode, StationStatus, StatusNotificationRequest
from rtu.io.model import DEFAULT_IO_MAP, IndicatorState
from rtu.supervision.ledger import Change, FaultKey, FaultLedger
from rtu.supervision.mv import MVMachine, MVSettings

SETTINGS = MVSettings(debounce=0.2, debounce_polls=2, settle=1.0, reset_timeout=5.0)
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
QUIET = {"MV1": (False, False, True), "MV2": (False, None, True)}


def wall(t: float) -> datetime:
    return T0 + timedelta(seconds=t)


@dataclass(frozen=True)
class Read:
    """Readings every 0.1 s from `start` to `end` (inclusive) with these contacts."""

    start: float
    end: float
    mv1: tuple[bool, bool, bool] = (False, False, True)  # overcurrent, groundfault, healthy
    mv2: tuple[bool, bool] = (False, True)  # overcurrent, healthy (no ground-fault element)


@dataclass(frozen=True)
class Gone:
    at: float


@dataclass(frozen=True)
class Tick:
    at: float


@dataclass(frozen=True)
class Test:
    at: float
    fail: tuple[str, ...] = ()  # groups whose test pulse the module refuses


@dataclass(frozen=True)
class Reset:
    at: float
    fail: tuple[str, ...] = ()


Step = Read | Gone | Tick | Test | Reset
Note = tuple[StationErrorCode, StationStatus, str | None, bool | None]


def indicators(read: Read) -> dict[str, IndicatorState]:
    oc1, gf1, ok1 = read.mv1
    oc2, ok2 = read.mv2
    return {
        "MV1": IndicatorState(overcurrent=oc1, groundfault=gf1, healthy=ok1),
        "MV2": IndicatorState(overcurrent=oc2, groundfault=None, healthy=ok2),
    }


class Harness:
    def __init__(self) -> None:
        self.machine = MVMachine(DEFAULT_IO_MAP.indicators, SETTINGS)
        self.ledger = FaultLedger()
        self.notes: list[StatusNotificationRequest] = []
        self.changes: list[Change] = []

    def apply(self, changes: Sequence[Change]) -> None:
        for change in changes:
            note = self.ledger.apply(change)
            # Alternation: the machine never raises an open or resolves a closed fault.
            assert note is not None, f"{change} changed nothing"
            self.changes.append(change)
            self.notes.append(note)

    def run(self, steps: Sequence[Step]) -> None:
        for step in steps:
            match step:
                case Read(start, end):
                    n = round((end - start) / 0.1)
                    for i in range(n + 1):
                        t = start + i * 0.1
                        self.apply(self.machine.tick(t, wall(t)))
                        self.apply(self.machine.observe(t, wall(t), indicators(step)))
                case Gone(at):
                    self.apply(self.machine.observe(at, wall(at), None))
                case Tick(at):
                    self.apply(self.machine.tick(at, wall(at)))
                case Test(at, fail):
                    assert not self.machine.in_alarm()
                    self.machine.start_test()
                    for group in self.machine.groups:
                        if group in fail:
                            self.apply(self.machine.pulse_failed(group, "test", "no", wall(at)))
                        else:
                            self.machine.pulse_done(group, "test", at)
                case Reset(at, fail):
                    self.machine.start_reset(at)
                    for group in self.machine.groups:
                        if group in fail:
                            self.apply(self.machine.pulse_failed(group, "reset", "no", wall(at)))
                        else:
                            self.machine.pulse_done(group, "reset", at)

    def summary(self) -> list[Note]:
        return [(n.error_code, n.status, n.info, n.test) for n in self.notes]


OC, GF, IND, NO = (
    StationErrorCode.OVER_CURRENT_FAILURE,
    StationErrorCode.GROUND_FAILURE,
    StationErrorCode.MV_FAULT_INDICATOR_ERROR,
    StationErrorCode.NO_ERROR,
)
FAULTED, OK = StationStatus.FAULTED, StationStatus.OK
OC_OK, GF_OK, IND_OK = (
    "Over current error (MV) resolved",
    "Ground failure resolved",
    "Indicator fault (MV) resolved",
)

CASES: dict[str, tuple[list[Step], list[Note]]] = {
    "quiet station: nothing": ([Read(0, 3)], []),
    "over-current trips, then clears": (
        [Read(0, 1), Read(1.1, 2, mv1=(True, False, True)), Read(2.1, 3)],
        [(OC, FAULTED, "MV1", False), (NO, OK, OC_OK, False)],
    ),
    "ground fault on MV1": (
        [Read(0, 1, mv1=(False, True, True)), Read(1.1, 2)],
        [(GF, FAULTED, "MV1", False), (NO, OK, GF_OK, False)],
    ),
    "healthy contact opens: indicator error": (
        [Read(0, 1, mv2=(False, False)), Read(1.1, 2)],
        [(IND, FAULTED, "MV2: healthy contact open", False), (NO, OK, IND_OK, False)],
    ),
    "chatter shorter than the debounce: nothing": (
        [
            Read(0, 0.1, mv1=(True, True, False)),
            Read(0.2, 0.3),
            Read(0.4, 0.5, mv2=(True, False)),
            Read(0.6, 2),
        ],
        [],
    ),
    "two faults: resolving one leaves the station Faulted": (
        [
            Read(0, 1, mv1=(True, False, True)),
            Read(1.1, 2, mv1=(True, False, True), mv2=(True, True)),
            Read(2.1, 3, mv2=(True, True)),
            Read(3.1, 4),
        ],
        [
            (OC, FAULTED, "MV1", False),
            (OC, FAULTED, "MV2", False),
            (NO, FAULTED, OC_OK, False),
            (NO, OK, OC_OK, False),
        ],
    ),
    "test latches, reset clears: all test, back to Ok": (
        [
            Read(0, 0.5),
            Test(0.5),
            Read(0.6, 2, mv1=(True, True, True), mv2=(True, True)),
            Reset(2.05),
            Read(2.1, 4),
        ],
        [
            (OC, FAULTED, "MV1", True),
            (GF, FAULTED, "MV1", True),
            (OC, FAULTED, "MV2", True),
            (NO, FAULTED, OC_OK, True),
            (NO, FAULTED, GF_OK, True),
            (NO, OK, OC_OK, True),
        ],
    ),
    "reset with the cause still there: fault again, not a test": (
        [
            Test(0),
            Read(0, 2, mv1=(True, True, True), mv2=(True, True)),
            Reset(2.05),
            Read(2.1, 4, mv1=(True, False, True)),
        ],
        [
            (OC, FAULTED, "MV1", True),
            (GF, FAULTED, "MV1", True),
            (OC, FAULTED, "MV2", True),
            (NO, FAULTED, GF_OK, True),
            (NO, FAULTED, OC_OK, True),
            (NO, FAULTED, OC_OK, True),  # Faulted: re-entered at once (§7.9)
            (OC, FAULTED, "MV1", False),
        ],
    ),
    "real fault survives its reset: resolved and raised again": (
        [Read(0, 1, mv1=(True, False, True)), Reset(1.05), Read(1.1, 3, mv1=(True, False, True))],
        [(OC, FAULTED, "MV1", False), (NO, FAULTED, OC_OK, False), (OC, FAULTED, "MV1", False)],
    ),
    "reset before the self-test verdict: judged on what tripped": (
        [
            Test(0),
            Read(0, 0.5, mv1=(True, True, True), mv2=(True, True)),
            Reset(0.55),
            Read(0.6, 3),
        ],
        [
            (OC, FAULTED, "MV1", True),
            (GF, FAULTED, "MV1", True),
            (OC, FAULTED, "MV2", True),
            (NO, FAULTED, OC_OK, True),
            (NO, FAULTED, GF_OK, True),
            (NO, OK, OC_OK, True),
        ],
    ),
    "self-test that does not trip: indicator error with test": (
        [Test(0), Read(0, 2, mv1=(True, True, True))],
        [
            (OC, FAULTED, "MV1", True),
            (GF, FAULTED, "MV1", True),
            (IND, FAULTED, "MV2: self-test did not trip overcurrent", True),
        ],
    ),
    "test pulse refused by the module: indicator error with test": (
        [Test(0, fail=("MV2",)), Read(0, 2, mv1=(True, True, True))],
        [
            (IND, FAULTED, "MV2: test pulse failed: no", True),
            (OC, FAULTED, "MV1", True),
            (GF, FAULTED, "MV1", True),
        ],
    ),
    "reset pulse refused: ResetFailure at the deadline, resolved by the next reset": (
        [
            Read(0, 1, mv2=(True, True)),
            Reset(1.05, fail=("MV2",)),
            Read(1.1, 6.1, mv2=(True, True)),
            Reset(6.15),
            Read(6.2, 8),
        ],
        [
            (OC, FAULTED, "MV2", False),
            (
                StationErrorCode.RESET_FAILURE,
                FAULTED,
                "MV2: reset not confirmed within 5 s (reset pulse failed: no)",
                None,
            ),
            (NO, FAULTED, OC_OK, False),
            (NO, OK, "ResetFailure resolved: MV2", None),
        ],
    ),
    "module gone longer than the debounce: indicator error until it answers": (
        [Read(0, 1), Gone(1.05), Tick(1.1), Tick(1.3), Read(2, 2.5)],
        [
            (IND, FAULTED, "MV1, MV2: I/O module not answering", False),
            (NO, OK, IND_OK, False),
        ],
    ),
    "module gone briefly: nothing": ([Read(0, 1), Gone(1.05), Tick(1.1), Read(1.2, 2)], []),
}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_script(case: str) -> None:
    steps, expected = CASES[case]
    harness = Harness()
    harness.run(steps)
    assert harness.summary() == expected


def test_timestamp_is_the_first_reading_of_the_new_value() -> None:
    harness = Harness()
    harness.run([Read(0, 1), Read(1.1, 2, mv1=(True, False, True))])
    assert harness.notes[0].timestamp == wall(1.1)


def test_test_is_refused_while_in_alarm() -> None:
    machine = MVMachine(DEFAULT_IO_MAP.indicators, SETTINGS)
    assert not machine.in_alarm()
    # A contact active in the latest reading counts before its debounce completes.
    machine.observe(0, wall(0), indicators(Read(0, 0, mv1=(True, False, True))))
    assert machine.in_alarm()
    machine.observe(0.1, wall(0.1), indicators(Read(0, 0)))
    assert not machine.in_alarm()
    machine.start_test()
    assert machine.in_alarm()  # "due to test" (Table 19)


def test_no_groups_no_deadlines() -> None:
    machine = MVMachine((), SETTINGS)
    assert machine.groups == ()
    assert machine.observe(0, wall(0), None) == []
    assert machine.tick(10, wall(10)) == []
    assert machine.next_deadline() is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"debounce": -1},
        {"debounce_polls": 0},
        {"debounce": 1.0, "settle": 1.0},
        {"settle": 2.0, "reset_timeout": 2.0},
    ],
)
def test_settings_are_checked(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        MVSettings(**kwargs)  # type: ignore[arg-type]


# -- hypothesis ---------------------------------------------------------------------

contacts_1 = st.tuples(st.booleans(), st.booleans(), st.booleans())
contacts_2 = st.tuples(st.booleans(), st.booleans())
step_kinds = st.one_of(
    st.tuples(st.just("read"), contacts_1, contacts_2, st.integers(1, 12)),
    st.tuples(st.just("gone"), st.integers(1, 12)),
    st.tuples(st.just("test"), st.sampled_from([(), ("MV1",), ("MV2",)])),
    st.tuples(st.just("reset"), st.sampled_from([(), ("MV1",), ("MV1", "MV2")])),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(step_kinds, max_size=30))
def test_any_input_alternates_and_ends_resolved(script: list[tuple[object, ...]]) -> None:
    harness = Harness()
    t = 0.0
    steps: list[Step] = []
    for item in script:
        match item:
            case ("read", mv1, mv2, n):
                steps.append(Read(t, t + 0.1 * (int(n) - 1), mv1=mv1, mv2=mv2))  # type: ignore[arg-type]
                t += 0.1 * int(n)
            case ("gone", n):
                for _ in range(int(n)):  # type: ignore[call-overload]
                    steps += [Gone(t), Tick(t)]
                    t += 0.1
            case ("test", fail):
                steps.append(Reset(t) if harness_would_refuse(steps) else Test(t, fail=fail))  # type: ignore[arg-type]
                t += 0.05
            case ("reset", fail):
                steps.append(Reset(t, fail=fail))  # type: ignore[arg-type]
                t += 0.05
    harness.run(steps)  # asserts alternation on every change
    for key in {c.key for c in harness.changes}:
        flags = [c.raised for c in harness.changes if c.key == key]
        assert flags == [True, False] * (len(flags) // 2) + [True] * (len(flags) % 2)
    # Station status is Ok exactly when nothing is open (or about to be raised again).
    for note, change, open_after in zip(
        harness.notes, harness.changes, open_counts(harness.changes), strict=True
    ):
        assert (note.status is StationStatus.OK) == (open_after == 0 and not change.reraised)
    # Quiet contacts, a reset that works and time: every fault is resolved (once).
    harness.run([Read(t, t + 0.5), Reset(t + 0.55), Read(t + 0.6, t + 7), Tick(t + 7)])
    harness.run([Reset(t + 7.05), Read(t + 7.1, t + 9)])
    assert len(harness.ledger) == 0, harness.ledger.describe()


def harness_would_refuse(steps: list[Step]) -> bool:
    """Replays `steps` to ask whether a TestMVFaultIndicator would be refused now."""
    replay = Harness()
    replay.run(steps)
    return replay.machine.in_alarm()


def open_counts(changes: list[Change]) -> list[int]:
    open_keys: set[FaultKey] = set()
    counts: list[int] = []
    for change in changes:
        (open_keys.add if change.raised else open_keys.discard)(change.key)
        counts.append(len(open_keys))
    return counts
