"""File transfer of the station: GetFile uploads (§7.5, §6.2)."""

from rtu.files.getfile import FileSettings, GetFileService
from rtu.files.upload import UploadError, target_url, upload

__all__ = ["FileSettings", "GetFileService", "UploadError", "target_url", "upload"]
