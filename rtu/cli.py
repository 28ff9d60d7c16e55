"""`rtu`: run the daemon, check a configuration, show the station's status.

    rtu run --config /etc/rtu/rtu.toml     the daemon (systemd runs this)
    rtu check-config /etc/rtu/rtu.toml     validate, list every problem, exit 2 if any
    rtu status [--config FILE | --data-dir DIR]
    rtu --version

Exit codes: 0 success, 1 runtime failure, 2 unusable configuration (nothing
was started: the daemon never runs half-configured).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from rtu.config import Config, ConfigInvalid, load_config
from rtu.daemon import Daemon, firmware_version
from rtu.status import format_status
from rtu.storage.errors import StorageError
from rtu.subsystems import DeviceConfig, read_device_config
from rtu.systemd import environ_notifier

__all__ = ["main"]

EXIT_CONFIG = 2

log = logging.getLogger("rtu")


def _load(path: Path) -> Config | None:
    try:
        return load_config(path)
    except ConfigInvalid as exc:
        print(exc, file=sys.stderr)
        return None


def _devices(config: Config) -> DeviceConfig | None:
    """Device sections are validated by their owners, all before anything runs."""
    try:
        return read_device_config(config)
    except ConfigInvalid as exc:
        print(exc, file=sys.stderr)
        return None


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args.file)
    if config is None or _devices(config) is None:
        return EXIT_CONFIG
    print(f"{args.file}: OK (station {config.station.id} → {config.connection_url})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    config = _load(args.config)
    devices = None if config is None else _devices(config)
    if config is None or devices is None:
        return EXIT_CONFIG
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(levelname)s %(name)s: %(message)s"
        if args.journal
        else "%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    daemon = Daemon(config, devices, notifier=environ_notifier())
    try:
        return asyncio.run(daemon.run())
    except StorageError as exc:
        log.critical("cannot use the data directory: %s", exc)
        return 1


def cmd_status(args: argparse.Namespace) -> int:
    if args.data_dir is not None:
        data_dir: Path = args.data_dir
    else:
        config = _load(args.config)
        if config is None:
            return EXIT_CONFIG
        data_dir = config.data.dir
    print(format_status(data_dir))
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="rtu", description="Substation RTU daemon (OS³P 0.4)")
    top.add_argument("--version", action="version", version=f"rtu {firmware_version()}")
    commands = top.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the daemon")
    run.add_argument("--config", type=Path, required=True)
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    run.add_argument("--journal", action="store_true", help="no timestamps (journald adds them)")
    run.set_defaults(handler=cmd_run)

    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file", type=Path)
    check.set_defaults(handler=cmd_check_config)

    status = commands.add_parser("status", help="what the daemon is doing (technician view)")
    where = status.add_mutually_exclusive_group()
    where.add_argument("--config", type=Path, default=Path("/etc/rtu/rtu.toml"))
    where.add_argument("--data-dir", type=Path)
    status.set_defaults(handler=cmd_status)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
