"""``POST /api/admin/reload``: re-read the configuration file of the running PBX and apply what
changed, calls and waiting callers untouched (`pbx.reload` does the work) — L3.

Who may: an API token with scope ``control`` (what `pbx reload` sends), or an admin's desktop
session (with the CSRF header when it comes as the session cookie). Without credentials: 401;
a token without the scope, an agent's or a supervisor's session: 403.

The answer: 200 ``{"applied": true, "changes": {...}, "needs_restart": [...]}`` (the keys that
differ but cannot change live, left as they were); an invalid file is refused, the PBX keeps
its configuration: 422 ``{"applied": false, "errors": ["file:line: key: message", ...]}``.
"""

from __future__ import annotations

from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from pbx.config.schema import PbxConfig
from pbx.cti import rest
from pbx.cti.auth import CtiAuth
from pbx.cti.operations import BEARER_CHALLENGE, OperationsAccess
from pbx.cti.rest import ApiError, endpoint, presented_token

SCOPE = "control"


class ConfigReload(Protocol):
    """What the route calls (implemented by `pbx.app.PbxApp`)."""

    config: PbxConfig

    async def reload_config(self, requested_by: str) -> dict[str, Any]: ...


async def controller(request: Request, auth: CtiAuth, access: OperationsAccess,
                     csrf_header: str) -> str:
    """Who asks, for the log (``token:NAME`` or ``admin:EXT``). Raises `ApiError` 401/403."""
    token, _ = presented_token(request)
    if token is None:
        raise ApiError(401, f"send 'Authorization: Bearer TOKEN' (an API token with scope "
                            f"'{SCOPE}', or an admin's session)", headers=BEARER_CHALLENGE)
    api_token = access.tokens.match(token)
    if api_token is not None:
        if SCOPE not in api_token.scopes:
            allowed = ", ".join(sorted(api_token.scopes))
            raise ApiError(403, f"the API token {api_token.name!r} may not use '{SCOPE}' "
                                f"(its scopes: {allowed})")
        return f"token:{api_token.name}"
    session = await rest.require_session(request, auth, csrf_header)
    if session.role != "admin":
        raise ApiError(403, f"only admins (or an API token with scope '{SCOPE}') may reload "
                            "the configuration")
    return f"admin:{session.extension}"


def reload_routes(pbx: Any, auth: CtiAuth, access: OperationsAccess) -> list[BaseRoute]:
    """The reload route, behind `controller`."""

    async def reload(request: Request) -> Response:
        who = await controller(request, auth, access, pbx.config.cti.csrf_header)
        run = getattr(pbx, "reload_config", None)
        if run is None:
            raise ApiError(503, "this PBX cannot reload its configuration (no config file)")
        outcome = await run(who)
        return JSONResponse(outcome, status_code=200 if outcome.get("applied") else 422)

    return [Route("/api/admin/reload", endpoint({"POST": reload}), methods=rest.ALL_METHODS)]
