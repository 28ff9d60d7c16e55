"""What the rest of the daemon needs from an I/O module, and nothing more.

The lights controller and the MV fault monitor depend on this Protocol only;
`rtu.io.modbus.ModbusIOModule` implements it over pymodbus, and tests can use
the Modbus simulator in `hil.io_module` behind the same real driver.
"""

from __future__ import annotations

from typing import Protocol

from rtu.io.model import IOSnapshot

__all__ = ["IOModule"]


class IOModule(Protocol):
    """An I/O module driving the contactors and reading the station's inputs.

    Every method raises `rtu.io.errors.IOModuleError` (and nothing else) when
    the module cannot do it; a failed call leaves the driver ready to
    reconnect on the next one.
    """

    async def read(self) -> IOSnapshot:
        """Read every mapped coil and input in one go."""
        ...

    async def set_contactor(self, contactor: int, on: bool) -> None:
        """Drive contactor `contactor` (1..4) on or off; ValueError if it is not mapped."""
        ...

    async def pulse_test(self, group: str) -> None:
        """Pulse the test output of indicator group `group` for the map's pulse length."""
        ...

    async def pulse_reset(self, group: str) -> None:
        """Pulse the reset output of indicator group `group` for the map's pulse length."""
        ...

    async def close(self) -> None:
        """Release the connection; a later call reconnects."""
        ...
