"""Bundles for tests: fake wheels (bytes with a wheel's name) and key pairs."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware.bundle import write_bundle


def fake_wheels(directory: Path, version: str) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    ours = directory / f"substation_rtu_gateway-{version}-py3-none-any.whl"
    ours.write_bytes(b"PK fake wheel " + version.encode() * 1000)
    dep = directory / "dep-1.0-py3-none-any.whl"
    dep.write_bytes(b"PK dependency" * 500)
    return [ours, dep]


def make_bundle(
    tmp_path: Path,
    key: Ed25519PrivateKey | None,
    *,
    version: str = "0.2.0",
    min_version: str | None = None,
    name: str = "bundle.tar",
) -> Path:
    out = tmp_path / name
    write_bundle(
        out,
        fake_wheels(tmp_path / f"wheels-{version}", version),
        version=version,
        min_version=min_version,
        key=key,
    )
    return out


def rewrite_member(bundle: Path, name: str, data: bytes) -> None:
    """Replace one member's content, keeping everything else (a tampered bundle)."""
    members: list[tuple[tarfile.TarInfo, bytes]] = []
    with tarfile.open(bundle, "r:") as tar:
        for member in tar.getmembers():
            stream = tar.extractfile(member)
            assert stream is not None
            members.append((member, data if member.name == name else stream.read()))

    with tarfile.open(bundle, "w", format=tarfile.PAX_FORMAT) as tar:
        for member, content in members:
            member.size = len(content)
            tar.addfile(member, io.BytesIO(content))
