"""`rtu-firmware` as an operator uses it: keygen, build, verify, sign, check-rollback."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware.cli import main
from tests.firmware.support import make_bundle

ROOT = Path(__file__).parents[2]


def test_keygen_build_signed_and_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = tmp_path / "keys"
    assert main(["keygen", "--out-dir", str(keys)]) == 0
    bundle = tmp_path / "bundle.tar"
    assert main([
        "build", "--from-tree", str(ROOT), "--version", "0.9.0", "--out", str(bundle),
        "--min-version", "0.1.0", "--key", str(keys / "firmware-signing.key"),
    ]) == 0  # fmt: skip
    assert "version 0.9.0, 1 wheel(s), signed" in capsys.readouterr().out
    pub = str(keys / "firmware-signing.pub")
    assert main(["verify", "--pubkey", pub, "--running-version", "0.1.0", str(bundle)]) == 0
    assert "OK, version 0.9.0" in capsys.readouterr().out
    assert main(["verify", "--pubkey", pub, "--running-version", "0.0.9", str(bundle)]) == 1
    assert "requires at least 0.1.0" in capsys.readouterr().err


def test_sign_then_verify_and_a_wrong_key_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for who in ("ours", "theirs"):
        assert main(["keygen", "--out-dir", str(tmp_path / who)]) == 0
    bundle = make_bundle(tmp_path, None)
    ours = tmp_path / "ours"
    assert main(["verify", "--pubkey", str(ours / "firmware-signing.pub"), str(bundle)]) == 1
    assert "not signed" in capsys.readouterr().err
    assert main(["sign", "--key", str(ours / "firmware-signing.key"), str(bundle)]) == 0
    assert main(["verify", "--pubkey", str(ours / "firmware-signing.pub"), str(bundle)]) == 0
    theirs = str(tmp_path / "theirs" / "firmware-signing.pub")
    assert main(["verify", "--pubkey", theirs, str(bundle)]) == 1
    assert "no trusted key" in capsys.readouterr().err


def test_check_rollback_without_state_is_harmless(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["check-rollback", "--state", str(tmp_path / "firmware.db"), "--root", str(tmp_path)]
    assert main(args) == 0
    assert "nothing to check" in capsys.readouterr().err
