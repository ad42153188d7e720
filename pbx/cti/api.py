"""The CTI HTTP API under ``/api/cti`` (Starlette, L3) and `build_cti_routes`.

Sessions (`pbx.cti.auth`): ``POST login``, ``POST logout``, ``GET me``. Agents: ``GET agents``,
``POST agents/{ext}/{login|logout|pause|ready}`` (own seat; supervisors any). ``GET queues``.
Calls: ``GET calls`` (own calls; supervisors all), ``POST calls`` (click-to-dial),
``GET calls/{id}`` (the pop), ``POST calls/{id}/{hangup|hold|resume|transfer|complete-transfer|
cancel-transfer|disposition|form|record|stop-record}``. Customers: ``GET customers?q=``, ``GET|PATCH
customers/{no}``, ``GET customers/{no}/calls``, ``GET customers/{no}/audit`` (supervisors).
The desktop's WebSocket is ``/api/cti/ws`` (`pbx.cti.websocket`); the OpenAPI document is
``/api/openapi.json``; the pages ``/desk`` and ``/wallboard``.

Who may use what: ``login`` is open (and rate-limited, `pbx.cti.auth`); everything else needs a
session, and an API token (`pbx.cti.tokens`) is refused here with 403 — tokens read the
operations endpoints only (`pbx.cti.operations`). Within a session: agents act on their own
seat and calls, open only the forms assigned to them (`pbx.cti.forms.forms_open_to`), search
customers only by what their form shows them; supervisors and admins act on any seat and call,
open any form, read the audit and run campaigns.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from pbx.config.schema import DeskLanguage, FormConfig, PbxConfig
from pbx.cti import rest
from pbx.cti.auth import CtiAuth, IssuedSession, Session
from pbx.cti.control import CampaignControl
from pbx.cti.desk import CONNECTED_STATES, CtiDesk, DeskCall, queue_json
from pbx.cti.forms import (
    PopContext,
    build_pop,
    forms_open_to,
    hidden_sources,
    plan_save,
    searchable_attributes,
    select_form,
)
from pbx.cti.openapi import openapi_document
from pbx.cti.operations import visible_cdr
from pbx.cti.recordings import may_hear, recording_url, session_listener
from pbx.cti.rest import ApiError, endpoint, json_body, text_field
from pbx.cti.supervise import supervise_routes
from pbx.cti.tokens import ApiTokens
from pbx.cti.websocket import desk_socket
from pbx.repositories import CallDetailRecord, Customer
from pbx.storage import Database
from pbx.storage.cti import FieldChange, FormAuditEntry

log = structlog.get_logger("pbx.cti")

STATIC_DIR = Path(__file__).resolve().parent.parent / "web" / "static"
_NUMBER = re.compile(r"^\+?[0-9*#]{1,32}$")
_TARGET = re.compile(r"^(agent:[0-9]{1,15}|queue:[A-Za-z0-9_.-]{1,64}|number:\+?[0-9*#]{1,32})$")
_CALL_ACTIONS = ("hangup", "hold", "resume", "transfer", "complete-transfer", "cancel-transfer",
                 "disposition", "form", "move", "record", "stop-record")
_AGENT_ACTIONS = ("login", "logout", "pause", "ready")
DESK_LANGUAGES: tuple[DeskLanguage, ...] = ("de", "en")


class CtiApi:
    """The handlers, sharing the desk, the stores and the session checks."""

    def __init__(self, desk: CtiDesk, db: Database, config: PbxConfig, auth: CtiAuth,
                 tokens: ApiTokens | None = None) -> None:
        self.desk = desk
        self.config = config
        self.auth = auth
        self.tokens = tokens if tokens is not None else ApiTokens()
        self.forms = db.form_store()
        self.customers = db.customer_directory()
        self.cdrs = db.cdr_sink()
        self.recordings = db.recording_store()
        self.campaign_control: CampaignControl | None = None

    async def session(self, request: Request) -> Session:
        token, _ = rest.presented_token(request)
        if token is not None and self.tokens.match(token) is not None:
            raise ApiError(403, "API tokens read the operations endpoints only (/api/stats, "
                                "/api/cdrs, /metrics …); log in for the CTI API")
        return await rest.require_session(request, self.auth, self.config.cti.csrf_header)

    # ------------------------------------------------------------------ sessions

    async def login(self, request: Request) -> Response:
        body = await json_body(request)
        extension = text_field(body, "extension", max_length=32)
        password = text_field(body, "password", max_length=256)
        source = request.client.host if request.client else "unknown"
        issued = await asyncio.to_thread(self._login, extension, password, source)
        cti = self.config.cti
        response = JSONResponse({
            "token": issued.token,
            "csrf_token": issued.csrf_token,
            "csrf_header": cti.csrf_header,
            "session": issued.session.describe(),
        })
        rest.set_session_cookies(response, issued.token, issued.csrf_token,
                                 cti.session_lifetime_s,
                                 rest.cookies_secure(request, cti.cookie_secure))
        return response

    def _login(self, extension: str, password: str, source: str) -> IssuedSession:
        # The stored hash is brought up to date by the login itself, after the password was
        # found right (`CtiAuth.confirm`): one scrypt for this agent, never one per agent of a
        # large installation at every start.
        self.auth.expire()
        return self.auth.login(extension, password, source)

    async def logout(self, request: Request) -> Response:
        session = await self.session(request)
        await asyncio.to_thread(self.auth.logout, session)
        self.desk.disconnect_session(session)
        response = JSONResponse({"logged_out": True})
        rest.clear_session_cookies(
            response, rest.cookies_secure(request, self.config.cti.cookie_secure))
        return response

    async def me(self, request: Request) -> Response:
        session = await self.session(request)
        status = self.desk.agents.get(session.extension)
        return JSONResponse({
            "session": session.describe(),
            "agent": status.describe() if status else None,
            "calls": [self.desk.pop(c, session.principal) for c in self.desk.calls_for(session)],
            "dispositions": list(self.config.cti.dispositions),
            "language": self.config.cti.language,
            "pause_codes": [{"code": c.code, "label": c.label, "productive": c.productive,
                             "labels": {lang: c.label_in(lang) for lang in DESK_LANGUAGES}}
                            for c in self.config.cti.pause_codes],
        })

    # ------------------------------------------------------------------ agents and queues

    async def agents(self, request: Request) -> Response:
        await self.session(request)
        return JSONResponse({"agents": self.desk.agent_list()})

    async def agent_action(self, request: Request) -> Response:
        session = await self.session(request)
        extension, action = request.path_params["extension"], request.path_params["action"]
        if action not in _AGENT_ACTIONS:
            raise ApiError(404, f"no agent action {action!r} (one of {', '.join(_AGENT_ACTIONS)})")
        self.desk.may_act_for(session, extension)
        body = await json_body(request, optional=True)
        if extension != session.extension:  # a supervisor forces it: the audit says who
            log.info("agent_action_by_supervisor", supervisor=session.extension,
                     agent=extension, action=action, reason=body.get("reason", ""))
        control = self.desk.agent_control
        if action == "login":
            paused = body.get("paused", False)
            if not isinstance(paused, bool):
                raise ApiError(400, "'paused' must be true or false")
            await control.login(extension, paused, text_field(body, "reason", required=False,
                                                              max_length=64))
        elif action == "logout":
            await control.logout(extension)
        elif action == "pause":
            codes = [c.code for c in self.config.cti.pause_codes]
            reason = text_field(body, "reason", required=False, max_length=64, default=codes[0])
            reason = reason.strip() or codes[0]
            if reason not in codes:
                raise ApiError(400, f"'reason' must be one of the pause codes: {', '.join(codes)}")
            await control.pause(extension, reason)
        else:
            await control.ready(extension)
        return JSONResponse({"accepted": action, "agent": extension}, status_code=202)

    async def queues(self, request: Request) -> Response:
        await self.session(request)
        return JSONResponse({"queues": [queue_json(q) for q in self.desk.queue_list()]})

    # ------------------------------------------------------------------ calls

    async def calls(self, request: Request) -> Response:
        session = await self.session(request)
        return JSONResponse({"calls": [c.summary() for c in self.desk.calls_for(session)]})

    async def make_call(self, request: Request) -> Response:
        session = await self.session(request)
        body = await json_body(request)
        number = text_field(body, "number", max_length=40).replace(" ", "")
        if not _NUMBER.match(number):
            raise ApiError(422, f"{number!r} is not a phone number (digits, optionally +)")
        call_id = await self.desk.call_control.make_call(session.extension, number)
        return JSONResponse({"call_id": call_id}, status_code=201)

    async def call(self, request: Request) -> Response:
        session = await self.session(request)
        call = self.desk.visible_call(session, request.path_params["call_id"])
        return JSONResponse(self.desk.pop(call, session.principal))

    async def call_action(self, request: Request) -> Response:
        session = await self.session(request)
        action = request.path_params["action"]
        if action not in _CALL_ACTIONS:
            raise ApiError(404, f"no call action {action!r} (one of {', '.join(_CALL_ACTIONS)})")
        call = self.desk.visible_call(session, request.path_params["call_id"])
        if action == "form":
            return await self._save_call_form(request, session, call)
        if action == "move":
            return await self._move(request, session, call)
        agent = self.desk.acting_agent(session, call)
        control = self.desk.call_control
        if action == "hangup":
            self.desk.check_state(call, ("offered", "dialing", "connected", "held"), "hang up")
            await control.hang_up(agent, call.call_id)
        elif action == "hold":
            self.desk.check_state(call, ("connected",), "hold")
            await control.hold(agent, call.call_id)
        elif action == "resume":
            self.desk.check_state(call, ("held",), "resume")
            await control.resume(agent, call.call_id)
        elif action == "transfer":
            body = await json_body(request)
            target = self._transfer_target(text_field(body, "target", max_length=80))
            attended = body.get("attended", False)
            if not isinstance(attended, bool):
                raise ApiError(400, "'attended' must be true or false")
            self.desk.check_state(call, ("connected", "held"), "transfer")
            await control.transfer(agent, call.call_id, target, attended)
        elif action in ("record", "stop-record"):
            self.desk.check_state(call, CONNECTED_STATES, action.replace("-", " "))
            await control.record(agent, call.call_id, action == "record")
        elif action in ("complete-transfer", "cancel-transfer"):
            self.desk.check_state(call, ("connected", "held"), action.replace("-", " "))
            if action == "complete-transfer":
                await control.complete_transfer(agent, call.call_id)
            else:
                await control.cancel_transfer(agent, call.call_id)
        else:
            return await self._set_disposition(request, agent, call)
        return JSONResponse({"accepted": action, "call_id": call.call_id}, status_code=202)

    def _transfer_target(self, target: str) -> str:
        if not _TARGET.match(target):
            raise ApiError(422, f"{target!r} is not a transfer target (agent:EXT, queue:NAME or "
                                "number:DIGITS)")
        if target.startswith("agent:") and target[6:] not in self.desk.agents:
            raise ApiError(422, f"no agent {target[6:]!r}")
        return target

    async def _move(self, request: Request, session: Session, call: DeskCall) -> Response:
        """A supervisor sends a waiting caller to another queue or straight to an agent (the
        ACD logs it as ``moved``; the log names the supervisor)."""
        rest.require_supervisor(session)
        body = await json_body(request)
        target = self._transfer_target(text_field(body, "target", max_length=80))
        if target.startswith("number:"):
            raise ApiError(422, "a waiting caller moves to a queue (queue:NAME) or an agent "
                                "(agent:EXT)")
        if target.startswith("queue:") and target[6:] not in {
                q.name for q in self.config.effective_queues()}:
            raise ApiError(422, f"no queue {target[6:]!r}")
        if target == f"queue:{call.queue}":
            raise ApiError(409, f"the caller is waiting in {call.queue!r} already")
        self.desk.check_state(call, ("queued", "offered"), "move")
        await self.desk.call_control.move(session.extension, call.call_id, target)
        return JSONResponse({"accepted": "move", "call_id": call.call_id, "target": target},
                            status_code=202)

    async def _set_disposition(self, request: Request, agent: str, call: DeskCall) -> Response:
        body = await json_body(request)
        disposition = text_field(body, "disposition", max_length=64)
        choices = self.config.cti.dispositions
        if disposition not in choices:
            raise ApiError(422, f"{disposition!r} is not a disposition ({', '.join(choices)})")
        note = text_field(body, "note", required=False, max_length=2000)
        await self.desk.call_control.set_disposition(agent, call.call_id, disposition, note)
        self.desk.disposition_set(call, disposition, note)
        return JSONResponse({"call_id": call.call_id, "disposition": disposition})

    async def _save_call_form(
        self, request: Request, session: Session, call: DeskCall
    ) -> Response:
        body = await json_body(request)
        chosen = select_form(self.config.forms, call.queue, call.flow)
        if chosen is None:
            raise ApiError(404, "no form is configured for this call")
        name, form = chosen
        changes = plan_save(form, call.context(), session.principal, body.get("values"))
        customer_no = call.customer.customer_no if call.customer else ""
        entries, customer = await asyncio.to_thread(
            self._store, changes, session.extension, name, customer_no, call.call_id
        )
        self.desk.form_saved(call, changes, customer, session)
        return JSONResponse({"saved": [_audit_json(e) for e in entries],
                             "pop": self.desk.pop(call, session.principal)})

    def _store(
        self, changes: list[FieldChange], agent: str, form: str, customer_no: str, call_id: str
    ) -> tuple[list[FormAuditEntry], Customer | None]:
        try:
            entries = self.forms.save(changes, agent=agent, form=form, at=self.desk.clock(),
                                      customer_no=customer_no, call_id=call_id)
        except LookupError as exc:
            raise ApiError(409, f"{exc}; nothing was saved") from None
        customer = self.customers.by_number(customer_no) if customer_no else None
        return entries, customer

    # ------------------------------------------------------------------ customers

    def _form(self, name: str, session: Session) -> FormConfig:
        # By name, only the forms assigned to the agent (supervisors: all of them).
        mine = forms_open_to(self.config, session.principal, session.sees_all)
        form = self.config.forms.get(name)
        if form is None:
            raise ApiError(404, f"no form {name!r} (yours: {', '.join(mine) or 'none'})")
        if name not in mine:
            log.info("cti_form_refused", agent=session.extension, form=name)
            raise ApiError(403, f"the form {name!r} is not assigned to you (yours: "
                                f"{', '.join(mine) or 'none'})")
        return form

    async def _customer(self, customer_no: str) -> Customer:
        customer = await asyncio.to_thread(self.customers.by_number, customer_no)
        if customer is None:
            raise ApiError(404, f"no customer {customer_no!r}")
        return customer

    async def search_customers(self, request: Request) -> Response:
        session = await self.session(request)
        query = request.query_params.get("q", "").strip()
        shortest = self.config.cti.search_min_chars
        if not shortest <= len(query) <= 64:
            raise ApiError(400, f"'q' must be {shortest} to 64 characters (customer number, "
                                "phone, name)")
        limit = rest.int_param(request, "limit", 20, 1, 100)
        form = self.config.forms.get("default")
        # Only what the agent's form shows them is compared: no guessing hidden values by
        # watching which customers come back.
        match = searchable_attributes(form, session.principal)
        if not match:
            raise ApiError(403, "your form shows no customer number, phone or name to "
                                "search by")
        found = await asyncio.to_thread(self.customers.search_customers, query, limit, match)
        results = []
        for customer in found:
            view: dict[str, object] = {"customer_no": customer.customer_no}
            if "name" in match:  # the form shows this agent the name: the result list may too
                view["name"] = customer.name
            if form is not None:
                pop = build_pop("default", form, PopContext(customer=customer), session.principal)
                view["fields"] = pop["fields"]
            results.append(view)
        return JSONResponse({"customers": results})

    async def customer(self, request: Request) -> Response:
        session = await self.session(request)
        name = request.query_params.get("form", "default")
        form = self._form(name, session)
        customer = await self._customer(request.path_params["customer_no"])
        pop = build_pop(name, form, PopContext(customer=customer), session.principal)
        return JSONResponse({"customer_no": customer.customer_no, "form": pop})

    async def update_customer(self, request: Request) -> Response:
        session = await self.session(request)
        body = await json_body(request)
        name = text_field(body, "form", required=False, max_length=64, default="default")
        form = self._form(name, session)
        customer = await self._customer(request.path_params["customer_no"])
        changes = plan_save(form, PopContext(customer=customer), session.principal,
                            body.get("values"))
        entries, updated = await asyncio.to_thread(
            self._store, changes, session.extension, name, customer.customer_no, ""
        )
        self.desk.form_saved(None, changes, updated, session)
        view = build_pop(name, form, PopContext(customer=updated), session.principal)
        return JSONResponse({"saved": [_audit_json(e) for e in entries],
                             "customer_no": customer.customer_no, "form": view})

    async def customer_calls(self, request: Request) -> Response:
        session = await self.session(request)
        customer = await self._customer(request.path_params["customer_no"])
        limit = rest.int_param(request, "limit", 20, 1, 200)
        rows = await asyncio.to_thread(self.cdrs.calls_of, customer.phone_numbers, limit)
        hidden = hidden_sources(self.config.forms, session.principal)
        playable = await self._playable(session, rows)
        calls = []
        for record in rows:
            row = _cdr_json(record, hidden)
            hearable = bool(record.recording) and record.recording in playable
            if not hearable:
                row.pop("recording", None)  # no path for who may not play it
            row["recording_url"] = playable[record.recording] if hearable else None
            if hearable and row["recording_url"] is None:
                row["recording_expired"] = True  # deleted by the retention
            calls.append(row)
        return JSONResponse({"customer_no": customer.customer_no, "calls": calls})

    async def _playable(self, session: Session,
                        rows: list[CallDetailRecord]) -> dict[str, str | None]:
        """recording path -> its URL, for the recordings among `rows` this session may play
        (the same rules as ``GET /api/recordings/{id}``, `pbx.cti.recordings`)."""
        listener = session_listener(self.config, session)
        recorded = [r.call_id for r in rows if r.recording]
        if listener is None or not recorded:
            return {}
        refs = await asyncio.to_thread(self.recordings.recordings_of_calls, recorded)
        return {ref.path: recording_url(ref) for ref in refs if may_hear(listener, ref)}

    async def campaigns(self, request: Request) -> Response:
        session = await self.session(request)
        rest.require_supervisor(session)
        rows = self.campaign_control.campaign_status() if self.campaign_control else []
        return JSONResponse({"campaigns": rows})

    async def campaign_action(self, request: Request) -> Response:
        """Start, pause or stop a campaign: supervisors and admins only."""
        session = await self.session(request)
        rest.require_supervisor(session)
        name, action = request.path_params["name"], request.path_params["action"]
        if action not in ("start", "pause", "stop"):
            raise ApiError(404, "action must be start, pause or stop")
        if self.campaign_control is None:
            raise ApiError(404, f"no campaign named {name!r}")
        try:
            self.campaign_control.campaign_control(name, action)
        except KeyError:
            raise ApiError(404, f"no campaign named {name!r}") from None
        return JSONResponse({"campaign": name, "action": action, "by": session.extension})

    async def preview_decision(self, request: Request) -> Response:
        """Preview dialling: the agent dials the previewed customer or skips them."""
        session = await self.session(request)
        body = await json_body(request)
        dial = body.get("dial")
        if not isinstance(dial, bool):
            raise ApiError(400, "'dial' must be true or false")
        customer_no = request.path_params["customer_no"]
        if self.campaign_control is None:
            raise ApiError(404, "no campaigns")
        try:
            self.campaign_control.preview_decided(session.extension, customer_no, dial)
        except KeyError:
            raise ApiError(409, f"customer {customer_no!r} is not reserved for your preview") \
                from None
        return JSONResponse({"customer_no": customer_no, "dial": dial})

    async def customer_audit(self, request: Request) -> Response:
        session = await self.session(request)
        rest.require_supervisor(session)
        customer_no = request.path_params["customer_no"]
        limit = rest.int_param(request, "limit", 100, 1, 1000)
        rows = await asyncio.to_thread(self.forms.audit_entries, customer_no=customer_no,
                                       limit=limit)
        return JSONResponse({"customer_no": customer_no, "audit": [_audit_json(e) for e in rows]})

    # ------------------------------------------------------------------ the rest

    async def not_found(self, request: Request) -> Response:
        return rest.error_response(404, f"no such API path: {request.url.path}")

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document(self.config))


def _audit_json(entry: FormAuditEntry) -> dict[str, object]:
    return {"field": entry.field, "old": entry.old_value, "new": entry.new_value,
            "at": entry.at, "agent": entry.agent, "call_id": entry.call_id}


def _cdr_json(record: CallDetailRecord, hidden: frozenset[str]) -> dict[str, object]:
    row = visible_cdr(record, hidden)  # no column a form hides from this agent …
    row.pop("variables", None)  # … and no IVR variables at all on the desk
    return row


def _language_page(api: CtiApi, name: str) -> Any:
    # The desk or the wallboard in the installation's language (`cti.language`, read per
    # request: a reload may change it) until the browser's languages or the user's own choice
    # say otherwise (i18n.js); the only thing filled in server-side.
    html = (STATIC_DIR / name).read_text(encoding="utf-8")

    async def page(request: Request) -> Response:
        language = api.config.cti.language
        return HTMLResponse(
            html.replace('data-default-language="de"', f'data-default-language="{language}"', 1),
            headers={"Cache-Control": "no-cache"})

    return page


def build_cti_routes(desk: CtiDesk, db: Database, config: PbxConfig,
                     campaigns: CampaignControl | None = None, *,
                     auth: CtiAuth | None = None,
                     tokens: ApiTokens | None = None,
                     configured: list[Any] | None = None) -> list[BaseRoute]:
    """Every CTI route: the API, the WebSocket, OpenAPI and the two pages with their static
    files. `pbx.cti.http.build_http_app` adds them to the HTTP app, with the `auth` it shares
    with the operations endpoints. `configured` (when given) receives the object whose
    `config` a reload replaces."""
    auth = auth or CtiAuth(config, db.cti_store(), desk.clock)
    api = CtiApi(desk, db, config, auth, tokens)
    if configured is not None:
        configured.append(api)
    api.campaign_control = campaigns

    def route(path: str, **handlers: Any) -> Route:
        return Route(path, endpoint({m.upper(): h for m, h in handlers.items()}),
                     methods=rest.ALL_METHODS)

    async def socket(websocket: WebSocket) -> None:
        await desk_socket(websocket, desk, auth)

    p = "/api/cti"
    return [
        route(f"{p}/login", post=api.login),
        route(f"{p}/logout", post=api.logout),
        route(f"{p}/me", get=api.me),
        route(f"{p}/agents", get=api.agents),
        route(f"{p}/agents/{{extension}}/{{action}}", post=api.agent_action),
        route(f"{p}/queues", get=api.queues),
        route(f"{p}/calls", get=api.calls, post=api.make_call),
        route(f"{p}/calls/{{call_id}}", get=api.call),
        *supervise_routes(desk, api.session, p),
        route(f"{p}/calls/{{call_id}}/{{action}}", post=api.call_action),
        route(f"{p}/customers", get=api.search_customers),
        route(f"{p}/customers/{{customer_no}}", get=api.customer, patch=api.update_customer),
        route(f"{p}/customers/{{customer_no}}/calls", get=api.customer_calls),
        route(f"{p}/customers/{{customer_no}}/audit", get=api.customer_audit),
        route(f"{p}/campaigns", get=api.campaigns),
        route(f"{p}/campaigns/{{name}}/{{action}}", post=api.campaign_action),
        route(f"{p}/preview/{{customer_no}}", post=api.preview_decision),
        WebSocketRoute(f"{p}/ws", socket),
        route(f"{p}/{{rest:path}}", get=api.not_found, post=api.not_found,
              put=api.not_found, patch=api.not_found, delete=api.not_found),
        route("/api/openapi.json", get=api.openapi),
        Route("/desk", _language_page(api, "desk.html")),
        Route("/wallboard", _language_page(api, "wallboard.html")),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
