"""The operations endpoints (L3): live counters, call records, registrations, campaigns and
Prometheus metrics — and who may read them.

=====================  ==========================================================  ==========
path                   what                                                        token scope
=====================  ==========================================================  ==========
``/api/stats``         SIP, registrar, calls, trunks, queues, agents counters      stats
``/api/cdrs``          recent call records (``?limit=1..1000``)                    cdrs
``/api/registrations`` registered contacts (``?aor=``)                             registrations
``/api/campaigns``     outbound campaigns with their statistics                    campaigns
``/metrics``           Prometheus text exposition                                  metrics
=====================  ==========================================================  ==========

Readers: a supervisor's or admin's desktop session (``Authorization: Bearer`` or the session
cookie; these are reads, so no CSRF header), or an API token (`pbx.cti.tokens`) whose scopes
include the endpoint's. Without credentials: 401 with ``WWW-Authenticate: Bearer``; an agent's
session or a token without the scope: 403. ``/health`` stays open for liveness probes and says
only ``{"status": "ok"}``.

Call records never carry what a form hides from the reader (`pbx.cti.forms.hidden_sources`): an
IVR variable or customer attribute that some form hides from the reader's role (for a token,
its configured ``role``) is left out of ``variables``, and the caller, DID, queue or agent
column goes when a form hides its ``call.*`` source.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from pbx.config.schema import ApiScope, PbxConfig
from pbx.cti import rest
from pbx.cti.auth import CtiAuth
from pbx.cti.desk import CtiDesk
from pbx.cti.forms import hidden_sources
from pbx.cti.metrics import metrics_endpoint
from pbx.cti.permissions import Principal
from pbx.cti.rest import ApiError, endpoint, find_session, presented_token
from pbx.cti.tokens import ApiTokens
from pbx.repositories import Binding, CallDetailRecord

BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="pbx"'}
# CDR columns that are also form sources (`call.<name>`), so a form can hide them.
_CDR_COLUMNS = {"call.caller": "caller", "call.did": "did", "call.queue": "queue",
                "call.agent": "agent"}


class PbxView(Protocol):
    """What the HTTP layer reads from the running PBX (implemented by `pbx.app.PbxApp`)."""

    config: PbxConfig

    def registrations(self) -> list[Binding]: ...

    def stats(self) -> dict[str, object]: ...

    def recent_cdrs(self, limit: int) -> list[CallDetailRecord]: ...

    def campaign_status(self) -> list[dict[str, object]]: ...

    def calls_in_progress(self) -> list[dict[str, object]]: ...


class OperationsAccess:
    """Decides who reads an operations endpoint (see the module docstring)."""

    def __init__(self, auth: CtiAuth, tokens: ApiTokens) -> None:
        self.auth = auth
        self.tokens = tokens

    async def reader(self, request: Request, scope: ApiScope) -> Principal:
        """Whom the request reads `scope` as. Raises `ApiError` 401 or 403."""
        token, _ = presented_token(request)
        if token is None:
            raise ApiError(401, "send 'Authorization: Bearer TOKEN' (an API token with scope "
                                f"'{scope}', or a supervisor's session)", headers=BEARER_CHALLENGE)
        api_token = self.tokens.match(token)
        if api_token is not None:
            if scope not in api_token.scopes:
                allowed = ", ".join(sorted(api_token.scopes))
                raise ApiError(403, f"the API token {api_token.name!r} may not read '{scope}' "
                                    f"(its scopes: {allowed})")
            return api_token.principal
        session = await find_session(self.auth, token)
        if session is None:
            raise ApiError(401, "unknown API token, or the session has expired",
                           headers=BEARER_CHALLENGE)
        if not session.sees_all:
            raise ApiError(403, "only supervisors and admins (or an API token with scope "
                                f"'{scope}') may read this")
        return session.principal


def visible_cdr(record: CallDetailRecord, hidden: frozenset[str]) -> dict[str, object]:
    """A call record as JSON without what `hidden` (form sources) names."""
    row = asdict(record)
    row["ivr_path"] = list(record.ivr_path)
    row["variables"] = {k: v for k, v in record.variables.items() if k not in hidden}
    for source, column in _CDR_COLUMNS.items():
        if source in hidden:
            del row[column]
    return row


def operations_routes(
    pbx: PbxView, desk: CtiDesk, auth: CtiAuth, access: OperationsAccess
) -> list[BaseRoute]:
    """The five endpoints, each behind `access`. Forms are read per request: a config reload
    replaces them."""

    async def stats(request: Request) -> Response:
        await access.reader(request, "stats")
        return JSONResponse(pbx.stats())

    async def registrations(request: Request) -> Response:
        await access.reader(request, "registrations")
        aor = request.query_params.get("aor")
        rows = [asdict(b) for b in pbx.registrations() if aor is None or b.aor == aor]
        return JSONResponse({"registrations": rows})

    async def campaigns(request: Request) -> Response:
        await access.reader(request, "campaigns")
        return JSONResponse({"campaigns": pbx.campaign_status()})

    async def cdrs(request: Request) -> Response:
        reader = await access.reader(request, "cdrs")
        limit = rest.int_param(request, "limit", 100, 1, 1000)
        rows = await asyncio.to_thread(pbx.recent_cdrs, limit)
        hidden = hidden_sources(pbx.config.forms, reader)
        return JSONResponse({"cdrs": [visible_cdr(r, hidden) for r in rows]})

    async def calls(request: Request) -> Response:
        reader = await access.reader(request, "calls")
        hidden = hidden_sources(pbx.config.forms, reader)
        rows = [{k: v for k, v in row.items()
                 if not any(k == column and source in hidden
                            for source, column in _CDR_COLUMNS.items())}
                for row in pbx.calls_in_progress()]
        return JSONResponse({"calls": rows})

    scrape = metrics_endpoint(desk, auth)

    async def metrics(request: Request) -> Response:
        await access.reader(request, "metrics")
        return await scrape(request)

    def route(path: str, handler: Callable[[Request], Awaitable[Response]]) -> Route:
        return Route(path, endpoint({"GET": handler}), methods=rest.ALL_METHODS)

    return [
        route("/api/stats", stats),
        route("/api/cdrs", cdrs),
        route("/api/registrations", registrations),
        route("/api/campaigns", campaigns),
        route("/api/calls", calls),
        route("/metrics", metrics),
    ]
