"""FaultLedger: §6.6 notifications for raises and resolutions, station status in one place."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from os3p.actions import Action
from os3p.messages import StationErrorCode, StationStatus, StatusNotificationRequest, to_payload
from os3p.validation import Validator
from rtu.supervision.ledger import RESOLVED_INFO, Change, FaultKey, FaultLedger

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
OC = FaultKey(StationErrorCode.OVER_CURRENT_FAILURE, "MV1")
GF = FaultKey(StationErrorCode.GROUND_FAILURE, "MV1")
IND = FaultKey(StationErrorCode.MV_FAULT_INDICATOR_ERROR, "MV2")
HOT = FaultKey(StationErrorCode.HIGH_TEMPERATURE, "OilTemperature")
VALIDATOR = Validator()


def check_schema(note: StatusNotificationRequest) -> None:
    VALIDATOR.check_outgoing(Action.STATUS_NOTIFICATION, "Request", to_payload(note))


def test_table_5_strings_are_exactly_the_spec_s() -> None:
    assert RESOLVED_INFO == {
        StationErrorCode.MV_FAULT_INDICATOR_ERROR: "Indicator fault (MV) resolved",
        StationErrorCode.OVER_CURRENT_FAILURE: "Over current error (MV) resolved",
        StationErrorCode.GROUND_FAILURE: "Ground failure resolved",
    }


@pytest.mark.parametrize(
    ("key", "resolved_info"),
    [
        (OC, "Over current error (MV) resolved"),
        (GF, "Ground failure resolved"),
        (IND, "Indicator fault (MV) resolved"),
        (HOT, "HighTemperature resolved: OilTemperature"),
    ],
    ids=str,
)
def test_raise_then_resolve(key: FaultKey, resolved_info: str) -> None:
    ledger = FaultLedger()
    raised = ledger.raise_(key, at=T0)
    assert raised is not None
    check_schema(raised)
    assert (raised.status, raised.error_code, raised.info, raised.timestamp) == (
        StationStatus.FAULTED,
        key.code,
        key.source,
        T0,
    )
    resolved = ledger.resolve(key, at=T0)
    assert resolved is not None
    check_schema(resolved)
    assert (resolved.status, resolved.error_code, resolved.info) == (
        StationStatus.OK,
        StationErrorCode.NO_ERROR,
        resolved_info,
    )


def test_status_stays_faulted_while_another_fault_is_open() -> None:
    ledger = FaultLedger()
    ledger.raise_(OC, at=T0)
    ledger.raise_(HOT, at=T0)
    note = ledger.resolve(OC, at=T0)
    assert note is not None
    assert note.status is StationStatus.FAULTED  # Table 4: a resolution need not mean Ok
    note = ledger.resolve(HOT, at=T0)
    assert note is not None
    assert note.status is StationStatus.OK


def test_double_raise_and_resolve_of_closed_change_nothing() -> None:
    ledger = FaultLedger()
    assert ledger.resolve(OC, at=T0) is None
    assert ledger.raise_(OC, at=T0) is not None
    assert ledger.raise_(OC, at=T0) is None
    assert len(ledger) == 1


def test_mv_notifications_carry_test_flag_others_omit_it() -> None:
    ledger = FaultLedger()
    test_raise = ledger.apply(Change(True, OC, T0, test=True))
    real_raise = ledger.apply(Change(True, GF, T0))
    hot = ledger.apply(Change(True, HOT, T0))
    assert test_raise is not None
    assert real_raise is not None
    assert hot is not None
    assert (test_raise.test, real_raise.test, hot.test) == (True, False, None)
    resolved = ledger.apply(Change(False, OC, T0))
    assert resolved is not None
    assert resolved.test is True  # pairs with the test raise


def test_info_is_clipped_to_the_schema_limit() -> None:
    ledger = FaultLedger()
    note = ledger.raise_(HOT, at=T0, info="x" * 500)
    assert note is not None
    assert note.info is not None
    assert len(note.info) == 128
    check_schema(note)


def test_summary_lists_open_faults_or_says_ok() -> None:
    ledger = FaultLedger()
    ok = ledger.summary(T0)
    assert (ok.status, ok.error_code) == (StationStatus.OK, StationErrorCode.NO_ERROR)
    ledger.raise_(OC, at=T0, test=True)
    ledger.raise_(HOT, at=T0)
    summary = ledger.summary(T0)
    check_schema(summary)
    assert summary.status is StationStatus.FAULTED
    assert summary.error_code is StationErrorCode.OVER_CURRENT_FAILURE  # the oldest
    assert summary.info == "OverCurrentFailure MV1 (test), HighTemperature OilTemperature"


def test_restore_undoes_a_change() -> None:
    ledger = FaultLedger()
    before = list(ledger)
    ledger.raise_(OC, at=T0)
    ledger.restore(before)
    assert not ledger.is_open(OC)
