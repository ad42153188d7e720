"""`pbx reload`: the running PBX re-reads its configuration file and applies what changed,
calls in progress untouched (``POST /api/admin/reload``, token scope ``control``) — L4.

Prints what changed and what needs a restart; an invalid file prints its errors (file:line, as
`pbx check-config` does) and exits 1, the PBX going on with the configuration it has."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pbx.cli_api import ApiError, add_api_arguments, request_api

SCOPE = "control"


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "reload",
        help="make the running PBX re-read its config file and apply what changed, without "
             f"dropping calls (same as SIGHUP; token scope '{SCOPE}')")
    add_api_arguments(parser)
    parser.add_argument("--json", action="store_true", help="the API's JSON, for scripts")
    parser.set_defaults(handler=reload)


def reload(args: argparse.Namespace) -> int:
    try:
        answer = request_api(args, "/api/admin/reload", SCOPE, method="POST", body={})
    except ApiError as exc:
        refused = _refusal(str(exc))
        if refused is None:
            print(f"pbx reload: {exc}", file=sys.stderr)
            return 1
        answer = refused
    if args.json:
        print(json.dumps(answer, indent=2, sort_keys=True))
        return 0 if answer.get("applied") else 1
    if not answer.get("applied"):
        print("pbx reload: the configuration was refused; the PBX goes on with the one it "
              "has:", file=sys.stderr)
        for error in answer.get("errors", []):
            print(error, file=sys.stderr)
        return 1
    print(render(answer))
    return 0


def _refusal(message: str) -> dict[str, Any] | None:
    # "422 {json}" from the API: the errors of an invalid file, to print one per line.
    status, _, body = message.partition(" ")
    if status != "422":
        return None
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) and "errors" in answer else None


def render(answer: dict[str, Any]) -> str:
    """The reload's answer for a person: one line per section that changed."""
    lines = [f"reloaded {answer.get('file', '')}".rstrip()]
    changes = answer.get("changes") or {}
    if not changes:
        lines.append("nothing changed")
    for section, found in sorted(changes.items()):
        parts = [f"{kind} {', '.join(names)}" for kind, names in found.items()]
        lines.append(f"{section}: {'; '.join(parts)}")
    for warning in answer.get("warnings") or []:
        lines.append(f"warning: {warning}")
    restart = answer.get("needs_restart") or []
    if restart:
        lines.append(f"needs a restart (not applied): {', '.join(restart)}")
    return "\n".join(lines)
