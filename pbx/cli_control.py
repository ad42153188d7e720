"""`pbx agent pause|ready|logout|login EXT` and `pbx call hangup ID` — L4: control of a running
PBX's agents and calls through its admin API (`pbx.cti.admin`) with an API token of scope
``control``. The orders take the same path as the agent desktop's (the ACD's agent states, the
call's own task), so the desk, the wallboard and `pbx agents` show the change at once."""

from __future__ import annotations

import argparse
import sys
import urllib.parse
from typing import Any

from pbx.cli_api import ApiError, add_api_arguments, request_api

SCOPE = "control"


def register(sub: Any) -> None:
    agent = sub.add_parser("agent", help="pause, unpause, log out or log in an agent of a "
                                         "running PBX (token scope 'control')")
    verbs = agent.add_subparsers(dest="agent_command", required=True)
    for verb, text in (("pause", "take the agent out of the hunt, with a reason"),
                       ("ready", "unpause (or end wrap-up early)"),
                       ("unpause", "the same as ready"),
                       ("logout", "log the agent out of the queues"),
                       ("login", "log the agent in, ready")):
        parser = verbs.add_parser(verb, help=text)
        parser.add_argument("extension")
        if verb == "pause":
            parser.add_argument("--reason",
                                help="pause reason, one of cti.pause_codes where configured "
                                     "(default: the first; shown on the desk and wallboard)")
        add_api_arguments(parser)
        parser.set_defaults(handler=_agent)
    call = sub.add_parser("call", help="hang up a call of a running PBX (token scope 'control')")
    cverbs = call.add_subparsers(dest="call_command", required=True)
    hangup = cverbs.add_parser("hangup", help="end the call (the caller gets a BYE); ids from "
                                              "`pbx calls`")
    hangup.add_argument("call_id")
    add_api_arguments(hangup)
    hangup.set_defaults(handler=_hangup)


def _agent(args: argparse.Namespace) -> int:
    action = "ready" if args.agent_command == "unpause" else args.agent_command
    body = {"reason": args.reason} if action == "pause" and args.reason else {}
    path = (f"/api/admin/agents/{urllib.parse.quote(args.extension, safe='')}/"
            f"{action}")
    try:
        answer = request_api(args, path, SCOPE, method="POST", body=body)
    except ApiError as exc:
        print(f"pbx agent {args.agent_command}: {exc}", file=sys.stderr)
        return 1
    status = answer["agent"]
    state = status["state"]
    reason = f" ({status['reason']})" if state == "paused" and status.get("reason") else ""
    later = {"pause": "paused", "logout": "logged_out"}.get(action)
    if later is not None and state != later:
        # On a call: the ACD applies it when the call and its wrap-up are done.
        reason += f"; {later.replace('_', ' ')} when the call and its wrap-up are done"
    print(f"agent {status['extension']}: {state}{reason}")
    return 0


def _hangup(args: argparse.Namespace) -> int:
    path = f"/api/admin/calls/{urllib.parse.quote(args.call_id, safe='')}/hangup"
    try:
        request_api(args, path, SCOPE, method="POST", body={})
    except ApiError as exc:
        print(f"pbx call hangup: {exc}", file=sys.stderr)
        return 1
    print(f"call {args.call_id}: hanging up")
    return 0
