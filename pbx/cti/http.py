"""The HTTP surface of the PBX (Starlette, served by uvicorn inside the PBX's loop) — L3.

`/health`, `/api/registrations`, `/api/stats`, `/api/cdrs`, plus `extra_routes`: the CTI
(`pbx.cti.api.build_cti_routes`: API, WebSocket, OpenAPI, /metrics, /desk, /wallboard).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import asdict
from typing import Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from pbx.config.schema import PbxConfig
from pbx.repositories import Binding, CallDetailRecord


class PbxView(Protocol):
    """What the HTTP layer reads from the running PBX (implemented by `pbx.app.PbxApp`)."""

    config: PbxConfig

    def registrations(self) -> list[Binding]: ...

    def stats(self) -> dict[str, object]: ...

    def recent_cdrs(self, limit: int) -> list[CallDetailRecord]: ...

    def campaign_status(self) -> list[dict[str, object]]: ...



def _int_param(request: Request, name: str, default: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        return None
    return int(raw)


def _cdr_json(record: CallDetailRecord) -> dict[str, object]:
    row = asdict(record)
    row["ivr_path"] = list(record.ivr_path)
    row["variables"] = dict(record.variables)
    return row


def build_http_app(pbx: PbxView, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "name": pbx.config.pbx.name})

    async def registrations(request: Request) -> JSONResponse:
        aor = request.query_params.get("aor")
        rows = [asdict(b) for b in pbx.registrations() if aor is None or b.aor == aor]
        return JSONResponse({"registrations": rows})

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse(pbx.stats())

    async def campaigns(request: Request) -> JSONResponse:
        return JSONResponse({"campaigns": pbx.campaign_status()})

    async def cdrs(request: Request) -> JSONResponse:
        limit = _int_param(request, "limit", 100)
        if limit is None:
            return JSONResponse({"error": "limit must be an integer 1..1000"}, status_code=400)
        rows = await asyncio.to_thread(pbx.recent_cdrs, limit)
        return JSONResponse({"cdrs": [_cdr_json(r) for r in rows]})

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/api/registrations", registrations),
            Route("/api/stats", stats),
            Route("/api/cdrs", cdrs),
            Route("/api/campaigns", campaigns),
            *extra_routes,
        ]
    )
