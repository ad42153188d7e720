"""The admin API (`pbx.cti.admin`) through the real Starlette app, in-process: who may use which
route, bad requests, and the answers' shapes. The desk, auth, storage (a SQLite file) and
routes are real; the call layer and the ACD behind `CallControl` / `AgentControl` are the
recording fakes of the CTI tests. The live effects are in test_customers_live.py."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from pbx.cti import CtiDesk, sync_credentials
from pbx.cti.control import ControlRefused
from pbx.cti.http import build_http_app
from pbx.cti.tokens import ApiToken, ApiTokens
from pbx.storage import Database
from tests.integration.test_cti_api import View, error_of
from tests.unit.cti.fakes import PASSWORDS, FakeAgentControl, FakeCallControl, FakeClock, config

LISTS = "lists-token-0123456789abcdef"
CONTROL = "control-token-0123456789abcdef"
STATS = "stats-token-0123456789abcdef"
TOKENS = ApiTokens([
    ApiToken(name, hashlib.sha256(token.encode()).digest(), frozenset(scopes), "admin")
    for name, token, scopes in (("lists", LISTS, {"customers"}),
                                ("control", CONTROL, {"control"}),
                                ("stats", STATS, {"stats"}))
])
CUSTOMER_ROUTES = [("GET", "/api/admin/customers"), ("POST", "/api/admin/customers"),
                   ("GET", "/api/admin/customers/1"), ("PUT", "/api/admin/customers/1"),
                   ("PATCH", "/api/admin/customers/1"), ("DELETE", "/api/admin/customers/1"),
                   ("POST", "/api/admin/imports/customers"), ("GET", "/api/admin/dnc"),
                   ("POST", "/api/admin/dnc"), ("DELETE", "/api/admin/dnc/+4930111")]
CONTROL_ROUTES = [("POST", "/api/admin/agents/1001/pause"), ("POST", "/api/admin/calls/c1/hangup")]


@dataclass
class Admin:
    client: TestClient
    desk: CtiDesk
    db: Database
    calls: FakeCallControl
    agents: FakeAgentControl

    def session(self, extension: str) -> dict[str, str]:
        response = self.client.post("/api/cti/login", json={
            "extension": extension, "password": PASSWORDS[extension]})
        assert response.status_code == 200, response.text
        self.client.cookies.clear()
        return {"Authorization": f"Bearer {response.json()['token']}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[Admin]:
    cfg = config()
    db = Database.open(f"sqlite:///{tmp_path / 'pbx.db'}")
    sync_credentials(cfg, db.cti_store())
    calls, agents = FakeCallControl(), FakeAgentControl()
    desk = CtiDesk(cfg, calls, agents, clock=FakeClock())
    with TestClient(build_http_app(View(cfg), desk, db, tokens=TOKENS)) as client:
        yield Admin(client, desk, db, calls, agents)
    db.close()


@pytest.mark.parametrize(("method", "path"), CUSTOMER_ROUTES + CONTROL_ROUTES)
def test_no_credentials_or_the_wrong_scope_is_refused(admin: Admin, method: str,
                                                      path: str) -> None:
    response = admin.client.request(method, path, json={})
    assert "Authorization: Bearer" in error_of(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "may not use" in error_of(admin.client.request(method, path, json={},
                                                          headers=bearer(STATS)), 403)
    wrong = CONTROL if (method, path) in CUSTOMER_ROUTES else LISTS
    assert error_of(admin.client.request(method, path, json={}, headers=bearer(wrong)), 403)
    agent = admin.session("1001")
    assert "sessions" in error_of(admin.client.request(method, path, json={}, headers=agent),
                                  403)


@pytest.mark.parametrize(("method", "path"), CUSTOMER_ROUTES)
def test_supervisors_do_not_change_customers_here(admin: Admin, method: str, path: str) -> None:
    supervisor = admin.session("1003")
    assert "admin's sessions" in error_of(
        admin.client.request(method, path, json={}, headers=supervisor), 403)


def test_a_cookie_session_needs_the_csrf_header_for_changes(admin: Admin) -> None:
    response = admin.client.post("/api/cti/login", json={"extension": "1004",
                                                         "password": PASSWORDS["1004"]})
    csrf = response.json()["csrf_token"]  # the client keeps the session cookie
    record = {"customer_no": "1", "name": "Eins"}
    assert "CSRF" in error_of(admin.client.post("/api/admin/customers", json=record), 403)
    assert admin.client.get("/api/admin/customers").status_code == 200  # reads need none
    created = admin.client.post("/api/admin/customers", json=record,
                                headers={"X-CSRF-Token": csrf})
    assert created.status_code == 201, created.text


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "text"), [
    ("POST", "/api/admin/customers", {"content": b"x"}, 415, "JSON"),
    ("POST", "/api/admin/customers", {"json": {"customer_no": "1"}}, 422, "name is required"),
    ("POST", "/api/admin/customers", {"json": {"customer_no": "1", "name": "A",
                                               "phones": "112"}}, 422, "not a full phone"),
    ("PUT", "/api/admin/customers/1", {"json": {"customer_no": "2", "name": "A"}}, 422,
     "differs from the path"),
    ("PATCH", "/api/admin/customers/9", {"json": {"name": "A"}}, 404, "no customer '9'"),
    ("GET", "/api/admin/customers/a%20b", {}, 404, "not a customer number"),
    ("GET", "/api/admin/customers?format=xml", {}, 400, "json or csv"),
    ("POST", "/api/admin/imports/customers", {"json": {"rows": {}}}, 400, "list of objects"),
    ("POST", "/api/admin/imports/customers", {"json": {"rows": [{"line": "2"}]}}, 400,
     "line must be a number"),
    ("POST", "/api/admin/imports/customers", {"json": {"rows": [], "dry_run": "yes"}}, 400,
     "true or false"),
    ("POST", "/api/admin/imports/customers", {"json": {"rows": [], "groups": ["a|b"]}}, 422,
     "groups:"),
    ("POST", "/api/admin/imports/customers", {"json": {"rows": [{}] * 5001}}, 413, "5000"),
    ("DELETE", "/api/admin/dnc/abc", {}, 422, "not a phone number"),
    ("DELETE", "/api/admin/dnc/030%20999", {}, 404, "+4930999 is not on the do-not-call list"),
    ("GET", "/api/admin/nothing", {}, 404, "no such API path"),
])
def test_bad_requests_say_what_is_wrong(admin: Admin, method: str, path: str,
                                        kwargs: dict[str, Any], status: int, text: str) -> None:
    response = admin.client.request(method, path, headers=bearer(LISTS), **kwargs)
    assert text in error_of(response, status)


def test_an_import_batch_answers_every_row_by_line(admin: Admin) -> None:
    rows = [{"line": 2, "customer_no": "1", "name": "Eins", "phones": ["030 111"]},
            {"line": 3, "customer_no": "2", "status": "platin"},
            {"line": 4, "customer_no": "1", "name": "Doppelt"},
            {"line": 5, "customer_no": "3"}]
    answer = admin.client.post("/api/admin/imports/customers", headers=bearer(LISTS),
                               json={"rows": rows, "groups": ["g"]}).json()
    assert answer["created"] == ["1"] and answer["updated"] == []
    assert [(r["line"], r["customer_no"]) for r in answer["rejected"]] == [
        (3, "2"), (4, "1"), (5, "3")]
    assert "customer number already on line 2" in answer["rejected"][1]["reason"]
    assert "name is required for a new customer" in answer["rejected"][2]["reason"]
    stored = admin.client.get("/api/admin/customers/1", headers=bearer(LISTS)).json()
    assert stored["phones"] == ["+4930111"] and stored["groups"] == ["g"]
    csv = admin.client.get("/api/admin/customers?format=csv", headers=bearer(LISTS))
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[1] == "1,Eins,+4930111,standard,,g,"


def test_control_routes_reach_the_agent_and_call_control(admin: Admin) -> None:
    supervisor = admin.session("1003")
    assert "not logged in" in error_of(admin.client.post(
        "/api/admin/agents/1001/pause", json={"reason": "lunch"}, headers=supervisor), 409)
    admin.desk.on_agent_state("1001", "available", "login")
    answer = admin.client.post("/api/admin/agents/1001/pause", json={"reason": " lunch  "},
                               headers=bearer(CONTROL))
    assert answer.status_code == 200 and admin.agents.requests[-1] == ("pause", "1001",
                                                                       "lunch")
    assert "not paused" in error_of(admin.client.post(
        "/api/admin/agents/1001/ready", headers=bearer(CONTROL)), 409)
    assert "no agent '1077'" in error_of(admin.client.post(
        "/api/admin/agents/1077/pause", headers=bearer(CONTROL)), 404)
    assert "no agent action" in error_of(admin.client.post(
        "/api/admin/agents/1001/dance", headers=bearer(CONTROL)), 404)
    accepted = admin.client.post("/api/admin/calls/c7/hangup", headers=supervisor)
    assert accepted.status_code == 202 and admin.calls.requests[-1] == ("hang_up", "", "c7")
    admin.calls.refuse = ControlRefused(404, "call 'c8' is not in progress")
    assert "not in progress" in error_of(admin.client.post(
        "/api/admin/calls/c8/hangup", headers=bearer(CONTROL)), 404)
