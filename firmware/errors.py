"""Errors of the update-bundle tooling.

    FirmwareError                 anything wrong with a bundle or a key (`.reason`)
    ├── BundleMalformed           not a bundle: unreadable archive, missing or bad manifest,
    │                             unsafe member names (what a truncated download looks like)
    ├── SignatureInvalid          no signature, or none of the trusted keys verifies it
    ├── DigestMismatch            a file's SHA-256 or size differs from the signed manifest
    ├── VersionRefused            `min_version` excludes the running version, or the
    │                             version string is not one we can compare or install
    └── KeyInvalid                a key file or configured key cannot be read

The station's agent maps BundleMalformed to DownloadFailed (a fresh download may
fix it) and the other bundle errors to InstallationFailed (the bundle was
received intact and is refused).
"""

from __future__ import annotations

__all__ = [
    "BundleMalformed",
    "DigestMismatch",
    "FirmwareError",
    "KeyInvalid",
    "SignatureInvalid",
    "VersionRefused",
]


class FirmwareError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BundleMalformed(FirmwareError):
    pass


class SignatureInvalid(FirmwareError):
    pass


class DigestMismatch(FirmwareError):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name


class VersionRefused(FirmwareError):
    pass


class KeyInvalid(FirmwareError):
    pass
