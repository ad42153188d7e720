"""What the agent desktop's language, search names and history rest on, through the real
Starlette app (in-process, a SQLite file; the call layer faked as in test_cti_api.py):

- ``/desk`` and ``/wallboard`` carry the installation's language (``cti.language``) for the
  page to fall back on, and still the perimeter's CSP;
- ``GET /api/cti/me`` gives the language and each pause code's label in both desk languages
  (``labels`` where configured, else ``label``);
- a customer search returns the name only to agents whose form shows them the name;
- the customer's call history the desk shows (``GET /api/cti/customers/{no}/calls``): no
  session 401, an API token 403, an agent 200 without the columns a form hides from them;
  each call's ``recording_url`` only where that session may play the recording.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from pbx.config import PbxConfig, parse_config
from pbx.cti import CtiDesk, sync_credentials
from pbx.cti.http import build_http_app
from pbx.cti.tokens import ApiToken, ApiTokens
from pbx.repositories import Binding, CallDetailRecord
from pbx.storage import Database
from tests.unit.cti.fakes import (
    CONFIG,
    PASSWORDS,
    FakeAgentControl,
    FakeCallControl,
    customer,
)

TOKEN = "desk-language-token-0123456789abcdef"
PAUSE_CODES = """\
  language: en
  pause_codes:
    - {code: break, label: Pause, labels: {en: Break}}
    - {code: backoffice, label: Nacharbeit, productive: true}
"""


class View:
    def __init__(self, cfg: PbxConfig) -> None:
        self.config = cfg

    def registrations(self) -> list[Binding]:
        return []

    def stats(self) -> dict[str, object]:
        return {}

    def recent_cdrs(self, limit: int) -> list[CallDetailRecord]:
        return []

    def campaign_status(self) -> list[dict[str, object]]:
        return []


def desk_app(tmp_path: Path, text: str) -> tuple[TestClient, Database]:
    cfg = parse_config(text, "cti.yaml")
    db = Database.open(f"sqlite:///{tmp_path / 'pbx.db'}")
    db.customer_directory().upsert_customers([customer("100001")])
    sync_credentials(cfg, db.cti_store())
    desk = CtiDesk(cfg, FakeCallControl(), FakeAgentControl())
    tokens = ApiTokens([ApiToken("all", hashlib.sha256(TOKEN.encode()).digest(),
                                 frozenset({"stats", "cdrs", "calls"}), "supervisor")])
    return TestClient(build_http_app(View(cfg), desk, db, tokens=tokens)), db


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, Database]]:
    app, db = desk_app(tmp_path, CONFIG.replace("cti:\n", "cti:\n" + PAUSE_CODES, 1))
    with app:
        yield app, db
    db.close()


def login(client: TestClient, extension: str) -> dict[str, str]:
    answer = client.post("/api/cti/login",
                         json={"extension": extension, "password": PASSWORDS[extension]})
    assert answer.status_code == 200, answer.text
    client.cookies.clear()
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def test_desk_page_carries_the_configured_language(
    client: tuple[TestClient, Database], tmp_path: Path
) -> None:
    app, _ = client
    page = app.get("/desk")
    assert page.status_code == 200 and 'data-default-language="en"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-cache"
    board = app.get("/wallboard")  # the wallboard the same way
    assert board.status_code == 200 and 'data-default-language="en"' in board.text
    assert "script-src 'self'" in board.headers["content-security-policy"]
    assert board.headers["cache-control"] == "no-cache"
    default_app, db = desk_app(tmp_path / "default", CONFIG)
    with default_app:
        assert 'data-default-language="de"' in default_app.get("/desk").text
        assert 'data-default-language="de"' in default_app.get("/wallboard").text
    db.close()
    assert app.get("/static/i18n.js").status_code == 200


def test_me_gives_language_and_pause_labels_in_both_languages(
    client: tuple[TestClient, Database],
) -> None:
    app, _ = client
    me = app.get("/api/cti/me", headers=login(app, "1001")).json()
    assert me["language"] == "en"
    assert me["pause_codes"] == [
        {"code": "break", "label": "Pause", "productive": False,
         "labels": {"de": "Pause", "en": "Break"}},
        {"code": "backoffice", "label": "Nacharbeit", "productive": True,
         "labels": {"de": "Nacharbeit", "en": "Nacharbeit"}},
    ]


def test_bad_desk_language_is_a_config_error() -> None:
    with pytest.raises(Exception, match=r"cti\.language") as failure:
        parse_config(CONFIG.replace("cti:\n", "cti:\n  language: fr\n", 1), "cti.yaml")
    assert "cti.yaml" in str(failure.value)
    with pytest.raises(Exception, match=r"labels"):
        parse_config(CONFIG.replace(
            "cti:\n", "cti:\n  pause_codes: [{code: x, label: X, labels: {fr: Y}}]\n", 1),
            "cti.yaml")


def test_search_names_only_where_the_form_shows_them(tmp_path: Path) -> None:
    # 1002's form hides the name (an agent rule); 1001 sees it read-only.
    hidden = CONFIG.replace(
        "permissions: {default: read_only, roles: {supervisor: read_write, admin: read_write}}",
        "permissions: {default: read_only, agents: {'1002': hidden}, "
        "roles: {supervisor: read_write, admin: read_write}}", 1)
    app, db = desk_app(tmp_path, hidden)
    with app:
        anna = app.get("/api/cti/customers?q=10000", headers=login(app, "1001")).json()
        ben = app.get("/api/cti/customers?q=10000", headers=login(app, "1002")).json()
    db.close()
    assert anna["customers"][0]["name"] == "Erika Muster"
    assert ben["customers"][0]["customer_no"] == "100001"
    assert "name" not in ben["customers"][0]
    assert "Erika" not in str(ben)


def test_history_is_for_desk_sessions_only(client: tuple[TestClient, Database]) -> None:
    app, db = client
    db.cdr_sink().write_cdr(CallDetailRecord(
        "c1", "inbound", "+4930111222", "+49800", 100.0, 105.0, 160.0, "answered",
        agent="1001", queue="billing", variables={"secret": "s3cret"}))
    path = "/api/cti/customers/100001/calls"
    assert app.get(path).status_code == 401
    assert app.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 403
    calls: list[dict[str, Any]] = app.get(path, headers=login(app, "1001")).json()["calls"]
    assert [c["call_id"] for c in calls] == ["c1"]
    assert calls[0]["answered_at"] == 105.0 and calls[0]["ended_at"] == 160.0
    assert "variables" not in calls[0] and "s3cret" not in str(calls)


def test_history_links_recordings_only_for_who_may_play_them(tmp_path: Path) -> None:
    # Two recorded calls of the customer (Anna's and Ben's) and one unrecorded; the history
    # carries recording_url exactly where GET /api/recordings/{id} would play it.
    def history(app: TestClient, extension: str) -> dict[str, dict[str, Any]]:
        answer = app.get("/api/cti/customers/100001/calls", headers=login(app, extension))
        assert answer.status_code == 200, answer.text
        return {c["call_id"]: c for c in answer.json()["calls"]}

    def calls(db: Database) -> None:
        sink = db.cdr_sink()
        for call_id, agent, recording, start in (("own", "1001", "2026/12/04/own-1.wav", 100.0),
                                                 ("other", "1002", "2026/12/04/oth-2.wav", 200.0),
                                                 ("plain", "1001", "", 300.0)):
            sink.write_cdr(CallDetailRecord(call_id, "inbound", "+4930111222", "+49800", start,
                                            start + 5, start + 60, "answered", agent=agent,
                                            queue="billing", recording=recording))

    for allowed in (True, False):
        text = CONFIG + f"recording: {{agents_may_listen: {str(allowed).lower()}}}\n"
        app, db = desk_app(tmp_path / str(allowed), text)
        calls(db)
        ids = {r.call_id: r.cdr_id for r in db.recording_store().recordings()}
        with app:
            anna, clara = history(app, "1001"), history(app, "1003")
            # The supervisor: every recording, each URL playable by the supervisor.
            assert clara["own"]["recording_url"] == f"/api/recordings/{ids['own']}"
            assert clara["other"]["recording_url"] == f"/api/recordings/{ids['other']}"
            assert clara["plain"]["recording_url"] is None
            assert "recording" not in clara["plain"] and "recording_expired" not in clara["own"]
            # Another agent's call: never a link, never the file's path.
            assert anna["other"]["recording_url"] is None
            assert "recording" not in anna["other"] and "oth-2" not in str(anna)
            if allowed:
                assert anna["own"]["recording_url"] == f"/api/recordings/{ids['own']}"
                assert app.get(f"/api/recordings/{ids['other']}",
                               headers=login(app, "1001")).status_code == 404
            else:
                assert anna["own"]["recording_url"] is None
                assert "recording" not in anna["own"] and "own-1" not in str(anna)
                # and the player route agrees: this agent may not listen at all
                assert app.get(f"/api/recordings/{ids['own']}",
                               headers=login(app, "1001")).status_code == 403
        db.close()


def test_history_says_when_the_retention_deleted_a_recording(
    client: tuple[TestClient, Database],
) -> None:
    app, db = client
    db.cdr_sink().write_cdr(CallDetailRecord(
        "old", "inbound", "+4930111222", "+49800", 100.0, 105.0, 160.0, "answered",
        agent="1001", queue="billing", recording="2020/01/01/old-1.wav"))
    assert db.recording_store().expire(before=1000.0, now=2000.0) == ["2020/01/01/old-1.wav"]
    calls = app.get("/api/cti/customers/100001/calls", headers=login(app, "1003")).json()["calls"]
    assert calls[0]["recording_url"] is None and calls[0]["recording_expired"] is True
