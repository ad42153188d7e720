"""The `pbx` command — L4: `pbx run`, `pbx check-config`, `pbx hash-password`, `pbx simulate`,
and the views of a running PBX (`pbx status`, `agents`, `queues`, `calls`, `registrations`),
which read its HTTP API with an API token (`http.api_tokens`; the CLI never needs a session)."""

from __future__ import annotations

import argparse
import asyncio
import errno
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from pbx.cli_api import add_api_arguments
from pbx.config.loader import ConfigError, apply_overrides, load_config, read_config
from pbx.config.schema import summarize

MIN_DESK_PASSWORD = 8


VIEWS = {  # command -> (API path, scope, help)
    "status": ("/api/stats", "stats", "calls, registrations, queues and admission at a glance"),
    "agents": ("/api/stats", "stats", "every agent: state, calls taken, time in state"),
    "queues": ("/api/stats", "stats", "every queue: waiting, longest wait, answered, abandoned"),
    "calls": ("/api/calls", "calls", "the calls in progress"),
    "registrations": ("/api/registrations", "registrations", "the registered phones"),
}

# Modules adding more verbs (see `_verb_modules`); one line each.
VERB_MODULES: tuple[str, ...] = (
    "pbx.cli_setup",
    "pbx.cli_report",
    "pbx.cli_reload",
    "pbx.cli_customers",
    "pbx.cli_control",
    "pbx.cli_recordings",
)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pbx")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pbx", description="Virtual PBX for call centers")
    parser.add_argument("--version", action="version", version=f"pbx {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_path, scope, text) in VIEWS.items():
        view = sub.add_parser(name, help=f"{text} (a running PBX; token scope '{scope}')")
        add_api_arguments(view)
        view.add_argument("--json", action="store_true", help="the API's JSON, for scripts")
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
    for module in _verb_modules():
        module.register(sub)
    return parser


def _verb_modules() -> list[ModuleType]:
    """Modules that add verbs: each has `register(sub)`, which adds its subparsers and sets
    `handler=` (a function of the parsed arguments returning the exit code) on each."""
    from importlib import import_module

    return [import_module(name) for name in VERB_MODULES]


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    # What a reload applies again to the file it re-reads (pbx.reload): as `_run` below.
    return {"sip_port": args.sip_port, "http_port": args.http_port, "database_url": args.db,
            "data_dir": args.data_dir, "log_level": args.log_level,
            "log_format": args.log_format}


def _run(args: argparse.Namespace) -> int:
    try:
        loaded = read_config(args.config)
        config = apply_overrides(
            loaded.config,
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
    import structlog

    for warning in loaded.warnings:  # valid, probably not meant: in the PBX's own log
        structlog.get_logger("pbx").warning("config_warning", warning=str(warning))
    app = PbxApp(config, api_tokens=tokens, config_path=args.config, overrides=_overrides(args))
    try:
        try:
            import uvloop
        except ImportError:  # uvloop is optional: plain asyncio is ~4x slower on UDP
            asyncio.run(app.run())
        else:
            uvloop.run(app.run())
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise
        print(f"pbx run: {exc.strerror}", file=sys.stderr)  # a port in use: one line
        return 1
    return 0


def _view(args: argparse.Namespace) -> int:
    """Fetch one view from the running PBX and print it as a table (or JSON)."""
    import json

    from pbx.cli_api import ApiError, request_api

    path, scope, _ = VIEWS[args.command]
    try:
        data = request_api(args, path, scope)
    except ApiError as exc:
        print(f"pbx {args.command}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
        return 0
    print(_render(args.command, data))
    return 0


def _table(rows: list[dict[str, object]], columns: list[tuple[str, str]]) -> str:
    cells = [[title for title, _ in columns]]
    cells += [["" if row.get(key) is None else str(row.get(key)) for _, key in columns]
              for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
             .rstrip() for line in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def _render(command: str, data: dict[str, object]) -> str:
    def rows(key: str) -> list[dict[str, object]]:
        value = data.get(key)
        return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []

    if command == "agents":
        agents = rows("agents")
        for agent in agents:  # "paused (lunch)"; "no" when no phone is registered
            reason = agent.get("pause_reason") if agent.get("state") == "paused" else ""
            agent["state"] = f"{agent.get('state')} ({reason})" if reason else agent.get("state")
            agent["phone"] = "yes" if agent.get("phone") else "no"
        return _table(agents, [("AGENT", "agent"), ("STATE", "state"), ("PHONE", "phone"),
                                       ("IN STATE S", "time_in_state_s"), ("CALLS", "calls"),
                                       ("MISSED", "missed"), ("TALK S", "talk_time_s")])
    if command == "queues":
        return _table(rows("queues"), [("QUEUE", "queue"), ("WAITING", "waiting"),
                                       ("LONGEST WAIT S", "longest_wait_s"),
                                       ("OFFERED", "offered"), ("ANSWERED", "answered"),
                                       ("ABANDONED", "abandoned"), ("ASA S", "asa_s"),
                                       ("SERVICE LEVEL", "service_level")])
    if command == "calls":
        return _table(rows("calls"), [("CALL", "id"), ("PHASE", "phase"),
                                      ("DIRECTION", "direction"), ("CALLER", "caller"),
                                      ("DID", "did"), ("QUEUE", "queue"), ("AGENT", "agent"),
                                      ("STARTED", "started_at")])
    if command == "registrations":
        return _table(rows("registrations"), [("AOR", "aor"), ("CONTACT", "contact"),
                                              ("FROM", "source_host"),
                                              ("PORT", "source_port"),
                                              ("USER AGENT", "user_agent")])
    calls = data.get("calls") if isinstance(data.get("calls"), dict) else {}
    assert isinstance(calls, dict)
    admission = data.get("admission") if isinstance(data.get("admission"), dict) else {}
    assert isinstance(admission, dict)
    refused = admission.get("refused") or {}
    lines = [
        f"uptime          {data.get('uptime_s', 0)} s",
        f"calls           {calls.get('active', 0)} active, {calls.get('completed', 0)} "
        f"completed, {calls.get('offered', 0)} offered, {calls.get('rejected', 0)} rejected",
        f"registrations   {data.get('bindings', 0)} bindings",
        f"transactions    {data.get('transactions_active', 0)} active",
        f"refused (503)   {sum(refused.values()) if isinstance(refused, dict) else 0}",
    ]
    for queue in rows("queues"):
        lines.append(f"queue {queue.get('queue')}: {queue.get('waiting', 0)} waiting, "
                     f"longest {queue.get('longest_wait_s', 0)} s")
    return "\n".join(lines)


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
        loaded = read_config(args.file)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    for warning in loaded.warnings:  # valid, probably not meant: printed, never fatal
        print(warning, file=sys.stderr)
    from pbx.cli_customers import campaign_warnings

    for note in campaign_warnings(loaded.config):  # printed, never fatal
        print(f"{args.file}: {note}", file=sys.stderr)
    print(summarize(loaded.config))
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
    if args.command in VIEWS:
        return _view(args)
    handler = getattr(args, "handler", None)
    if handler is not None:
        return int(handler(args))
    return _check(args)


if __name__ == "__main__":
    sys.exit(main())
