"""`LightsSubsystem`: the profile store, the controller and the handlers, wired together.

The daemon builds one with `open`, registers its handlers and trigger providers
on the router, runs `loops()` under supervision and reads `snapshot()` for
`rtu status`. The subsystem subscribes itself to what makes the schedule
change: clock corrections (`Clock.on_change`) and the `Geolocation` key
(`ConfigurationKeys.on_change`); the site's time zone comes from the config
file (`[site] timezone`), which OS³P cannot change.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from os3p.router import Router
from rtu.clock import Clock
from rtu.configkeys import ConfigurationKeys
from rtu.events import EventSink
from rtu.io.poller import IOPoller
from rtu.lights.config import LightsConfig
from rtu.lights.controller import LightsController
from rtu.lights.handlers import LightsHandlers
from rtu.lights.profiles import LightsStore
from rtu.schedule import Site
from rtu.supervision.board import FaultBoard
from rtu.triggers import Triggers

__all__ = ["DATABASE_FILE", "LightsSubsystem"]

log = logging.getLogger(__name__)

DATABASE_FILE = "lights.db"

Ctx = TypeVar("Ctx")


def _site(latlng: tuple[float, float], zone: ZoneInfo) -> Site:
    return Site(latlng[0], latlng[1], zone)


class LightsSubsystem:
    def __init__(
        self, store: LightsStore, controller: LightsController, handlers: LightsHandlers
    ) -> None:
        self.store = store
        self.controller = controller
        self.handlers = handlers

    @classmethod
    async def open(
        cls,
        *,
        data_dir: Path,
        contactors: Iterable[int],
        poller: IOPoller,
        sink: EventSink,
        clock: Clock,
        keys: ConfigurationKeys,
        zone: ZoneInfo,
        config: LightsConfig,
        faults: FaultBoard | None = None,
    ) -> LightsSubsystem:
        """Open `lights.db` and build the controller from what it holds."""
        store = await LightsStore.open(data_dir / DATABASE_FILE, now=clock.now)
        if store.moved_aside is not None:
            log.error("lights.db was corrupt and moved aside: profiles must be sent again")
        controller = LightsController(
            contactors=contactors,
            store=store,
            poller=poller,
            sink=sink,
            clock=clock,
            site=_site(keys.value("Geolocation"), zone),
            feedback_timeout=config.feedback_timeout,
            max_sleep=config.max_sleep,
            faults=faults,
        )
        # Handlers answer from memory before the loop's first start: fill it now.
        controller.set_profiles(await store.profiles())
        controller.restore_overrides(await store.overrides())

        def clock_corrected(_offset: timedelta) -> None:
            controller.recompute()

        def geolocation_changed(value: Any) -> None:
            controller.set_site(_site(value, zone))

        clock.on_change(clock_corrected)
        keys.on_change("Geolocation", geolocation_changed)
        handlers = LightsHandlers(
            controller=controller,
            store=store,
            clock=clock,
            max_stack_level=lambda: int(keys.value("StreetlightProfileMaxStackLevel")),
        )
        return cls(store, controller, handlers)

    def register(self, router: Router[Ctx], triggers: Triggers) -> None:
        self.handlers.register(router, triggers)

    def loops(self) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        return [("lights", self.controller.control_loop)]

    def snapshot(self) -> dict[str, object]:
        return self.controller.snapshot()

    async def close(self) -> None:
        await self.store.close()
