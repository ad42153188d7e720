"""The supervisor's call actions on the wallboard: listen in, whisper, barge (L3, HTTP).

=================================================  ==========================================
``POST /api/cti/calls/{id}/monitor {"mode": M}``   M = listen | whisper | barge: ring the
                                                   supervisor's phone and join it to the call;
                                                   while on the call: change the mode (202)
``DELETE /api/cti/calls/{id}/monitor``             hang up the supervisor's leg (202)
=================================================  ==========================================

Who may: a CTI session of a supervisor or admin (`Session.sees_all`); an agent's session gets
403, no session 401, an API token 403 (tokens only read the operations endpoints), a cookie
session without the CSRF header 403. The call must be connected to an agent (409 otherwise);
the supervisor's own phone must be registered and free (409 saying so); one supervisor per
call (409). The order itself is carried out by the call (`pbx.call.monitoring`), which logs
and audits every start, mode change and stop (queue log ``monitor_*``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pbx.cti import rest
from pbx.cti.auth import Session
from pbx.cti.desk import CONNECTED_STATES, CtiDesk
from pbx.cti.rest import ApiError, endpoint, json_body, text_field

log = structlog.get_logger("pbx.cti")
MODES = ("listen", "whisper", "barge")


@runtime_checkable
class MonitorControl(Protocol):
    """Listen-in orders, carried to the call (`pbx.switchboard.supervision`)."""

    async def monitor(self, supervisor: str, call_id: str, mode: str) -> None: ...

    async def stop_monitor(self, supervisor: str, call_id: str) -> None: ...


class SuperviseApi:
    def __init__(self, desk: CtiDesk, session_of: Callable[[Request], Awaitable[Session]]
                 ) -> None:
        self.desk = desk
        self.session_of = session_of

    def _control(self) -> MonitorControl:
        control = self.desk.call_control
        if not isinstance(control, MonitorControl):
            raise ApiError(404, "listening in is not available on this PBX")
        return control

    async def _supervisor(self, request: Request) -> Session:
        session = await self.session_of(request)
        if not session.sees_all:
            log.warning("monitor_forbidden", agent=session.extension, role=session.role,
                        call=request.path_params.get("call_id"))
        rest.require_supervisor(session)
        return session

    async def monitor(self, request: Request) -> Response:
        session = await self._supervisor(request)
        body = await json_body(request)
        mode = text_field(body, "mode", max_length=16)
        if mode not in MODES:
            raise ApiError(422, f"'mode' must be one of {', '.join(MODES)}, not {mode!r}")
        call = self.desk.visible_call(session, request.path_params["call_id"])
        self.desk.check_state(call, CONNECTED_STATES, "listen in on")
        await self._control().monitor(session.extension, call.call_id, mode)
        return JSONResponse({"accepted": "monitor", "call_id": call.call_id, "mode": mode,
                             "supervisor": session.extension}, status_code=202)

    async def stop(self, request: Request) -> Response:
        session = await self._supervisor(request)
        call = self.desk.visible_call(session, request.path_params["call_id"])
        await self._control().stop_monitor(session.extension, call.call_id)
        return JSONResponse({"accepted": "monitor_stop", "call_id": call.call_id},
                            status_code=202)


def supervise_routes(desk: CtiDesk, session_of: Callable[[Request], Awaitable[Session]],
                     prefix: str = "/api/cti") -> list[Route]:
    """The routes above; they go before the generic ``calls/{id}/{action}`` route."""
    api = SuperviseApi(desk, session_of)
    handlers: dict[str, Any] = {"POST": api.monitor, "DELETE": api.stop}
    return [Route(f"{prefix}/calls/{{call_id}}/monitor", endpoint(handlers),
                  methods=rest.ALL_METHODS)]
