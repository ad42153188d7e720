"""Talking to a running PBX from the shell — L4: the `--url` / `--token-file` options every
verb that reads or changes a running PBX shares, and one request function that turns every
failure (no token, a refusal, no PBX at the URL) into a one-line `ApiError`.

The CLI never logs in: it sends an API token (`http.api_tokens`) whose scopes say what it may
read or change; the PBX checks them like any other caller's."""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.request
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8080"


class ApiError(Exception):
    """One line for stderr: what went wrong talking to the running PBX."""


def add_api_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of every verb that talks to a running PBX."""
    parser.add_argument("--url", default=os.environ.get("PBX_URL", DEFAULT_URL),
                        help=f"the PBX's HTTP address (default $PBX_URL or {DEFAULT_URL})")
    parser.add_argument("--token-file",
                        help="a file holding an API token (default: $PBX_API_TOKEN)")


def read_token(args: argparse.Namespace, scope: str) -> str:
    try:
        token = (open(args.token_file).read().strip() if args.token_file  # noqa: SIM115
                 else os.environ.get("PBX_API_TOKEN", "").strip())
    except OSError as exc:
        raise ApiError(f"cannot read the token file: {exc.strerror}") from exc
    if not token:
        raise ApiError(f"needs an API token with scope '{scope}' "
                       "(--token-file FILE or $PBX_API_TOKEN; see http.api_tokens)")
    return token


def request_api(args: argparse.Namespace, path: str, scope: str, *, method: str = "GET",
                body: Any = None, raw_body: bytes | None = None,
                content_type: str = "application/json", raw: bool = False) -> Any:
    """Send one request to the running PBX with the token; the decoded JSON answer (or the raw
    bytes with `raw=True`). `body` is sent as JSON, `raw_body` as is with `content_type`."""
    token = read_token(args, scope)
    headers = {"Authorization": f"Bearer {token}"}
    data: bytes | None = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    elif raw_body is not None:
        data = raw_body
        headers["Content-Type"] = content_type
    request = urllib.request.Request(args.url.rstrip("/") + path, data=data, headers=headers,
                                     method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            payload = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace").strip()
        raise ApiError(f"{exc.code} {detail}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ApiError(f"no PBX answers at {args.url} ({reason})") from exc
    if raw:
        return payload
    return json.loads(payload) if payload else None
