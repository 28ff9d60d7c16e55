"""The update bundle: wheels plus a signed manifest, in one uncompressed tar.

Layout (every member a regular file; nothing else is accepted):

    manifest.json            canonical JSON (below)
    manifest.sig             base64 of the 64-byte Ed25519 signature over the
                             canonical manifest bytes, one line
    wheels/<name>.whl        the daemon's wheel and any dependency wheels

Manifest (format "rtu-bundle/1"):

    {"created": "2026-11-23T17:00:00Z",          UTC, informational
     "files": {"wheels/x.whl": {"sha256": "<hex>", "size": 123}, ...},
     "format": "rtu-bundle/1",
     "min_version": "0.1.0" | null,              oldest running version that may upgrade
     "package": "substation-rtu-gateway",        the distribution that is the daemon
     "version": "0.2.0"}                         the version this bundle installs

*Canonical* means `json.dumps(sort_keys=True, separators=(",", ":"),
ensure_ascii=False)` encoded as UTF-8: the signature covers the manifest's
meaning, not its whitespace, and `manifest.json` is written in exactly that form.
The tar is uncompressed because wheels already are, and a plain tar can be
checked member by member without unpacking anything we do not trust.

Verification order matters: the signature is checked before any other field of
the manifest is believed, and the wheels are hashed while they are copied out,
so nothing unverified is ever handed to pip.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import io
import json
import re
import shutil
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any

from firmware.errors import BundleMalformed, DigestMismatch, SignatureInvalid, VersionRefused

if TYPE_CHECKING:  # imported where used: see firmware/keys.py for why
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

__all__ = [
    "FORMAT",
    "MANIFEST",
    "PACKAGE",
    "SIGNATURE",
    "FileEntry",
    "Manifest",
    "compare_versions",
    "inspect_bundle",
    "parse_version",
    "sign_bundle",
    "verify_bundle",
    "write_bundle",
]

FORMAT = "rtu-bundle/1"
PACKAGE = "substation-rtu-gateway"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
_MAX_MANIFEST = 1 << 20
_CHUNK = 1 << 16
# A wheel file name as PEP 427 allows it, with nothing that could walk out of a directory.
_WHEEL_NAME = re.compile(r"[A-Za-z0-9_.+!-]+\.whl")
# Versions a bundle may carry: a PEP 440 release segment, which is also a safe directory name.
_RELEASE = re.compile(r"\d+(?:\.\d+){0,5}")
# A running version may carry a local label ("0+unknown" when not installed).
_RUNNING = re.compile(r"(\d+(?:\.\d+){0,5})(?:\+[A-Za-z0-9.]+)?")


def parse_version(text: str, *, running: bool = False) -> tuple[int, ...]:
    """The release segment as integers; VersionRefused if we cannot compare it."""
    match = (_RUNNING if running else _RELEASE).fullmatch(text)
    if match is None:
        raise VersionRefused(f"version {text!r} is not a release number such as 1.4.2")
    numbers = tuple(int(part) for part in match.group(1 if running else 0).split("."))
    # 1.4 == 1.4.0: compare with trailing zeros removed.
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers = numbers[:-1]
    return numbers


def compare_versions(a: str, b: str) -> int:
    """-1, 0, 1 as running version `a` is older, equal, newer than release `b`."""
    left, right = parse_version(a, running=True), parse_version(b)
    return (left > right) - (left < right)


@dataclasses.dataclass(frozen=True, slots=True)
class FileEntry:
    sha256: str
    size: int


@dataclasses.dataclass(frozen=True, slots=True)
class Manifest:
    version: str
    created: str
    min_version: str | None
    files: Mapping[str, FileEntry]
    package: str = PACKAGE

    def to_json(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "files": {
                name: {"sha256": entry.sha256, "size": entry.size}
                for name, entry in sorted(self.files.items())
            },
            "format": FORMAT,
            "min_version": self.min_version,
            "package": self.package,
            "version": self.version,
        }

    def canonical(self) -> bytes:
        return canonical_json(self.to_json())

    @classmethod
    def from_json(cls, document: object) -> Manifest:
        """Check the shape of a parsed manifest; BundleMalformed names what is wrong."""
        if not isinstance(document, dict):
            raise BundleMalformed("manifest is not a JSON object")
        expected = {"created", "files", "format", "min_version", "package", "version"}
        if set(document) != expected:
            raise BundleMalformed(f"manifest keys {sorted(document)} != {sorted(expected)}")
        if document["format"] != FORMAT:
            raise BundleMalformed(f"unknown bundle format {document['format']!r}")
        for key in ("created", "package", "version"):
            if not isinstance(document[key], str):
                raise BundleMalformed(f"manifest {key} must be a string")
        if document["min_version"] is not None and not isinstance(document["min_version"], str):
            raise BundleMalformed("manifest min_version must be a string or null")
        files = document["files"]
        if not isinstance(files, dict) or not files:
            raise BundleMalformed("manifest files must be a non-empty object")
        entries: dict[str, FileEntry] = {}
        for name, entry in files.items():
            _check_member_name(name)
            if (
                not isinstance(entry, dict)
                or set(entry) != {"sha256", "size"}
                or not isinstance(entry["sha256"], str)
                or not re.fullmatch(r"[0-9a-f]{64}", entry["sha256"])
                or isinstance(entry["size"], bool)
                or not isinstance(entry["size"], int)
                or entry["size"] < 0
            ):
                raise BundleMalformed(f"manifest entry for {name} must be {{sha256, size}}")
            entries[name] = FileEntry(entry["sha256"], entry["size"])
        return cls(
            version=document["version"],
            created=document["created"],
            min_version=document["min_version"],
            files=entries,
            package=document["package"],
        )


def canonical_json(document: object) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _check_member_name(name: str) -> None:
    path = PurePosixPath(name)
    if len(path.parts) != 2 or path.parts[0] != "wheels" or not _WHEEL_NAME.fullmatch(path.name):
        raise BundleMalformed(f"unexpected bundle member {name!r} (only wheels/<name>.whl)")
    if path.name.startswith("."):
        raise BundleMalformed(f"unexpected bundle member {name!r}")


def _digest(stream: IO[bytes], sink: IO[bytes] | None = None) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if sink is not None:
            sink.write(chunk)
    return digest.hexdigest(), size


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def sign(manifest: Manifest, key: Ed25519PrivateKey) -> bytes:
    """The content of manifest.sig."""
    return base64.b64encode(key.sign(manifest.canonical())) + b"\n"


def write_bundle(
    out: Path,
    wheels: Sequence[Path],
    *,
    version: str,
    min_version: str | None = None,
    created: datetime | None = None,
    key: Ed25519PrivateKey | None = None,
) -> Manifest:
    """Write a bundle of `wheels`; signed when `key` is given (else use `sign_bundle`)."""
    parse_version(version)
    if min_version is not None:
        parse_version(min_version)
    moment = (created or datetime.now(UTC)).astimezone(UTC)
    files: dict[str, FileEntry] = {}
    for wheel in wheels:
        name = f"wheels/{wheel.name}"
        _check_member_name(name)
        if name in files:
            raise BundleMalformed(f"two wheels named {wheel.name}")
        with wheel.open("rb") as stream:
            files[name] = FileEntry(*_digest(stream))
    manifest = Manifest(
        version=version,
        created=moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        min_version=min_version,
        files=files,
    )
    partial = out.with_name(out.name + ".partial")
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, MANIFEST, manifest.canonical(), moment.timestamp())
        if key is not None:
            _add_bytes(tar, SIGNATURE, sign(manifest, key), moment.timestamp())
        for wheel in wheels:
            info = tar.gettarinfo(str(wheel), arcname=f"wheels/{wheel.name}")
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o644
            with wheel.open("rb") as stream:
                tar.addfile(info, stream)
    partial.replace(out)
    return manifest


@dataclasses.dataclass(frozen=True, slots=True)
class _Contents:
    manifest: Manifest
    manifest_bytes: bytes
    signature: bytes | None
    members: Mapping[str, tarfile.TarInfo]


def _read(path: Path) -> _Contents:
    """Read every header (a truncated archive fails here) and the manifest."""
    try:
        with tarfile.open(path, "r:") as tar:
            members: dict[str, tarfile.TarInfo] = {}
            for member in tar.getmembers():
                if not member.isfile():
                    raise BundleMalformed(f"bundle member {member.name!r} is not a regular file")
                if member.name in members:
                    raise BundleMalformed(f"bundle member {member.name!r} appears twice")
                if member.name not in (MANIFEST, SIGNATURE):
                    _check_member_name(member.name)
                members[member.name] = member
            if MANIFEST not in members:
                raise BundleMalformed("bundle has no manifest.json")
            manifest_bytes = _member_bytes(tar, members[MANIFEST], _MAX_MANIFEST)
            signature = (
                _member_bytes(tar, members[SIGNATURE], 1024) if SIGNATURE in members else None
            )
            # The last member's data must be there too: getmembers() only reads headers.
            for member in members.values():
                if member.offset_data + member.size > path.stat().st_size:
                    raise BundleMalformed(f"bundle is truncated inside {member.name}")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BundleMalformed(f"not a readable bundle archive: {exc}") from exc
    try:
        document = json.loads(manifest_bytes)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleMalformed(f"manifest.json is not JSON: {exc}") from exc
    return _Contents(Manifest.from_json(document), manifest_bytes, signature, members)


def _member_bytes(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int) -> bytes:
    if member.size > limit:
        raise BundleMalformed(f"{member.name} is larger than {limit} bytes")
    stream = tar.extractfile(member)
    if stream is None:
        raise BundleMalformed(f"{member.name} has no data")
    data = stream.read()
    if len(data) != member.size:
        raise BundleMalformed(f"{member.name} is truncated")
    return data


def inspect_bundle(path: Path) -> Manifest:
    """Structure only (no trust): is this a complete bundle archive? BundleMalformed if not."""
    return _read(path).manifest


def _check_signature(contents: _Contents, trusted: Iterable[Ed25519PublicKey | bytes]) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if contents.signature is None:
        raise SignatureInvalid("bundle is not signed (no manifest.sig)")
    try:
        signature = base64.b64decode(contents.signature.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureInvalid(f"manifest.sig is not base64: {exc}") from exc
    message = contents.manifest.canonical()
    for given in trusted:
        key = Ed25519PublicKey.from_public_bytes(given) if isinstance(given, bytes) else given
        try:
            key.verify(signature, message)
        except InvalidSignature:
            continue
        return
    raise SignatureInvalid("no trusted key verifies the manifest signature")


def verify_bundle(
    path: Path,
    trusted: Sequence[Ed25519PublicKey | bytes],
    *,
    running_version: str | None,
    extract_to: Path | None = None,
) -> Manifest:
    """Check signature, version rules and every file's hash; copy the wheels out.

    `trusted` keys may be raw 32-byte keys (a station's configuration holds
    those). `running_version` None skips the `min_version` rule (operator tools). With
    `extract_to`, the wheels are written there while hashed; on any failure the
    partial files are removed. Raises a FirmwareError subclass.
    """
    contents = _read(path)
    _check_signature(contents, trusted)
    manifest = contents.manifest
    if manifest.package != PACKAGE:
        raise VersionRefused(f"bundle is for {manifest.package!r}, not {PACKAGE!r}")
    parse_version(manifest.version)
    if (
        running_version is not None
        and manifest.min_version is not None
        and compare_versions(running_version, manifest.min_version) < 0
    ):
        raise VersionRefused(
            f"bundle {manifest.version} requires at least {manifest.min_version} to upgrade"
            f" from; running {running_version}"
        )
    listed = set(manifest.files)
    present = set(contents.members) - {MANIFEST, SIGNATURE}
    if listed != present:
        extra = sorted(present - listed)
        missing = sorted(listed - present)
        raise DigestMismatch("bundle", f"files not as signed: extra {extra}, missing {missing}")
    if extract_to is not None:
        extract_to.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(path, "r:") as tar:
            for name, entry in sorted(manifest.files.items()):
                _check_file(tar, contents.members[name], entry, extract_to)
    except (tarfile.TarError, EOFError) as exc:
        if extract_to is not None:
            shutil.rmtree(extract_to, ignore_errors=True)
        raise BundleMalformed(f"bundle unreadable: {exc}") from exc
    except BaseException:
        if extract_to is not None:
            shutil.rmtree(extract_to, ignore_errors=True)
        raise
    return manifest


def _check_file(
    tar: tarfile.TarFile, member: tarfile.TarInfo, entry: FileEntry, extract_to: Path | None
) -> None:
    stream = tar.extractfile(member)
    if stream is None:
        raise DigestMismatch(member.name, "no data")
    if extract_to is None:
        digest, size = _digest(stream)
    else:
        with (extract_to / PurePosixPath(member.name).name).open("wb") as sink:
            digest, size = _digest(stream, sink)
    if size != entry.size:
        raise DigestMismatch(member.name, f"size {size} != signed {entry.size}")
    if digest != entry.sha256:
        raise DigestMismatch(member.name, "SHA-256 differs from the signed manifest")


def sign_bundle(path: Path, key: Ed25519PrivateKey) -> Manifest:
    """Add (or replace) manifest.sig in an existing bundle, rewriting it atomically."""
    contents = _read(path)
    partial = path.with_name(path.name + ".partial")
    with (
        tarfile.open(path, "r:") as source,
        tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as out,
    ):
        moment = contents.members[MANIFEST].mtime
        out.addfile(contents.members[MANIFEST], io.BytesIO(contents.manifest_bytes))
        _add_bytes(out, SIGNATURE, sign(contents.manifest, key), moment)
        for name, member in contents.members.items():
            if name in (MANIFEST, SIGNATURE):
                continue
            out.addfile(member, source.extractfile(member))
    partial.replace(path)
    return contents.manifest
