"""The meter inventory's vocabulary: kinds, protocols, channels and the lifecycle table.

A station (the substation RTU) reads its meters and reports their values in
MeterValues; the inventory records which meters a station has, so that meter
reads can be asked per meter and devices can be followed from the warehouse to
the scrap yard (OSGP SmartMeteringInstallation AddDevice, SetDeviceLifecycleStatus).

- kind `E` (electricity) or `G` (gas); protocol `DLMS` (DLMS/COSEM) or `P1` (DSMR).
- channel: the M-Bus channel, as in OSGP CoupleMbusDeviceByChannel. An E meter is
  the station's own meter: channel 0. A G meter hangs on an M-Bus channel 1..4 of
  an E meter (DSMR and IDIS both have four).

Lifecycle (OSGP DeviceLifecycleStatus, reduced to the five states the issue names):

    NEW_IN_INVENTORY ─► READY_FOR_USE ─► IN_USE
          ▲   │            │   ▲            │
          │   │            ▼   └────────────┘ (taken out of service, reusable)
          │   └──────► RETURNED_TO_SUPPLIER ──► (back as NEW_IN_INVENTORY)
          └────────────────────────────────────
    every state except DESTROYED ──► DESTROYED (final)

Setting the status a meter already has is allowed and changes nothing, so a
repeated PUT is harmless.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final

__all__ = [
    "E_CHANNEL",
    "G_CHANNELS",
    "TRANSITIONS",
    "IllegalTransition",
    "Lifecycle",
    "MeterKind",
    "MeterProtocol",
    "channel_problem",
    "check_transition",
]


class MeterKind(enum.StrEnum):
    ELECTRICITY = "E"
    GAS = "G"


class MeterProtocol(enum.StrEnum):
    DLMS = "DLMS"
    P1 = "P1"


class Lifecycle(enum.StrEnum):
    NEW_IN_INVENTORY = "NEW_IN_INVENTORY"
    READY_FOR_USE = "READY_FOR_USE"
    IN_USE = "IN_USE"
    RETURNED_TO_SUPPLIER = "RETURNED_TO_SUPPLIER"
    DESTROYED = "DESTROYED"


E_CHANNEL: Final = 0
G_CHANNELS: Final = range(1, 5)

_L = Lifecycle
TRANSITIONS: Final[Mapping[Lifecycle, frozenset[Lifecycle]]] = {
    _L.NEW_IN_INVENTORY: frozenset({_L.READY_FOR_USE, _L.RETURNED_TO_SUPPLIER, _L.DESTROYED}),
    _L.READY_FOR_USE: frozenset(
        {_L.IN_USE, _L.NEW_IN_INVENTORY, _L.RETURNED_TO_SUPPLIER, _L.DESTROYED}
    ),
    _L.IN_USE: frozenset({_L.READY_FOR_USE, _L.RETURNED_TO_SUPPLIER, _L.DESTROYED}),
    # A repaired or replaced device comes back from the supplier into the warehouse.
    _L.RETURNED_TO_SUPPLIER: frozenset({_L.NEW_IN_INVENTORY, _L.DESTROYED}),
    _L.DESTROYED: frozenset(),
}


class IllegalTransition(Exception):
    """The lifecycle table does not allow this move."""

    def __init__(self, current: Lifecycle, wanted: Lifecycle) -> None:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing (final)"
        super().__init__(f"{current} cannot become {wanted}; allowed: {allowed}")
        self.current = current
        self.wanted = wanted


def check_transition(current: Lifecycle, wanted: Lifecycle) -> bool:
    """True when the status changes, False when it stays; IllegalTransition when refused."""
    if current is wanted:
        return False
    if wanted not in TRANSITIONS[current]:
        raise IllegalTransition(current, wanted)
    return True


def channel_problem(kind: MeterKind, channel: int) -> str | None:
    """Why `channel` does not suit a meter of `kind`, or None."""
    if kind is MeterKind.ELECTRICITY and channel != E_CHANNEL:
        return f"an E meter is the station's own meter: channel {E_CHANNEL}"
    if kind is MeterKind.GAS and channel not in G_CHANNELS:
        return "a G meter is on an M-Bus channel 1..4"
    return None
