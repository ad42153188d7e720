"""The OpenAPI 3.1 document of the CTI API, served at ``/api/openapi.json`` (L3, pure data).

Written by hand, next to the routes in `pbx.cti.api`; a test checks that every route has a
path here and the other way round.
"""

from __future__ import annotations

from typing import Any

from pbx.config.schema import PbxConfig

_ERROR = {"$ref": "#/components/schemas/Error"}
_AUTH_ERRORS = {
    "401": {"description": "not logged in, or the session expired", "content": {
        "application/json": {"schema": _ERROR}}},
    "403": {"description": "not allowed (role, field permission, or missing CSRF header)",
            "content": {"application/json": {"schema": _ERROR}}},
}


def _obj(required: tuple[str, ...] = (), **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": list(required), "properties": properties}


_STR = {"type": "string"}
_BOOL = {"type": "boolean"}


def _op(
    summary: str,
    *,
    tag: str,
    body: dict[str, Any] | None = None,
    ok: str = "200",
    errors: tuple[str, ...] = (),
    public: bool = False,
    params: tuple[str, ...] = (),
    query: tuple[str, ...] = (),
) -> dict[str, Any]:
    responses: dict[str, Any] = {ok: {"description": "done", "content": {
        "application/json": {"schema": {"type": "object"}}}}}
    if not public:
        responses.update(_AUTH_ERRORS)
    for status in errors:
        responses[status] = {"description": _ERROR_TEXT[status],
                             "content": {"application/json": {"schema": _ERROR}}}
    operation: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if public:
        operation["security"] = []
    parameters = [{"name": p, "in": "path", "required": True, "schema": _STR} for p in params]
    parameters += [{"name": q, "in": "query", "required": False, "schema": _STR} for q in query]
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {"required": True,
                                    "content": {"application/json": {"schema": body}}}
    return operation


_ERROR_TEXT = {
    "400": "malformed request",
    "404": "no such call, agent, customer or form (or not yours)",
    "409": "the call or customer is not in a state that allows this",
    "413": "body too large",
    "415": "body is not JSON",
    "422": "a value failed validation",
    "429": "too many failed logins from this address or for this extension",
    "503": "the PBX or its database could not carry it out",
}


def openapi_document(config: PbxConfig) -> dict[str, Any]:
    """The document; `config` supplies the CSRF header name and the dispositions."""
    csrf = config.cti.csrf_header
    values = {"type": "object", "additionalProperties": True,
              "description": "field name -> new value (only read_write fields)"}
    call = ("call_id",)
    paths: dict[str, Any] = {
        "/api/cti/login": {"post": _op(
            "Log in with extension and desktop password; returns a token and sets cookies",
            tag="session", public=True, errors=("400", "415", "429"),
            body=_obj(("extension", "password"), extension=_STR, password=_STR))},
        "/api/cti/logout": {"post": _op("End this session", tag="session")},
        "/api/cti/me": {"get": _op(
            "This session, its agent and its calls; the desk's language (cti.language), "
            "dispositions and pause codes (label per desk language)", tag="session")},
        "/api/cti/agents": {"get": _op("Every agent's state", tag="agents")},
        "/api/cti/agents/{extension}/{action}": {"post": _op(
            "Agent state request: action is login, logout, pause or ready (own seat; "
            "supervisors any)", tag="agents", ok="202", params=("extension", "action"),
            errors=("400", "404"),
            body=_obj(reason=_STR, paused=_BOOL))},
        "/api/cti/queues": {"get": _op("Live queue figures", tag="queues")},
        "/api/cti/calls": {
            "get": _op("Calls this session may see (own; supervisors all)", tag="calls"),
            "post": _op("Click-to-dial: ring the agent's phone, then dial the number",
                        tag="calls", ok="201", errors=("400", "422"),
                        body=_obj(("number",), number=_STR)),
        },
        "/api/cti/calls/{call_id}": {"get": _op(
            "A call with its screen pop (form fields with values and permissions)",
            tag="calls", params=call, errors=("404",))},
        "/api/cti/calls/{call_id}/monitor": {
            "post": _op("Supervisors: listen in on a connected call, whisper to the agent or "
                        "barge in {mode: listen|whisper|barge}; the PBX rings the supervisor's "
                        "registered phone; while on the call, changes the mode (audited)",
                        tag="calls", ok="202", params=call, errors=("400", "404", "409", "422"),
                        body=_obj(("mode",), mode={"type": "string",
                                                   "enum": ["listen", "whisper", "barge"]})),
            "delete": _op("Supervisors: hang up the listening phone", tag="calls", ok="202",
                          params=call, errors=("404", "409")),
        },
        "/api/cti/calls/{call_id}/{action}": {"post": _op(
            "Call control: hangup, hold, resume, transfer {target: agent:EXT|queue:NAME|"
            "number:DIGITS, attended}, complete-transfer, cancel-transfer, disposition "
            f"{{disposition: one of {', '.join(config.cti.dispositions)}, note}}, form "
            "{values} (save the pop: all or nothing, audited), or record / stop-record (calls "
            "of on_demand queues and campaigns)",
            tag="calls", ok="202", params=("call_id", "action"),
            errors=("400", "404", "409", "422"),
            body=_obj(target=_STR, attended=_BOOL, disposition=_STR, note=_STR,
                      values=values))},
        "/api/cti/customers": {"get": _op(
            "Search customers by number, phone or name: each with customer_no, the name "
            "(only when your form shows names) and the default form's fields", tag="customers",
            query=("q", "limit"), errors=("400",))},
        "/api/cti/customers/{customer_no}": {
            "get": _op("A customer through a form (?form=NAME, default 'default')",
                       tag="customers", params=("customer_no",), query=("form",),
                       errors=("404",)),
            "patch": _op("Update a customer through a form: all or nothing, audited",
                         tag="customers", params=("customer_no",),
                         errors=("400", "404", "409", "422"),
                         body=_obj(("values",), form=_STR, values=values)),
        },
        "/api/cti/customers/{customer_no}/calls": {"get": _op(
            "The customer's call history (CDRs; each with recording_url where this session "
            "may play the recording, else null)", tag="customers", params=("customer_no",),
            query=("limit",), errors=("404",))},
        "/api/cti/customers/{customer_no}/audit": {"get": _op(
            "Form changes to the customer, newest first (supervisors)", tag="customers",
            params=("customer_no",), query=("limit",))},
        "/api/cti/campaigns": {"get": _op(
            "Outbound campaigns with their live statistics (supervisors)", tag="campaigns")},
        "/api/cti/campaigns/{name}/{action}": {"post": _op(
            "Start, pause or stop a campaign (supervisors)", tag="campaigns",
            params=("name", "action"))},
        "/api/cti/preview/{customer_no}": {"post": _op(
            "Preview dialling: dial (true) or skip (false) the previewed customer",
            tag="campaigns", params=("customer_no",))},
        "/api/openapi.json": {"get": _op("This document", tag="meta", public=True)},
        "/health": {"get": _op("Liveness: {status: ok}, nothing else", tag="meta",
                               public=True)},
        "/api/stats": {"get": _op(
            "Live counters (supervisors, admins, or an API token with scope stats)",
            tag="operations")},
        "/api/cdrs": {"get": _op(
            "Recent call records, without what a form hides from the reader (supervisors, "
            "admins, or an API token with scope cdrs)", tag="operations", query=("limit",),
            errors=("400",))},
        "/api/registrations": {"get": _op(
            "Registered contacts (supervisors, admins, or an API token with scope "
            "registrations)", tag="operations", query=("aor",))},
        "/api/campaigns": {"get": _op(
            "Campaign statistics (supervisors, admins, or an API token with scope campaigns)",
            tag="operations")},
        "/api/calls": {"get": _op(
            "Calls in progress, without the columns a form hides from the reader "
            "(supervisors, admins, or an API token with scope calls)", tag="operations")},
        "/api/reports/queues": {"get": _op(
            "Queue report from the stored 15-minute statistics: offered, answered, abandoned, "
            "ASA, AHT, service level per queue and period; CSV with format=csv or Accept: "
            "text/csv (supervisors, admins, or an API token with scope reports)",
            tag="reports", query=("from", "to", "interval", "queue", "format"),
            errors=("400",))},
        "/api/reports/agents": {"get": _op(
            "Agent report: calls, talk, wrap-up, ready and pause time by reason, occupancy per "
            "agent and period (supervisors, admins, or an API token with scope reports)",
            tag="reports", query=("from", "to", "interval", "agent", "format"),
            errors=("400",))},
        "/api/reports/cdrs": {"get": _op(
            "Call records export with filters and paging, JSON or CSV, without what a form "
            "hides from the reader (supervisors, admins, or an API token with scope cdrs)",
            tag="reports", query=("from", "to", "queue", "agent", "disposition",
                                  "agent_disposition", "direction", "limit", "offset",
                                  "format"),
            errors=("400",))},
        "/api/recordings": {"get": _op(
            "Recorded calls, newest first, with their play URL (supervisors, admins, an API "
            "token with scope recordings; agents their own when recording.agents_may_listen)",
            tag="recordings", query=("limit",), errors=("400",))},
        "/api/recordings/{cdr_id}": {"get": _op(
            "The recording of call record CDR_ID as audio/wav, stereo: caller left, agent "
            "right (who may: as /api/recordings; 410 once the retention deleted it)",
            tag="recordings", params=("cdr_id",), errors=("404",))},
        "/metrics": {"get": _op(
            "Prometheus metrics, text exposition format (supervisors, admins, or an API token "
            "with scope metrics)", tag="operations")},
        "/api/admin/reload": {"post": _op(
            "Re-read the configuration file and apply what changed without dropping calls: "
            "{applied, changes, needs_restart}; an invalid file is refused with 422 {applied: "
            "false, errors: [file:line …]} and nothing changes (admins, or an API token with "
            "scope control)", tag="operations", errors=("422",))},
    }
    paths.update(_admin_paths())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "PBX CTI API",  # served to anyone: no installation name
            "version": "1",
            "description": (
                "Agent desktop API. Authenticate with 'Authorization: Bearer TOKEN' from "
                f"POST /api/cti/login, or with the session cookie plus the {csrf} header on "
                "every state-changing request. Live events: WebSocket /api/cti/ws (token in "
                "?token=, the cookie, or a first message {\"type\": \"auth\", \"token\": …})."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": _obj(("error", "status"), error=_STR,
                                      status={"type": "integer"},
                                      fields={"type": "object"},
                                      message={**_STR, "description": (
                                          "the error in the request's Accept-Language (de, "
                                          "en); only when the request sends that header")},
                                      field_messages={"type": "object"})},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "pbx_session"},
            },
        },
        "security": [{"bearer": []}, {"cookie": []}],
    }


def _admin_paths() -> dict[str, Any]:
    # pbx.cti.admin: customers and lists (an admin's session or scope customers), agent and
    # call control (a supervisor's or admin's session or scope control).
    customer = _obj(("customer_no",), customer_no=_STR, name=_STR,
                    phones={"type": "array", "items": _STR}, status=_STR, language=_STR,
                    groups={"type": "array", "items": _STR},
                    pinned_agents={"type": "array", "items": _STR},
                    fields={"type": "object", "additionalProperties": {"type": ["string",
                                                                               "null"]}})
    rows = {"type": "array", "items": {"type": "object"}}
    no = ("customer_no",)
    return {
        "/api/admin/customers": {
            "get": _op("Every customer (?group=, ?format=json|csv: the export; admins or "
                       "scope customers)", tag="admin", query=("group", "format"),
                       errors=("400",)),
            "post": _op("Create a customer (admins or scope customers)", tag="admin", ok="201",
                        errors=("400", "409", "422"), body=customer),
        },
        "/api/admin/customers/{customer_no}": {
            "get": _op("A customer, every attribute", tag="admin", params=no,
                       errors=("404",)),
            "put": _op("Store the customer whole (created or replaced)", tag="admin",
                       params=no, errors=("400", "422"), body=customer),
            "patch": _op("Change the attributes given (fields merged, null removes a key)",
                         tag="admin", params=no, errors=("400", "404", "422"), body=customer),
            "delete": _op("Delete the customer", tag="admin", params=no, errors=("404",)),
        },
        "/api/admin/imports/customers": {"post": _op(
            "Import rows of a CSV file ({rows: [{line, customer_no, …}], groups, dry_run}): "
            "created, updated, unchanged, rejected rows with line and reason", tag="admin",
            errors=("400", "413", "422"),
            body=_obj(("rows",), rows=rows, groups={"type": "array", "items": _STR},
                      dry_run=_BOOL))},
        "/api/admin/dnc": {
            "get": _op("The do-not-call list", tag="admin"),
            "post": _op("Add numbers ({rows: [{line, number, reason}], reason, dry_run}); "
                        "running campaigns skip them at once", tag="admin",
                        errors=("400", "413"),
                        body=_obj(("rows",), rows=rows, reason=_STR, dry_run=_BOOL)),
        },
        "/api/admin/dnc/{number}": {"delete": _op(
            "Take a number off the do-not-call list", tag="admin", params=("number",),
            errors=("404", "409", "422"))},
        "/api/admin/agents/{extension}/{action}": {"post": _op(
            "pause {reason}, ready, logout or login an agent (supervisors, admins or scope "
            "control); answers the agent's state", tag="admin",
            params=("extension", "action"), errors=("404", "409"), body=_obj(reason=_STR))},
        "/api/admin/calls/{call_id}/hangup": {"post": _op(
            "End a call in progress (supervisors, admins or scope control)", tag="admin",
            ok="202", params=("call_id",), errors=("404",))},
    }
