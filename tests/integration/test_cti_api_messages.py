"""The CTI API's refusals in the agent's language: real refusals triggered through the real
Starlette app (the `cti` fixture of test_cti_api) with ``Accept-Language: de`` carry a German
``message`` from `pbx.cti.messages`; ``error`` stays English; English or no header keeps the
English text (and no header adds nothing)."""

from __future__ import annotations

from typing import Any

from tests.integration.test_cti_api import Cti, cti  # noqa: F401  (the fixture)
from tests.unit.cti.fakes import PASSWORDS

DE = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}


def refusal(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def test_every_refusal_the_desk_and_wallboard_meet_is_german(cti: Cti) -> None:  # noqa: F811
    anna, clara = cti.login("1001"), cti.login("1003")
    post, get = cti.client.post, cti.client.get
    cti.desk.on_call_queued("q1", "billing", at=1000.0, caller="+4930111222")
    cti.present("q1", "1001", queue="billing")  # ringing at Anna's
    cti.present("c1", "1001")
    cti.desk.on_call_answered("c1")
    de = {**DE}
    hits = [
        # call actions in the wrong state, on a call that is not hers, bad targets
        refusal(post("/api/cti/calls/q1/hold", headers=anna | de), 409),
        refusal(post("/api/cti/calls/q1/resume", headers=anna | de), 409),
        refusal(post("/api/cti/calls/c1/resume", headers=anna | de), 409),
        refusal(post("/api/cti/calls/q1/transfer", headers=anna | de,
                     json={"target": "agent:1002"}), 409),
        refusal(post("/api/cti/calls/c1/transfer", headers=anna | de,
                     json={"target": "somewhere"}), 422),
        refusal(post("/api/cti/calls/c1/transfer", headers=anna | de,
                     json={"target": "agent:1099"}), 422),
        refusal(post("/api/cti/calls/c1/transfer", headers=anna | de, json={}), 400),
        refusal(post("/api/cti/calls/c1/transfer", headers=anna | de,
                     json={"target": "agent:1002", "attended": "yes"}), 400),
        refusal(post("/api/cti/calls/nope/hangup", headers=anna | de), 404),
        refusal(post("/api/cti/calls/c1/disposition", headers=anna | de,
                     json={"disposition": "great"}), 422),
        # moving a waiting caller (wallboard)
        refusal(post("/api/cti/calls/q1/move", headers=anna | de,
                     json={"target": "agent:1002"}), 403),
        refusal(post("/api/cti/calls/q1/move", headers=clara | de,
                     json={"target": "number:+4930999"}), 422),
        refusal(post("/api/cti/calls/q1/move", headers=clara | de,
                     json={"target": "queue:nowhere"}), 422),
        refusal(post("/api/cti/calls/q1/move", headers=clara | de,
                     json={"target": "queue:billing"}), 409),
        refusal(post("/api/cti/calls/c1/move", headers=clara | de,
                     json={"target": "agent:1002"}), 409),
        # agent state, the pause code
        refusal(post("/api/cti/agents/1002/pause", headers=anna | de), 403),
        refusal(post("/api/cti/agents/1001/pause", headers=anna | de,
                     json={"reason": "nap"}), 400),
        refusal(post("/api/cti/agents/1001/login", headers=anna | de,
                     json={"paused": "no"}), 400),
        # the form
        refusal(post("/api/cti/calls/c1/form", headers=anna | de, json={}), 400),
        refusal(post("/api/cti/calls/c1/form", headers=anna | de,
                     json={"values": {"bogus": "1"}}), 400),
        refusal(post("/api/cti/calls/c1/form", headers=anna | de,
                     json={"values": {"waited": "1"}}), 403),
        refusal(post("/api/cti/calls/c1/form", headers=anna | de,
                     json={"values": {"contract": "nope", "tier": "platinum"}}), 422),
        # search, click-to-dial, the session
        refusal(get("/api/cti/customers?q=m", headers=anna | de), 400),
        refusal(get("/api/cti/customers/999999", headers=anna | de), 404),
        refusal(post("/api/cti/calls", headers=anna | de, json={"number": "call mom"}), 422),
        refusal(post("/api/cti/login", headers=de, json={"extension": "1001",
                                                         "password": "wrong"}), 401),
    ]
    for body in hits:
        assert body["error"].isascii() and body["message"] != body["error"], body
    by_error = {body["error"]: body["message"] for body in hits}
    assert by_error["cannot hold a call that is offered (needs connected)"] == (
        "Halten geht nicht: der Anruf ist angeboten (nötig: verbunden)")
    assert by_error["the caller is waiting in 'billing' already"] == (
        "Der Anrufer wartet schon in 'billing'")
    form = hits[21]
    assert form["fields"]["tier"] != form["field_messages"]["tier"]
    assert form["message"].startswith("Ungültige Werte: ")
    # the login lockout
    for _ in range(3):
        post("/api/cti/login", json={"extension": "1001", "password": "wrong"})
    locked = refusal(post("/api/cti/login", headers=de,
                          json={"extension": "1001", "password": PASSWORDS["1001"]}), 429)
    assert locked["message"].startswith("Zu viele fehlgeschlagene Anmeldungen")


def test_websocket_refusal_in_german(cti: Cti) -> None:  # noqa: F811
    with cti.client.websocket_connect("/api/cti/ws", headers=DE) as ws:
        ws.send_json({"type": "auth", "token": "forged"})
        error = ws.receive_json()
    assert error["error"] == "unknown or expired session; log in again"
    assert error["message"] == "Unbekannte oder abgelaufene Sitzung; bitte neu anmelden"


def test_english_and_no_language(cti: Cti) -> None:  # noqa: F811
    anna = cti.login("1001")
    cti.present("q1", "1001")
    hold = "/api/cti/calls/q1/hold"
    english = refusal(cti.client.post(hold, headers=anna | {"Accept-Language": "en-GB"}), 409)
    assert english["message"] == english["error"] == (
        "cannot hold a call that is offered (needs connected)")
    french = refusal(cti.client.post(hold, headers=anna | {"Accept-Language": "fr, de;q=0"}), 409)
    assert french["message"] == french["error"]
    plain = refusal(cti.client.post(hold, headers=anna), 409)
    assert "message" not in plain and plain["error"] == english["error"]
