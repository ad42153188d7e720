"""The agent desktop and the supervisor wallboard in a real browser, against the live PBX.

Debian's headless Chromium (Playwright) opens /desk and signs in as agent 1001 with the SIP
password; 1001's pjsua2 phone is registered and answers automatically. A pjsua2 "customer"
calls the DID from 127.0.0.1 (the carrier trunk): the IVR looks the caller up by phone number
and queues the call to 1001. The test then checks what the agent sees and does:

- the pop shows the right customer (name, number, contract);
- read-only fields are read-only in the DOM, typing into one changes nothing, and a save of one
  sent from the page's own session is refused with 403;
- the editable name is changed in the form and saved, and the database holds the new value
  (through the API and straight from the SQLite file);
- supervisor 1009's /wallboard, in a second browser context, shows the call and 1001 on it;
- the agent records the call from the desk (the queue records on demand); afterwards the
  wallboard lists the recording with a player whose WAV the supervisor may fetch, the agent not
  (nor does the agent's history of the customer offer a player);
- both pages work under the HTTP perimeter's Content-Security-Policy (own scripts, styles and
  WebSocket only): the browser reports no violation.

A screenshot of each step is kept in test-artifacts/test_desk_browser/ (and of both pages when
a step fails).
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.pbx_harness import RunningPbx, base_config, start_pbx
from tests.support.softphone import Softphone, SoftphonePool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

DID = "+4930300"
CALLER = "+4917612340000"
CUSTOMER_NO = "555001"
OLD_NAME = "Erika Mustermann"
NEW_NAME = "Erika Musterfrau-Schulz"
CONTRACT = "MV-2024-007"
AGENT = {"extension": "1001", "name": "Anna Agent", "password": "anna-1001-Geheim"}
SUPERVISOR = {"extension": "1009", "name": "Ines Supervisor", "password": "ines-1009-Geheim",
              "role": "supervisor"}
UI_TIMEOUT_MS = 30_000  # generous: two busy cores run the PBX, two phones and a browser


def desk_config() -> dict[str, Any]:
    config = base_config([dict(AGENT), dict(SUPERVISOR)])
    config["cti"] = {"password_cost": 10}  # scrypt on login; the default is slow on busy cores
    config["trunks"] = [{"name": "carrier", "host": "127.0.0.1", "port": 5070,
                         "inbound_addresses": ["127.0.0.1/32"]}]
    config["queues"] = [{"name": "support", "ring_timeout_s": 20, "wrap_up_s": 2,
                         "members": [{"agent": AGENT["extension"]}], "recording": "on_demand"},
                        {"name": "billing", "members": [{"agent": AGENT["extension"]}],
                         "wallboard": {"waiting_warn": 1, "waiting_alert": 2}}]
    config["customers"] = [{"customer_no": CUSTOMER_NO, "name": OLD_NAME, "phones": [CALLER],
                            "fields": {"contract": CONTRACT}, "groups": ["winter"]}]
    # not started: the wallboard shows its progress (0 of 1 contact)
    config["campaigns"] = [{"name": "winteraktion", "enabled": False, "caller_id": DID,
                            "target": {"groups": ["winter"]}, "mode": "preview",
                            "queue": "support"}]
    config["flows"] = {"identify": {"start": "who", "nodes": {
        "who": {"type": "lookup", "by": "phone", "found": "q", "not_found": "q"},
        "q": {"type": "queue", "queue": "support"}}}}
    config["dids"] = [{"number": DID, "flow": "identify"}]
    config["forms"] = {"default": {"title": "Kunde", "fields": [
        {"name": "customer_no", "label": "Kundennummer", "source": "customer.customer_no",
         "permissions": {"default": "read_only"}},
        {"name": "name", "label": "Name", "source": "customer.name",
         "permissions": {"default": "read_only", "roles": {"agent": "read_write"}}},
        {"name": "contract", "label": "Vertrag", "source": "customer.fields.contract",
         "permissions": {"default": "read_only"}},
        {"name": "note", "label": "Notiz", "type": "textarea",
         "permissions": {"default": "read_write"}},
    ]}}
    return config


class Steps:
    """Numbered screenshots of the pages under test, one file per step."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0
        self.pages: dict[str, Any] = {}

    def shot(self, page_name: str, what: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{page_name}-{what}.png"
        self.pages[page_name].screenshot(path=str(path), full_page=True)
        return path

    def shoot_all(self, what: str) -> None:
        for name, page in self.pages.items():
            try:
                self.count += 1
                page.screenshot(path=str(self.folder / f"{self.count:02d}-{name}-{what}.png"),
                                full_page=True, timeout=10_000)
            except Exception:  # the page may be gone; the original failure matters more
                continue


def agent_phone(phones: SoftphonePool, pbx: RunningPbx) -> Softphone:
    phone = phones.start("agent1001")
    account = phone.add_account(AGENT["extension"], AGENT["password"], domain="hotline.example",
                                registrar=f"127.0.0.1:{pbx.sip_port}", expires=300,
                                register=True, auto_answer=200, auto_answer_delay=1.0)
    assert phone.wait_for("reg_state", account=account, timeout=30)["code"] == 200
    return phone


def sign_in(page: Any, url: str, who: dict[str, str]) -> None:
    page.goto(url)
    page.locator("#login-extension").fill(who["extension"])
    page.locator("#login-password").fill(who["password"])
    page.locator("#login-form button[type=submit]").click()


def wait_until(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}: last={last!r}")


def stored_customer(pbx: RunningPbx) -> tuple[str, dict[str, str]]:
    db = pbx.workdir / "data" / "pbx.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        row = conn.execute("SELECT name, fields FROM customers WHERE customer_no = ?",
                           (CUSTOMER_NO,)).fetchone()
    assert row is not None, f"customer {CUSTOMER_NO} not in {db}"
    fields = row[1] if isinstance(row[1], dict) else json.loads(row[1] or "{}")
    return str(row[0]), fields


# A save sent from the desktop page with its own session (cookie + CSRF header), as a
# hand-crafted request would be: the server must refuse the read-only fields.
FORBIDDEN_SAVE_JS = """async (values) => {
  const csrf = document.cookie.split("; ").find((c) => c.startsWith("pbx_csrf="));
  const me = await (await fetch("/api/cti/me", { credentials: "same-origin" })).json();
  const call = me.calls.find((c) => c.call.state !== "ended");
  const response = await fetch(`/api/cti/calls/${encodeURIComponent(call.call.call_id)}/form`, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json",
               "X-CSRF-Token": decodeURIComponent(csrf.slice("pbx_csrf=".length)) },
    body: JSON.stringify({ values }),
  });
  return { status: response.status, body: await response.json() };
}"""


def test_agent_pop_read_only_fields_save_and_wallboard(
    tmp_path: Path, phones: SoftphonePool, chromium: Any, artifacts: Path
) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=UI_TIMEOUT_MS)
    pbx = start_pbx(tmp_path / "pbx", desk_config())
    steps = Steps(artifacts)
    desk_context = chromium.new_context(viewport={"width": 1280, "height": 1000})
    board_context = chromium.new_context(viewport={"width": 1400, "height": 900})
    try:
        for context in (desk_context, board_context):
            context.set_default_timeout(UI_TIMEOUT_MS)
        phone = agent_phone(phones, pbx)
        desk = steps.pages["desk"] = desk_context.new_page()
        board = steps.pages["wallboard"] = board_context.new_page()
        browser_errors: list[str] = []
        csp_violations: list[str] = []  # the pages run under the perimeter's strict CSP
        for page in (desk, board):
            page.on("pageerror", lambda error: browser_errors.append(str(error)))
            page.on("console", lambda message: csp_violations.append(message.text)
                    if "Content Security Policy" in message.text else None)
        try:
            # 1. The agent signs in on the desktop; its live connection comes up.
            sign_in(desk, f"{pbx.http}/desk", AGENT)
            expect(desk.locator("#desk")).to_be_visible()
            expect(desk.locator("#agent-name")).to_contain_text("Anna Agent (1001, agent)")
            expect(desk.locator("#connection")).to_have_text("live")
            steps.shot("desk", "signed-in")

            # 2. The supervisor opens the wallboard in a second browser context.
            sign_in(board, f"{pbx.http}/wallboard", SUPERVISOR)
            expect(board.locator("#board")).to_be_visible()
            expect(board.locator("#updated")).to_contain_text("updated")
            expect(board.locator("#agents tbody")).to_contain_text("Anna Agent (1001)")
            # Honest state: the supervisor's seat is logged in with no phone registered.
            ines = board.locator("#agents tbody tr", has_text="Ines Supervisor (1009)")
            expect(ines.locator(".no-phone")).to_have_text("no phone")
            anna = board.locator("#agents tbody tr", has_text="Anna Agent (1001)")
            expect(anna.locator(".no-phone")).to_have_count(0)
            expect(desk.locator("#no-phone")).to_be_hidden()  # Anna's phone is registered
            expect(board.locator("#kpi-calls")).to_have_css("font-size", "32px")  # its CSS file
            # Every configured queue from the start, before any call (no figures yet).
            for queue in ("support", "billing"):
                queue_row = board.locator("#queues tbody tr", has_text=queue)
                expect(queue_row).to_have_count(1)
                expect(queue_row.locator("td").nth(3)).to_have_text("–")
                expect(queue_row.locator("td").nth(9)).to_have_text("1 / 1")  # free / staffed
            expect(board.locator("#chart line.axis")).to_have_count(2)  # the chart's axes
            campaign = board.locator("#campaigns tbody tr", has_text="winteraktion")
            expect(campaign.locator("td").nth(2)).to_have_text(re.compile(r"0 / 1"))
            steps.shot("wallboard", "idle")

            # 3. The customer calls the DID; the call reaches the agent's phone, which answers.
            customer = phones.start("customer")
            account = customer.add_account(CALLER, domain="127.0.0.1")
            call = customer.make_call(account, f"sip:{DID}@127.0.0.1:{pbx.sip_port}")
            incoming = phone.wait_for("incoming", timeout=45)
            assert CALLER in incoming["from"], incoming
            phone.wait_for("state", call=incoming["call"], state="CONFIRMED", timeout=30)
            customer.wait_for("state", call=call, state="CONFIRMED", timeout=30)

            # 4. The pop shows the right customer.
            expect(desk.locator("#pop-panel")).to_be_visible()
            expect(desk.locator("#pop-title")).to_have_text("Kunde")
            expect(desk.locator("#call-state")).to_have_text("connected")
            expect(desk.locator("#call-info")).to_contain_text(CALLER)
            expect(desk.locator("#field-name")).to_have_value(OLD_NAME)
            expect(desk.locator("#field-customer_no")).to_have_value(CUSTOMER_NO)
            expect(desk.locator("#field-contract")).to_have_value(CONTRACT)
            steps.shot("desk", "pop")

            # 4b. The queue records on demand: the agent starts the recording on the desk.
            expect(desk.locator("#call-recording")).to_be_hidden()
            desk.locator('[data-call-action="record"]').click()
            expect(desk.locator("#call-recording")).to_be_visible()
            expect(desk.locator('[data-call-action="record"]')).to_be_disabled()
            expect(desk.locator('[data-call-action="stop-record"]')).to_be_enabled()
            steps.shot("desk", "recording")

            # 5. Read-only fields are locked in the page; typing into one changes nothing.
            for name, value in (("customer_no", CUSTOMER_NO), ("contract", CONTRACT)):
                field = desk.locator(f"#field-{name}")
                expect(field).to_be_disabled()
                expect(field).not_to_be_editable()
                expect(field).to_have_attribute("readonly", "")
                expect(desk.locator(f'[data-field="{name}"] .lock')).to_have_text("read-only")
                field.click(force=True)
                desk.keyboard.type("999")
                expect(field).to_have_value(value)
            expect(desk.locator("#field-name")).to_be_editable()
            expect(desk.locator("#field-note")).to_be_editable()
            refused = desk.evaluate(FORBIDDEN_SAVE_JS, {"customer_no": "999999"})
            assert refused["status"] == 403, refused
            refused = desk.evaluate(FORBIDDEN_SAVE_JS, {"contract": "XX-0000"})
            assert refused["status"] == 403, refused
            steps.shot("desk", "read-only-refused")

            # 6. The agent corrects the name and saves; the database has the new name.
            desk.locator("#field-name").fill(NEW_NAME)
            desk.locator("#field-note").fill("Name nach Heirat geändert")
            steps.shot("desk", "name-edited")
            desk.locator("#pop-save").click()
            expect(desk.locator("#pop-message")).to_have_text(re.compile(r"Saved 2 change"))
            expect(desk.locator("#field-name")).to_have_value(NEW_NAME)
            steps.shot("desk", "saved")
            api_view = desk_context.request.get(f"{pbx.http}/api/cti/customers/{CUSTOMER_NO}")
            assert api_view.ok, api_view.text()
            fields = {f["name"]: f["value"] for f in api_view.json()["form"]["fields"]}
            assert fields["name"] == NEW_NAME and fields["customer_no"] == CUSTOMER_NO, fields
            assert fields["contract"] == CONTRACT, fields
            _, record = wait_until(lambda: (stored := stored_customer(pbx))[0] == NEW_NAME
                                      and stored, 15, "the new name in pbx.db")
            assert record == {"contract": CONTRACT}, record

            # 7. The wallboard shows the call and the agent on it.
            expect(board.locator("#calls tbody")).to_contain_text(CALLER)
            expect(board.locator("#calls tbody")).to_contain_text("connected")
            agent_row = board.locator("#agents tbody tr", has_text="Anna Agent (1001)")
            expect(agent_row.locator(".state")).to_have_attribute("data-state", "on_call")
            # The caller by name and number (not the call's id), and how long they talk.
            expect(agent_row.locator("td").nth(3)).to_have_text(f"{NEW_NAME} ({CALLER})")
            expect(agent_row.locator("td").nth(4)).to_have_text(re.compile(r"^\d+ s$|^\d+:\d\d$"))
            support = board.locator("#queues tbody tr", has_text="support")
            expect(support.locator("td").nth(3)).to_have_text(re.compile(r"100 % / 20 s"))
            expect(support.locator("td").nth(3)).to_have_attribute("data-level", "ok")
            expect(support.locator("td").nth(4)).to_have_text(re.compile(r"^\d+ s$"))  # ASA
            expect(board.locator("#kpi-calls")).to_have_text("1")
            expect(board.locator("#calls tbody")).to_contain_text("●")  # being recorded
            steps.shot("wallboard", "on-call")

            # 8. The customer hangs up: the desktop offers wrap-up, the wallboard clears.
            customer.hangup(call)
            phone.wait_for("disconnected", call=incoming["call"], timeout=30)
            expect(desk.locator("#call-state")).to_have_text("ended")
            expect(desk.locator("#wrapup-panel")).to_be_visible()
            steps.shot("desk", "ended")
            expect(board.locator("#kpi-calls")).to_have_text("0")
            steps.shot("wallboard", "after-call")

            # 9. The supervisor can play the recording on the wallboard; the agent cannot
            # (recording.agents_may_listen is false by default), so the desk shows none.
            audio = board.locator("#recordings-panel audio").first
            expect(audio).to_have_attribute("src", re.compile(r"^/api/recordings/[0-9]+$"))
            src = audio.get_attribute("src")
            played = board_context.request.get(f"{pbx.http}{src}")
            assert played.ok and played.headers["content-type"] == "audio/wav", played.status
            assert played.body()[:4] == b"RIFF" and len(played.body()) > 16000
            assert desk_context.request.get(f"{pbx.http}{src}").status == 403
            expect(desk.locator("#recordings-panel")).to_be_hidden()
            # … nor a player in the customer's history (no recording_url for this agent).
            expect(desk.locator("#history tbody tr", has_text=CALLER).first).to_be_visible()
            expect(desk.locator("#history .history-play")).to_have_count(0)
            steps.shot("wallboard", "recording")
            assert browser_errors == [], browser_errors
            assert csp_violations == [], csp_violations
        except BaseException:
            steps.shoot_all("failure")
            raise
    finally:
        for context in (desk_context, board_context):
            context.close()
        pbx.stop()
