from __future__ import annotations

import pytest

from central.storage import passwords

FAST = passwords.ScryptParams(n=2**10, r=8, p=1)


def test_round_trip_and_self_describing_format() -> None:
    encoded = passwords.hash_password("s3cret", FAST)
    scheme, params, _salt, _key = encoded.split("$")
    assert (scheme, params) == ("scrypt", "n=1024,r=8,p=1")
    assert passwords.verify_password("s3cret", encoded)
    assert not passwords.verify_password("s3cret ", encoded)


def test_salt_is_random_per_hash() -> None:
    assert passwords.hash_password("same", FAST) != passwords.hash_password("same", FAST)


def test_default_params_verify() -> None:
    assert passwords.verify_password("pw", passwords.hash_password("pw"))


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "plain",
        "bcrypt$x$y$z",
        "scrypt$n=1024$AAAA$AAAA",
        "scrypt$n=1024,r=8,p=1$not base64!$AAAA",
    ],
    ids=["empty", "no-fields", "other-scheme", "missing-params", "bad-salt"],
)
def test_malformed_hash_is_a_mismatch_not_an_error(encoded: str) -> None:
    assert not passwords.verify_password("pw", encoded)


def test_dummy_hash_is_well_formed_and_matches_nothing_usual() -> None:
    assert not passwords.verify_password("", passwords.DUMMY_HASH)
    assert not passwords.verify_password("password", passwords.DUMMY_HASH)
