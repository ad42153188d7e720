"""The admin API under ``/api/admin`` (L3): customers, the do-not-call list, and control of
agents and calls — for `pbx customers`, `pbx dnc`, `pbx agent`, `pbx call` and scripts.

==========================================  =================================  ===========
path                                        what                               who
==========================================  =================================  ===========
``GET /api/admin/customers``                every customer (``?group=``,       customers
                                            ``?format=json|csv``: the export)
``POST /api/admin/customers``               create one (409 when it exists)    customers
``GET|PUT|PATCH|DELETE``                    read, replace whole, change some   customers
``/api/admin/customers/{no}``               attributes, delete one
``POST /api/admin/imports/customers``       rows of a CSV file (``line`` and   customers
                                            the attributes; ``groups`` added
                                            to each, ``dry_run``)
``GET|POST /api/admin/dnc``                 the do-not-call list; add rows     customers
``DELETE /api/admin/dnc/{number}``          take a number off it               customers
``POST /api/admin/agents/{ext}/{action}``   pause (``reason``), ready,         control
                                            logout, login
``POST /api/admin/calls/{id}/hangup``       end a call in progress (BYE)       control
==========================================  =================================  ===========

Who: an API token (`pbx.cti.tokens`) whose scopes include the route's (``customers`` or
``control``), or a desktop session — an admin's for customers and lists (the CSV import
rewrites data every agent sees; supervisors edit customers through their forms), a supervisor's
or an admin's for control (the wallboard's people). Without credentials 401; other roles and
tokens without the scope 403. A session sent as the cookie must carry the CSRF header on every
change, as everywhere on the desk.

Records are validated by `pbx.customers.records` with this PBX's statuses, agents and home
country (phone numbers become E.164 as the dial plan reads them); a refused record is a 422
saying which value, an import answers every refused row with its line. Changes of the
do-not-call list reach the running campaigns at once (`CampaignControl.dnc_changed`).
Agent and call control goes through the same `AgentControl` / `CallControl` as the desk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from pbx.config.schema import ApiScope, PbxConfig
from pbx.cti import rest
from pbx.cti.auth import CtiAuth
from pbx.cti.control import CampaignControl, ControlRefused
from pbx.cti.desk import CtiDesk
from pbx.cti.operations import BEARER_CHALLENGE
from pbx.cti.rest import ApiError, endpoint, json_body, text_field
from pbx.cti.tokens import ApiTokens
from pbx.customers import csvfile, records
from pbx.customers.records import CustomerPatch, CustomerRules, RecordRefused
from pbx.storage import Database
from pbx.storage.customers import CustomerExists

log = structlog.get_logger("pbx.admin")

MAX_ROWS = 5000  # per import request; the CLI sends a file in batches
CUSTOMER_ROLES = frozenset({"admin"})
CONTROL_ROLES = frozenset({"supervisor", "admin"})
_AGENT_ACTIONS = ("pause", "ready", "logout", "login")


class AdminAccess:
    """Decides who may use an admin route (see the module docstring)."""

    def __init__(self, auth: CtiAuth, tokens: ApiTokens, csrf_header: str) -> None:
        self.auth = auth
        self.tokens = tokens
        self.csrf_header = csrf_header

    async def caller(self, request: Request, scope: ApiScope, roles: frozenset[str],
                     refusal: str | None = None) -> str:
        """Who asks (``token:NAME`` or ``ROLE:EXT``, for the log). Raises `ApiError`; a
        session of another role gets 403 with `refusal` (default: which roles may)."""
        token, _ = rest.presented_token(request)
        who = " or ".join(f"an {r}'s" if r[0] in "aeiou" else f"a {r}'s" for r in sorted(roles))
        if token is None:
            raise ApiError(401, f"send 'Authorization: Bearer TOKEN' (an API token with scope "
                                f"'{scope}', or {who} session)", headers=BEARER_CHALLENGE)
        api_token = self.tokens.match(token)
        if api_token is not None:
            if scope not in api_token.scopes:
                allowed = ", ".join(sorted(api_token.scopes))
                raise ApiError(403, f"the API token {api_token.name!r} may not use '{scope}' "
                                    f"(its scopes: {allowed})")
            return f"token:{api_token.name}"
        session = await rest.require_session(request, self.auth, self.csrf_header)
        if session.role not in roles:
            raise ApiError(403, refusal or f"only {who.replace(' or ', ' and ')} sessions (or "
                                           f"an API token with scope '{scope}') may do this")
        return f"{session.role}:{session.extension}"


class ConfigSource(Protocol):
    """Where the running configuration is read (the PBX; a reload replaces it)."""

    config: PbxConfig


class AdminApi:
    """The handlers (see the module docstring). The configuration's rules (statuses, agents,
    home country, the configured dnc list) are read at each request, so a reloaded
    configuration applies at once."""

    def __init__(self, source: ConfigSource, desk: CtiDesk, db: Database, access: AdminAccess,
                 campaigns: CampaignControl | None) -> None:
        self.source = source
        self.desk = desk
        self.customers = db.customer_directory()
        self.dialer = db.dialer_store()
        self.access = access
        self.campaigns = campaigns

    @property
    def config(self) -> PbxConfig:
        return self.source.config

    @property
    def rules(self) -> CustomerRules:
        return CustomerRules.of(self.source.config)

    async def _customers(self, request: Request) -> str:
        return await self.access.caller(request, "customers", CUSTOMER_ROLES)

    async def _control(self, request: Request) -> str:
        return await self.access.caller(request, "control", CONTROL_ROLES)

    def _validate(self, record: Mapping[str, Any], *, full: bool) -> CustomerPatch:
        try:
            return records.validate(record, self.rules, full=full)
        except RecordRefused as exc:
            raise ApiError(422, str(exc)) from None

    # ------------------------------------------------------------------ customers

    async def list_customers(self, request: Request) -> Response:
        await self._customers(request)
        group = request.query_params.get("group") or None
        fmt = request.query_params.get("format", "json")
        if fmt not in ("json", "csv"):
            raise ApiError(400, "'format' must be json or csv")
        found = await asyncio.to_thread(self.customers.list_customers, group)
        rows = [records.as_record(c) for c in found]
        if fmt == "csv":
            return Response(csvfile.write_customers(rows), media_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": 'attachment; filename="customers.csv"'})
        return JSONResponse({"customers": rows})

    async def create_customer(self, request: Request) -> Response:
        who = await self._customers(request)
        customer = records.replace(self._validate(await json_body(request), full=True))
        try:
            await asyncio.to_thread(self.customers.create_customer, customer)
        except CustomerExists:
            raise ApiError(409, f"customer {customer.customer_no!r} exists; PUT or PATCH "
                                f"/api/admin/customers/{customer.customer_no} changes it") from None
        log.info("customer_created", customer=customer.customer_no, by=who)
        self._customers_changed()
        return JSONResponse(records.as_record(customer), status_code=201)

    async def customer(self, request: Request) -> Response:
        await self._customers(request)
        found = await asyncio.to_thread(self.customers.by_number, self._number(request))
        if found is None:
            raise ApiError(404, f"no customer {self._number(request)!r}")
        return JSONResponse(records.as_record(found))

    async def replace_customer(self, request: Request) -> Response:
        who = await self._customers(request)
        body = await json_body(request)
        number = self._number(request)
        if body.setdefault("customer_no", number) != number:
            raise ApiError(422, "customer_no in the body differs from the path")
        customer = records.replace(self._validate(body, full=True))
        created = await asyncio.to_thread(self.customers.replace_customer, customer)
        log.info("customer_replaced", customer=number, created=created, by=who)
        self._customers_changed()
        return JSONResponse(records.as_record(customer), status_code=201 if created else 200)

    async def patch_customer(self, request: Request) -> Response:
        who = await self._customers(request)
        body = await json_body(request)
        number = self._number(request)
        if body.setdefault("customer_no", number) != number:
            raise ApiError(422, "customer_no in the body differs from the path")
        patch = self._validate(body, full=False)
        found = await asyncio.to_thread(self.customers.by_number, number)
        if found is None:
            raise ApiError(404, f"no customer {number!r} (POST /api/admin/customers creates)")
        outcome = await asyncio.to_thread(self.customers.apply_patches, [(0, patch)])
        if outcome.rejected:
            raise ApiError(422, outcome.rejected[0][2])
        log.info("customer_changed", customer=number, by=who, changed=bool(outcome.updated))
        if outcome.updated:
            self._customers_changed()
        updated = await asyncio.to_thread(self.customers.by_number, number)
        return JSONResponse(records.as_record(updated) if updated else {})

    async def delete_customer(self, request: Request) -> Response:
        who = await self._customers(request)
        number = self._number(request)
        if not await asyncio.to_thread(self.customers.delete_customers, [number]):
            raise ApiError(404, f"no customer {number!r}")
        log.info("customer_deleted", customer=number, by=who)
        return JSONResponse({"deleted": number})

    def _customers_changed(self) -> None:
        # the campaigns take the customers their targets match now (new contacts)
        if self.campaigns is not None:
            self.campaigns.customers_changed()

    @staticmethod
    def _number(request: Request) -> str:
        number = str(request.path_params["customer_no"])
        if not records.CUSTOMER_NO.match(number):
            raise ApiError(404, f"{number!r} is not a customer number")
        return number

    async def import_customers(self, request: Request) -> Response:
        who = await self._customers(request)
        body = await json_body(request)
        rows = _rows(body)
        dry_run = _flag(body, "dry_run")
        extra = body.get("groups") or []
        rules = self.rules
        try:
            extra_groups = records.validate({"customer_no": "x", "groups": extra},
                                            rules).groups or ()
        except RecordRefused as exc:
            raise ApiError(422, f"groups: {exc}") from None
        patches: list[tuple[int, CustomerPatch]] = []
        rejected: list[tuple[int, str, str]] = []
        first: dict[str, int] = {}
        for line, record in rows:
            try:
                patch = records.validate(record, rules)
            except RecordRefused as exc:
                rejected.append((line, str(record.get("customer_no") or ""), str(exc)))
                continue
            if patch.customer_no in first:
                rejected.append((line, patch.customer_no,
                                 f"customer number already on line {first[patch.customer_no]}"))
                continue
            first[patch.customer_no] = line
            patches.append((line, patch))
        outcome = await asyncio.to_thread(self.customers.apply_patches, patches,
                                          extra_groups=extra_groups, dry_run=dry_run)
        rejected += outcome.rejected
        if not dry_run and (outcome.created or outcome.updated):
            self._customers_changed()
        log.info("customers_imported", by=who, dry_run=dry_run, created=len(outcome.created),
                 updated=len(outcome.updated), unchanged=len(outcome.unchanged),
                 rejected=len(rejected))
        return JSONResponse({
            "dry_run": dry_run,
            "created": list(outcome.created),
            "updated": list(outcome.updated),
            "unchanged": len(outcome.unchanged),
            "rejected": [{"line": line, "customer_no": no, "reason": reason}
                         for line, no, reason in sorted(rejected)],
        })

    # ------------------------------------------------------------------ do-not-call list

    async def list_dnc(self, request: Request) -> Response:
        await self._customers(request)
        entries = await asyncio.to_thread(self.dialer.list_dnc)
        return JSONResponse({"dnc": [
            {"number": e.phone, "reason": e.reason, "added_at": _iso(e.added_at)}
            for e in entries]})

    async def add_dnc(self, request: Request) -> Response:
        who = await self._customers(request)
        body = await json_body(request)
        rows = _rows(body)
        dry_run = _flag(body, "dry_run")
        default_reason = text_field(body, "reason", required=False, max_length=200,
                                    default="api")
        rejected: list[dict[str, object]] = []
        wanted: dict[str, tuple[int, str]] = {}
        country = self.rules.country_code
        for line, row in rows:
            raw = row.get("number")
            reason = row.get("reason") or default_reason
            if not isinstance(raw, str) or not isinstance(reason, str) or len(reason) > 200:
                rejected.append({"line": line, "number": str(raw or ""),
                                 "reason": "number and reason must be text (reason: at most "
                                           "200 characters)"})
                continue
            try:
                number = records.phone_number(raw, country)
            except RecordRefused as exc:
                rejected.append({"line": line, "number": raw, "reason": str(exc)})
                continue
            wanted.setdefault(number, (line, reason))
        listed = await asyncio.to_thread(self.dialer.dnc_numbers)
        new = [n for n in wanted if n not in listed]
        if not dry_run:
            by_reason: dict[str, list[str]] = {}
            for number in new:
                by_reason.setdefault(wanted[number][1], []).append(number)
            for reason, numbers in by_reason.items():
                await asyncio.to_thread(self.dialer.add_dnc_numbers, numbers, reason)
            if self.campaigns is not None and new:
                self.campaigns.dnc_changed(new, [])
        log.info("dnc_added", by=who, dry_run=dry_run, added=len(new),
                 already=len(wanted) - len(new), rejected=len(rejected))
        return JSONResponse({"dry_run": dry_run, "added": new,
                             "already_listed": [n for n in wanted if n in listed],
                             "rejected": rejected})

    async def remove_dnc(self, request: Request) -> Response:
        who = await self._customers(request)
        raw = str(request.path_params["number"])
        try:
            number = records.phone_number(raw, self.rules.country_code)
        except RecordRefused as exc:
            raise ApiError(422, str(exc)) from None
        if number in self.config.dnc.numbers:
            raise ApiError(409, f"{number} is on the configuration's dnc list (dnc.numbers), "
                                "which puts it back at every start; remove it there")
        if not await asyncio.to_thread(self.dialer.remove_dnc, number):
            raise ApiError(404, f"{number} is not on the do-not-call list")
        if self.campaigns is not None:
            self.campaigns.dnc_changed([], [number])
        log.info("dnc_removed", number=number, by=who)
        return JSONResponse({"removed": number})

    # ------------------------------------------------------------------ control

    async def agent_action(self, request: Request) -> Response:
        who = await self._control(request)
        extension, action = request.path_params["extension"], request.path_params["action"]
        if action not in _AGENT_ACTIONS:
            raise ApiError(404, f"no agent action {action!r} (one of {', '.join(_AGENT_ACTIONS)})")
        status = self.desk.agents.get(extension)
        if status is None:
            raise ApiError(404, f"no agent {extension!r}")
        body = await json_body(request, optional=True)
        control = self.desk.agent_control
        state = status.state
        if action == "pause":
            # The desk's pause codes (cti.pause_codes, where configured) bind this route too.
            codes = [c.code for c in getattr(self.config.cti, "pause_codes", ())]
            default = codes[0] if codes else "break"
            reason = " ".join(text_field(body, "reason", required=False, max_length=64,
                                         default=default).split()) or default
            if codes and reason not in codes:
                raise ApiError(400, f"'reason' must be one of the pause codes: "
                                    f"{', '.join(codes)}")
            if state == "logged_out":
                raise ApiError(409, f"agent {extension} is not logged in")
            await control.pause(extension, reason)
        elif action == "ready":
            if state not in ("paused", "wrap_up"):
                raise ApiError(409, f"agent {extension} is {state}, not paused")
            await control.ready(extension)
        elif action == "logout":
            if state == "logged_out":
                raise ApiError(409, f"agent {extension} is not logged in")
            await control.logout(extension)
        else:
            if state != "logged_out":
                raise ApiError(409, f"agent {extension} is already logged in ({state})")
            await control.login(extension, False, "")
        log.info("admin_agent_action", agent=extension, action=action, by=who)
        return JSONResponse({"accepted": action, "agent": status.describe()})

    async def hangup(self, request: Request) -> Response:
        who = await self._control(request)
        call_id = str(request.path_params["call_id"])
        try:
            await self.desk.call_control.hang_up("", call_id)
        except ControlRefused as exc:
            raise ApiError(exc.status, exc.message) from None
        log.info("admin_call_hangup", call=call_id, by=who)
        return JSONResponse({"accepted": "hangup", "call_id": call_id}, status_code=202)

    async def not_found(self, request: Request) -> Response:
        return rest.error_response(404, f"no such API path: {request.url.path}")


def _rows(body: Mapping[str, Any]) -> list[tuple[int, Mapping[str, Any]]]:
    rows = body.get("rows")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ApiError(400, "'rows' must be a list of objects")
    if len(rows) > MAX_ROWS:
        raise ApiError(413, f"at most {MAX_ROWS} rows per request")
    out: list[tuple[int, Mapping[str, Any]]] = []
    for index, row in enumerate(rows):
        line = row.get("line", index + 1)
        if isinstance(line, bool) or not isinstance(line, int):
            raise ApiError(400, f"rows[{index}].line must be a number")
        out.append((line, {k: v for k, v in row.items() if k != "line"}))
    return out


def _flag(body: Mapping[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise ApiError(400, f"'{key}' must be true or false")
    return value


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def admin_routes(source: ConfigSource, desk: CtiDesk, db: Database, auth: CtiAuth,
                 tokens: ApiTokens, campaigns: CampaignControl | None = None) -> list[BaseRoute]:
    """Every ``/api/admin`` route (`pbx.cti.http.build_http_app` adds them)."""
    api = AdminApi(source, desk, db,
                   AdminAccess(auth, tokens, source.config.cti.csrf_header), campaigns)

    def route(path: str, **handlers: Callable[[Request], Awaitable[Response]]) -> Route:
        return Route(path, endpoint({m.upper(): h for m, h in handlers.items()}),
                     methods=rest.ALL_METHODS)

    p = "/api/admin"
    return [
        route(f"{p}/customers", get=api.list_customers, post=api.create_customer),
        route(f"{p}/customers/{{customer_no}}", get=api.customer, put=api.replace_customer,
              patch=api.patch_customer, delete=api.delete_customer),
        route(f"{p}/imports/customers", post=api.import_customers),
        route(f"{p}/dnc", get=api.list_dnc, post=api.add_dnc),
        route(f"{p}/dnc/{{number}}", delete=api.remove_dnc),
        route(f"{p}/agents/{{extension}}/{{action}}", post=api.agent_action),
        route(f"{p}/calls/{{call_id}}/hangup", post=api.hangup),
        route(f"{p}/{{rest:path}}", get=api.not_found, post=api.not_found, put=api.not_found,
              patch=api.not_found, delete=api.not_found),
    ]
