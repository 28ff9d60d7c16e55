"""SQLite storage shared by the daemon's stores (outbox, state, and others)."""

from rtu.storage.errors import SchemaTooNew, StorageError, StorageUnavailable
from rtu.storage.sqlite import (
    Database,
    Migrations,
    guarded,
    open_database,
    open_readonly,
    transaction,
)
from rtu.storage.thread import DatabaseThread

__all__ = [
    "Database",
    "DatabaseThread",
    "Migrations",
    "SchemaTooNew",
    "StorageError",
    "StorageUnavailable",
    "guarded",
    "open_database",
    "open_readonly",
    "transaction",
]
