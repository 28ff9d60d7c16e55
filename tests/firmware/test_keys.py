"""Ed25519 key files and the two public-key spellings a station accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware.errors import KeyInvalid
from firmware.keys import (
    generate,
    load_private_key,
    parse_public_key,
    public_key_base64,
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
