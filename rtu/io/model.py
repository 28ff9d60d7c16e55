"""The register map of the station's Modbus I/O module and the snapshot read from it.

The map is configuration, not code: the same `IOMap` drives the real driver
(`rtu.io.modbus`) and the simulator (`hil.io_module`), so a map that works in
the rig is the map that ships. `DEFAULT_IO_MAP` is the one place the default
wiring lives.

Addresses are zero-based protocol addresses (what goes on the wire), not the
"1-based" channel numbers some module datasheets print. Coils and discrete
inputs are separate tables, so a coil and an input may share a number.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from types import MappingProxyType

__all__ = [
    "CONTACTORS",
    "DEFAULT_IO_MAP",
    "ContactorPoints",
    "IOMap",
    "IOSnapshot",
    "IndicatorPoints",
    "IndicatorState",
]

#: OS³P streetlight contactors are numbered 1 to 4.
CONTACTORS = range(1, 5)

# Modbus limits: addresses are 16-bit; one request reads at most 2000 bits
# (Modbus Application Protocol V1.1b3 §6.1, §6.2).
_MAX_ADDRESS = 0xFFFF
_MAX_DEVICE_ID = 247


@dataclasses.dataclass(frozen=True, slots=True)
class ContactorPoints:
    """Where one streetlight contactor is wired: its drive coil and its auxiliary contact."""

    number: int  # OS³P contactor number, 1..4
    coil: int  # coil address driving the contactor
    feedback: int  # discrete input reading the contactor's auxiliary contact


@dataclasses.dataclass(frozen=True, slots=True)
class IndicatorPoints:
    """Where one MV fault passage indicator group is wired.

    Each status contact is optional because indicators differ: not every model
    has a ground-fault element or a healthy (self-supervision) relay. A group
    without a ground-fault input is one without ground-fault detection.
    """

    name: str  # e.g. "MV1"; how operators and OS³P messages name the group
    test_coil: int  # output pulsed to run the indicator's self-test
    reset_coil: int  # output pulsed to reset a latched trip
    overcurrent: int | None = None
    groundfault: int | None = None
    healthy: int | None = None

    def inputs(self) -> tuple[int, ...]:
        """The discrete inputs this group uses."""
        return tuple(a for a in (self.overcurrent, self.groundfault, self.healthy) if a is not None)


@dataclasses.dataclass(frozen=True, slots=True)
class IOMap:
    """The whole wiring of one I/O module, validated when built.

    `inverted_inputs` lists discrete inputs wired active-low (a normally
    closed contact, or fail-safe wiring where a broken wire must read as
    "tripped"); the driver flips them so everything above it sees logical
    values only.
    """

    contactors: tuple[ContactorPoints, ...]
    local_switch: int  # discrete input of the station-wide technician override switch
    indicators: tuple[IndicatorPoints, ...] = ()
    pulse_seconds: float = 0.5  # length of test and reset pulses
    device_id: int = 1  # Modbus unit id of the module
    inverted_inputs: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        numbers = [c.number for c in self.contactors]
        if sorted(numbers) != sorted(set(numbers)) or not set(numbers) <= set(CONTACTORS):
            raise ValueError(f"contactor numbers must be unique and within 1..4, got {numbers}")
        names = [g.name for g in self.indicators]
        if len(names) != len(set(names)) or not all(names):
            raise ValueError(f"indicator group names must be unique and non-empty, got {names}")
        _check_unique("coil", self.coil_addresses())
        _check_unique("discrete input", self.input_addresses())
        for address in self.inverted_inputs:
            if address not in self.input_addresses():
                raise ValueError(f"inverted input {address} is not a mapped discrete input")
        if not self.pulse_seconds > 0:
            raise ValueError(f"pulse_seconds must be positive, got {self.pulse_seconds}")
        if not 0 <= self.device_id <= _MAX_DEVICE_ID:
            raise ValueError(f"device_id must be within 0..247, got {self.device_id}")

    def coil_addresses(self) -> tuple[int, ...]:
        """Every mapped coil, in map order."""
        contactor_coils = [c.coil for c in self.contactors]
        pulse_coils = [a for g in self.indicators for a in (g.test_coil, g.reset_coil)]
        return (*contactor_coils, *pulse_coils)

    def input_addresses(self) -> tuple[int, ...]:
        """Every mapped discrete input, in map order."""
        feedback = [c.feedback for c in self.contactors]
        indicator_inputs = [a for g in self.indicators for a in g.inputs()]
        return (*feedback, self.local_switch, *indicator_inputs)

    def contactor(self, number: int) -> ContactorPoints:
        """The points of contactor `number`; ValueError if it is not wired."""
        for points in self.contactors:
            if points.number == number:
                return points
        raise ValueError(f"contactor {number} is not in the I/O map")

    def indicator(self, name: str) -> IndicatorPoints:
        """The points of indicator group `name`; ValueError if it is not wired."""
        for points in self.indicators:
            if points.name == name:
                return points
        raise ValueError(f"indicator group {name!r} is not in the I/O map")


def _check_unique(kind: str, addresses: Iterable[int]) -> None:
    seen: set[int] = set()
    for address in addresses:
        if not 0 <= address <= _MAX_ADDRESS:
            raise ValueError(f"{kind} address {address} is outside 0..65535")
        if address in seen:
            raise ValueError(f"{kind} address {address} is mapped twice")
        seen.add(address)


#: The wiring of the reference station: a 16-coil / 16-input module.
#: MV2 has no ground-fault element, so the map exercises an optional input.
DEFAULT_IO_MAP = IOMap(
    contactors=(
        ContactorPoints(1, coil=0, feedback=0),
        ContactorPoints(2, coil=1, feedback=1),
        ContactorPoints(3, coil=2, feedback=2),
        ContactorPoints(4, coil=3, feedback=3),
    ),
    local_switch=4,
    indicators=(
        IndicatorPoints("MV1", test_coil=4, reset_coil=5, overcurrent=5, groundfault=6, healthy=7),
        IndicatorPoints("MV2", test_coil=6, reset_coil=7, overcurrent=8, healthy=9),
    ),
)


@dataclasses.dataclass(frozen=True, slots=True)
class IndicatorState:
    """What one indicator group reports; None where the contact is not wired."""

    overcurrent: bool | None
    groundfault: bool | None
    healthy: bool | None


@dataclasses.dataclass(frozen=True)
class IOSnapshot:
    """One consistent reading of the module, in logical (de-inverted) values.

    The mappings are read-only views, so a snapshot handed to several
    consumers cannot be changed by one of them. (A snapshot is not hashable:
    nothing needs it to be, and hashing would mean giving up the mappings.)
    """

    feedback: Mapping[int, bool]  # contactor number -> auxiliary contact closed
    coils: Mapping[int, bool]  # contactor number -> coil state the module reports
    local_switch: bool  # technician override switch engaged
    indicators: Mapping[str, IndicatorState]  # group name -> state

    def __post_init__(self) -> None:
        object.__setattr__(self, "feedback", MappingProxyType(dict(self.feedback)))
        object.__setattr__(self, "coils", MappingProxyType(dict(self.coils)))
        object.__setattr__(self, "indicators", MappingProxyType(dict(self.indicators)))
