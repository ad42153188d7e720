"""The HTTP surface of the PBX (Starlette, served by uvicorn inside the PBX's loop) — L3.

Every route, and who may use it:

- ``/health`` — anyone (liveness); answers ``{"status": "ok"}`` and nothing else.
- ``/api/stats``, ``/api/cdrs``, ``/api/registrations``, ``/api/campaigns``, ``/metrics`` —
  supervisors' and admins' sessions, or API tokens with the endpoint's scope
  (`pbx.cti.operations`).
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

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pbx.cti.api import build_cti_routes
from pbx.cti.auth import CtiAuth
from pbx.cti.control import CampaignControl
from pbx.cti.desk import CtiDesk
from pbx.cti.operations import OperationsAccess, PbxView, operations_routes
from pbx.cti.perimeter import HttpPerimeter
from pbx.cti.recordings import RecordingAccess, recording_routes
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
) -> Starlette:
    """The whole HTTP app: health, operations, the CTI (one `CtiAuth` for all of them), behind
    the perimeter configured in ``http:``. `tokens` are the loaded ``http.api_tokens``
    (`pbx.cti.tokens.load_api_tokens`); without them only sessions read operations data."""
    config = pbx.config
    auth = CtiAuth(config, db.cti_store(), desk.clock)
    tokens = tokens if tokens is not None else ApiTokens()

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/health", health),
            *operations_routes(pbx, desk, auth, OperationsAccess(auth, tokens)),
            *recording_routes(config, db.recording_store(), recording_files(config),
                              RecordingAccess(config, auth, tokens)),
            *build_cti_routes(desk, db, config, campaigns, auth=auth, tokens=tokens),
        ],
        middleware=[Middleware(HttpPerimeter, trusted_proxies=config.http.trusted_proxies,
                               max_body_bytes=config.http.max_body_bytes)],
    )
