"""The file server's state: firmware bundles to hand out, GetFile uploads to receive.

GetFile (§7.5) names a `location` the station uploads to. When the operator leaves it
out, the central issues one per request: `<public_url>/files/uploads/<token>`, the
token a random capability (the station has no API token), valid for `UPLOAD_TTL`.
The station appends `/<fileName>` and PUTs or POSTs the bytes; the file is stored
under `<data_dir>/uploads/<station>/` with its SHA-256 and size, and recorded.
Tokens live in memory: after a central restart, an upload still in flight is
refused (404) and shows as UploadFailed in the station's GetFileStatusNotification.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path

from central.storage import AsyncStore, UploadedFile

__all__ = ["UPLOAD_TTL", "FileService", "UnknownUpload", "safe_name"]

UPLOAD_TTL = 24 * 3600.0
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")


class UnknownUpload(Exception):
    """No live upload location has this token."""


def safe_name(name: str) -> bool:
    """A plain file name: no directory part, no leading dot, a bounded charset."""
    return _NAME.fullmatch(name) is not None


@dataclasses.dataclass(frozen=True)
class _Upload:
    station_id: str
    request_id: str | None
    expires: float


class FileService:
    def __init__(
        self,
        data_dir: Path,
        base_url: str,
        store: AsyncStore,
        wall: Callable[[], datetime],
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.firmware_dir = data_dir / "firmware"
        self.uploads_dir = data_dir / "uploads"
        self.firmware_dir.mkdir(parents=True, exist_ok=True)
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        self.base_url = base_url.rstrip("/")
        self._store = store
        self._wall = wall
        self._monotonic = monotonic
        self._uploads: dict[str, _Upload] = {}

    def firmware_url(self, name: str) -> str:
        return f"{self.base_url}/files/firmware/{name}"

    def firmware_path(self, name: str) -> Path | None:
        if not safe_name(name):
            return None
        path = self.firmware_dir / name
        return path if path.is_file() else None

    def issue_upload(self, station_id: str, request_id: str | None) -> str:
        """A fresh upload location (a directory URL) for one GetFile request."""
        now = self._monotonic()
        for token in [t for t, u in self._uploads.items() if u.expires <= now]:
            del self._uploads[token]
        token = secrets.token_urlsafe(24)
        self._uploads[token] = _Upload(station_id, request_id, now + UPLOAD_TTL)
        return f"{self.base_url}/files/uploads/{token}"

    async def receive_upload(
        self, token: str, name: str, chunks: AsyncIterator[bytes]
    ) -> UploadedFile:
        upload = self._uploads.get(token)
        if upload is None or upload.expires <= self._monotonic():
            raise UnknownUpload(token)
        if not safe_name(name):
            raise ValueError(f"unsafe file name {name!r}")
        directory = self.uploads_dir / safe_directory(upload.station_id)
        await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        stamp = self._wall().strftime("%Y%m%dT%H%M%SZ")
        target = directory / f"{stamp}-{token[:8]}-{name}"
        partial = target.with_name(target.name + ".part")
        digest = hashlib.sha256()
        size = 0
        handle = await asyncio.to_thread(partial.open, "wb")
        try:
            async for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                await asyncio.to_thread(handle.write, chunk)
            await asyncio.to_thread(handle.flush)
        finally:
            await asyncio.to_thread(handle.close)
        await asyncio.to_thread(partial.replace, target)
        record = UploadedFile(
            station_id=upload.station_id,
            request_id=upload.request_id,
            file_name=name,
            stored_path=str(target),
            size=size,
            sha256=digest.hexdigest(),
            uploaded_at=self._wall(),
        )
        await self._store.record_uploaded_file(record)
        return record


def safe_directory(station_id: str) -> str:
    """A station id as one directory name (ids may hold any character, §3.1.1)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", station_id).lstrip(".") or "_"
    suffix = hashlib.sha256(station_id.encode()).hexdigest()[:8]
    return f"{cleaned[:64]}-{suffix}"
