"""The supervisor listens in from the wallboard, in a real browser against the live PBX.

Supervisor 2001 signs in on /wallboard in Debian's headless Chromium; 2001's pjsua2 phone is
registered and answers when it rings. A customer calls the queue and agent 1001's phone takes
the call. On the wallboard, 1001's row offers Listen, Whisper and Barge; clicking Listen rings
2001's phone (and nobody else's), the row then shows the supervisor on the call in listen mode;
Whisper changes the mode on the same phone call (no new ringing), Stop hangs that phone up
while the customer and the agent go on talking. After the call, Pause and Log out on the
agent's row force the agent into a pause and out of the queues. The browser speaks German, so
the buttons, the notices and the monitoring line are the German ones (Mithören, "Ihr Telefon
klingelt", "2001 hört mit" …). Screenshots in test-artifacts/test_supervise_browser/.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_desk_browser import UI_TIMEOUT_MS, Steps, sign_in
from tests.integration.live_calls import agent_phone, carrier_call
from tests.integration.pbx_harness import base_config, start_pbx
from tests.support.softphone import SoftphonePool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

DID = "+4930500"
CALLER = "+4917611223344"
AGENT = {"extension": "1001", "name": "Anna Agent", "password": "pw1001x"}
SUPERVISOR = {"extension": "2001", "name": "Ines Schulz", "password": "pw2001x",
              "role": "supervisor"}


def config() -> dict[str, Any]:
    settings = base_config([dict(AGENT), dict(SUPERVISOR)])
    settings["cti"] = {"password_cost": 10}
    settings["trunks"] = [{"name": "carrier", "host": "127.0.0.1", "port": 5070,
                           "inbound_addresses": ["127.0.0.1/32"]}]
    settings["queues"] = [{"name": "support", "ring_timeout_s": 20, "wrap_up_s": 1,
                           "members": [{"agent": "1001"}]}]
    settings["dids"] = [{"number": DID, "queue": "support"}]
    return settings


def test_listen_from_the_wallboard_rings_the_supervisors_phone(
    tmp_path: Path, phones: SoftphonePool, chromium: Any, artifacts: Path
) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=UI_TIMEOUT_MS)
    pbx = start_pbx(tmp_path / "pbx", config())
    context = chromium.new_context(viewport={"width": 1280, "height": 800}, locale="de-DE")
    steps = Steps(artifacts)
    try:
        board = context.new_page()
        steps.pages["wallboard"] = board
        errors: list[str] = []
        board.on("pageerror", lambda error: errors.append(str(error)))
        agent = agent_phone(phones, pbx, "1001")
        supervisor = agent_phone(phones, pbx, "2001", name="supervisor2001")
        sign_in(board, f"{pbx.http}/wallboard", SUPERVISOR)
        expect(board.locator("#board")).to_be_visible()
        try:
            caller, call = carrier_call(phones, pbx, "caller", CALLER, DID)
            agent_call = agent.wait_for("incoming", timeout=20)["call"]
            row = board.locator("#agents tbody tr", has_text="Anna Agent (1001)")
            listen = row.locator("button.monitor[data-mode=listen]")
            expect(listen).to_be_visible()
            expect(listen).to_have_text("Mithören")
            expect(row.locator("button.monitor[data-mode=whisper]")).to_be_visible()
            expect(row.locator("button.monitor[data-mode=barge]")).to_be_visible()
            steps.shot("wallboard", "talking")

            listen.click()
            rung = supervisor.wait_for("incoming", timeout=20)
            supervisor.wait_for("state", call=rung["call"], state="CONFIRMED", timeout=15)
            expect(row.locator(".monitoring")).to_have_text("2001 hört mit")
            expect(listen).to_have_attribute("aria-pressed", "true")
            # the supervisor's own row says how they are on the call, not "busy"
            own = board.locator("#agents tbody tr", has_text="Ines Schulz (2001)")
            expect(own.locator(".state").first).to_have_text("hört mit")
            expect(own.locator(".state").first).to_have_attribute("data-state", "monitoring")
            expect(board.locator("#supervise-notice")).to_have_text(
                "Mithören: Ihr Telefon klingelt – bitte annehmen")
            agent.assert_no_event("incoming", within=0.5, call=lambda c: c != agent_call)
            steps.shot("wallboard", "listening")

            whisper = row.locator("button.monitor[data-mode=whisper]")
            whisper.click()
            expect(whisper).to_have_attribute("aria-pressed", "true")
            expect(row.locator(".monitoring")).to_have_text("2001 flüstert")
            expect(board.locator("#supervise-notice")).to_have_text(
                "Flüstern: Modus gewechselt")
            assert len(supervisor.events("incoming")) == 1  # the same phone call
            steps.shot("wallboard", "whispering")

            expect(row.locator("button.monitor-stop")).to_have_text("Beenden")
            row.locator("button.monitor-stop").click()
            supervisor.wait_for("disconnected", call=rung["call"], timeout=15)
            expect(row.locator(".monitoring")).to_have_count(0)
            caller.assert_no_event("disconnected", within=0.5, call=call)
            steps.shot("wallboard", "stopped")
            caller.hangup(call)
            agent.wait_for("disconnected", call=agent_call, timeout=15)
            expect(row.locator("button.monitor")).to_have_count(0)  # nothing to listen to

            # Force a pause, then a logout, from the agent's row.
            row.locator("button.force-pause").click()
            expect(row.locator(".state")).to_have_attribute("data-state", "paused")
            expect(row.locator(".state")).to_have_text(re.compile(r"^Pause \(.+\)$"))
            expect(board.locator("#supervise-notice")).to_have_text("Anna Agent: in Pause")
            row.locator("button.force-logout").click()
            expect(row.locator(".state")).to_have_attribute("data-state", "logged_out")
            expect(row.locator(".state")).to_have_text("abgemeldet")
            expect(row.locator("button.force-logout")).to_have_count(0)
            steps.shot("wallboard", "logged-out")
            assert errors == [], errors
        except BaseException:
            steps.shoot_all("failure")
            raise
    finally:
        context.close()
        pbx.stop()
