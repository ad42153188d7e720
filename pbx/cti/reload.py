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

from pbx.config.schema import ApiScope, PbxConfig
from pbx.cti import rest
from pbx.cti.admin import AdminAccess
from pbx.cti.auth import CtiAuth
from pbx.cti.operations import OperationsAccess
from pbx.cti.rest import ApiError, endpoint

SCOPE: ApiScope = "control"


class ConfigReload(Protocol):
    """What the route calls (implemented by `pbx.app.PbxApp`)."""

    config: PbxConfig

    async def reload_config(self, requested_by: str) -> dict[str, Any]: ...


def reload_routes(pbx: Any, auth: CtiAuth, access: OperationsAccess) -> list[BaseRoute]:
    """The reload route: admins' sessions and tokens with scope ``control`` (`AdminAccess`)."""
    admins = AdminAccess(auth, access.tokens, pbx.config.cti.csrf_header)

    async def reload(request: Request) -> Response:
        who = await admins.caller(request, SCOPE, frozenset({"admin"}), refusal=(
            f"only admins (or an API token with scope '{SCOPE}') may reload the "
            "configuration"))
        run = getattr(pbx, "reload_config", None)
        if run is None:
            raise ApiError(503, "this PBX cannot reload its configuration (no config file)")
        outcome = await run(who)
        return JSONResponse(outcome, status_code=200 if outcome.get("applied") else 422)

    return [Route("/api/admin/reload", endpoint({"POST": reload}), methods=rest.ALL_METHODS)]
