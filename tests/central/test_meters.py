"""The lifecycle table and the channel rule."""

from __future__ import annotations

import itertools

import pytest

from central.meters import (
    TRANSITIONS,
    IllegalTransition,
    Lifecycle,
    MeterKind,
    channel_problem,
    check_transition,
)

L = Lifecycle
ALLOWED = {
    (L.NEW_IN_INVENTORY, L.READY_FOR_USE),
    (L.NEW_IN_INVENTORY, L.RETURNED_TO_SUPPLIER),
    (L.NEW_IN_INVENTORY, L.DESTROYED),
    (L.READY_FOR_USE, L.IN_USE),
    (L.READY_FOR_USE, L.NEW_IN_INVENTORY),
    (L.READY_FOR_USE, L.RETURNED_TO_SUPPLIER),
    (L.READY_FOR_USE, L.DESTROYED),
    (L.IN_USE, L.READY_FOR_USE),
    (L.IN_USE, L.RETURNED_TO_SUPPLIER),
    (L.IN_USE, L.DESTROYED),
    (L.RETURNED_TO_SUPPLIER, L.NEW_IN_INVENTORY),
    (L.RETURNED_TO_SUPPLIER, L.DESTROYED),
}
MOVES = [(a, b) for a, b in itertools.product(Lifecycle, Lifecycle) if a is not b]


@pytest.mark.parametrize(("current", "wanted"), MOVES, ids=[f"{a}->{b}" for a, b in MOVES])
def test_every_move_is_allowed_or_refused_as_the_table_says(
    current: Lifecycle, wanted: Lifecycle
) -> None:
    if (current, wanted) in ALLOWED:
        assert check_transition(current, wanted) is True
    else:
        with pytest.raises(IllegalTransition) as raised:
            check_transition(current, wanted)
        assert (raised.value.current, raised.value.wanted) == (current, wanted)


def test_destroyed_is_final_and_the_table_covers_every_state() -> None:
    assert set(TRANSITIONS) == set(Lifecycle)
    assert TRANSITIONS[L.DESTROYED] == frozenset()
    assert "nothing (final)" in str(IllegalTransition(L.DESTROYED, L.IN_USE))
    assert all(L.DESTROYED in TRANSITIONS[s] for s in Lifecycle if s is not L.DESTROYED)


@pytest.mark.parametrize("status", list(Lifecycle))
def test_the_same_status_again_changes_nothing(status: Lifecycle) -> None:
    assert check_transition(status, status) is False


@pytest.mark.parametrize(
    ("kind", "channel", "fine"),
    [
        (MeterKind.ELECTRICITY, 0, True),
        (MeterKind.ELECTRICITY, 1, False),
        (MeterKind.GAS, 0, False),
        (MeterKind.GAS, 1, True),
        (MeterKind.GAS, 4, True),
        (MeterKind.GAS, 5, False),
    ],
)
def test_channels(kind: MeterKind, channel: int, fine: bool) -> None:
    assert (channel_problem(kind, channel) is None) is fine
