"""``pbx recordings`` and ``pbx recording``: the running PBX's call recordings from the shell —
list them, or save one as a WAV file. Needs an API token with scope ``recordings``
(`pbx.cli_api`)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from pbx.cli_api import ApiError, add_api_arguments, request_api

SCOPE = "recordings"


def register(sub: Any) -> None:
    """Add ``pbx recordings`` (the list) and ``pbx recording CDR_ID -o FILE`` (one WAV)."""
    listing = sub.add_parser(
        "recordings", help="list the running PBX's call recordings, newest first (API token "
                           "scope recordings)")
    add_api_arguments(listing)
    listing.add_argument("--limit", type=int, default=50, help="how many (1..500, default 50)")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(handler=_list)
    get = sub.add_parser(
        "recording", help="save the recording of call record CDR_ID as a WAV file (API token "
                          "scope recordings)")
    add_api_arguments(get)
    get.add_argument("cdr_id", type=int, metavar="CDR_ID")
    get.add_argument("-o", "--output", required=True,
                     help="where to write the WAV ('-' for stdout)")
    get.set_defaults(handler=_get)


def _list(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 500:
        print("pbx recordings: --limit must be 1 to 500", file=sys.stderr)
        return 1
    try:
        data = request_api(args, f"/api/recordings?limit={args.limit}", SCOPE)
    except ApiError as exc:
        print(f"pbx recordings: {exc}", file=sys.stderr)
        return 1
    rows = data["recordings"]
    if args.json:
        print(json.dumps(rows, indent=2, sort_keys=True))
        return 0
    header = ("ID", "STARTED", "CALLER", "AGENT", "QUEUE", "FILE")
    table = [header] + [
        (str(r["id"]), datetime.fromtimestamp(r["started_at"]).strftime("%Y-%m-%d %H:%M:%S"),
         r["caller"], r["agent"], r["queue"], "deleted" if r["expired"] else "kept")
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
              .rstrip())
    return 0


def _get(args: argparse.Namespace) -> int:
    try:
        payload: bytes = request_api(args, f"/api/recordings/{args.cdr_id}", SCOPE, raw=True)
    except ApiError as exc:
        print(f"pbx recording: {exc}", file=sys.stderr)
        return 1
    if args.output == "-":
        sys.stdout.buffer.write(payload)
        return 0
    try:
        Path(args.output).write_bytes(payload)
    except OSError as exc:
        print(f"pbx recording: cannot write {args.output}: {exc.strerror}",
              file=sys.stderr)
        return 1
    print(f"{args.output}: {len(payload)} bytes")
    return 0
