"""Station password hashes: scrypt with a per-station random salt.

A hash is stored as a self-describing string, so the cost parameters can be
raised later without a migration (old hashes keep verifying with their own)::

    scrypt$n=16384,r=8,p=1$<salt, base64>$<derived key, base64>

n=2**14, r=8, p=1 is the interactive-login setting of the scrypt paper and
RFC 7914 §2 (16 MiB, tens of milliseconds), paid once per station connection.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ScryptParams",
    "credential_digest",
    "hash_password",
    "load_or_create_key",
    "verify_password",
]

_SCHEME = "scrypt"
_SALT_BYTES = 16
_KEY_BYTES = 32


@dataclass(frozen=True)
class ScryptParams:
    n: int = 2**14
    r: int = 8
    p: int = 1

    def encode(self) -> str:
        return f"n={self.n},r={self.r},p={self.p}"

    @classmethod
    def decode(cls, text: str) -> ScryptParams:
        fields = dict(item.split("=", 1) for item in text.split(","))
        return cls(n=int(fields["n"]), r=int(fields["r"]), p=int(fields["p"]))


def _derive(password: str, salt: bytes, params: ScryptParams) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=params.n,
        r=params.r,
        p=params.p,
        # OpenSSL's default limit is 32 MiB; 128*r*n*p plus slack covers any sane setting.
        maxmem=256 * params.r * params.n * params.p + 2**20,
        dklen=_KEY_BYTES,
    )


def hash_password(password: str, params: ScryptParams = ScryptParams()) -> str:
    """The self-describing hash of `password` with a fresh random salt."""
    salt = os.urandom(_SALT_BYTES)
    key = _derive(password, salt, params)
    return "$".join(
        (_SCHEME, params.encode(), base64.b64encode(salt).decode(), base64.b64encode(key).decode())
    )


# Verifying against this when the station is unknown keeps the time an attacker
# observes independent of whether the identity exists.
DUMMY_HASH = "scrypt$n=16384,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$" + base64.b64encode(
    bytes(_KEY_BYTES)
).decode("ascii")


def verify_password(password: str, encoded: str) -> bool:
    """Whether `password` matches `encoded` (constant-time comparison of the keys).

    A malformed or foreign-scheme hash verifies as False rather than raising:
    the answer to a station is then "wrong password", never an internal error.
    """
    try:
        scheme, params_text, salt_text, key_text = encoded.split("$")
        if scheme != _SCHEME:
            return False
        params = ScryptParams.decode(params_text)
        salt = base64.b64decode(salt_text, validate=True)
        expected = base64.b64decode(key_text, validate=True)
    except (ValueError, KeyError):
        return False
    return hmac.compare_digest(_derive(password, salt, params), expected)


# --- the credential cache ---------------------------------------------------------
#
# After a central restart every station reconnects at once, and 10,000 scrypt checks
# are ~500 CPU-seconds: minutes before the last station is let in. So a password that
# passed scrypt is also remembered as HMAC-SHA256(key, station id, password), keyed
# with a secret kept in a file beside the data, not in the database, and bound to the
# scrypt hash it was checked against (a new password forgets it). A reconnect then
# costs one HMAC. The price: whoever holds both the database and the key file can test
# guesses at HMAC speed instead of scrypt speed. Machine-made station passwords (the
# shipment import makes 128-bit ones) do not care; a fleet with human-chosen passwords
# should keep the key file on other storage than the database, or use certificates.

_KEY_BYTES_CACHE = 32


def load_or_create_key(path: Path) -> bytes:
    """The credential cache's key: 32 random bytes in `path` (mode 0600), made if absent.

    A file of the wrong size is replaced: the remembered digests then stop matching
    and each station pays one scrypt check again, which is all a lost key costs.
    """
    try:
        key = path.read_bytes()
        if len(key) == _KEY_BYTES_CACHE:
            return key
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.urandom(_KEY_BYTES_CACHE)
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as stream:
        stream.write(key)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(partial, path)
    return key


def credential_digest(key: bytes, station_id: str, password: str) -> str:
    """What the cache remembers of a checked password (hex)."""
    message = station_id.encode("utf-8") + b"\0" + password.encode("utf-8")
    return hmac.digest(key, message, hashlib.sha256).hex()
