"""GetFile (§7.5) and GetFileStatusNotification (§6.2).

Theory of operation
-------------------
The handler answers at once: `Accepted` with the name the file will have, or
`Rejected` with `fileName` "" (errata S18) when the file type is not available
here (Syslog without a log file or journal), the location is not a URL we
can upload to, or `max_queued` uploads are already waiting. The work itself
runs in `upload_loop` (a named, supervised loop of the subsystem), one job at
a time, in order:

    GetFileStatusNotification Uploading       (through the outbox: guaranteed)
    build the file (history query, log filter or diagnostics zip)
    upload, up to `attempts` times, waiting backoff, 2×backoff, ... between
    GetFileStatusNotification Uploaded | UploadFailed

Every notification carries the request's `requestId` when it had one
(§6.2.1). TriggerMessage GetFileStatusNotification answers the current state:
`Uploading` (with its requestId) while a job runs, else `None` (§4.1: "If you
do this while no ... was ongoing, you will get None").

The period: `startTime` absent means from the oldest record kept, `stopTime`
absent means now. A period whose start is after its stop yields an empty
file, not an error (errata T30: the example's period is empty too).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import msgspec

from os3p.messages import (
    FileType,
    GetFileRequest,
    GetFileResponse,
    GetFileStatus,
    GetFileStatusNotificationRequest,
    UploadStatus,
)
from rtu.files import content
from rtu.files.upload import SCHEMES, UploadError, tls_context, upload
from rtu.metering.history import History

__all__ = ["FileSettings", "GetFileService", "Upload"]

log = logging.getLogger(__name__)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]+")

Upload = Callable[[str, str, bytes], Awaitable[None]]  # (location, file name, bytes)
Emit = Callable[[msgspec.Struct], Awaitable[object]]


@dataclasses.dataclass(frozen=True, slots=True)
class FileSettings:
    log_file: Path | None = None
    journal_unit: str = "rtu"
    attempts: int = 3
    backoff: float = 5.0
    timeout: float = 120.0
    max_queued: int = 4
    ca_file: Path | None = None  # trusted for https/ftps, besides the system's CAs


@dataclasses.dataclass(frozen=True, slots=True)
class _Job:
    request: GetFileRequest
    file_name: str
    start: datetime
    stop: datetime


class GetFileService:
    def __init__(
        self,
        *,
        station_id: str,
        emit: Emit,
        now: Callable[[], datetime],
        history: History,
        settings: FileSettings,
        status: Callable[[], Mapping[str, Any]],
        config_file: Path | None,
        data_dir: Path | None,
        upload: Upload | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        journal_available: Callable[[], bool] = content.journal_available,
    ) -> None:
        self._station = _UNSAFE.sub("_", station_id).strip("_") or "station"
        self._emit = emit
        self._now = now
        self._history = history
        self._settings = settings
        self._status = status
        self._config_file = config_file
        self._data_dir = data_dir
        self._upload = upload or self._default_upload
        self._sleep = sleep
        self._journal_available = journal_available
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._current: _Job | None = None
        self.uploaded = 0
        self.failed = 0

    async def _default_upload(self, location: str, file_name: str, data: bytes) -> None:
        await upload(
            location,
            file_name,
            data,
            timeout=self._settings.timeout,
            ssl_context=tls_context(self._settings.ca_file),
        )

    # -- the handler ----------------------------------------------------------

    async def get_file(self, request: GetFileRequest, _ctx: object = None) -> GetFileResponse:
        reason = self._refusal(request)
        if reason is not None:
            log.warning("GetFile %s rejected: %s", request.file_type, reason)
            return GetFileResponse(status=GetFileStatus.REJECTED, file_name="")
        now = self._now()
        start = request.start_time or _EPOCH
        stop = request.stop_time or now
        job = _Job(request, self._file_name(request.file_type, start, stop, now), start, stop)
        self._queue.put_nowait(job)
        log.info("GetFile %s accepted: %s", request.file_type, job.file_name)
        return GetFileResponse(status=GetFileStatus.ACCEPTED, file_name=job.file_name)

    def _refusal(self, request: GetFileRequest) -> str | None:
        scheme = urllib.parse.urlsplit(request.location).scheme.lower()
        if scheme not in SCHEMES:
            return f"cannot upload to {scheme or 'a location without scheme'}"
        if request.file_type is FileType.SYSLOG and not self._syslog_available():
            return "no log file configured and no journal on this system"
        if self._queue.qsize() >= self._settings.max_queued:
            return f"{self._queue.qsize()} uploads already waiting"
        return None

    def _syslog_available(self) -> bool:
        return self._settings.log_file is not None or self._journal_available()

    def _file_name(
        self, file_type: FileType, start: datetime, stop: datetime, now: datetime
    ) -> str:
        def stamp(moment: datetime) -> str:
            return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

        match file_type:
            case FileType.METER_VALUE_HISTORY:
                first = "start" if start == _EPOCH else stamp(start)
                return f"{self._station}_MeterValueHistory_{first}-{stamp(stop)}.csv"
            case FileType.SYSLOG:
                first = "start" if start == _EPOCH else stamp(start)
                return f"{self._station}_Syslog_{first}-{stamp(stop)}.log"
            case FileType.VENDOR_SPECIFIC:
                return f"{self._station}_Diagnostics_{stamp(now)}.zip"

    # -- the work -------------------------------------------------------------

    async def upload_loop(self) -> None:
        while True:
            job = await self._queue.get()
            self._current = job
            try:
                await self._run(job)
            finally:
                self._current = None

    async def _notify(self, job: _Job, status: UploadStatus) -> None:
        await self._emit(
            GetFileStatusNotificationRequest(status=status, request_id=job.request.request_id)
        )

    async def _run(self, job: _Job) -> None:
        await self._notify(job, UploadStatus.UPLOADING)
        try:
            data = await self._build(job)
        except (OSError, UnicodeError, ValueError) as exc:
            log.error("GetFile %s: cannot build %s: %s", job.request.file_type, job.file_name, exc)  # noqa: TRY400 - the reason is the message
            self.failed += 1
            await self._notify(job, UploadStatus.UPLOAD_FAILED)
            return
        attempts = self._settings.attempts
        for attempt in range(1, attempts + 1):
            try:
                await self._upload(job.request.location, job.file_name, data)
            except UploadError as exc:
                log.warning(
                    "upload of %s failed (%d/%d): %s", job.file_name, attempt, attempts, exc
                )
                if attempt < attempts:
                    await self._sleep(self._settings.backoff * 2 ** (attempt - 1))
                continue
            log.info("uploaded %s (%d bytes)", job.file_name, len(data))
            self.uploaded += 1
            await self._notify(job, UploadStatus.UPLOADED)
            return
        self.failed += 1
        await self._notify(job, UploadStatus.UPLOAD_FAILED)

    async def _build(self, job: _Job) -> bytes:
        match job.request.file_type:
            case FileType.METER_VALUE_HISTORY:
                rows = await self._history.rows_between(job.start, job.stop)
                return await asyncio.to_thread(content.history_csv, rows)
            case FileType.SYSLOG:
                if self._settings.log_file is not None:
                    return await asyncio.to_thread(
                        content.log_file_text, self._settings.log_file, job.start, job.stop
                    )
                return await asyncio.to_thread(
                    content.journal_text, self._settings.journal_unit, job.start, job.stop
                )
            case FileType.VENDOR_SPECIFIC:
                status = dict(self._status())
                status["history"] = await self._history.stats()
                return await asyncio.to_thread(
                    content.diagnostics_zip,
                    status=status,
                    config_file=self._config_file,
                    data_dir=self._data_dir,
                )

    # -- TriggerMessage and status --------------------------------------------

    async def current_status(self, _contactor: int | None = None) -> list[msgspec.Struct]:
        job = self._current
        if job is None:
            return [GetFileStatusNotificationRequest(status=UploadStatus.NONE)]
        return [
            GetFileStatusNotificationRequest(
                status=UploadStatus.UPLOADING, request_id=job.request.request_id
            )
        ]

    def snapshot(self) -> dict[str, Any]:
        return {
            "uploading": self._current.file_name if self._current else None,
            "queued": self._queue.qsize(),
            "uploaded": self.uploaded,
            "failed": self.failed,
        }
