"""`rtu-firmware`: build, sign and verify update bundles; the pre-start rollback check.

    rtu-firmware keygen --out-dir DIR
    rtu-firmware build --from-tree . --version 0.2.0 --out bundle.tar
                       [--min-version 0.1.0] [--key DIR/firmware-signing.key] [--with-deps]
    rtu-firmware sign --key KEY bundle.tar
    rtu-firmware verify --pubkey PUB [--pubkey PUB2] [--running-version V] bundle.tar
    rtu-firmware check-rollback --state /var/lib/rtu/firmware.db --root /opt/rtu

Exit codes: 0 success, 1 the bundle or key was refused (reason on stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from firmware.build import build_wheels
from firmware.bundle import sign_bundle, verify_bundle, write_bundle
from firmware.errors import FirmwareError
from firmware.keys import generate, load_private_key, parse_public_key

__all__ = ["main"]


def cmd_keygen(args: argparse.Namespace) -> int:
    private, public = generate(args.out_dir)
    print(f"private key: {private} (keep it off the stations)\npublic key:  {public}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    key = load_private_key(args.key) if args.key else None
    with tempfile.TemporaryDirectory(prefix="rtu-wheels-") as scratch:
        wheels = build_wheels(args.from_tree, args.version, Path(scratch), with_deps=args.with_deps)
        manifest = write_bundle(
            args.out, wheels, version=args.version, min_version=args.min_version, key=key
        )
    state = "signed" if key else "unsigned: run `rtu-firmware sign`"
    print(f"{args.out}: version {manifest.version}, {len(manifest.files)} wheel(s), {state}")
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    manifest = sign_bundle(args.bundle, load_private_key(args.key))
    print(f"{args.bundle}: version {manifest.version} signed")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    keys = [parse_public_key(path.read_text(encoding="ascii")) for path in args.pubkey]
    manifest = verify_bundle(args.bundle, keys, running_version=args.running_version)
    print(f"{args.bundle}: OK, version {manifest.version} (min_version {manifest.min_version})")
    for name, entry in sorted(manifest.files.items()):
        print(f"  {entry.sha256}  {entry.size:>10}  {name}")
    return 0


def cmd_check_rollback(args: argparse.Namespace) -> int:
    from rtu.firmware.rollback import main as rollback_main

    return rollback_main(["--state", str(args.state), "--root", str(args.root)])


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="rtu-firmware", description="RTU update bundles")
    commands = top.add_subparsers(dest="command", required=True)

    keygen = commands.add_parser("keygen", help="new Ed25519 signing key pair")
    keygen.add_argument("--out-dir", type=Path, required=True)
    keygen.set_defaults(handler=cmd_keygen)

    build = commands.add_parser("build", help="build a bundle from a source tree")
    build.add_argument("--from-tree", type=Path, required=True)
    build.add_argument("--version", required=True)
    build.add_argument("--out", type=Path, required=True)
    build.add_argument("--min-version", help="oldest running version that may install it")
    build.add_argument("--key", type=Path, help="sign with this private key")
    build.add_argument(
        "--with-deps", action="store_true", help="include the dependencies' wheels (pip wheel)"
    )
    build.set_defaults(handler=cmd_build)

    sign = commands.add_parser("sign", help="sign (or re-sign) a bundle")
    sign.add_argument("--key", type=Path, required=True)
    sign.add_argument("bundle", type=Path)
    sign.set_defaults(handler=cmd_sign)

    verify = commands.add_parser("verify", help="check a bundle as a station would")
    verify.add_argument("--pubkey", type=Path, action="append", required=True)
    verify.add_argument("--running-version", help="check min_version against this version")
    verify.add_argument("bundle", type=Path)
    verify.set_defaults(handler=cmd_verify)

    check = commands.add_parser("check-rollback", help="pre-start rollback check (systemd)")
    check.add_argument("--state", type=Path, default=Path("/var/lib/rtu/firmware.db"))
    check.add_argument("--root", type=Path, default=Path("/opt/rtu"))
    check.set_defaults(handler=cmd_check_rollback)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except (FirmwareError, OSError) as exc:
        print(f"rtu-firmware {args.command}: {getattr(exc, 'reason', exc)}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
