"""Ed25519 key files and the two public-key spellings a station accepts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519

from firmware.errors import KeyInvalid
from firmware.keys import (
    generate,
    load_private_key,
    parse_public_key,
    public_key_base64,
    public_key_bytes,
    public_key_pem,
)


def test_keygen_writes_a_private_key_only_we_can_read_and_never_overwrites_it(
    tmp_path: Path,
) -> None:
    private, public = generate(tmp_path)
    assert private.stat().st_mode & 0o777 == 0o600
    key = load_private_key(private)
    assert public_key_pem(key.public_key()) == public.read_text()
    with pytest.raises(FileExistsError):
        generate(tmp_path)


def test_public_key_as_pem_or_raw_base64_is_the_same_key(tmp_path: Path) -> None:
    private, public = generate(tmp_path)
    ours = load_private_key(private).public_key()
    from_pem = parse_public_key(public.read_text())
    from_b64 = parse_public_key(public_key_base64(ours))
    signature = load_private_key(private).sign(b"x")
    from_pem.verify(signature, b"x")
    from_b64.verify(signature, b"x")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not base64 at all!", "neither PEM nor base64"),
        ("AAAA", "32 bytes"),
        ("-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n", "not a PEM"),
    ],
    ids=["garbage", "short", "bad-pem"],
)
def test_unusable_public_keys_are_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(KeyInvalid, match=reason):
        parse_public_key(text)


def test_a_private_key_file_that_is_not_ed25519_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(KeyInvalid):
        load_private_key(bad)


def _pem(key: ed25519.Ed25519PublicKey | ed448.Ed448PublicKey | ec.EllipticCurvePublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def test_the_standard_library_reading_agrees_with_cryptography() -> None:
    """`public_key_bytes` reads PEM without `cryptography`: its answer must be the same key."""
    for _ in range(20):
        key = ed25519.Ed25519PrivateKey.generate().public_key()
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        assert public_key_bytes(_pem(key)) == raw
        assert public_key_bytes("\n  " + _pem(key).replace("\n", "\r\n") + "  ") == raw
        assert public_key_bytes(public_key_base64(key)) == raw


@pytest.mark.parametrize(
    "other",
    [
        ed448.Ed448PrivateKey.generate().public_key(),
        ec.generate_private_key(ec.SECP256R1()).public_key(),
    ],
    ids=["ed448", "p256"],
)
def test_a_pem_key_of_another_algorithm_is_refused(
    other: ed448.Ed448PublicKey | ec.EllipticCurvePublicKey,
) -> None:
    with pytest.raises(KeyInvalid, match="not an Ed25519 key"):
        public_key_bytes(_pem(other))


def test_a_pem_block_of_another_kind_is_refused() -> None:
    private = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(KeyInvalid, match="BEGIN PUBLIC KEY"):
        public_key_bytes(private.decode())


def test_the_daemon_and_its_firmware_config_do_without_cryptography() -> None:
    """7 MB of resident memory, paid only when an update is verified (firmware/keys.py)."""
    code = (
        "import sys, rtu.daemon, rtu.firmware.agent, rtu.firmware.config, firmware.keys;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'cryptography'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
