"""The register map validates itself and the snapshot cannot be changed by a consumer."""

from __future__ import annotations

import dataclasses

import pytest

from rtu.io.model import (
    DEFAULT_IO_MAP,
    ContactorPoints,
    IndicatorPoints,
    IndicatorState,
    IOMap,
    IOSnapshot,
)


def test_default_map_has_four_contactors_and_two_groups() -> None:
    assert [c.number for c in DEFAULT_IO_MAP.contactors] == [1, 2, 3, 4]
    assert [g.name for g in DEFAULT_IO_MAP.indicators] == ["MV1", "MV2"]
    assert DEFAULT_IO_MAP.indicator("MV2").groundfault is None


def _map(**changes: object) -> IOMap:
    return dataclasses.replace(DEFAULT_IO_MAP, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param(
            {"contactors": (ContactorPoints(5, coil=0, feedback=0),)}, "1..4", id="number-5"
        ),
        pytest.param(
            {
                "contactors": (
                    ContactorPoints(1, coil=0, feedback=0),
                    ContactorPoints(1, coil=1, feedback=1),
                )
            },
            "unique",
            id="number-twice",
        ),
        pytest.param(
            {
                "contactors": (
                    ContactorPoints(1, coil=0, feedback=0),
                    ContactorPoints(2, coil=0, feedback=1),
                )
            },
            "coil address 0 is mapped twice",
            id="coil-twice",
        ),
        pytest.param({"local_switch": 0}, "discrete input address 0", id="input-twice"),
        pytest.param(
            {"indicators": (IndicatorPoints("MV1", 4, 5), IndicatorPoints("MV1", 6, 7))},
            "names",
            id="group-twice",
        ),
        pytest.param({"inverted_inputs": frozenset({99})}, "not a mapped", id="inverted-unmapped"),
        pytest.param({"pulse_seconds": 0.0}, "pulse_seconds", id="pulse-zero"),
        pytest.param({"device_id": 248}, "device_id", id="unit-248"),
        pytest.param({"local_switch": 70000}, "outside", id="address-too-big"),
    ],
)
def test_invalid_maps_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _map(**changes)


def test_unknown_contactor_and_group_are_value_errors() -> None:
    with pytest.raises(ValueError, match="contactor 7"):
        DEFAULT_IO_MAP.contactor(7)
    with pytest.raises(ValueError, match="MV9"):
        DEFAULT_IO_MAP.indicator("MV9")


def test_snapshot_mappings_are_read_only_copies() -> None:
    feedback = {1: True}
    snapshot = IOSnapshot(
        feedback=feedback,
        coils={1: True},
        local_switch=False,
        indicators={"MV1": IndicatorState(overcurrent=False, groundfault=None, healthy=True)},
    )
    feedback[1] = False
    assert snapshot.feedback[1] is True
    with pytest.raises(TypeError):
        snapshot.feedback[1] = False  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.local_switch = True  # type: ignore[misc]
