"""The CTI API through the real Starlette app: sessions, CSRF, the form permission matrix,
call control, customers, the WebSocket, the operations endpoints (stats, CDRs, registrations,
campaigns, metrics) and who may read them, the perimeter's headers, and OpenAPI.

Everything is real — desk, auth, forms, routes, a SQLite file database — except the call
layer and the ACD behind `CallControl` / `AgentControl`, which are recording fakes (the
composition root implements them over the switchboard). Runs in-process: no subprocess, no
network.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from pbx.config import PbxConfig
from pbx.cti import ControlRefused, CtiDesk, MetricsSnapshot, build_cti_routes, sync_credentials
from pbx.cti.http import build_http_app
from pbx.cti.tokens import ApiToken, ApiTokens
from pbx.repositories import Binding, CallDetailRecord, Customer
from pbx.storage import Database
from tests.unit.cti.fakes import (
    PASSWORDS,
    ROLE_AGENT,
    FakeAgentControl,
    FakeCallControl,
    FakeClock,
    config,
    customer,
)

CUSTOMER = "100001"


# Monitoring's tokens: one that may read everything (as a supervisor), one only metrics.
ALL_TOKEN = "all-scopes-token-0123456789abcdef"
METRICS_TOKEN = "metrics-only-token-0123456789abcdef"
TOKENS = ApiTokens([
    ApiToken("export", hashlib.sha256(ALL_TOKEN.encode()).digest(),
             frozenset({"metrics", "stats", "cdrs", "registrations", "campaigns"}),
             "supervisor"),
    ApiToken("prometheus", hashlib.sha256(METRICS_TOKEN.encode()).digest(),
             frozenset({"metrics"}), "supervisor"),
])
CDR = CallDetailRecord("x1", "inbound", "+4930111222", "+49800", 100.0, 105.0, 160.0,
                       "answered", agent="1001", queue="billing",
                       variables={"concern": "invoice", "customer.fields.secret": "s3cret",
                                  "customer.fields.hidden": "h1", "customer.name": "Erika"})


class View:
    """The read-only PBX view build_http_app needs (registrations, stats, CDRs, campaigns)."""

    def __init__(self, cfg: PbxConfig) -> None:
        self.config = cfg

    def registrations(self) -> list[Binding]:
        return []

    def stats(self) -> dict[str, object]:
        return {"calls": {"active": 0}}

    def recent_cdrs(self, limit: int) -> list[CallDetailRecord]:
        return [CDR]

    def campaign_status(self) -> list[dict[str, object]]:
        return []


@dataclass
class Cti:
    client: TestClient
    desk: CtiDesk
    db: Database
    clock: FakeClock
    calls: FakeCallControl
    agents: FakeAgentControl

    def login(self, extension: str) -> dict[str, str]:
        """Log in; Bearer headers for the session (cookies cleared: several users share one
        client)."""
        response = self.client.post(
            "/api/cti/login", json={"extension": extension, "password": PASSWORDS[extension]}
        )
        assert response.status_code == 200, response.text
        self.client.cookies.clear()
        return {"Authorization": f"Bearer {response.json()['token']}"}

    def stored(self, customer_no: str = CUSTOMER) -> Customer:
        found = self.db.customer_directory().by_number(customer_no)
        assert found is not None
        return found

    def audit(self) -> list[Any]:
        return self.db.form_store().audit_entries()

    def present(self, call_id: str, agent: str, queue: str = "", with_customer: bool = True,
                variables: dict[str, str] | None = None) -> None:
        self.desk.on_call_presented(
            call_id, agent, variables or {"concern": "invoice"},
            self.stored() if with_customer else None, queue=queue, caller="+4930111222",
        )


@pytest.fixture
def cti(tmp_path: Path) -> Iterator[Cti]:
    cfg = config()
    db = Database.open(f"sqlite:///{tmp_path / 'pbx.db'}")
    db.customer_directory().upsert_customers(
        [customer(CUSTOMER), customer("100002", name="Max Mustermann",
                                      phone_numbers=("+4930999000",))]
    )
    sync_credentials(cfg, db.cti_store())
    clock = FakeClock()
    calls, agents = FakeCallControl(), FakeAgentControl()
    desk = CtiDesk(cfg, calls, agents, clock=clock)
    app = build_http_app(View(cfg), desk, db, tokens=TOKENS)
    with TestClient(app) as client:
        yield Cti(client, desk, db, clock, calls, agents)
    db.close()


def error_of(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == status and body["error"]
    return str(body["error"])


# ================================================================== sessions and CSRF


def test_login_sets_strict_http_only_cookies_and_returns_the_tokens(cti: Cti) -> None:
    response = cti.client.post("/api/cti/login",
                               json={"extension": "1001", "password": PASSWORDS["1001"]})
    assert response.status_code == 200
    body = response.json()
    assert body["session"] == body["session"] | {"extension": "1001", "role": "agent",
                                                 "groups": ["billing"]}
    assert body["csrf_header"] == "X-CSRF-Token" and body["token"] != body["csrf_token"]
    cookies = response.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookies if c.startswith("pbx_session="))
    csrf_cookie = next(c for c in cookies if c.startswith("pbx_csrf="))
    assert "HttpOnly" in session_cookie and "SameSite=strict" in session_cookie
    assert "HttpOnly" not in csrf_cookie and "SameSite=strict" in csrf_cookie


@pytest.mark.parametrize(
    ("kwargs", "status", "text"),
    [
        ({"json": {"extension": "1001"}}, 400, "'password' is required"),
        ({"json": {"extension": 1001, "password": "x"}}, 400, "must be a string"),
        ({"json": ["1001", "x"]}, 400, "must be a JSON object"),
        ({"content": b"{nope", "headers": {"content-type": "application/json"}}, 400,
         "not valid JSON"),
        ({"data": {"extension": "1001", "password": "x"}}, 415, "Content-Type: application/json"),
        ({"content": b"", "headers": {"content-type": "application/json"}}, 400, "not valid JSON"),
        ({"json": {"extension": "1001", "password": "x" * 70000}}, 413, "larger than"),
        ({"json": {"extension": "1001", "password": "wrong"}}, 401, "wrong extension or password"),
        ({"json": {"extension": "1009", "password": PASSWORDS["1009"]}}, 401, "wrong extension"),
    ],
)
def test_bad_logins(cti: Cti, kwargs: dict[str, Any], status: int, text: str) -> None:
    assert text in error_of(cti.client.post("/api/cti/login", **kwargs), status)


def test_failed_logins_ban_the_address(cti: Cti) -> None:
    for _ in range(3):
        cti.client.post("/api/cti/login", json={"extension": "1001", "password": "wrong"})
    response = cti.client.post("/api/cti/login",
                               json={"extension": "1001", "password": PASSWORDS["1001"]})
    assert "too many failed logins" in error_of(response, 429)


def test_login_hashes_its_own_credentials_when_the_pbx_did_not(tmp_path: Path) -> None:
    # Only the agent logging in is hashed (one scrypt, not one per agent of the installation).
    cfg = config()
    with Database.open(f"sqlite:///{tmp_path / 'fresh.db'}") as db:
        desk = CtiDesk(cfg, FakeCallControl(), FakeAgentControl())
        app = build_http_app(View(cfg), desk, db)
        with TestClient(app) as client:
            response = client.post("/api/cti/login",
                                   json={"extension": "1002", "password": PASSWORDS["1002"]})
            assert response.status_code == 200
            assert set(db.cti_store().credential_hashes()) == {"1002"}
            response = client.post("/api/cti/login",
                                   json={"extension": "1001", "password": PASSWORDS["1001"]})
            assert response.status_code == 200
        assert set(db.cti_store().credential_hashes()) == {"1001", "1002"}


def test_changed_password_in_the_configuration_is_hashed_again_at_login(
    tmp_path: Path,
) -> None:
    cfg = config()
    new_cfg = cfg.model_copy(update={"agents": tuple(
        a.model_copy(update={"password": "neues-Passwort-1002"}) if a.extension == "1002"
        else a for a in cfg.agents)})
    with Database.open(f"sqlite:///{tmp_path / 'change.db'}") as db:
        for current, password, status in ((cfg, PASSWORDS["1002"], 200),
                                           (new_cfg, PASSWORDS["1002"], 401),
                                           (new_cfg, "neues-Passwort-1002", 200)):
            desk = CtiDesk(current, FakeCallControl(), FakeAgentControl())
            app = build_http_app(View(current), desk, db)
            with TestClient(app) as client:
                response = client.post("/api/cti/login",
                                       json={"extension": "1002", "password": password})
                assert response.status_code == status, (password, response.text)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/cti/me"), ("POST", "/api/cti/logout"), ("GET", "/api/cti/agents"),
        ("POST", "/api/cti/agents/1001/pause"), ("GET", "/api/cti/queues"),
        ("GET", "/api/cti/calls"), ("POST", "/api/cti/calls"), ("GET", "/api/cti/calls/c1"),
        ("POST", "/api/cti/calls/c1/hold"), ("GET", "/api/cti/customers?q=muster"),
        ("GET", f"/api/cti/customers/{CUSTOMER}"), ("PATCH", f"/api/cti/customers/{CUSTOMER}"),
        ("GET", f"/api/cti/customers/{CUSTOMER}/calls"),
        ("GET", f"/api/cti/customers/{CUSTOMER}/audit"),
    ],
)
def test_everything_but_login_needs_a_session(cti: Cti, method: str, path: str) -> None:
    assert "log in first" in error_of(cti.client.request(method, path, json={}), 401)
    bad = {"Authorization": "Bearer not-a-token"}
    assert "expired" in error_of(cti.client.request(method, path, headers=bad, json={}), 401)
    basic = {"Authorization": "Basic eDp5"}
    assert "Bearer" in error_of(cti.client.request(method, path, headers=basic, json={}), 401)


def test_session_expires(cti: Cti) -> None:
    headers = cti.login("1001")
    cti.clock.now += 3599
    assert cti.client.get("/api/cti/me", headers=headers).status_code == 200
    cti.clock.now += 1
    assert "expired" in error_of(cti.client.get("/api/cti/me", headers=headers), 401)


def test_logout_ends_the_session_and_clears_the_cookies(cti: Cti) -> None:
    headers = cti.login("1001")
    response = cti.client.post("/api/cti/logout", headers=headers)
    assert response.status_code == 200 and response.json() == {"logged_out": True}
    cleared = response.headers.get_list("set-cookie")
    assert any(c.startswith('pbx_session="";') or "pbx_session=;" in c or
               c.startswith("pbx_session=") and "Max-Age=0" in c for c in cleared)
    error_of(cti.client.get("/api/cti/me", headers=headers), 401)


def test_cookie_sessions_need_the_csrf_header_for_changes(cti: Cti) -> None:
    login = cti.client.post("/api/cti/login",
                            json={"extension": "1001", "password": PASSWORDS["1001"]})
    csrf = login.json()["csrf_token"]
    assert cti.client.get("/api/cti/me").status_code == 200  # reads need no CSRF token
    pause = "/api/cti/agents/1001/pause"
    assert "X-CSRF-Token" in error_of(cti.client.post(pause, json={}), 403)
    wrong = {"X-CSRF-Token": "guess"}
    assert "X-CSRF-Token" in error_of(cti.client.post(pause, json={}, headers=wrong), 403)
    assert cti.agents.requests == []  # refused requests reach nothing
    ok = cti.client.post(pause, json={"reason": "lunch"}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 202
    assert cti.agents.requests == [("pause", "1001", "lunch")]
    # The login's CSRF token belongs to that session only.
    other = cti.client.post("/api/cti/login",
                            json={"extension": "1002", "password": PASSWORDS["1002"]})
    assert other.status_code == 200
    response = cti.client.post("/api/cti/agents/1002/pause", json={},
                               headers={"X-CSRF-Token": csrf})
    error_of(response, 403)


def test_bearer_tokens_need_no_csrf_header(cti: Cti) -> None:
    headers = cti.login("1001")
    response = cti.client.post("/api/cti/agents/1001/ready", headers=headers)
    assert response.status_code == 202 and cti.agents.requests == [("ready", "1001")]


def test_me(cti: Cti) -> None:
    headers = cti.login("1001")
    cti.present("c1", "1001")
    body = cti.client.get("/api/cti/me", headers=headers).json()
    assert body["session"]["extension"] == "1001" and body["agent"]["state"] == "logged_out"
    assert [c["call"]["call_id"] for c in body["calls"]] == ["c1"]
    assert body["dispositions"] == ["resolved", "callback", "escalated", "wrong_number"]


# ================================================================== the permission matrix

MATRIX_VALUE = {"open": "o1", "locked": "l1", "hidden": "h1"}
MATRIX_ACCESS = {"open": "read_write", "locked": "read_only", "hidden": None}


@pytest.mark.parametrize("via", ["call", "customer"])
@pytest.mark.parametrize("field", ["open", "locked", "hidden"])
@pytest.mark.parametrize("role", ["agent", "supervisor", "admin"])
def test_matrix_read(cti: Cti, role: str, field: str, via: str) -> None:
    extension = ROLE_AGENT[role]
    headers = cti.login(extension)
    if via == "call":
        cti.present("m1", extension, queue="matrix")  # the queue's name picks the form
        response = cti.client.get("/api/cti/calls/m1", headers=headers)
    else:
        response = cti.client.get(f"/api/cti/customers/{CUSTOMER}?form=matrix", headers=headers)
    assert response.status_code == 200
    shown = {f["name"]: f for f in response.json()["form"]["fields"]}
    if MATRIX_ACCESS[field] is None:
        assert field not in shown
        assert MATRIX_VALUE[field] not in response.text  # not even the value leaks
    else:
        assert shown[field]["access"] == MATRIX_ACCESS[field]
        assert shown[field]["value"] == MATRIX_VALUE[field]


@pytest.mark.parametrize("via", ["call", "customer"])
@pytest.mark.parametrize("field", ["open", "locked", "hidden"])
@pytest.mark.parametrize("role", ["agent", "supervisor", "admin"])
def test_matrix_write(cti: Cti, role: str, field: str, via: str) -> None:
    extension = ROLE_AGENT[role]
    headers = cti.login(extension)
    before = cti.stored()
    values = {field: "changed"}
    if via == "call":
        cti.present("m1", extension, queue="matrix")
        response = cti.client.post("/api/cti/calls/m1/form", headers=headers,
                                   json={"values": values})
    else:
        response = cti.client.patch(f"/api/cti/customers/{CUSTOMER}", headers=headers,
                                    json={"form": "matrix", "values": values})
    after = cti.stored()
    if field == "open":
        assert response.status_code == 200, response.text
        assert after.fields[field] == "changed"
        [entry] = cti.audit()
        assert (entry.agent, entry.field, entry.old_value, entry.new_value) == (
            extension, field, MATRIX_VALUE[field], "changed")
        assert entry.form == "matrix" and entry.customer_no == CUSTOMER
        assert entry.call_id == ("m1" if via == "call" else "")
        assert response.json()["saved"][0] == response.json()["saved"][0] | {
            "field": field, "old": MATRIX_VALUE[field], "new": "changed"}
    else:
        text = error_of(response, 403)
        assert f"{field} ({'read_only' if field == 'locked' else 'hidden'})" in text
        assert after == before  # nothing changed …
        assert cti.audit() == []  # … and nothing was audited


# ================================================================== form saves in detail


def test_group_and_agent_rules_through_the_api(cti: Cti) -> None:
    anna, ben = cti.login("1001"), cti.login("1002")
    cti.present("a1", "1001")
    cti.present("b1", "1002")
    ok = cti.client.post("/api/cti/calls/a1/form", headers=anna,
                         json={"values": {"concern": "tariff", "tier": "gold"}})
    assert ok.status_code == 200
    assert cti.stored().fields["tier"] == "gold"
    refused = cti.client.post("/api/cti/calls/b1/form", headers=ben,
                              json={"values": {"concern": "tariff"}})
    assert "concern (read_only)" in error_of(refused, 403)
    refused = cti.client.post("/api/cti/calls/b1/form", headers=ben,
                              json={"values": {"tier": "bronze"}})
    assert "tier (read_only)" in error_of(refused, 403)
    assert cti.stored().fields["tier"] == "gold"


def test_one_refused_field_refuses_the_whole_save(cti: Cti) -> None:
    headers = cti.login("1001")
    cti.present("c1", "1001")
    response = cti.client.post("/api/cti/calls/c1/form", headers=headers,
                               json={"values": {"contract": "AB1234", "notes": "x",
                                                "name": "Hacker", "secret": "y"}})
    assert error_of(response, 403) == "you may not change: name (read_only), secret (hidden)"
    assert response.json()["fields"] == {"name": "read_only", "secret": "hidden"}
    assert cti.stored() == customer(CUSTOMER)
    assert cti.audit() == []


def test_invalid_values_change_nothing(cti: Cti) -> None:
    headers = cti.login("1001")
    cti.present("c1", "1001")
    response = cti.client.post("/api/cti/calls/c1/form", headers=headers,
                               json={"values": {"notes": "fine", "contract": "nope",
                                                "tier": "platinum"}})
    error_of(response, 422)
    assert set(response.json()["fields"]) == {"contract", "tier"}
    assert cti.stored() == customer(CUSTOMER) and cti.audit() == []


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({}, 400, "non-empty object"),
        ({"values": []}, 400, "non-empty object"),
        ({"values": {"bogus": "1"}}, 400, "no such field in this form: bogus"),
        ({"values": {"waited": "1"}}, 403, "waited (read_only)"),
    ],
)
def test_bad_form_saves(cti: Cti, body: dict[str, Any], status: int, text: str) -> None:
    headers = cti.login("1001")
    cti.present("c1", "1001")
    response = cti.client.post("/api/cti/calls/c1/form", headers=headers, json=body)
    assert text in error_of(response, status)


def test_saves_update_the_pop_and_call_values_are_kept_with_the_call(cti: Cti) -> None:
    headers = cti.login("1001")
    cti.present("c1", "1001", with_customer=False)
    refused = cti.client.post("/api/cti/calls/c1/form", headers=headers,
                              json={"values": {"contract": "AB1234"}})
    assert "no customer record" in error_of(refused, 409)
    response = cti.client.post("/api/cti/calls/c1/form", headers=headers,
                               json={"values": {"concern": "tariff", "callback": True}})
    assert response.status_code == 200
    shown = {f["name"]: f["value"] for f in response.json()["pop"]["form"]["fields"]}
    assert shown["concern"] == "tariff" and shown["callback"] == "true"
    assert {(e.field, e.old_value, e.new_value, e.customer_no) for e in cti.audit()} == {
        ("concern", "invoice", "tariff", ""), ("callback", None, "true", "")}
    again = cti.client.get("/api/cti/calls/c1", headers=headers).json()
    assert {f["name"]: f["value"] for f in again["form"]["fields"]}["concern"] == "tariff"


def test_customer_update_outside_a_call(cti: Cti) -> None:
    clara = cti.login("1003")
    response = cti.client.patch(f"/api/cti/customers/{CUSTOMER}", headers=clara,
                                json={"values": {"name": "Erika Beispiel", "notes": "VIP"}})
    assert response.status_code == 200
    assert cti.stored().name == "Erika Beispiel" and cti.stored().fields["notes"] == "VIP"
    refused = cti.client.patch(f"/api/cti/customers/{CUSTOMER}", headers=clara,
                               json={"values": {"callback": True}})
    assert "only a call" in error_of(refused, 409)
    missing = cti.client.patch("/api/cti/customers/999999", headers=clara,
                               json={"values": {"notes": "x"}})
    assert "no customer" in error_of(missing, 404)
    unknown_form = cti.client.patch(f"/api/cti/customers/{CUSTOMER}", headers=clara,
                                    json={"form": "nope", "values": {"notes": "x"}})
    assert "no form 'nope'" in error_of(unknown_form, 404)


# ================================================================== calls and call control


def test_agents_see_only_their_own_calls(cti: Cti) -> None:
    anna, ben, clara = cti.login("1001"), cti.login("1002"), cti.login("1003")
    cti.present("a1", "1001")
    cti.present("b1", "1002")
    listed = cti.client.get("/api/cti/calls", headers=anna).json()["calls"]
    assert [c["call_id"] for c in listed] == ["a1"]
    assert sorted(c["call_id"] for c in cti.client.get("/api/cti/calls",
                                                       headers=clara).json()["calls"]) == [
        "a1", "b1"]
    error_of(cti.client.get("/api/cti/calls/b1", headers=anna), 404)
    error_of(cti.client.post("/api/cti/calls/b1/hangup", headers=anna), 404)
    error_of(cti.client.post("/api/cti/calls/b1/form", headers=anna,
                             json={"values": {"notes": "x"}}), 404)
    assert cti.client.get("/api/cti/calls/b1", headers=clara).status_code == 200
    assert cti.client.get("/api/cti/calls/b1", headers=ben).status_code == 200


def test_call_control_reaches_the_call_layer(cti: Cti) -> None:
    headers = cti.login("1001")
    cti.present("c1", "1001")
    post = cti.client.post
    assert "needs connected" in error_of(post("/api/cti/calls/c1/hold", headers=headers), 409)
    cti.desk.on_call_answered("c1", "1001")
    assert post("/api/cti/calls/c1/hold", headers=headers).status_code == 202
    cti.desk.on_call_held("c1")
    assert post("/api/cti/calls/c1/resume", headers=headers).status_code == 202
    cti.desk.on_call_resumed("c1")
    transfer = post("/api/cti/calls/c1/transfer", headers=headers,
                    json={"target": "queue:billing", "attended": True})
    assert transfer.status_code == 202
    assert post("/api/cti/calls/c1/complete-transfer", headers=headers).status_code == 202
    assert post("/api/cti/calls/c1/cancel-transfer", headers=headers).status_code == 202
    assert post("/api/cti/calls/c1/hangup", headers=headers).status_code == 202
    assert cti.calls.requests == [
        ("hold", "1001", "c1"), ("resume", "1001", "c1"),
        ("transfer", "1001", "c1", "queue:billing", True),
        ("complete_transfer", "1001", "c1"), ("cancel_transfer", "1001", "c1"),
        ("hang_up", "1001", "c1"),
    ]


def test_a_supervisor_acts_on_behalf_of_the_calls_agent(cti: Cti) -> None:
    clara = cti.login("1003")
    cti.present("c1", "1001")
    cti.desk.on_call_answered("c1")
    assert cti.client.post("/api/cti/calls/c1/hangup", headers=clara).status_code == 202
    assert cti.calls.requests == [("hang_up", "1001", "c1")]


def test_only_supervisors_move_a_waiting_caller(cti: Cti) -> None:
    anna, clara = cti.login("1001"), cti.login("1003")
    cti.desk.on_call_queued("c1", "billing", at=1000.0, caller="+4930111222")
    cti.present("c1", "1001", queue="billing")  # ringing at Anna's: her call, not hers to move
    move = "/api/cti/calls/c1/move"
    assert "only supervisors" in error_of(
        cti.client.post(move, headers=anna, json={"target": "agent:1002"}), 403)
    for body, status, text in (({"target": "number:+4930999"}, 422, "moves to a queue"),
                               ({"target": "queue:nowhere"}, 422, "no queue 'nowhere'"),
                               ({"target": "queue:billing"}, 409, "waiting in 'billing'")):
        assert text in error_of(cti.client.post(move, headers=clara, json=body), status)
    assert cti.client.post(move, headers=clara, json={"target": "agent:1002"}).status_code == 202
    cti.desk.on_call_answered("c1", "1001")
    assert "move" in error_of(
        cti.client.post(move, headers=clara, json={"target": "agent:1002"}), 409)
    assert cti.calls.requests == [("move", "1003", "c1", "agent:1002")]


@pytest.mark.parametrize(
    ("action", "body", "status", "text"),
    [
        ("transfer", {"target": "somewhere"}, 422, "not a transfer target"),
        ("transfer", {"target": "agent:1099"}, 422, "no agent '1099'"),
        ("transfer", {"target": "agent:1002", "attended": "yes"}, 400, "true or false"),
        ("transfer", {}, 400, "'target' is required"),
        ("disposition", {"disposition": "great"}, 422, "is not a disposition"),
        ("disposition", {"disposition": "resolved", "note": 5}, 400, "must be a string"),
        ("park", {}, 404, "no call action 'park'"),
    ],
)
def test_bad_call_requests(cti: Cti, action: str, body: dict[str, Any], status: int,
                           text: str) -> None:
    headers = cti.login("1001")
    cti.present("c1", "1001")
    cti.desk.on_call_answered("c1")
    response = cti.client.post(f"/api/cti/calls/c1/{action}", headers=headers, json=body)
    assert text in error_of(response, status)
    assert cti.calls.requests == []


def test_disposition_after_the_call(cti: Cti) -> None:
    headers = cti.login("1001")
    cti.present("c1", "1001")
    cti.desk.on_call_answered("c1")
    cti.desk.on_call_ended("c1")
    response = cti.client.post("/api/cti/calls/c1/disposition", headers=headers,
                               json={"disposition": "callback", "note": "call back at 3"})
    assert response.status_code == 200
    assert cti.calls.requests == [("set_disposition", "1001", "c1", "callback", "call back at 3")]
    call = cti.client.get("/api/cti/calls/c1", headers=headers).json()["call"]
    assert call["disposition"] == "callback" and call["state"] == "ended"


def test_click_to_dial(cti: Cti) -> None:
    headers = cti.login("1001")
    response = cti.client.post("/api/cti/calls", headers=headers, json={"number": "+49 30 999000"})
    assert response.status_code == 201 and response.json() == {"call_id": "out-1"}
    assert cti.calls.requests == [("make_call", "1001", "+4930999000")]
    assert "not a phone number" in error_of(
        cti.client.post("/api/cti/calls", headers=headers, json={"number": "call mom"}), 422)


def test_refusals_and_failures_of_the_call_layer_are_json(cti: Cti) -> None:
    headers = cti.login("1001")
    cti.calls.refuse = ControlRefused(403, "the dial plan does not allow 0900 numbers")
    response = cti.client.post("/api/cti/calls", headers=headers, json={"number": "09001234"})
    assert error_of(response, 403) == "the dial plan does not allow 0900 numbers"
    cti.calls.refuse, cti.calls.fail = None, RuntimeError("switchboard gone")
    response = cti.client.post("/api/cti/calls", headers=headers, json={"number": "0301234"})
    assert "RuntimeError" in error_of(response, 503)


# ================================================================== agents and queues


def test_agent_state_requests(cti: Cti) -> None:
    anna, clara = cti.login("1001"), cti.login("1003")
    post = cti.client.post
    assert post("/api/cti/agents/1001/login", headers=anna,
                json={"paused": True, "reason": "setup"}).status_code == 202
    assert post("/api/cti/agents/1001/pause", headers=anna).status_code == 202  # no body
    assert post("/api/cti/agents/1001/logout", headers=anna).status_code == 202
    assert post("/api/cti/agents/1002/ready", headers=clara).status_code == 202
    assert cti.agents.requests == [("login", "1001", True, "setup"), ("pause", "1001", "break"),
                                   ("logout", "1001"), ("ready", "1002")]
    assert "own state" in error_of(post("/api/cti/agents/1002/pause", headers=anna), 403)
    error_of(post("/api/cti/agents/1099/pause", headers=clara), 404)
    assert "no agent action" in error_of(post("/api/cti/agents/1001/nap", headers=anna), 404)
    error_of(post("/api/cti/agents/1001/login", headers=anna, json={"paused": "no"}), 400)


def test_agents_and_queues(cti: Cti) -> None:
    headers = cti.login("1001")
    cti.desk.on_agent_state("1002", "paused", "lunch")
    cti.desk.on_call_queued("q1", "billing")
    agents = {a["extension"]: a for a in cti.client.get("/api/cti/agents",
                                                        headers=headers).json()["agents"]}
    assert agents["1002"]["state"] == "paused" and agents["1002"]["reason"] == "lunch"
    assert "1009" not in agents
    queues = cti.client.get("/api/cti/queues", headers=headers).json()["queues"]
    assert queues[0] == queues[0] | {"name": "billing", "waiting": 1}


# ================================================================== customers


def test_customer_search_shows_only_visible_fields(cti: Cti) -> None:
    headers = cti.login("1001")
    found = cti.client.get("/api/cti/customers?q=muster", headers=headers).json()["customers"]
    assert [c["customer_no"] for c in found] == ["100001", "100002"]
    names = {f["name"] for f in found[0]["fields"]}
    assert "name" in names and "secret" not in names
    assert "s3cret" not in json.dumps(found)


@pytest.mark.parametrize(
    ("query", "status"),
    [("?q=m", 400), ("", 400), ("?q=muster&limit=0", 400), ("?q=muster&limit=x", 400)],
)
def test_bad_customer_searches(cti: Cti, query: str, status: int) -> None:
    headers = cti.login("1001")
    error_of(cti.client.get(f"/api/cti/customers{query}", headers=headers), status)


def test_customer_read_history_and_audit(cti: Cti) -> None:
    anna, clara = cti.login("1001"), cti.login("1003")
    sink = cti.db.cdr_sink()
    sink.write_cdr(CallDetailRecord("old", "inbound", "+4930111222", "+49800", 100.0, 105.0,
                                    160.0, "answered", agent="1001",
                                    variables={"secret": "s3cret"}))
    sink.write_cdr(CallDetailRecord("other", "inbound", "+4930555", "+49800", 200.0, None,
                                    210.0, "abandoned"))
    view = cti.client.get(f"/api/cti/customers/{CUSTOMER}", headers=anna).json()
    assert view["customer_no"] == CUSTOMER and view["form"]["form"] == "default"
    history = cti.client.get(f"/api/cti/customers/{CUSTOMER}/calls", headers=anna).json()
    assert [c["call_id"] for c in history["calls"]] == ["old"]
    assert "variables" not in history["calls"][0]
    error_of(cti.client.get("/api/cti/customers/999999", headers=anna), 404)
    error_of(cti.client.get("/api/cti/customers/999999/calls", headers=anna), 404)
    error_of(cti.client.get(f"/api/cti/customers/{CUSTOMER}?form=nope", headers=anna), 404)
    cti.client.patch(f"/api/cti/customers/{CUSTOMER}", headers=anna,
                     json={"values": {"notes": "called"}})
    assert "supervisors" in error_of(
        cti.client.get(f"/api/cti/customers/{CUSTOMER}/audit", headers=anna), 403)
    audit = cti.client.get(f"/api/cti/customers/{CUSTOMER}/audit", headers=clara).json()
    assert audit["audit"][0] == audit["audit"][0] | {"field": "notes", "old": "", "new": "called",
                                                     "agent": "1001"}


# ================================================================== the WebSocket


def token_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


def next_event(ws: Any, wanted: str) -> dict[str, Any]:
    """The next message of type `wanted`, skipping the periodic wallboard."""
    while True:
        message: dict[str, Any] = ws.receive_json()
        if message["type"] != "wallboard" or wanted == "wallboard":
            assert message["type"] == wanted, message
            return message


def test_websocket_agent_receives_only_its_own_calls(cti: Cti) -> None:
    token = token_of(cti.login("1001"))
    with cti.client.websocket_connect(f"/api/cti/ws?token={token}") as ws:
        snapshot = ws.receive_json()
        assert snapshot["type"] == "snapshot" and snapshot["session"]["extension"] == "1001"
        cti.desk.on_call_queued("b1", "billing")  # supervisors only
        cti.present("b1", "1002")  # another agent's call
        cti.desk.on_agent_state("1002", "ringing", "offered")  # another agent's state
        cti.present("a1", "1001")
        offered = ws.receive_json()  # the first thing this agent hears of is its own call
        assert offered["type"] == "offered" and offered["call"]["call_id"] == "a1"
        fields = {f["name"]: f for f in offered["pop"]["form"]["fields"]}
        assert fields["concern"]["value"] == "invoice" and "secret" not in fields
        cti.desk.on_call_answered("a1", "1001")
        cti.desk.on_call_held("a1")
        cti.desk.on_call_resumed("a1")
        cti.desk.on_call_transferred("a1", "number:+4930999")
        cti.desk.on_call_ended("a1")
        cti.desk.on_agent_state("1001", "wrap_up", "call_ended", call="a1")
        cti.desk.on_agent_state("1001", "available", "wrap_up_done", call="a1")
        got = [ws.receive_json()["type"] for _ in range(9)]
        assert got == ["answered", "held", "resumed", "transferred", "ended", "agent_state",
                       "wrapup_started", "agent_state", "wrapup_ended"]
        ws.send_json({"type": "ping"})
        assert ws.receive_json()["type"] == "pong"


def test_websocket_supervisor_receives_everything_and_the_wallboard(cti: Cti) -> None:
    token = token_of(cti.login("1003"))
    with cti.client.websocket_connect(f"/api/cti/ws?token={token}") as ws:
        assert ws.receive_json()["type"] == "snapshot"
        board = ws.receive_json()
        assert board["type"] == "wallboard"
        assert {a["extension"] for a in board["agents"]} == {"1001", "1002", "1003", "1004"}
        cti.desk.on_call_queued("b1", "billing", caller="+4930111222")
        assert next_event(ws, "queued")["call"]["queue"] == "billing"
        cti.present("b1", "1002")
        offered = next_event(ws, "offered")
        assert offered["call"]["agent"] == "1002"
        secret = {f["name"]: f for f in offered["pop"]["form"]["fields"]}["secret"]
        assert secret["access"] == "read_only"  # the supervisor's own permissions
        cti.desk.on_agent_state("1002", "on_call", "answered", call="b1")
        assert next_event(ws, "agent_state")["agent"]["extension"] == "1002"
        board = next_event(ws, "wallboard")  # every 2 s
        assert board["queues"][0]["name"] == "billing" and board["calls"]


def test_websocket_authenticates_by_first_message(cti: Cti) -> None:
    token = token_of(cti.login("1001"))
    with cti.client.websocket_connect("/api/cti/ws") as ws:
        ws.send_json({"type": "auth", "token": token})
        assert ws.receive_json()["type"] == "snapshot"


@pytest.mark.parametrize("first", [{"type": "auth", "token": "forged"}, {"type": "hello"},
                                   "not json"])
def test_websocket_refuses_without_a_valid_token(cti: Cti, first: Any) -> None:
    with cti.client.websocket_connect("/api/cti/ws") as ws:
        if isinstance(first, str):
            ws.send_text(first)
        else:
            ws.send_json(first)
        error = ws.receive_json()
        assert error["type"] == "error" and error["status"] == 401
        with pytest.raises(WebSocketDisconnect) as caught:
            ws.receive_json()
        assert caught.value.code == 4401


def test_websocket_with_the_cookie_checks_the_origin(cti: Cti) -> None:
    cti.client.post("/api/cti/login", json={"extension": "1001", "password": PASSWORDS["1001"]})
    with cti.client.websocket_connect("/api/cti/ws",
                                      headers={"origin": "http://testserver"}) as ws:
        assert ws.receive_json()["type"] == "snapshot"
    with cti.client.websocket_connect("/api/cti/ws",
                                      headers={"origin": "https://evil.example"}) as ws:
        assert "cross-site" in ws.receive_json()["error"]
        with pytest.raises(WebSocketDisconnect) as caught:
            ws.receive_json()
        assert caught.value.code == 4401


def test_websocket_closes_when_the_session_logs_out(cti: Cti) -> None:
    headers = cti.login("1001")
    with cti.client.websocket_connect(f"/api/cti/ws?token={token_of(headers)}") as ws:
        assert ws.receive_json()["type"] == "snapshot"
        assert cti.client.post("/api/cti/logout", headers=headers).status_code == 200
        assert ws.receive_json()["status"] == 401
        with pytest.raises(WebSocketDisconnect) as caught:
            ws.receive_json()
        assert caught.value.code == 4401


# ================================================================== the rest of the surface


def test_unknown_paths_and_methods_are_json(cti: Cti) -> None:
    headers = cti.login("1001")
    assert "no such API path" in error_of(cti.client.get("/api/cti/nothing", headers=headers),
                                          404)
    response = cti.client.delete("/api/cti/me", headers=headers)
    assert "DELETE is not allowed" in error_of(response, 405)
    assert response.headers["allow"] == "GET"


def test_metrics(cti: Cti) -> None:
    cti.login("1001")
    cti.desk.on_agent_state("1001", "available", "login")
    cti.desk.on_call_queued("q1", "billing")
    text = cti.client.get("/metrics", headers=cti.login("1003")).text
    assert 'pbx_agents{state="available"} 1.0' in text
    assert 'pbx_queue_waiting{queue="billing"} 1.0' in text
    assert "pbx_cti_sessions 2.0" in text and "pbx_cti_logins_total 2.0" in text

    class Source:
        def metrics_snapshot(self) -> MetricsSnapshot:
            return MetricsSnapshot(calls_active=7, calls_total={"offered": 45, "answered": 40},
                                   registrations=12, sip_transactions_active=3,
                                   sip_total={"requests_received": 900},
                                   rtp_total={"packets_lost": 5, "octets_in": 16000})

    cti.desk.metrics_source = Source()
    text = cti.client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    # one name per thing counted (offered and answered overlap: never labels of one name)
    for line in ("pbx_calls_active 7.0", "pbx_calls_offered_total 45.0",
                 "pbx_calls_answered_total 40.0",
                 "pbx_registrations 12.0", "pbx_sip_transactions_active 3.0",
                 "pbx_sip_requests_received_total 900.0",
                 "pbx_rtp_packets_lost_total 5.0", "pbx_rtp_received_bytes_total 16000.0",
                 'pbx_agents{state="available"} 1.0', "process_cpu_seconds_total",
                 "# TYPE pbx_queue_wait_seconds histogram"):
        assert line in text
    assert 'pbx_build_info{python_version="' in text


def test_openapi_document_lists_every_route(cti: Cti) -> None:
    document = cti.client.get("/api/openapi.json").json()
    assert document["openapi"].startswith("3.") and document["paths"]
    routes = build_http_app(View(config()), cti.desk, cti.db).routes
    documented = {
        route.path for route in routes
        if isinstance(route, Route) and route.path.startswith(("/api", "/metrics", "/health"))
        and "{rest:path}" not in route.path
    }
    assert documented == set(document["paths"])
    assert len(build_cti_routes(cti.desk, cti.db, config())) < len(routes)


def test_pages_are_served(cti: Cti) -> None:
    for path, marker in (("/desk", "desk.js"), ("/wallboard", "wallboard.js"),
                         ("/static/desk.js", "/api/cti/ws"), ("/static/desk.css", "--accent"),
                         ("/static/wallboard.js", "wallboard")):
        response = cti.client.get(path)
        assert response.status_code == 200 and marker in response.text, path
    assert cti.client.get("/health").json() == {"status": "ok"}  # and not a word more


# ================================================================== operations: who may read

OPERATIONS = ["/api/stats", "/api/cdrs", "/api/registrations", "/api/campaigns", "/metrics"]
SCOPE = {"/api/stats": "stats", "/api/cdrs": "cdrs", "/api/registrations": "registrations",
         "/api/campaigns": "campaigns", "/metrics": "metrics"}


@pytest.mark.parametrize("path", OPERATIONS)
def test_operations_need_credentials(cti: Cti, path: str) -> None:
    response = cti.client.get(path)
    assert "Authorization: Bearer" in error_of(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    forged = cti.client.get(path, headers={"Authorization": "Bearer forged-token-123456789"})
    assert "unknown API token" in error_of(forged, 401)
    basic = cti.client.get(path, headers={"Authorization": "Basic eDp5"})
    error_of(basic, 401)


@pytest.mark.parametrize("path", OPERATIONS)
def test_operations_refuse_agents_and_admit_supervisors(cti: Cti, path: str) -> None:
    assert "only supervisors and admins" in error_of(
        cti.client.get(path, headers=cti.login("1001")), 403)
    for extension in ("1003", "1004"):
        assert cti.client.get(path, headers=cti.login(extension)).status_code == 200
    # A browser's supervisor session works through the cookie too (a read: no CSRF header).
    cti.client.post("/api/cti/login", json={"extension": "1003",
                                            "password": PASSWORDS["1003"]})
    assert cti.client.get(path).status_code == 200
    cti.client.cookies.clear()
    cti.client.post("/api/cti/login", json={"extension": "1002",
                                            "password": PASSWORDS["1002"]})
    error_of(cti.client.get(path), 403)


@pytest.mark.parametrize("path", OPERATIONS)
def test_api_tokens_read_only_their_scopes(cti: Cti, path: str) -> None:
    everything = {"Authorization": f"Bearer {ALL_TOKEN}"}
    assert cti.client.get(path, headers=everything).status_code == 200
    metrics_only = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    response = cti.client.get(path, headers=metrics_only)
    if path == "/metrics":
        assert response.status_code == 200 and "pbx_cti_sessions" in response.text
    else:
        text = error_of(response, 403)
        assert f"'prometheus' may not read '{SCOPE[path]}'" in text


@pytest.mark.parametrize(("method", "path"), [("GET", "/api/cti/me"), ("GET", "/api/cti/calls"),
                                               ("POST", "/api/cti/agents/1001/pause"),
                                               ("GET", f"/api/cti/customers/{CUSTOMER}")])
def test_api_tokens_do_not_open_the_cti_api(cti: Cti, method: str, path: str) -> None:
    headers = {"Authorization": f"Bearer {ALL_TOKEN}"}
    response = cti.client.request(method, path, headers=headers, json={})
    assert "API tokens read the operations endpoints only" in error_of(response, 403)
    assert cti.agents.requests == []
    with cti.client.websocket_connect(f"/api/cti/ws?token={ALL_TOKEN}") as ws:
        assert ws.receive_json()["status"] == 401


def test_cdrs_never_carry_what_a_form_hides(cti: Cti) -> None:
    def variables(headers: dict[str, str]) -> dict[str, str]:
        response = cti.client.get("/api/cdrs?limit=5", headers=headers)
        assert "h1" not in response.text  # hidden from every role in the matrix form
        cdr: dict[str, Any] = response.json()["cdrs"][0]
        assert cdr["caller"] == "+4930111222" and cdr["ivr_path"] == []
        return dict(cdr["variables"])

    shown = variables(cti.login("1003"))  # a supervisor may read 'secret', not 'hidden'
    assert shown == {"concern": "invoice", "customer.fields.secret": "s3cret",
                     "customer.name": "Erika"}
    assert variables({"Authorization": f"Bearer {ALL_TOKEN}"}) == shown  # the token's role
    error_of(cti.client.get("/api/cdrs?limit=0", headers=cti.login("1003")), 400)


def test_cdr_columns_a_form_hides_are_left_out(tmp_path: Path) -> None:
    cfg = config()
    form = cfg.forms["default"]
    caller = form.fields[0].model_copy(update={
        "name": "caller", "source": "call.caller",
        "permissions": form.fields[0].permissions.model_copy(update={"default": "hidden"})})
    cfg = cfg.model_copy(update={"forms": {**cfg.forms, "default": form.model_copy(
        update={"fields": (*form.fields, caller)})}})
    with Database.open(f"sqlite:///{tmp_path / 'cols.db'}") as db:
        desk = CtiDesk(cfg, FakeCallControl(), FakeAgentControl())
        with TestClient(build_http_app(View(cfg), desk, db, tokens=TOKENS)) as client:
            response = client.get("/api/cdrs", headers={"Authorization": f"Bearer {ALL_TOKEN}"})
            cdr = response.json()["cdrs"][0]
            assert "caller" not in cdr and "+4930111222" not in response.text
            assert cdr["agent"] == "1001"


def test_health_says_nothing_but_ok(cti: Cti) -> None:
    response = cti.client.get("/health")
    assert response.json() == {"status": "ok"} and "Test" not in response.text
    assert "server" not in response.headers or "uvicorn" not in response.headers["server"]


# ================================================================== forms and search per agent


def test_agents_open_only_their_assigned_forms(cti: Cti) -> None:
    anna, ben, clara = cti.login("1001"), cti.login("1002"), cti.login("1003")
    url = f"/api/cti/customers/{CUSTOMER}?form=matrix"
    text = error_of(cti.client.get(url, headers=anna), 403)
    assert "'matrix' is not assigned to you (yours: default)" in text
    assert "o1" not in text
    refused = cti.client.patch(f"/api/cti/customers/{CUSTOMER}", headers=anna,
                               json={"form": "matrix", "values": {"open": "changed"}})
    error_of(refused, 403)
    assert cti.stored().fields["open"] == "o1" and cti.audit() == []
    assert cti.client.get(url, headers=ben).status_code == 200  # 1002 is in group matrix
    assert cti.client.get(url, headers=clara).status_code == 200  # supervisors: any form
    assert "yours: default" in error_of(
        cti.client.get(f"/api/cti/customers/{CUSTOMER}?form=nope", headers=anna), 404)


def test_customer_search_needs_a_minimum_length_and_matches_only_visible_fields(
    cti: Cti,
) -> None:
    anna = cti.login("1001")
    assert "3 to 64 characters" in error_of(
        cti.client.get("/api/cti/customers?q=mu", headers=anna), 400)
    assert cti.client.get("/api/cti/customers?q=mus", headers=anna).json()["customers"]
    # Phone numbers are in no field of the form: a phone number finds nobody …
    assert cti.client.get("/api/cti/customers?q=%2B4930999",
                          headers=anna).json()["customers"] == []
    # … and a field the agent's form hides is not compared either (customer_no is).
    found = cti.client.get("/api/cti/customers?q=10000", headers=anna).json()["customers"]
    assert [c["customer_no"] for c in found] == ["100001", "100002"]


def test_search_by_a_hidden_name_finds_nothing(tmp_path: Path) -> None:
    cfg = config()
    form = cfg.forms["default"]
    fields = tuple(
        f.model_copy(update={"permissions": f.permissions.model_copy(
            update={"agents": {"1001": "hidden"}})}) if f.name == "name" else f
        for f in form.fields)
    cfg = cfg.model_copy(update={"forms": {**cfg.forms,
                                           "default": form.model_copy(update={"fields": fields})}})
    with Database.open(f"sqlite:///{tmp_path / 'search.db'}") as db:
        db.customer_directory().upsert_customers([customer(CUSTOMER)])
        desk = CtiDesk(cfg, FakeCallControl(), FakeAgentControl())
        with TestClient(build_http_app(View(cfg), desk, db)) as client:
            def search(extension: str) -> list[Any]:
                login = client.post("/api/cti/login", json={"extension": extension,
                                                            "password": PASSWORDS[extension]})
                headers = {"Authorization": f"Bearer {login.json()['token']}"}
                client.cookies.clear()
                found: list[Any] = client.get("/api/cti/customers?q=muster",
                                              headers=headers).json()["customers"]
                return found

            assert search("1001") == []  # the name is hidden from Anna: not searched
            assert [c["customer_no"] for c in search("1002")] == [CUSTOMER]


# ================================================================== the perimeter in the app


def test_pages_and_api_carry_the_security_headers(cti: Cti) -> None:
    for path in ("/desk", "/wallboard", "/static/desk.js", "/api/openapi.json", "/health",
                 "/api/cti/nothing"):
        headers = cti.client.get(path).headers
        assert "script-src 'self'" in headers["content-security-policy"], path
        assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == \
            "nosniff" and headers["referrer-policy"] == "no-referrer", path
    assert cti.client.get("/api/cti/nothing").headers["cache-control"] == "no-store"


def test_the_pages_need_no_inline_code(cti: Cti) -> None:
    # The CSP forbids inline scripts and styles; the pages must not need any.
    for path in ("/desk", "/wallboard"):
        html = cti.client.get(path).text
        assert "<style" not in html and "style=" not in html, path
        assert "<script>" not in html and " on" + "click=" not in html, path


def test_cookies_are_secure_behind_tls_with_auto(tmp_path: Path) -> None:
    cfg = config()
    cfg = cfg.model_copy(update={"http": cfg.http.model_copy(
        update={"trusted_proxies": ("10.0.0.0/8",)})})
    with Database.open(f"sqlite:///{tmp_path / 'tls.db'}") as db:
        desk = CtiDesk(cfg, FakeCallControl(), FakeAgentControl())
        app = build_http_app(View(cfg), desk, db)
        body = {"extension": "1001", "password": PASSWORDS["1001"]}

        def cookies(client: TestClient, **headers: str) -> list[str]:
            response = client.post("/api/cti/login", json=body, headers=headers)
            assert response.status_code == 200, response.text
            return [c for c in response.headers.get_list("set-cookie") if c.startswith("pbx_")]

        with TestClient(app, client=("10.0.0.2", 4000)) as proxied:
            assert all("Secure" in c for c in cookies(proxied, **{"X-Forwarded-Proto": "https"}))
            assert not any("Secure" in c for c in cookies(proxied))
        with TestClient(app, client=("192.0.2.9", 4000)) as direct:  # not our proxy: ignored
            assert not any("Secure" in c for c in cookies(direct, **{"X-Forwarded-Proto":
                                                                     "https"}))
        with TestClient(app, base_url="https://testserver") as tls:
            assert all("Secure" in c for c in cookies(tls))


def test_login_failures_count_against_the_forwarded_client(tmp_path: Path) -> None:
    cfg = config()
    cfg = cfg.model_copy(update={"http": cfg.http.model_copy(
        update={"trusted_proxies": ("10.0.0.0/8",)})})
    with Database.open(f"sqlite:///{tmp_path / 'xff.db'}") as db:
        desk = CtiDesk(cfg, FakeCallControl(), FakeAgentControl())
        app = build_http_app(View(cfg), desk, db)
        with TestClient(app, client=("10.0.0.2", 4000)) as proxied:
            for _ in range(3):
                proxied.post("/api/cti/login", json={"extension": "1002", "password": "x"},
                             headers={"X-Forwarded-For": "198.51.100.1"})
            ok = {"extension": "1001", "password": PASSWORDS["1001"]}
            banned = proxied.post("/api/cti/login", json=ok,
                                  headers={"X-Forwarded-For": "198.51.100.1"})
            assert banned.status_code == 429
            other = proxied.post("/api/cti/login", json=ok,
                                 headers={"X-Forwarded-For": "198.51.100.2"})
            assert other.status_code == 200  # the proxy itself is not banned


def test_sessions_end_when_the_password_changes(tmp_path: Path) -> None:
    cfg = config()
    new_cfg = cfg.model_copy(update={"agents": tuple(
        a.model_copy(update={"password": "neues-Passwort-1002"}) if a.extension == "1002"
        else a for a in cfg.agents)})
    with Database.open(f"sqlite:///{tmp_path / 'ends.db'}") as db:
        desk = CtiDesk(cfg, FakeCallControl(), FakeAgentControl())
        with TestClient(build_http_app(View(cfg), desk, db)) as client:
            login = client.post("/api/cti/login",
                                json={"extension": "1002", "password": PASSWORDS["1002"]})
            headers = {"Authorization": f"Bearer {login.json()['token']}"}
            assert client.get("/api/cti/me", headers=headers).status_code == 200
        desk = CtiDesk(new_cfg, FakeCallControl(), FakeAgentControl())  # a restart
        with TestClient(build_http_app(View(new_cfg), desk, db)) as client:
            assert "expired" in error_of(client.get("/api/cti/me", headers=headers), 401)
