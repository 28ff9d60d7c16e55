"""`AsyncStore`: the `Store` for the event loop, every call run in ONE dedicated thread.

Why one thread: a sqlite3 connection must stay in the thread that opened it,
and one thread per store keeps the transactions of a store strictly serial —
no locking in the store, no interleaving of two messages' transactions.

Throughput ceiling: at most one transaction in flight per store, so the rate is
1 / (commit latency). SQLite with `synchronous=FULL` pays one fsync of the WAL
per commit; PostgreSQL pays one round trip per statement plus the WAL flush at
commit. `bench/central_storage.py` measures both (figures in README.md: hundreds
of MeterValues messages per second on either backend, about 0.5 ms of our CPU
each, against the ~2 messages/s that 2 000 stations reporting every 15 minutes
send). How to raise it, in order of
cost: store a whole message per transaction (already the case: MeterValues is
one transaction, not one per sampled value); on PostgreSQL, open several
AsyncStores (each its own connection and thread) and shard stations over them,
or use a psycopg pool behind a multi-thread executor — the Store methods are
already one transaction each, so they need no other change; commit several
messages in one transaction (group commit) before answering them all.

Listeners (`listen`): after a MeterValues or GetFileStatusNotification of a station
has committed, each listener is called with the station id and what was stored
(a tuple of `MeterValue`, or the `GetFileStatus`), in the event loop, before the
store call returns. Meter-read services use it to wait for the station's answer
that arrives as a message of its own (`central.meterreads`).

Cancellation: cancelling the awaiting task does not stop a call already handed
to the thread; a write then still commits, and the caller, cancelled, does not
answer the station, which re-sends: the duplicate is recognised (see `store`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from types import TracebackType
from typing import ParamSpec, TypeVar

from central.meters import Lifecycle
from central.shipment import MeterRecord, Problem, Shipment
from central.storage import inventory
from central.storage.commands import AsyncCommandStoreMixin
from central.storage.errors import StoreClosed
from central.storage.model import (
    BootNotification,
    BootPolicy,
    Event,
    EventKind,
    FirmwareStatus,
    GetFileStatus,
    LightState,
    Liveness,
    MeterSample,
    MeterValue,
    ModeState,
    OpenFault,
    Station,
    StationState,
    StatusNotification,
    StreetlightMode,
    StreetlightStatus,
    UploadedFile,
)
from central.storage.store import DEFAULT_HEARTBEAT_INTERVAL, SqlStore, Store, open_store

__all__ = ["AsyncStore", "Listener"]

log = logging.getLogger(__name__)

# (station id, what was stored: tuple[MeterValue, ...] or GetFileStatus)
Listener = Callable[[str, object], None]

P = ParamSpec("P")
T = TypeVar("T")


class AsyncStore(AsyncCommandStoreMixin):
    """Async mirror of `Store`; create with `await AsyncStore.open(url)`."""

    def __init__(self, store: Store, executor: ThreadPoolExecutor) -> None:
        """Wrap a store opened *in* `executor`'s single thread (use `open`)."""
        self._store = store
        self._executor = executor
        self._closed = False
        self._listeners: list[Listener] = []

    @classmethod
    async def open(cls, url: str, *, opener: Callable[[str], Store] = open_store) -> AsyncStore:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="central-store")
        try:
            store = await asyncio.get_running_loop().run_in_executor(executor, opener, url)
        except BaseException:
            executor.shutdown(wait=True)
            raise
        return cls(store, executor)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._store.close)
        finally:
            # The thread has nothing queued any more: this returns at once.
            self._executor.shutdown(wait=True)

    async def __aenter__(self) -> AsyncStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._closed:
            raise StoreClosed(getattr(fn, "__name__", "call"))
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def schema_version(self) -> int:
        return await self._call(self._store.schema_version)

    # -- station registry

    async def add_station(
        self,
        station_id: str,
        *,
        created_at: datetime,
        password: str | None = None,
        cert_identity: str | None = None,
        policy: BootPolicy = BootPolicy.ACCEPTED,
        heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL,
        enabled: bool = True,
        remember: str | None = None,
    ) -> Station:
        return await self._call(
            self._store.add_station,
            station_id,
            created_at=created_at,
            password=password,
            cert_identity=cert_identity,
            policy=policy,
            heartbeat_interval=heartbeat_interval,
            enabled=enabled,
            remember=remember,
        )

    async def remove_station(self, station_id: str) -> None:
        await self._call(self._store.remove_station, station_id)

    async def get_station(self, station_id: str) -> Station | None:
        return await self._call(self._store.get_station, station_id)

    async def list_stations(self) -> list[Station]:
        return await self._call(self._store.list_stations)

    async def set_policy(
        self, station_id: str, policy: BootPolicy, *, heartbeat_interval: int | None = None
    ) -> Station:
        return await self._call(
            self._store.set_policy, station_id, policy, heartbeat_interval=heartbeat_interval
        )

    async def set_enabled(self, station_id: str, enabled: bool) -> Station:
        return await self._call(self._store.set_enabled, station_id, enabled)

    async def set_password(self, station_id: str, password: str | None) -> None:
        await self._call(self._store.set_password, station_id, password)

    async def set_cert_identity(self, station_id: str, cert_identity: str | None) -> Station:
        return await self._call(self._store.set_cert_identity, station_id, cert_identity)

    async def verify_password(
        self, station_id: str, password: str, *, remember: str | None = None
    ) -> bool:
        return await self._call(
            self._store.verify_password, station_id, password, remember=remember
        )

    async def remembered_credentials(self) -> dict[str, str]:
        return await self._call(self._store.remembered_credentials)

    # -- liveness and connection state

    async def record_heartbeat(self, station_id: str, *, received_at: datetime) -> None:
        await self._call(self._store.record_heartbeat, station_id, received_at=received_at)

    async def record_heartbeats(self, seen: Mapping[str, datetime]) -> None:
        await self._call(self._store.record_heartbeats, dict(seen))

    async def record_connected(self, station_id: str, connection_id: str, *, at: datetime) -> None:
        await self._call(self._store.record_connected, station_id, connection_id, at=at)

    async def record_disconnected(
        self, station_id: str, connection_id: str, *, at: datetime
    ) -> bool:
        return await self._call(self._store.record_disconnected, station_id, connection_id, at=at)

    async def mark_all_disconnected(self, *, at: datetime) -> int:
        return await self._call(self._store.mark_all_disconnected, at=at)

    async def get_liveness(self, station_id: str) -> Liveness | None:
        return await self._call(self._store.get_liveness, station_id)

    async def list_liveness(self) -> list[Liveness]:
        return await self._call(self._store.list_liveness)

    # -- station-initiated messages

    async def record_boot(
        self,
        station_id: str,
        boot: BootNotification,
        *,
        answered: BootPolicy,
        received_at: datetime,
    ) -> None:
        await self._call(
            self._store.record_boot, station_id, boot, answered=answered, received_at=received_at
        )

    async def record_status(
        self, station_id: str, notification: StatusNotification, *, received_at: datetime
    ) -> bool:
        return await self._call(
            self._store.record_status, station_id, notification, received_at=received_at
        )

    async def record_streetlight_status(
        self, station_id: str, event: StreetlightStatus, *, received_at: datetime
    ) -> bool:
        return await self._call(
            self._store.record_streetlight_status, station_id, event, received_at=received_at
        )

    async def record_streetlight_mode(
        self, station_id: str, event: StreetlightMode, *, received_at: datetime
    ) -> bool:
        return await self._call(
            self._store.record_streetlight_mode, station_id, event, received_at=received_at
        )

    async def record_meter_values(
        self, station_id: str, meter_values: Sequence[MeterValue], *, received_at: datetime
    ) -> int:
        new: int = await self._call(
            self._store.record_meter_values, station_id, meter_values, received_at=received_at
        )
        self._tell(station_id, tuple(meter_values))
        return new

    async def record_firmware_status(
        self, station_id: str, notification: FirmwareStatus, *, received_at: datetime
    ) -> None:
        await self._call(
            self._store.record_firmware_status, station_id, notification, received_at=received_at
        )

    async def record_get_file_status(
        self, station_id: str, notification: GetFileStatus, *, received_at: datetime
    ) -> None:
        await self._call(
            self._store.record_get_file_status, station_id, notification, received_at=received_at
        )
        self._tell(station_id, notification)

    async def record_uploaded_file(self, upload: UploadedFile) -> None:
        await self._call(self._store.record_uploaded_file, upload)

    # -- queries

    async def open_faults(self, station_id: str | None = None) -> list[OpenFault]:
        return await self._call(self._store.open_faults, station_id)

    async def current_lights(self, station_id: str) -> dict[int, LightState]:
        return await self._call(self._store.current_lights, station_id)

    async def current_modes(self, station_id: str) -> dict[int, ModeState]:
        return await self._call(self._store.current_modes, station_id)

    async def station_states(
        self, station_ids: Collection[str] | None = None
    ) -> dict[str, StationState]:
        return await self._call(self._store.station_states, station_ids)

    async def meter_values(
        self,
        station_id: str,
        *,
        since: datetime,
        until: datetime,
        measurand: str | None = None,
        limit: int | None = None,
    ) -> list[MeterSample]:
        return await self._call(
            self._store.meter_values,
            station_id,
            since=since,
            until=until,
            measurand=measurand,
            limit=limit,
        )

    async def uploaded_files(
        self, station_id: str, request_id: str | None = None
    ) -> list[UploadedFile]:
        return await self._call(self._store.uploaded_files, station_id, request_id)

    async def boot_answers(self) -> dict[str, BootPolicy]:
        return await self._call(self._store.boot_answers)

    async def last_boot(self, station_id: str) -> BootNotification | None:
        return await self._call(self._store.last_boot, station_id)

    async def events(
        self,
        station_id: str,
        *,
        since: datetime,
        until: datetime,
        kinds: Collection[EventKind] | None = None,
        limit: int = 1000,
    ) -> list[Event]:
        return await self._call(
            self._store.events, station_id, since=since, until=until, kinds=kinds, limit=limit
        )

    # -- listeners (see the module docstring)

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` after each stored MeterValues / GetFileStatusNotification;
        returns the function that stops it."""
        self._listeners.append(listener)

        def stop() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return stop

    def _tell(self, station_id: str, stored: object) -> None:
        for listener in list(self._listeners):
            try:
                listener(station_id, stored)
            except Exception:
                # A listener's bug must not cost the station its answer.
                log.exception("store listener failed")

    # -- meter inventory (central.storage.inventory)

    def _sql(self) -> SqlStore:
        if not isinstance(self._store, SqlStore):
            raise TypeError("the meter inventory needs the SQL store")
        return self._store

    async def add_meter(
        self,
        station_id: str,
        meter: MeterRecord,
        *,
        at: datetime,
        lifecycle: Lifecycle = Lifecycle.NEW_IN_INVENTORY,
    ) -> inventory.Meter:
        return await self._call(
            inventory.add_meter, self._sql(), station_id, meter, at=at, lifecycle=lifecycle
        )

    async def list_meters(self, station_id: str) -> list[inventory.Meter]:
        return await self._call(inventory.list_meters, self._sql(), station_id)

    async def get_meter(self, meter_id: str) -> inventory.Meter | None:
        return await self._call(inventory.get_meter, self._sql(), meter_id)

    async def set_meter_status(
        self, station_id: str, meter_id: str, status: Lifecycle, *, at: datetime
    ) -> inventory.Meter:
        return await self._call(
            inventory.set_meter_status, self._sql(), station_id, meter_id, status, at=at
        )

    async def station_time_zone(self, station_id: str) -> str | None:
        return await self._call(inventory.station_time_zone, self._sql(), station_id)

    async def shipment_conflicts(self, shipment: Shipment) -> list[Problem]:
        return await self._call(inventory.shipment_conflicts, self._sql(), shipment)

    async def import_shipment(
        self,
        shipment: Shipment,
        *,
        at: datetime,
        hashes: Mapping[str, str | None],
        sha256: str,
        media_type: str,
        remember: Mapping[str, str] | None = None,
    ) -> inventory.ImportResult:
        return await self._call(
            inventory.import_shipment,
            self._sql(),
            shipment,
            at=at,
            hashes=hashes,
            sha256=sha256,
            media_type=media_type,
            remember=remember,
        )

    async def import_meter_values(
        self, station_id: str, meter_values: Sequence[MeterValue], *, received_at: datetime
    ) -> int:
        return await self._call(
            inventory.import_meter_values,
            self._sql(),
            station_id,
            meter_values,
            received_at=received_at,
        )
