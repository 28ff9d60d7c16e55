"""Ed25519 keys for signing bundles (`cryptography`).

The private key is a PKCS#8 PEM file (mode 0600), kept off the stations. A
station trusts one or more public keys, each given as a SubjectPublicKeyInfo PEM
block or as the raw 32-byte key in base64 (what fits on one line of rtu.toml).

`cryptography` is imported only where a key is made, loaded or used, never to
read a public key: it costs a station 7 MB of resident memory (a sixth of its
budget) from start to stop, for a check that runs at a firmware update. An
Ed25519 SubjectPublicKeyInfo is a fixed 12-byte DER header and the 32 key bytes
(RFC 8410 §4), so `public_key_bytes` reads both spellings with the standard
library, and `parse_public_key` hands the bytes to `cryptography` when wanted.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import TYPE_CHECKING

from firmware.errors import KeyInvalid

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

__all__ = [
    "PRIVATE_KEY_NAME",
    "PUBLIC_KEY_NAME",
    "generate",
    "load_private_key",
    "parse_public_key",
    "public_key_base64",
    "public_key_bytes",
    "public_key_pem",
]

PRIVATE_KEY_NAME = "firmware-signing.key"
PUBLIC_KEY_NAME = "firmware-signing.pub"


def generate(out_dir: Path) -> tuple[Path, Path]:
    """Write a new key pair to `out_dir`; refuses to overwrite an existing private key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    out_dir.mkdir(parents=True, exist_ok=True)
    private_path = out_dir / PRIVATE_KEY_NAME
    public_path = out_dir / PUBLIC_KEY_NAME
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # O_EXCL: losing a signing key by overwriting it would orphan every station trusting it.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as stream:
        stream.write(pem)
    public_path.write_text(public_key_pem(key.public_key()), encoding="ascii")
    return private_path, public_path


def public_key_pem(key: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def public_key_base64(key: Ed25519PublicKey) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def load_private_key(path: Path) -> Ed25519PrivateKey:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyInvalid(f"{path}: cannot load the private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyInvalid(f"{path}: not an Ed25519 key")
    return key


# SubjectPublicKeyInfo of an Ed25519 key, up to the key bytes (RFC 8410 §4, §10.1).
_ED25519_SPKI = bytes.fromhex("302a300506032b6570032100")
_PEM_BEGIN = "-----BEGIN PUBLIC KEY-----"
_PEM_END = "-----END PUBLIC KEY-----"


def public_key_bytes(text: str) -> bytes:
    """The 32 raw bytes of a public key given as PEM text or as their base64."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        lines = [line.strip() for line in text.splitlines()]
        if lines[0] != _PEM_BEGIN or lines[-1] != _PEM_END:
            raise KeyInvalid(f"not a PEM public key: expected {_PEM_BEGIN} ... {_PEM_END}")
        try:
            der = base64.b64decode("".join(lines[1:-1]), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise KeyInvalid(f"not a PEM public key: {exc}") from exc
        if len(der) != len(_ED25519_SPKI) + 32 or not der.startswith(_ED25519_SPKI):
            raise KeyInvalid("the PEM public key is not an Ed25519 key")
        return der[len(_ED25519_SPKI) :]
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyInvalid(f"neither PEM nor base64: {exc}") from exc
    if len(raw) != 32:
        raise KeyInvalid(f"a raw Ed25519 public key has 32 bytes, not {len(raw)}")
    return raw


def parse_public_key(text: str) -> Ed25519PublicKey:
    """A public key from PEM text or the base64 of its 32 raw bytes."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return Ed25519PublicKey.from_public_bytes(public_key_bytes(text))
