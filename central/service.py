"""The whole central process: store, OS³P endpoint, operator API; started and stopped as one.

    async with CentralService(config) as central:   # tests, benchmarks
        ...
    await run_forever(config)                          # `os3p-central serve`

Start order: store (migrated), the password verifier's store, registry, websocket
listener, the command queue's dispatcher (`central.dispatcher`: it re-queues what a
previous process left running), then the HTTP app; stop runs backwards, so no HTTP
request ever meets a closed store or a stopped queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
from types import TracebackType

from aiohttp import web

from central.api import build_app
from central.config import CentralConfig
from central.dispatcher import Dispatcher
from central.logs import log_event
from central.meterreads import service_registry
from central.operations import ServiceRegistry
from central.queueing import QueuePolicy
from central.server import CentralServer
from central.storage import AsyncStore
from central.webhooks import WebhookPolicy

__all__ = ["CentralService", "run_forever"]

log = logging.getLogger(__name__)


class CentralService:
    def __init__(
        self,
        config: CentralConfig,
        *,
        services: ServiceRegistry | None = None,
        queue: QueuePolicy | None = None,
        webhooks: WebhookPolicy | None = None,
    ) -> None:
        """`services`: the named operations requests may use beside the 13 OS³P
        actions (`central.operations`); by default the meter-read services.
        `queue` and `webhooks` override the configuration's policies (tests)."""
        self.config = config
        self._services = service_registry() if services is None else services
        self._queue = config.queue if queue is None else queue
        self._webhooks = config.webhooks if webhooks is None else webhooks
        self._store: AsyncStore | None = None
        self._verifier: AsyncStore | None = None
        self._server: CentralServer | None = None
        self._dispatcher: Dispatcher | None = None
        self._runner: web.AppRunner | None = None
        self.api_port = 0

    @property
    def server(self) -> CentralServer:
        if self._server is None:
            raise RuntimeError("not started")
        return self._server

    @property
    def dispatcher(self) -> Dispatcher:
        if self._dispatcher is None:
            raise RuntimeError("not started")
        return self._dispatcher

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def ws_url(self) -> str:
        scheme = "wss" if self.config.listen.tls_cert else "ws"
        host = "localhost" if scheme == "wss" else "127.0.0.1"
        return f"{scheme}://{host}:{self.server.port}{self.config.listen.prefix}"

    async def start(self) -> None:
        self._store = await AsyncStore.open(self.config.storage_url)
        try:
            config = self.config
            # Password hashing gets its own thread and connection (see central.registry).
            self._verifier = await AsyncStore.open(config.storage_url)
            self._server = CentralServer(config, self._store, verifier=self._verifier)
            await self._server.start()
            self._dispatcher = Dispatcher(
                self._server, services=self._services, policy=self._queue, webhooks=self._webhooks
            )
            await self._dispatcher.start()
            self._runner = web.AppRunner(build_app(self._server, self._dispatcher), access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, config.api.host, config.api.port)
            await site.start()
            self.api_port = int(self._runner.addresses[0][1])
            # The file server's public URL names the API port; with port 0 it is known
            # only now.
            if config.api.port == 0 and not config.api.public_url:
                api = dataclasses.replace(config.api, port=self.api_port)
                self._server.files.base_url = api.base_url
            log_event(log, logging.INFO, "api_listening", station=None, port=self.api_port)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._dispatcher is not None:
            await self._dispatcher.stop()
            self._dispatcher = None
        if self._server is not None:
            await self._server.stop()
            self._server = None
        if self._verifier is not None:
            await self._verifier.aclose()
            self._verifier = None
        if self._store is not None:
            await self._store.aclose()
            self._store = None

    async def __aenter__(self) -> CentralService:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def run_forever(config: CentralConfig, *, services: ServiceRegistry | None = None) -> None:
    """Serve until SIGINT or SIGTERM, then stop cleanly; `services` as for CentralService."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with CentralService(config, services=services):
        await stop.wait()
        log_event(log, logging.INFO, "stopping", station=None)
