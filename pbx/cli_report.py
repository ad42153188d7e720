"""`pbx report queues|agents|cdrs` — reports of a running PBX from the shell (L4).

Reads ``/api/reports/queues``, ``/api/reports/agents`` (token scope ``reports``) and
``/api/reports/cdrs`` (scope ``cdrs``) with an API token (`pbx.cli_api`) and prints a table,
the API's JSON (``--json``) or its CSV (``--csv``). Errors (no token, a refusal, bad
parameters, no PBX) are one line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any
from urllib.parse import urlencode

from pbx.cli_api import ApiError, add_api_arguments, request_api

REPORTS = {  # report -> (API path, scope, help)
    "queues": ("/api/reports/queues", "reports",
               "offered, answered, abandoned, ASA, AHT, service level per queue and period"),
    "agents": ("/api/reports/agents", "reports",
               "calls, talk, wrap-up, ready and pause time, occupancy per agent and period"),
    "cdrs": ("/api/reports/cdrs", "cdrs", "the call records, with filters and paging"),
}


def register(sub: Any) -> None:
    """Add ``pbx report`` to the `pbx` command's subparsers."""
    parser = sub.add_parser(
        "report", help="queue, agent and call reports of a running PBX (token scope "
                       "'reports'; 'cdrs' for call records)",
        description="Reports of a running PBX from its stored statistics. Times are ISO 8601 "
                    "(2026-12-04 or 2026-12-04T08:00+01:00); without a zone they are in the "
                    "PBX's reports.timezone.")
    parser.add_argument("report", choices=tuple(REPORTS), help="which report")
    parser.add_argument("--from", dest="start", metavar="WHEN",
                        help="from this date or time (default: midnight today)")
    parser.add_argument("--to", dest="end", metavar="WHEN",
                        help="up to this date or time (default: now)")
    parser.add_argument("--interval", choices=("15m", "hour", "day", "total"),
                        help="one line per queue/agent per 15 minutes, hour, day, or for the "
                             "whole range (default: total)")
    parser.add_argument("--queue", action="append", default=[], help="only this queue")
    parser.add_argument("--agent", action="append", default=[], help="only this agent")
    parser.add_argument("--disposition", help="cdrs: only calls with this outcome "
                                              "(answered, abandoned …)")
    parser.add_argument("--agent-disposition", help="cdrs: only calls the agent gave this "
                                                    "disposition")
    parser.add_argument("--limit", type=int, help="cdrs: at most this many (1..10000)")
    parser.add_argument("--offset", type=int, help="cdrs: skip this many")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--csv", action="store_true", help="the API's CSV")
    output.add_argument("--json", action="store_true", help="the API's JSON, for scripts")
    add_api_arguments(parser)
    parser.set_defaults(handler=run_report)


def _query(args: argparse.Namespace) -> list[tuple[str, str]]:
    query: list[tuple[str, str]] = []
    for name, value in (("from", args.start), ("to", args.end)):
        if value:
            query.append((name, value))
    if args.report != "cdrs" and args.interval:
        query.append(("interval", args.interval))
    if args.report == "cdrs":
        if args.interval:
            raise ApiError("--interval is for the queues and agents reports")
        if len(args.queue) > 1 or len(args.agent) > 1:
            raise ApiError("cdrs take at most one --queue and one --agent")
        for name, value in (("queue", args.queue[:1]), ("agent", args.agent[:1])):
            query += [(name, v) for v in value]
        for name, text in (("disposition", args.disposition),
                           ("agent_disposition", args.agent_disposition)):
            if text:
                query.append((name, text))
        for name, number in (("limit", args.limit), ("offset", args.offset)):
            if number is not None:
                query.append((name, str(number)))
    else:
        if args.disposition or args.agent_disposition or args.limit is not None \
                or args.offset is not None:
            raise ApiError("--disposition, --agent-disposition, --limit and --offset are for "
                           "cdrs")
        key = "queue" if args.report == "queues" else "agent"
        other = args.agent if args.report == "queues" else args.queue
        if other:
            raise ApiError(f"the {args.report} report filters by --{key} only")
        query += [(key, value) for value in (args.queue or args.agent)]
    if args.csv:
        query.append(("format", "csv"))
    return query


def run_report(args: argparse.Namespace) -> int:
    path, scope, _ = REPORTS[args.report]
    try:
        query = _query(args)
        full = path + ("?" + urlencode(query) if query else "")
        if args.csv:
            sys.stdout.write(request_api(args, full, scope, raw=True).decode("utf-8"))
            return 0
        data = request_api(args, full, scope)
    except ApiError as exc:
        print(f"pbx report {args.report}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))
        return 0
    print(render(args.report, data))
    return 0


def _seconds(value: object) -> str:
    return "" if value is None else f"{float(value):.0f}"  # type: ignore[arg-type]


def _percent(value: object) -> str:
    return "" if value is None else f"{float(value):.0%}"  # type: ignore[arg-type]


def table(rows: list[list[str]], header: list[str]) -> str:
    cells = [header, *rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
             .rstrip() for line in cells]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def render(report: str, data: dict[str, Any]) -> str:
    """The report as a text table, with the range it covers on top."""
    title = f"{data.get('from')} .. {data.get('to')} ({data.get('timezone')})"
    if report == "queues":
        rows = [[str(q["period_start"]), str(q["queue"]), str(q["offered"]),
                 str(q["answered"]), str(q["abandoned"]), _percent(q["service_level"]),
                 _seconds(q["asa_s"]), _seconds(q["aht_s"])] for q in data.get("queues", [])]
        header = ["PERIOD", "QUEUE", "OFFERED", "ANSWERED", "ABANDONED", "SL", "ASA S",
                  "AHT S"]
    elif report == "agents":
        rows = [[str(a["period_start"]), str(a["agent"]), str(a["calls"]),
                 _seconds(a["talk_s"]), _seconds(a["wrap_up_s"]), _seconds(a["ready_s"]),
                 _seconds(a["paused_s"]), _percent(a["occupancy"]),
                 " ".join(f"{reason}={_seconds(seconds)}"
                          for reason, seconds in a["pause_by_reason"].items())]
                for a in data.get("agents", [])]
        header = ["PERIOD", "AGENT", "CALLS", "TALK S", "WRAP S", "READY S", "PAUSED S",
                  "OCC", "PAUSES"]
    else:
        rows = [[str(c["started_at"]), str(c.get("caller", "")), str(c.get("queue", "")),
                 str(c.get("agent", "")), str(c["disposition"]), str(c["agent_disposition"]),
                 str(c["agent_notes"]).replace("\n", " ")[:40]]
                for c in data.get("cdrs", [])]
        header = ["STARTED", "CALLER", "QUEUE", "AGENT", "OUTCOME", "DISPOSITION", "NOTES"]
        title += f", {len(rows)} of {data.get('total')} from {data.get('offset')}"
    return title + "\n" + table(rows, header)
