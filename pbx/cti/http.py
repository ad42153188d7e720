"""The HTTP surface of the PBX (Starlette, served by uvicorn inside the PBX's loop) — L3.

For now: `/health`, `/api/registrations` and `/api/stats`. The CTI issue adds agent state, call
control, the WebSocket and the pages.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pbx.config.schema import PbxConfig
from pbx.repositories import Binding


class PbxView(Protocol):
    """What the HTTP layer reads from the running PBX (implemented by `pbx.app.PbxApp`)."""

    config: PbxConfig

    def registrations(self) -> list[Binding]: ...

    def stats(self) -> dict[str, object]: ...


def build_http_app(pbx: PbxView) -> Starlette:
    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "name": pbx.config.pbx.name})

    async def registrations(request: Request) -> JSONResponse:
        aor = request.query_params.get("aor")
        rows = [asdict(b) for b in pbx.registrations() if aor is None or b.aor == aor]
        return JSONResponse({"registrations": rows})

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse(pbx.stats())

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/api/registrations", registrations),
            Route("/api/stats", stats),
        ]
    )
