"""The analyser simulator: values encoded as the map says, read-only, restartable."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pymodbus.client import AsyncModbusTcpClient

from hil.analyser import AnalyserSimulator
from rtu.metering.registers import Point, decode
from tests.support.aio import run


def test_serves_the_map_and_refuses_writes() -> None:
    async def scenario() -> None:
        async with AnalyserSimulator() as sim:
            sim.set_value("Voltage.L2N", Decimal("228.4"))
            client = AsyncModbusTcpClient("127.0.0.1", port=sim.port, retries=0)
            await client.connect()
            try:
                answer = await client.read_input_registers(2, count=2, device_id=1)
                assert decode(answer.registers, "uint32") == 2284
                refused = await client.write_register(2, 1, device_id=1)
                assert refused.isError()
            finally:
                client.close()
            port = sim.port
            await sim.stop()
            assert not sim.running
            await sim.start()
            assert sim.port == port

    run(scenario())


def test_values_must_fit_the_scale() -> None:
    sim = AnalyserSimulator((Point("Frequency", 0, scale=Decimal("0.01")),), values={})
    with pytest.raises(ValueError, match="multiple"):
        sim.set_value("Frequency", Decimal("50.001"))
