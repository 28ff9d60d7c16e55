"""Every central-initiated action needs exactly one right; services bring their own."""

from __future__ import annotations

from typing import Any

import pytest

from central.operations import (
    ACTION_RIGHTS,
    Right,
    ServiceOperation,
    UnknownOperation,
    right_of,
)
from central.orgs import hash_token, missing_rights, new_token
from os3p.actions import CENTRAL_INITIATED, STATION_INITIATED


def test_each_of_the_13_central_actions_has_a_right_and_nothing_else_does() -> None:
    assert set(ACTION_RIGHTS) == set(CENTRAL_INITIATED)
    assert len(ACTION_RIGHTS) == 13
    assert {right_of(a.value, {}) for a in CENTRAL_INITIATED} == set(Right)


@pytest.mark.parametrize(
    ("action", "right"),
    [
        ("GetConfiguration", Right.READ),
        ("TriggerMessage", Right.READ),
        ("ChangeConfiguration", Right.CONFIGURE),
        ("TestMVFaultIndicator", Right.CONFIGURE),
        ("OverrideStreetlight", Right.LIGHTS),
        ("ClearSingleStreetlightProfile", Right.LIGHTS),
        ("UpdateFirmware", Right.FIRMWARE),
    ],
)
def test_rights_of_actions(action: str, right: Right) -> None:
    assert right_of(action, {}) is right


async def _read_meters(central: Any, station_id: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"station": station_id}


def test_a_service_brings_its_right_and_station_initiated_actions_are_no_operations() -> None:
    services = {"GetActualMeterReads": ServiceOperation(Right.READ, _read_meters)}
    assert right_of("GetActualMeterReads", services) is Right.READ
    for action in STATION_INITIATED:
        with pytest.raises(UnknownOperation):
            right_of(action.value, services)
    with pytest.raises(UnknownOperation):
        right_of("Fly", services)


def test_an_owner_lacks_nothing_a_grantee_what_it_was_not_granted() -> None:
    needed = {Right.READ, Right.LIGHTS}
    assert missing_rights(needed, owner=True, granted=()) == set()
    assert missing_rights(needed, owner=False, granted=["read"]) == {Right.LIGHTS}
    assert missing_rights(needed, owner=False, granted=["read", "lights"]) == set()


def test_tokens_are_random_and_stored_as_digests() -> None:
    first, second = new_token(), new_token()
    assert first != second
    assert len(first) >= 43  # 256 bits, base64url
    assert hash_token(first) != first
    assert len(hash_token(first)) == 64


def test_organisation_tokens_never_look_like_a_command_line_option() -> None:
    """`os3p-central --token TOKEN`: a token starting with "-" would be read as an option."""
    from central.orgs import new_token

    tokens = {new_token() for _ in range(2000)}
    assert len(tokens) == 2000
    assert all(token.startswith("os3p_") and len(token) > 40 for token in tokens)
