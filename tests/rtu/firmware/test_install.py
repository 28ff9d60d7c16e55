"""Installers against real pip: one real venv from a real bundle of this tree (with its
dependencies' wheels, resolved by pip from this machine's configured index), and the
overlay installer's refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware.build import build_wheels
from firmware.bundle import verify_bundle, write_bundle
from rtu.firmware.install import InstallError, OverlayInstaller, VenvInstaller
from tests.firmware.support import fake_wheels
from tests.support.aio import run

ROOT = Path(__file__).parents[3]
KEY = Ed25519PrivateKey.generate()

pytestmark = pytest.mark.slow


def test_a_real_bundle_installs_into_a_self_contained_venv(tmp_path: Path) -> None:
    wheels = build_wheels(ROOT, "0.4.0", tmp_path / "built", with_deps=True)
    assert len(wheels) > 5  # ours and the dependencies
    bundle = tmp_path / "bundle.tar"
    write_bundle(bundle, wheels, version="0.4.0", key=KEY)
    extracted = tmp_path / "extracted"
    verify_bundle(bundle, [KEY.public_key()], running_version="0.1.0", extract_to=extracted)
    release = tmp_path / "releases" / "0.4.0"
    run(VenvInstaller(Path(sys.executable)).install(extracted, "0.4.0", release), timeout=180)
    # Its own interpreter, its own packages: nothing from this test's environment.
    probe = subprocess.run(
        [str(release / "bin" / "python"), "-c",
         "import sys, rtu.daemon, aiohttp, cryptography, importlib.metadata as m;"
         "print(sys.prefix, m.version('substation-rtu-gateway'))"],
        capture_output=True, text=True, check=True, cwd="/",
    )  # fmt: skip
    assert probe.stdout.split() == [str(release), "0.4.0"]
    assert (release / "bin" / "rtu-firmware").exists()


def test_overlay_refuses_a_bundle_without_our_wheel_and_a_release_that_lies(
    tmp_path: Path,
) -> None:
    wheels = tmp_path / "wheels"
    fake_wheels(wheels, "0.5.0")
    (wheels / "substation_rtu_gateway-0.5.0-py3-none-any.whl").unlink()
    installer = OverlayInstaller(Path(sys.executable))
    with pytest.raises(InstallError, match="no single"):
        run(installer.install(wheels, "0.5.0", tmp_path / "r1"))
    # A wheel whose metadata says 0.1.0 offered as 0.6.0: the smoke test catches it.
    [real] = build_wheels(ROOT, "0.1.0", tmp_path / "real")
    renamed = tmp_path / "mislabelled" / real.name.replace("0.1.0", "0.6.0")
    renamed.parent.mkdir()
    renamed.write_bytes(real.read_bytes())
    with pytest.raises(InstallError):
        run(installer.install(renamed.parent, "0.6.0", tmp_path / "r2"))
