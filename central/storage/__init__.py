"""The central system's storage: SQLite by default, PostgreSQL by URL.

    store = open_store("sqlite:///var/lib/os3p-central/central.db")
    store = open_store("postgresql://central@db.example:5432/central")
    astore = await AsyncStore.open(url)      # from the event loop: one thread per store

See `store` for the theory of operation, `faults` for the open-faults rule,
`aio` for the threading model and its throughput ceiling.
"""

from central.storage.aio import AsyncStore
from central.storage.errors import (
    BackendError,
    BackendMissing,
    InvalidURL,
    SchemaTooNew,
    StationExists,
    StorageError,
    StoreClosed,
    TemporaryServerError,
    UnknownStation,
)
from central.storage.faults import RESOLUTION_INFO, effect_of
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
    SampledValue,
    Station,
    StationState,
    StatusNotification,
    StreetlightMode,
    StreetlightStatus,
    UploadedFile,
    meter_values_from_payload,
    parse_timestamp,
)
from central.storage.store import SqlStore, Store, open_store

__all__ = [
    "RESOLUTION_INFO",
    "AsyncStore",
    "BackendError",
    "BackendMissing",
    "BootNotification",
    "BootPolicy",
    "Event",
    "EventKind",
    "FirmwareStatus",
    "GetFileStatus",
    "InvalidURL",
    "LightState",
    "Liveness",
    "MeterSample",
    "MeterValue",
    "ModeState",
    "OpenFault",
    "SampledValue",
    "SchemaTooNew",
    "SqlStore",
    "Station",
    "StationExists",
    "StationState",
    "StatusNotification",
    "StorageError",
    "Store",
    "StoreClosed",
    "StreetlightMode",
    "StreetlightStatus",
    "TemporaryServerError",
    "UnknownStation",
    "UploadedFile",
    "effect_of",
    "meter_values_from_payload",
    "open_store",
    "parse_timestamp",
]
