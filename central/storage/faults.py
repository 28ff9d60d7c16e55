"""The open-faults rule: which StatusNotification raises or resolves which fault.

OS³P 0.4 §6.6 gives `status` (Ok / Faulted: the station *as a whole*) and
`errorCode` (what *this* notification is about), and abuses `info` to resolve
three faults (Table 5). The rule implemented, applied to notifications in the
order they are received (the station's outbox delivers FIFO), a duplicate
re-send (same identity, see `store`) being applied once:

1. `test` is true → the notification is stored but neither raises nor resolves:
   Table 4 says it results from a hardware test (TestMVFaultIndicator), not a
   real situation, so it must not hide or invent a real fault.
2. `errorCode` ≠ NoError → the fault (station, errorCode, vendorId,
   vendorErrorCode) is open. The vendor fields tell OtherErrors apart (Table 4);
   for the other codes they are normally absent (stored as ""). Raising a fault
   that is already open keeps its first raise time and refreshes the rest.
3. `errorCode` = NoError and `info` is a Table 5 string → that one fault code is
   resolved (all its vendor variants), whatever `status` says: Table 4 allows a
   Faulted notification that resolves one error while others remain.
4. `errorCode` = NoError and `status` = Ok → every other open fault is resolved,
   because Ok means the station as a whole is not in an error state — *except*
   the three MV fault-indicator faults of Table 5. Those latch in the field until
   the indicator is reset, and the spec gives each its own resolution string; a
   station saying Ok for another reason (e.g. after a reboot, or when its meter
   recovers) must not make a latched ground fault vanish from the operator's view.
   When rules 3 and 4 both match, both apply.
5. `errorCode` = NoError, `status` = Faulted, `info` not in Table 5 → nothing is
   resolved: the station is still faulted and does not say what recovered.

This module does no I/O: `effect_of` maps a notification to what the store does.
"""

from __future__ import annotations

from dataclasses import dataclass

from central.storage.model import StatusNotification

__all__ = ["MV_FAULT_CODES", "RESOLUTION_INFO", "FaultEffect", "effect_of"]

NO_ERROR = "NoError"
STATUS_OK = "Ok"

# OS³P 0.4 §6.6 Table 5, verbatim: info text → the errorCode it resolves.
RESOLUTION_INFO: dict[str, str] = {
    "Indicator fault (MV) resolved": "MVFaultIndicatorError",
    "Over current error (MV) resolved": "OverCurrentFailure",
    "Ground failure resolved": "GroundFailure",
}
MV_FAULT_CODES: frozenset[str] = frozenset(RESOLUTION_INFO.values())


@dataclass(frozen=True)
class FaultEffect:
    """`raises`: the (errorCode, vendorId, vendorErrorCode) opened, or None.
    `resolves`: error codes closed. `resolves_all_but_mv`: close every other code."""

    raises: tuple[str, str, str] | None = None
    resolves: frozenset[str] = frozenset()
    resolves_all_but_mv: bool = False

    @property
    def changes_anything(self) -> bool:
        return self.raises is not None or bool(self.resolves) or self.resolves_all_but_mv


def effect_of(notification: StatusNotification) -> FaultEffect:
    if notification.test:
        return FaultEffect()
    if notification.error_code != NO_ERROR:
        return FaultEffect(
            raises=(
                notification.error_code,
                notification.vendor_id or "",
                notification.vendor_error_code or "",
            )
        )
    resolved = RESOLUTION_INFO.get((notification.info or "").strip())
    return FaultEffect(
        resolves=frozenset() if resolved is None else frozenset({resolved}),
        resolves_all_but_mv=notification.status == STATUS_OK,
    )
