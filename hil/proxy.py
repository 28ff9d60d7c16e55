"""A TCP proxy between stations and the central that misbehaves on command.

The fault suite and the benchmarks put it on the path of the websocket:

- `delay`: added one-way latency per direction (20 ms each way = 40 ms RTT),
  applied per chunk with ordering kept (a chunk is released no earlier than the
  previous one), the way a slow mobile link behaves;
- `drop()`: reset every open connection now (the station sees a dead link);
- `blackhole(True)`: keep connections open but forward nothing (a half-open
  link: TCP stays up, nothing arrives, only pings or call timeouts notice);
- `refuse(True)`: close new connections at once (central unreachable).

It forwards bytes, never parses them, so TLS passes through unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

__all__ = ["FaultyProxy"]

log = logging.getLogger(__name__)


class FaultyProxy:
    def __init__(
        self, target_host: str, target_port: int, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = port
        self.delay = 0.0  # seconds, one way
        self._flowing = asyncio.Event()  # cleared while the link is a black hole
        self._flowing.set()
        self._refusing = False
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self.drop()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def __aenter__(self) -> FaultyProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------ faults
    def drop(self) -> None:
        """Abort every open connection (RST, not FIN: like a modem losing carrier)."""
        for writer in list(self._writers):
            transport = writer.transport
            transport.abort()
        self._writers.clear()

    def blackhole(self, on: bool) -> None:
        if on:
            self._flowing.clear()
        else:
            self._flowing.set()

    def refuse(self, on: bool) -> None:
        self._refusing = on

    # ------------------------------------------------------------ plumbing
    async def _accept(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        if self._refusing:
            client_writer.transport.abort()
            return
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError as exc:
            log.info("proxy: target %s:%d unreachable: %s", *self.target, exc)
            client_writer.transport.abort()
            return
        self.connections += 1
        self._writers.update((client_writer, server_writer))
        upstream = asyncio.ensure_future(self._pipe(client_reader, server_writer))
        downstream = asyncio.ensure_future(self._pipe(server_reader, client_writer))
        for task in (upstream, downstream):
            self._pipes.add(task)
            task.add_done_callback(self._pipes.discard)
        await asyncio.wait([upstream, downstream], return_when=asyncio.FIRST_COMPLETED)
        for task in (upstream, downstream):
            task.cancel()
        for writer in (client_writer, server_writer):
            self._writers.discard(writer)
            writer.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def release() -> None:
            while True:
                due, chunk = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                await self._flowing.wait()  # a black hole delivers nothing
                writer.write(chunk)
                await writer.drain()
                queue.task_done()

        releaser = asyncio.ensure_future(release())
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                if not self._flowing.is_set():
                    continue  # bytes sent into a half-open link are lost
                queue.put_nowait((loop.time() + self.delay, chunk))
            await queue.join()  # the peer closed: deliver what is still in flight first
        except (ConnectionError, OSError):
            pass
        finally:
            releaser.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await releaser


@contextlib.asynccontextmanager
async def faulty_proxy(target_host: str, target_port: int) -> AsyncIterator[FaultyProxy]:
    async with FaultyProxy(target_host, target_port) as proxy:
        yield proxy
