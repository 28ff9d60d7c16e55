"""The fault proxy over real TCP on 127.0.0.1: forwarding, delay, drop, black hole, refuse."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from hil.proxy import FaultyProxy
from tests.support.aio import UNIT, run


@contextlib.asynccontextmanager
async def echo_server() -> AsyncIterator[int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(1024):
                writer.write(data)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def round_trip(port: int, payload: bytes) -> tuple[bytes, float]:
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        start = loop.time()
        writer.write(payload)
        await writer.drain()
        data = await reader.readexactly(len(payload))
        return data, loop.time() - start
    finally:
        writer.close()


def test_forwards_bytes_unchanged_and_adds_the_configured_delay() -> None:
    async def scenario() -> None:
        async with echo_server() as port, FaultyProxy("127.0.0.1", port) as proxy:
            data, _ = await round_trip(proxy.port, b"x" * 100_000)
            assert data == b"x" * 100_000
            proxy.delay = 0.1 * UNIT
            data, slow = await round_trip(proxy.port, b"hello")
            assert data == b"hello"
            assert slow >= 2 * proxy.delay  # one delay each way

    run(scenario())


def test_drop_resets_open_connections() -> None:
    async def scenario() -> None:
        async with echo_server() as port, FaultyProxy("127.0.0.1", port) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(b"ping")
            assert await reader.readexactly(4) == b"ping"
            proxy.drop()
            with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
                await asyncio.wait_for(reader.readexactly(1), 5 * UNIT)
            writer.close()

    run(scenario())


def test_black_hole_keeps_the_connection_but_delivers_nothing() -> None:
    async def scenario() -> None:
        async with echo_server() as port, FaultyProxy("127.0.0.1", port) as proxy:
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            proxy.blackhole(True)
            writer.write(b"lost")
            await writer.drain()
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(reader.readexactly(4), 0.3 * UNIT)
            proxy.blackhole(False)
            writer.write(b"back")
            assert await asyncio.wait_for(reader.readexactly(4), 5 * UNIT) == b"back"
            writer.close()

    run(scenario())


def test_refuse_closes_new_connections() -> None:
    async def scenario() -> None:
        async with echo_server() as port, FaultyProxy("127.0.0.1", port) as proxy:
            proxy.refuse(True)
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            with contextlib.suppress(ConnectionError):
                writer.write(b"hello")
            with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
                await asyncio.wait_for(reader.readexactly(1), 5 * UNIT)
            writer.close()
            proxy.refuse(False)
            assert (await round_trip(proxy.port, b"ok"))[0] == b"ok"

    run(scenario())
