"""Bundle format: what verifies, and the exact error for each way a bundle can be bad."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from firmware.bundle import (
    MANIFEST,
    SIGNATURE,
    canonical_json,
    compare_versions,
    inspect_bundle,
    parse_version,
    sign_bundle,
    verify_bundle,
)
from firmware.errors import BundleMalformed, DigestMismatch, SignatureInvalid, VersionRefused
from tests.firmware.support import make_bundle, rewrite_member

KEY = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()


def test_a_signed_bundle_verifies_and_its_wheels_come_out_intact(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path, KEY, min_version="0.1.0")
    out = tmp_path / "out"
    manifest = verify_bundle(bundle, [OTHER.public_key(), KEY.public_key()],
                             running_version="0.1.0", extract_to=out)  # fmt: skip
    assert manifest.version == "0.2.0"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        name.removeprefix("wheels/") for name in manifest.files
    )
    for name in manifest.files:
        assert (out / name.removeprefix("wheels/")).read_bytes() == (
            tmp_path / "wheels-0.2.0" / name.removeprefix("wheels/")
        ).read_bytes()


def test_manifest_is_stored_canonical_and_lists_every_wheel(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path, KEY)
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
        stream = tar.extractfile(MANIFEST)
        assert stream is not None
        raw = stream.read()
    assert names[:2] == [MANIFEST, SIGNATURE]
    document = json.loads(raw)
    assert canonical_json(document) == raw
    assert set(document["files"]) == {n for n in names if n.startswith("wheels/")}
    assert document["format"] == "rtu-bundle/1"


@pytest.mark.parametrize(
    ("damage", "error"),
    [
        ("wheel", DigestMismatch),
        ("manifest", SignatureInvalid),
        ("signature", SignatureInvalid),
    ],
    ids=["tampered-wheel", "tampered-manifest", "garbled-signature"],
)
def test_tampering_is_refused(tmp_path: Path, damage: str, error: type[Exception]) -> None:
    bundle = make_bundle(tmp_path, KEY)
    manifest = inspect_bundle(bundle)
    wheel = next(iter(manifest.files))
    if damage == "wheel":
        size = manifest.files[wheel].size
        rewrite_member(bundle, wheel, b"X" * size)  # same size, other bytes
    elif damage == "manifest":
        document = manifest.to_json()
        document["min_version"] = "0.0.1"
        rewrite_member(bundle, MANIFEST, canonical_json(document))
    else:
        rewrite_member(bundle, SIGNATURE, b"AAAA\n")
    out = tmp_path / "out"
    with pytest.raises(error):
        verify_bundle(bundle, [KEY.public_key()], running_version="0.1.0", extract_to=out)
    assert not out.exists()  # nothing unverified is left for pip


def test_wrong_key_and_missing_signature_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SignatureInvalid, match="no trusted key"):
        verify_bundle(make_bundle(tmp_path, KEY), [OTHER.public_key()], running_version=None)
    unsigned = make_bundle(tmp_path, None, name="unsigned.tar")
    with pytest.raises(SignatureInvalid, match="not signed"):
        verify_bundle(unsigned, [KEY.public_key()], running_version=None)
    sign_bundle(unsigned, KEY)
    assert verify_bundle(unsigned, [KEY.public_key()], running_version=None).version == "0.2.0"


def test_min_version_protects_old_stations(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path, KEY, min_version="0.1.5")
    with pytest.raises(VersionRefused, match=r"requires at least 0\.1\.5"):
        verify_bundle(bundle, [KEY.public_key()], running_version="0.1.0")
    assert verify_bundle(bundle, [KEY.public_key()], running_version="0.1.5").version == "0.2.0"


@pytest.mark.parametrize("keep", [0.3, 0.9, 0.999], ids=["third", "most", "last-bytes"])
def test_a_truncated_bundle_is_malformed(tmp_path: Path, keep: float) -> None:
    bundle = make_bundle(tmp_path, KEY)
    data = bundle.read_bytes()
    # Tar pads to 10 KiB records: cut inside the content, not in the trailing zeros.
    content_end = data.rstrip(b"\0").__len__()
    bundle.write_bytes(data[: int(content_end * keep)])
    with pytest.raises(BundleMalformed):
        inspect_bundle(bundle)


def test_not_a_tar_and_unsafe_members_are_malformed(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"<html>404</html>")
    with pytest.raises(BundleMalformed):
        inspect_bundle(junk)
    bundle = make_bundle(tmp_path, KEY)
    with tarfile.open(bundle, "a") as tar:
        info = tarfile.TarInfo("../../etc/evil.whl")
        tar.addfile(info)
    with pytest.raises(BundleMalformed, match="unexpected bundle member"):
        inspect_bundle(bundle)


def test_an_extra_unsigned_wheel_is_refused(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path, KEY)
    with tarfile.open(bundle, "a") as tar:
        tar.addfile(tarfile.TarInfo("wheels/extra-1.0-py3-none-any.whl"))
    with pytest.raises(DigestMismatch, match="extra"):
        verify_bundle(bundle, [KEY.public_key()], running_version=None)


@pytest.mark.parametrize(
    ("running", "release", "order"),
    [
        ("0.1.0", "0.2.0", -1),
        ("0.2", "0.2.0", 0),
        ("1.10.0", "1.9.3", 1),
        ("0+unknown", "0.0.1", -1),
        ("2.0.0+local.7", "2.0.0", 0),
    ],
)
def test_version_order(running: str, release: str, order: int) -> None:
    assert compare_versions(running, release) == order


@pytest.mark.parametrize("text", ["", "1.0rc1", "v1", "1..2", "../1", "1.0+x"])
def test_release_versions_are_plain_numbers(text: str) -> None:
    with pytest.raises(VersionRefused):
        parse_version(text)


@given(st.lists(st.integers(0, 999), min_size=1, max_size=5),
       st.lists(st.integers(0, 999), min_size=1, max_size=5))  # fmt: skip
def test_version_order_is_numeric_per_segment(a: list[int], b: list[int]) -> None:
    def strip(v: list[int]) -> list[int]:
        while len(v) > 1 and v[-1] == 0:
            v = v[:-1]
        return v

    expected = (strip(a) > strip(b)) - (strip(a) < strip(b))
    assert compare_versions(".".join(map(str, a)), ".".join(map(str, b))) == expected
