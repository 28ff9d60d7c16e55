"""lights.db: atomic installs, AND-combined clears, overrides and reported state."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from os3p.messages import StreetlightMode
from rtu.lights.profiles import ProfileStore
from rtu.lights.reconcile import Reported
from rtu.schedule import InvalidProfile, Profile, Reason, profile_from_wire

NOW = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)
MAX = 10


def wire(profile_id: int, stack_level: int, **extra: Any) -> dict[str, Any]:
    return {
        "profileId": profile_id,
        "stackLevel": stack_level,
        "recurrencyKind": "Daily",
        "daySchedule": [
            {
                "start": {"kind": "Sunset", "offset": 0},
                "end": {"kind": "Absolute", "time": "23:00:00"},
            }
        ],
        **extra,
    }


def profile(profile_id: int, stack_level: int, **extra: Any) -> Profile:
    return profile_from_wire(wire(profile_id, stack_level, **extra))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ProfileStore]:
    opened = ProfileStore.open(tmp_path / "lights.db", now=lambda: NOW)
    yield opened
    opened.close()


def ids(store: ProfileStore) -> dict[int, list[int]]:
    return {c: [p.profile_id for p in ps] for c, ps in store.profiles().items()}


def test_install_adds_and_reopen_keeps(tmp_path: Path) -> None:
    store = ProfileStore.open(tmp_path / "lights.db", now=lambda: NOW)
    store.install(1, [profile(1, 0), profile(2, 5)], clear_all=False, max_stack_level=MAX)
    store.install(1, [profile(3, 1)], clear_all=False, max_stack_level=MAX)
    store.install(2, [profile(1, 0)], clear_all=False, max_stack_level=MAX)  # ids per contactor
    store.set_overrides("Suspend", {3: True})
    store.save_reported({1: Reported(StreetlightMode.SCHEDULE, lights=True, failed=True)})
    store.close()
    again = ProfileStore.open(tmp_path / "lights.db", now=lambda: NOW)
    try:
        assert ids(again) == {1: [1, 3, 2], 2: [1]}  # by stack level
        assert again.profiles()[1][0] == profile(1, 0)
        assert again.overrides() == {3: True}
        assert again.reported() == {1: Reported(StreetlightMode.SCHEDULE, lights=True, failed=True)}
    finally:
        again.close()


@pytest.mark.parametrize(
    ("new", "reason"),
    [
        ([profile(9, MAX + 1)], Reason.STACK_LEVEL_TOO_HIGH),
        ([profile(1, 7)], Reason.DUPLICATE_PROFILE_ID),
        ([profile(9, 0)], Reason.DUPLICATE_STACK_LEVEL),
        ([profile(8, 8), profile(9, 8)], Reason.DUPLICATE_STACK_LEVEL),
        (
            [profile(9, 9, validFrom="2026-12-01T00:00:00", validTo="2026-11-01T00:00:00")],
            Reason.VALID_TO_BEFORE_VALID_FROM,
        ),
    ],
    ids=["stack-too-high", "dup-id", "dup-level", "dup-level-within", "valid-to-first"],
)
def test_rejected_installs_change_nothing(
    store: ProfileStore, new: list[Profile], reason: Reason
) -> None:
    store.install(1, [profile(1, 0)], clear_all=False, max_stack_level=MAX)
    with pytest.raises(InvalidProfile) as info:
        store.install(1, new, clear_all=False, max_stack_level=MAX)
    assert info.value.reason is reason
    assert ids(store) == {1: [1]}


def test_clear_all_schedules_is_atomic(store: ProfileStore) -> None:
    store.install(1, [profile(1, 0), profile(2, 1)], clear_all=False, max_stack_level=MAX)
    store.install(2, [profile(1, 0)], clear_all=False, max_stack_level=MAX)
    # One bad profile in the set: neither the erase nor the good profile happens.
    with pytest.raises(InvalidProfile):
        store.install(1, [profile(5, 0), profile(6, MAX + 1)], clear_all=True, max_stack_level=MAX)
    assert ids(store) == {1: [1, 2], 2: [1]}
    # A good set replaces this contactor's profiles only; reused ids/levels are fine.
    store.install(1, [profile(1, 1), profile(7, 0)], clear_all=True, max_stack_level=MAX)
    assert ids(store) == {1: [7, 1], 2: [1]}


@pytest.mark.parametrize(
    ("criteria", "left"),
    [
        ({"profile_id": 1}, {1: [2, 3], 2: [2]}),
        ({"profile_id": 1, "contactor": 2}, {1: [1, 2, 3], 2: [2]}),
        ({"contactor": 1, "stack_level": 1}, {1: [1, 3], 2: [1, 2]}),
        ({"profile_id": 2, "contactor": 1, "stack_level": 1}, {1: [1, 3], 2: [1, 2]}),
        ({"contactor": 1}, {2: [1, 2]}),
        ({"stack_level": 0}, {1: [2, 3], 2: [2]}),
        ({}, {}),
    ],
    ids=["id-everywhere", "id-on-one", "level-on-one", "all-three", "contactor", "level", "all"],
)
def test_clear_ands_the_criteria(
    store: ProfileStore, criteria: dict[str, int], left: dict[int, list[int]]
) -> None:
    store.install(
        1, [profile(1, 0), profile(2, 1), profile(3, 2)], clear_all=False, max_stack_level=MAX
    )
    store.install(2, [profile(1, 0), profile(2, 1)], clear_all=False, max_stack_level=MAX)
    assert store.clear(**criteria) > 0
    assert ids(store) == left


def test_clear_that_matches_nothing_says_so(store: ProfileStore) -> None:
    store.install(1, [profile(1, 0)], clear_all=False, max_stack_level=MAX)
    # The §7.2.2 example: profile 2 does not exist at stack level 3.
    assert store.clear(profile_id=2, contactor=1, stack_level=3) == 0
    assert store.clear(profile_id=1, stack_level=4) == 0
    assert ids(store) == {1: [1]}


def test_overrides_replace_and_resume(store: ProfileStore) -> None:
    store.set_overrides("On", {1: True, 2: True})
    store.set_overrides("Suspend", {2: False})
    assert store.overrides() == {1: True, 2: False}
    store.remove_overrides([1, 4])
    assert store.overrides() == {2: False}


def test_staged_events_survive_reopen_with_their_reported_state(tmp_path: Path) -> None:
    # The controller stages events with the reported state in one transaction; a crash
    # before `unstage` leaves both, and the next start re-emits exactly these bytes.
    path = tmp_path / "lights.db"
    first = ProfileStore.open(path, now=lambda: NOW)
    payload = '{"contactorId":1,"status":"On","timestamp":"2026-11-23T17:00:00Z"}'
    seqs = first.stage({1: Reported(lights=True)}, [("StreetlightStatusNotification", payload)])
    first.close()  # the power goes here
    again = ProfileStore.open(path, now=lambda: NOW)
    assert again.reported()[1].lights is True
    assert again.staged() == [(seqs[0], "StreetlightStatusNotification", payload)]
    again.unstage(seqs)
    assert again.staged() == []
    again.close()
