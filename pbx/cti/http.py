"""The HTTP surface of the PBX (Starlette, served by uvicorn inside the PBX's loop) — L3.

Every route, and who may use it:

- ``/health`` — anyone (liveness); answers ``{"status": "ok"}`` and nothing else.
- ``/api/stats``, ``/api/cdrs``, ``/api/registrations``, ``/api/campaigns``, ``/metrics`` —
  supervisors' and admins' sessions, or API tokens with the endpoint's scope
  (`pbx.cti.operations`).
- ``/api/reports/queues``, ``/api/reports/agents`` (scope ``reports``), ``/api/reports/cdrs``
  (scope ``cdrs``) — the same readers (`pbx.cti.reports`).
- ``/api/admin/…`` — customers and the do-not-call list for admins' sessions or tokens with
  scope ``customers``; agent and call control for supervisors' and admins' sessions or tokens
  with scope ``control`` (`pbx.cti.admin`).
- ``/api/recordings``, ``/api/recordings/{cdr_id}`` — supervisors' and admins' sessions, API
  tokens with scope ``recordings``, agents' own calls when allowed (`pbx.cti.recordings`).
- ``/api/cti/login`` — anyone (rate-limited per source and per account); the rest of
  ``/api/cti/…`` and the WebSocket — sessions, each route checking the session's role and
  seat (`pbx.cti.api`).
- ``/api/openapi.json``, ``/desk``, ``/wallboard``, ``/static/…`` — anyone: the API's
  description and the pages' own code, no data.

All of it sits behind `pbx.cti.perimeter.HttpPerimeter` (client address policy, body cap,
security headers).
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pbx.config.schema import PbxConfig
from pbx.cti.admin import admin_routes
from pbx.cti.api import build_cti_routes
from pbx.cti.auth import CtiAuth
from pbx.cti.control import CampaignControl
from pbx.cti.desk import CtiDesk
from pbx.cti.operations import OperationsAccess, PbxView, operations_routes
from pbx.cti.perimeter import HttpPerimeter
from pbx.cti.recordings import RecordingAccess, recording_routes
from pbx.cti.reload import reload_routes
from pbx.cti.reports import IntervalFlush, report_routes
from pbx.cti.tokens import ApiTokens
from pbx.storage import Database
from pbx.storage.recordings import recording_files

__all__ = ["PbxView", "build_http_app"]


def build_http_app(
    pbx: PbxView,
    desk: CtiDesk,
    db: Database,
    *,
    campaigns: CampaignControl | None = None,
    tokens: ApiTokens | None = None,
    intervals: IntervalFlush | None = None,
) -> Starlette:
    """The whole HTTP app: health, operations, the CTI (one `CtiAuth` for all of them), behind
    the perimeter configured in ``http:``. `tokens` are the loaded ``http.api_tokens``
    (`pbx.cti.tokens.load_api_tokens`); without them only sessions read operations data.
    `intervals`: the statistics recorder reports flush before they read."""
    config = pbx.config
    auth = CtiAuth(config, db.cti_store(), desk.clock)
    tokens = tokens if tokens is not None else ApiTokens()
    access = OperationsAccess(auth, tokens)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    access = OperationsAccess(auth, tokens)
    configured: list[Any] = []
    app = Starlette(
        routes=[
            Route("/health", health),
            *operations_routes(pbx, desk, auth, access),
            *report_routes(config, db, access, intervals),
            *reload_routes(pbx, auth, access),
            *admin_routes(pbx, desk, db, auth, tokens, campaigns),
            *recording_routes(config, db.recording_store(), recording_files(config),
                              RecordingAccess(config, auth, tokens)),
            *build_cti_routes(desk, db, config, campaigns, auth=auth, tokens=tokens,
                              configured=configured),
        ],
        middleware=[Middleware(HttpPerimeter, trusted_proxies=config.http.trusted_proxies,
                               max_body_bytes=config.http.max_body_bytes)],
    )

    def reconfigure(new: PbxConfig) -> None:
        # A config reload (pbx.reload): the sessions' and the API's view of the agents and
        # forms; the perimeter and the tokens stay as started (they need a restart).
        auth.reconfigure(new)
        for holder in configured:
            holder.config = new

    app.state.reconfigure = reconfigure
    return app
