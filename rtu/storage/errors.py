"""Errors of the storage layer.

    StorageError
    ├── StorageUnavailable   the file cannot be read or written: read-only file system,
    │                        disk full, permission denied, I/O error (path + reason)
    └── SchemaTooNew         the file was written by a newer version of the daemon
                             (a firmware downgrade): refused rather than misread

A *corrupt* file is not an error here: `open_database` moves it aside and
starts afresh (and says so in its result), because a daemon that refuses to
start over a damaged outbox helps no one. An unavailable disk is different:
moving files around cannot fix it, so it is raised for the daemon to report.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["SchemaTooNew", "StorageError", "StorageUnavailable"]


class StorageError(Exception):
    """Root of every error the storage layer raises."""


class StorageUnavailable(StorageError):
    """The database file cannot be used: `reason` says why (read-only, full, ...)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class SchemaTooNew(StorageError):
    """The file's schema version is newer than the migrations this code knows."""

    def __init__(self, path: Path, found: int, known: int) -> None:
        super().__init__(
            f"{path}: schema version {found} is newer than this version knows ({known});"
            " written by a newer daemon?"
        )
        self.path = path
        self.found = found
        self.known = known
