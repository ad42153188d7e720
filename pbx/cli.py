"""The `pbx` command: `pbx run`, `pbx check-config`, `pbx hash-password`, `pbx simulate` — L4."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from pbx.config.loader import ConfigError, apply_overrides, load_config
from pbx.config.schema import summarize

MIN_DESK_PASSWORD = 8


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pbx", description="Virtual PBX for call centers")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the PBX")
    run.add_argument("--config", required=True, help="YAML configuration file")
    run.add_argument("--sip-port", type=int, help="SIP port for every listen address")
    run.add_argument("--http-port", type=int, help="HTTP port (CTI, desktop, metrics)")
    run.add_argument("--db", help="database URL (overrides database.url)")
    run.add_argument("--data-dir", help="data directory (overrides pbx.data_dir)")
    run.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    run.add_argument("--log-format", choices=("auto", "json", "console"))
    check = sub.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file")
    hasher = sub.add_parser(
        "hash-password",
        help="print a desk_password_hash for an agent's desktop password (read from stdin, "
             "or asked twice on a terminal)",
    )
    hasher.add_argument("--cost", type=int, default=14, choices=range(10, 21),
                        metavar="10..20", help="scrypt cost: n = 2**COST (default 14)")
    sub.add_parser(
        "simulate", add_help=False,
        help="simulate the ACD: offered load, staffing, handle times -> ASA, service level, "
             "abandon rate, per-strategy comparison (pbx simulate --help)",
    )
    return parser


def _run(args: argparse.Namespace) -> int:
    try:
        config = apply_overrides(
            load_config(args.config),
            sip_port=args.sip_port,
            http_port=args.http_port,
            database_url=args.db,
            data_dir=args.data_dir,
            log_level=args.log_level,
            log_format=args.log_format,
        )
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    from pbx.app import PbxApp
    from pbx.cti.tokens import ApiTokenError, load_api_tokens
    from pbx.logs import configure_logging

    try:
        tokens = load_api_tokens(config)
    except ApiTokenError as exc:
        print(f"{args.config}: {exc}", file=sys.stderr)
        return 1
    configure_logging(config.logging.level, config.logging.format)
    app = PbxApp(config, api_tokens=tokens)
    try:
        import uvloop
    except ImportError:  # uvloop is optional: plain asyncio is ~4x slower on UDP
        asyncio.run(app.run())
    else:
        uvloop.run(app.run())
    return 0


def _hash_password(args: argparse.Namespace) -> int:
    # Never from the command line (it would sit in the shell history and in ps).
    from pbx.cti.auth import hash_password

    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass("Desktop password: ")
        if getpass.getpass("Again: ") != password:
            print("the two entries differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_DESK_PASSWORD:
        print(f"a desktop password needs at least {MIN_DESK_PASSWORD} characters",
              file=sys.stderr)
        return 1
    print(hash_password(password, args.cost))
    return 0


def _check(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.file)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(summarize(config))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["simulate"]:
        from pbx.acd import simulate

        return simulate.main(argv[1:], load_config=load_config)
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "hash-password":
        return _hash_password(args)
    return _check(args)


if __name__ == "__main__":
    sys.exit(main())
