"""The open-faults rule, table-driven from OS³P 0.4 §6.6 Tables 4 and 5."""

from __future__ import annotations

import pytest

from central.storage.faults import RESOLUTION_INFO, FaultEffect, effect_of
from central.storage.model import StatusNotification

ALL_BUT_MV = FaultEffect(resolves_all_but_mv=True)

CASES = [
    ("raise", StatusNotification("Faulted", "GroundFailure", info="group 1"),
     FaultEffect(raises=("GroundFailure", "", ""))),
    ("raise-other-error-with-vendor",
     StatusNotification("Faulted", "OtherError", vendor_id="acme", vendor_error_code="E42"),
     FaultEffect(raises=("OtherError", "acme", "E42"))),
    ("table5-ground", StatusNotification("Faulted", "NoError", info="Ground failure resolved"),
     FaultEffect(resolves=frozenset({"GroundFailure"}))),
    ("table5-overcurrent",
     StatusNotification("Faulted", "NoError", info="Over current error (MV) resolved"),
     FaultEffect(resolves=frozenset({"OverCurrentFailure"}))),
    ("table5-indicator",
     StatusNotification("Faulted", "NoError", info="Indicator fault (MV) resolved"),
     FaultEffect(resolves=frozenset({"MVFaultIndicatorError"}))),
    ("table5-with-ok", StatusNotification("Ok", "NoError", info="Ground failure resolved"),
     FaultEffect(resolves=frozenset({"GroundFailure"}), resolves_all_but_mv=True)),
    ("ok-no-error", StatusNotification("Ok", "NoError", info=""), ALL_BUT_MV),
    ("spec-example-6.6.2", StatusNotification("Ok", "NoError", info="", vendor_id=""), ALL_BUT_MV),
    ("faulted-no-error-free-text", StatusNotification("Faulted", "NoError", info="meter back"),
     FaultEffect()),
    ("test-raise-ignored", StatusNotification("Faulted", "GroundFailure", test=True),
     FaultEffect()),
    ("test-resolve-ignored",
     StatusNotification("Ok", "NoError", info="Ground failure resolved", test=True),
     FaultEffect()),
]  # fmt: skip


@pytest.mark.parametrize(
    ("notification", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_effect_of(notification: StatusNotification, expected: FaultEffect) -> None:
    assert effect_of(notification) == expected


def test_table5_strings_verbatim() -> None:
    assert RESOLUTION_INFO == {
        "Indicator fault (MV) resolved": "MVFaultIndicatorError",
        "Over current error (MV) resolved": "OverCurrentFailure",
        "Ground failure resolved": "GroundFailure",
    }
