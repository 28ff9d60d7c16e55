"""Errors of the central's storage.

Every sqlite3 / psycopg exception is translated into this tree at one boundary
(`_backends.translate_errors`), so callers never import a driver to catch errors.

    StorageError
    ├── InvalidURL            open_store() got a URL it cannot use (our configuration bug)
    ├── BackendMissing        the URL names PostgreSQL but psycopg is not installed
    ├── SchemaTooNew          the database was migrated by a newer release than this one
    ├── StationExists         add_station() for an identity already registered
    ├── UnknownStation        a registry operation named a station that is not registered
    └── BackendError          the database failed (disk full, connection lost, constraint);
        │                     carries the driver's exception as __cause__. Nothing was
        │                     committed: the central must not answer the station, which
        │                     then re-sends (at-least-once delivery).
        └── StoreClosed       the store was used after close()
    TemporaryServerError      pgtemp could not start or stop a throwaway PostgreSQL
                              (tests, benchmarks, demos; never the production path)
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "BackendMissing",
    "InvalidURL",
    "SchemaTooNew",
    "StationExists",
    "StorageError",
    "StoreClosed",
    "TemporaryServerError",
    "UnknownStation",
]


class StorageError(Exception):
    """Root of every error this package raises."""


class InvalidURL(StorageError):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot open store {url!r}: {reason}")
        self.url = url
        self.reason = reason


class BackendMissing(StorageError):
    def __init__(self, scheme: str, extra: str) -> None:
        super().__init__(f"the {scheme} backend needs the '{extra}' extra (pip install .[{extra}])")
        self.scheme = scheme
        self.extra = extra


class SchemaTooNew(StorageError):
    def __init__(self, found: int, known: int) -> None:
        super().__init__(
            f"database schema version {found} is newer than this release knows ({known}):"
            " refusing to write to it"
        )
        self.found = found
        self.known = known


class StationExists(StorageError):
    def __init__(self, station_id: str) -> None:
        super().__init__(f"station {station_id!r} is already registered")
        self.station_id = station_id


class UnknownStation(StorageError):
    def __init__(self, station_id: str) -> None:
        super().__init__(f"station {station_id!r} is not registered")
        self.station_id = station_id


class BackendError(StorageError):
    def __init__(self, operation: str, reason: str) -> None:
        super().__init__(f"{operation}: {reason}")
        self.operation = operation
        self.reason = reason


class StoreClosed(BackendError):
    def __init__(self, operation: str) -> None:
        super().__init__(operation, "the store is closed")


class TemporaryServerError(StorageError):
    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"temporary PostgreSQL: {step} failed: {reason}")
        self.step = step
        self.reason = reason
