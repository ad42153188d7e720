"""The agent desktop as a German hotline's agent sees it: language, layout, timers, ring alert,
shortcuts, search and history — in Debian's Chromium against one live PBX for the module.

The PBX is configured with ``cti.language: en`` so that each source of the language shows:

- a browser speaking neither German nor English (fr-FR) gets the configured language (the
  login page in English); the switch on the page turns it German and a reload keeps it
  (localStorage); a wrong password is told in German, and so is the API's refusal of a pause code
  the configuration no longer has; no English label is left in the German
  page (text, tooltips, placeholders); back to English on the signed-in desk;
- a German browser (de-DE) gets German although the configuration says English.

Then a real call (pjsua2 customer through the carrier trunk → IVR lookup → queue → agent 1001's
pjsua2 phone, which answers after a few seconds of ringing), seen on the German desk:

- while it rings: the call panel lights up and says "klingelt", the page made its ring tones
  (WebAudio oscillators started) and showed a browser notification (permission granted);
- the pop sits exactly where its empty space was before the call, and hang-up, transfer and
  Ready stay where they were, ringing, talking and after the call (nothing jumps);
- at 1280×800 and 1920×1080, in German and in English: the pop, Save, hang-up, hold,
  transfer and the state controls are inside the viewport with the page not scrolled;
  screenshots of each are kept in test-artifacts/test_desk_i18n_layout/;
- the call timer counts; H holds and resumes (not while typing in a field); hang-up brings the
  wrap-up with its countdown (inside the window at both sizes), W goes to the disposition, R
  ends the wrap-up (bereit), P pauses with the chosen reason (Mittagspause), T goes to the
  transfer target;
- the agent starts the recording from the desk (the queue records on demand); the customer's
  history then shows the call (eingehend, angenommen, how long) with a small player, since
  ``recording.agents_may_listen`` is on and it is 1001's own call: its button plays the WAV
  in the browser (fetched with the desk's session) and pauses it; a search for part of the
  name lists "Erika Mustermann" with her customer number.

Then the supervisor's wallboard, in German and English (a French browser: the configured
English first; the switch turns it German, a reload keeps it; a wrong password and an agent
are refused in German, and so is the API's refusal of listening in on an ended call): headings,
KPI labels, columns, the agents' states and "kein Telefon", the supervise buttons (Mithören,
Flüstern, Aufschalten, Ausloggen with German tooltips, drawn by the page's own code for a
talking call), the chart's axis label, the campaign's state; no English label left on the
German page; back to English. Screenshots wallboard-*.png.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_desk_browser import (
    AGENT,
    CALLER,
    CUSTOMER_NO,
    DID,
    OLD_NAME,
    SUPERVISOR,
    desk_config,
)
from tests.integration.pbx_harness import RunningPbx, start_pbx
from tests.support.softphone import Softphone, SoftphonePool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

UI_TIMEOUT_MS = 30_000
SIZES = {"1280x800": {"width": 1280, "height": 800}, "1920x1080": {"width": 1920, "height": 1080}}

# English words of the desk's own labels that must not show in the German page.
ENGLISH_LABELS = ("Agent desktop", "Sign out", "Sign in", "Ready", "Hang up", "Hold", "Resume",
                  "Transfer", "Save", "Current call", "My state", "Log in to queues",
                  "Log out of queues", "Customers", "Search", "Dial", "Wrap-up", "Language",
                  "no call", "Break", "Lunch", "available", "logged out", "live", "offline",
                  "Keys", "Caller", "attended", "Complete", "Cancel", "Extension", "Password")

# Records what the page asks of the browser's alert APIs (the APIs themselves still run).
ALERT_PROBE = """
window.__alerts = { notifications: [], tones: 0, frequencies: [], contexts: [] };
if (window.Notification) {
  const Real = window.Notification;
  const Probe = function (title, options) {
    window.__alerts.notifications.push({ title, body: (options || {}).body || "" });
    return new Real(title, options);
  };
  Probe.prototype = Real.prototype;
  Object.defineProperty(Probe, "permission", { get: () => Real.permission });
  Probe.requestPermission = (...args) => Real.requestPermission(...args);
  window.Notification = Probe;
}
const realStart = OscillatorNode.prototype.start;
OscillatorNode.prototype.start = function (...args) {
  window.__alerts.tones += 1;
  window.__alerts.frequencies.push(this.frequency.value);
  window.__alerts.contexts.push(this.context.state);  // "running": the browser lets it sound
  return realStart.apply(this, args);
};
"""

# Every element that lies outside the viewport (or the page scrolled): [] when all are in.
OUTSIDE_VIEWPORT_JS = """(selectors) => {
  const out = [];
  if (window.scrollX || window.scrollY) out.push(`scrolled ${window.scrollX},${window.scrollY}`);
  for (const selector of selectors) {
    const node = document.querySelector(selector);
    if (!node) { out.push(`${selector}: missing`); continue; }
    const box = node.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) out.push(`${selector}: not shown`);
    if (box.left < 0 || box.top < 0 || box.right > innerWidth || box.bottom > innerHeight) {
      out.push(`${selector}: ${JSON.stringify(box)} outside ${innerWidth}x${innerHeight}`);
    }
  }
  return out;
}"""
IMPORTANT = ("#pop-panel", "#pop-save", "#field-name", "#field-concern",
             "[data-call-action=hangup]", "[data-call-action=hold]", "#transfer-target",
             "#transfer-submit",
             "[data-agent-action=ready]", "[data-agent-action=pause]", "#pause-reason",
             "#call-timer", "#agent-state", "#state-timer")

# All the words a German page shows an agent, tooltips, placeholders and labels included.
PAGE_WORDS_JS = """() => {
  const words = [document.body.innerText, document.title];
  for (const node of document.querySelectorAll("[title], [placeholder], [aria-label]")) {
    if (node.closest("[hidden]")) continue;
    words.push(node.title || "", node.placeholder || "", node.getAttribute("aria-label") || "");
  }
  return words.join("\\n");
}"""


def module_config() -> dict[str, Any]:
    config = desk_config()
    config["cti"] = {"password_cost": 10, "language": "en"}
    config["queues"][0]["wrap_up_s"] = 120  # long: R (ready) must end it
    config["recording"] = {"agents_may_listen": True}  # 1001 plays their own calls
    # The IVR's data in the pop: the concern the caller chose (set here, as a menu would).
    nodes = config["flows"]["identify"]["nodes"]
    nodes["who"].update(found="concern", not_found="concern")
    nodes["concern"] = {"type": "set", "variables": {"concern": "Rechnung"}, "next": "q"}
    config["forms"]["default"]["fields"].insert(
        1, {"name": "concern", "label": "Anliegen", "source": "concern",
            "permissions": {"default": "read_only"}})
    return config


@pytest.fixture(scope="module")
def pbx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPbx]:
    running = start_pbx(tmp_path_factory.mktemp("desk-i18n"), module_config())
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    """test-artifacts/test_desk_i18n_layout/, emptied once for the module (both tests' shots)."""
    folder = ARTIFACTS / Path(__file__).stem
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return folder


def sign_in(page: Any, url: str) -> None:
    page.goto(url)
    page.locator("#login-extension").fill(AGENT["extension"])
    page.locator("#login-password").fill(AGENT["password"])
    page.locator("#login-form button[type=submit]").click()


def labels_left(page: Any, words: tuple[str, ...]) -> list[str]:
    text = page.evaluate(PAGE_WORDS_JS)
    return [w for w in words if re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", text)]


def shot(page: Any, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"))  # the viewport: what is above the fold


def test_language_from_config_browser_and_switch(
    pbx: RunningPbx, chromium: Any, artifacts: Path
) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=UI_TIMEOUT_MS)
    status, _, body = pbx.request("GET", "/desk")
    assert status == 200 and b'data-default-language="en"' in body, body[:300]
    context = chromium.new_context(viewport=SIZES["1280x800"], locale="fr-FR")
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{pbx.http}/desk")
        assert page.evaluate("navigator.languages")[0].startswith("fr"), "locale not applied"
        # Neither German nor English in the browser: the configured language.
        expect(page.locator("#login h2")).to_have_text("Sign in")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        shot(page, artifacts, "login-config-en")
        # The switch: German, and still German after a reload.
        page.locator("#language").select_option("de")
        expect(page.locator("#login h2")).to_have_text("Anmelden")
        page.reload()
        expect(page.locator("#login h2")).to_have_text("Anmelden")
        expect(page.locator("#language")).to_have_value("de")
        page.locator("#login-extension").fill(AGENT["extension"])
        page.locator("#login-password").fill("not-the-password")
        page.locator("#login-form button[type=submit]").click()
        expect(page.locator("#login-error")).to_have_text("Nebenstelle oder Passwort falsch.")
        sign_in(page, f"{pbx.http}/desk")
        expect(page.locator("#desk")).to_be_visible()
        expect(page.locator("#connection")).to_have_text("verbunden")
        expect(page.locator("[data-agent-action=ready]")).to_have_text("Bereit")
        expect(page.locator("#pause-reason option").first).to_have_text("Pause")
        expect(page.locator("#call-state")).to_have_text("kein Anruf")
        expect(page.locator("#no-phone")).to_have_text("kein Telefon")  # 1001 registered none
        assert labels_left(page, ENGLISH_LABELS) == []
        shot(page, artifacts, "idle-de-switched")
        # A pause code the configuration no longer has (reloaded while the desk was open): the
        # API refuses, and the German desk shows its refusal in German (Accept-Language).
        page.evaluate("""() => {
          const select = document.querySelector('#pause-reason');
          select.append(new Option('gone', 'gone'));
          select.value = 'gone';
        }""")
        page.locator("[data-agent-action=pause]").click()
        expect(page.locator("#state-error")).to_contain_text(
            "Der Pausengrund muss einer dieser Codes sein: ")
        # … and back to English, on the signed-in desk.
        page.locator("#language").select_option("en")
        expect(page.locator("[data-agent-action=ready]")).to_have_text("Ready")
        expect(page.locator("#pop-save")).to_have_text("Save")
        expect(page.locator("#connection")).to_have_text("live")
        expect(page.locator("#pause-reason option").first).to_have_text("Break")
        assert errors == [], errors
    finally:
        context.close()


def agent_phone(phones: SoftphonePool, pbx: RunningPbx) -> Softphone:
    phone = phones.start("agent1001")
    account = phone.add_account(AGENT["extension"], AGENT["password"], domain="hotline.example",
                                registrar=f"127.0.0.1:{pbx.sip_port}", expires=300,
                                register=True, auto_answer=200, auto_answer_delay=6.0)
    assert phone.wait_for("reg_state", account=account, timeout=30)["code"] == 200
    return phone


def check_layout(page: Any, folder: Path, language: str) -> None:
    for size_name, size in SIZES.items():
        page.set_viewport_size(size)
        page.evaluate("window.scrollTo(0, 0)")
        outside = page.evaluate(OUTSIDE_VIEWPORT_JS, list(IMPORTANT))
        shot(page, folder, f"call-{language}-{size_name}")
        assert outside == [], f"{language} {size_name}: {outside}"


def clock_seconds(text: str) -> int:
    match = re.fullmatch(r"(\d+):(\d\d)", text.strip())
    assert match, f"not a running clock: {text!r}"
    return int(match[1]) * 60 + int(match[2])


def test_german_desk_during_a_call(
    pbx: RunningPbx, phones: SoftphonePool, chromium: Any, artifacts: Path
) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=UI_TIMEOUT_MS)
    context = chromium.new_context(viewport=SIZES["1280x800"], locale="de-DE")
    context.grant_permissions(["notifications"], origin=pbx.http)
    context.add_init_script(ALERT_PROBE)
    page = context.new_page()
    try:
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        phone = agent_phone(phones, pbx)
        sign_in(page, f"{pbx.http}/desk")
        expect(page.locator("#desk")).to_be_visible()
        # A German browser: German, although cti.language says en.
        expect(page.locator("#connection")).to_have_text("verbunden")
        expect(page.locator("#agent-state")).to_have_text("bereit")
        expect(page.locator("#pop-empty")).to_be_visible()
        idle_pop = page.locator("#pop-panel").bounding_box()
        controls = ("[data-call-action=hangup]", "#transfer-submit", "[data-agent-action=ready]")

        def where() -> list[tuple[float, float]]:
            return [(box["x"], box["y"]) for box in
                    (page.locator(selector).bounding_box() for selector in controls)]

        idle_controls = where()
        shot(page, artifacts, "idle-de-1280x800")

        # The customer calls; 1001's phone rings for six seconds before it answers.
        customer = phones.start("customer")
        account = customer.add_account(CALLER, domain="127.0.0.1")
        call = customer.make_call(account, f"sip:{DID}@127.0.0.1:{pbx.sip_port}")
        expect(page.locator("#call-panel")).to_have_class(re.compile(r"\bringing\b"))
        expect(page.locator("#call-state")).to_have_text("klingelt")
        assert where() == idle_controls, "the call controls moved when the call came"
        shot(page, artifacts, "ringing-de-1280x800")
        alerts = page.evaluate("window.__alerts")
        assert alerts["tones"] >= 2, alerts  # one ring: two tones
        assert set(alerts["frequencies"]) == {880, 660}, alerts
        assert set(alerts["contexts"]) == {"running"}, alerts
        assert alerts["notifications"] and CALLER in alerts["notifications"][0]["body"], alerts
        assert alerts["notifications"][0]["title"] == "Anruf für Sie", alerts
        incoming = phone.wait_for("incoming", timeout=45)
        phone.wait_for("state", call=incoming["call"], state="CONFIRMED", timeout=30)
        expect(page.locator("#call-state")).to_have_text("verbunden")
        expect(page.locator("#call-panel")).not_to_have_class(re.compile(r"\bringing\b"))
        expect(page.locator("#field-name")).to_have_value(OLD_NAME)
        expect(page.locator("#field-concern")).to_have_value("Rechnung")  # from the IVR
        expect(page.locator("#pop-empty")).to_be_hidden()
        assert page.locator("#pop-panel").bounding_box()["y"] == idle_pop["y"], "the pop moved"
        assert page.locator("#pop-panel").bounding_box()["x"] == idle_pop["x"], "the pop moved"
        assert where() == idle_controls, "the call controls moved when the call was answered"

        # German labels, then the layout at both sizes in both languages.
        for selector, text in (("[data-agent-action=ready]", "Bereit"),
                               ("[data-agent-action=pause]", "Pause"),
                               ("[data-call-action=hangup]", "Auflegen"),
                               ("[data-call-action=hold]", "Halten"),
                               ("#transfer-submit", "Weiterleiten"), ("#pop-save", "Speichern"),
                               ('[data-field="contract"] .lock', "nur lesen")):
            expect(page.locator(selector)).to_have_text(text)
        expect(page.locator("[data-call-action=hold]")).to_have_attribute("title", "Halten (H)")
        expect(page.locator("#agent-state")).to_have_text("im Gespräch")
        assert labels_left(page, ENGLISH_LABELS) == []
        check_layout(page, artifacts, "de")
        page.locator("#language").select_option("en")
        expect(page.locator("[data-call-action=hangup]")).to_have_text("Hang up")
        expect(page.locator("#call-state")).to_have_text("connected")
        expect(page.locator("#agent-state")).to_have_text("on call")
        check_layout(page, artifacts, "en")
        page.locator("#language").select_option("de")
        page.set_viewport_size(SIZES["1280x800"])

        # The agent records the call (the queue records on demand).
        page.locator("[data-call-action=record]").click()
        expect(page.locator("#call-recording")).to_have_text("● Aufnahme")

        # The call timer counts.
        first = clock_seconds(page.locator("#call-timer").inner_text())
        time.sleep(3.1)  # the display ticks once a second: at least two ticks later
        assert first + 2 <= clock_seconds(page.locator("#call-timer").inner_text()) <= first + 30

        # Shortcuts: H holds and resumes, but not while typing in a field.
        page.locator("#field-note").click()
        page.keyboard.type("h")
        expect(page.locator("#field-note")).to_have_value("h")
        page.keyboard.press("Escape")
        page.keyboard.press("h")
        expect(page.locator("#call-state")).to_have_text("gehalten")
        page.keyboard.press("h")
        expect(page.locator("#call-state")).to_have_text("verbunden")
        page.keyboard.press("t")
        expect(page.locator("#transfer-target")).to_be_focused()
        page.keyboard.press("Escape")
        talk_s = clock_seconds(page.locator("#call-timer").inner_text())

        # Hang up: wrap-up counts down, W goes to the disposition, R ends the wrap-up.
        page.locator("[data-call-action=hangup]").click()
        customer.wait_for("disconnected", call=call, timeout=30)
        expect(page.locator("#call-state")).to_have_text("beendet")
        expect(page.locator("#wrapup-panel")).to_be_visible()
        expect(page.locator("#agent-state")).to_have_text("Nachbearbeitung")
        assert where() == idle_controls, "the call controls moved when the call ended"
        expect(page.locator("#state-timer")).to_have_text(re.compile(r"^noch \d+:\d\d$"))
        for size in SIZES.values():  # the wrap-up is above the fold too
            page.set_viewport_size(size)
            outside = page.evaluate(OUTSIDE_VIEWPORT_JS,
                                    ["#pop-panel", "#disposition", "#wrapup-form [type=submit]",
                                     "[data-agent-action=ready]"])
            assert outside == [], f"wrap-up {size}: {outside}"
        page.set_viewport_size(SIZES["1280x800"])
        page.locator("h1").click()
        page.keyboard.press("w")
        expect(page.locator("#disposition")).to_be_focused()
        expect(page.locator("#disposition option").first).to_have_text("erledigt")
        shot(page, artifacts, "wrapup-de-1280x800")
        page.keyboard.press("Escape")
        page.keyboard.press("r")
        expect(page.locator("#agent-state")).to_have_text("bereit")
        page.locator("#pause-reason").select_option("lunch")
        page.keyboard.press("Escape")
        page.keyboard.press("p")
        expect(page.locator("#agent-state")).to_have_text("Pause (Mittagspause)")
        page.keyboard.press("r")
        expect(page.locator("#agent-state")).to_have_text("bereit")

        # The customer's history has the call; a search by name shows the name and number.
        row = page.locator("#history tbody tr", has_text=CALLER)
        expect(row).to_contain_text("eingehend")
        expect(row).to_contain_text("angenommen")
        # The record's duration is the caller's whole call (IVR and ringing included).
        duration = clock_seconds(row.locator("td").nth(5).inner_text())
        assert talk_s <= duration <= talk_s + 60, (duration, talk_s)
        # The recording of the agent's own call plays in the row (agents_may_listen).
        audio = row.locator(".history-player audio")
        expect(audio).to_have_attribute("src", re.compile(r"^/api/recordings/[0-9]+$"))
        play = row.locator("button.history-play")
        expect(play).to_have_attribute("title", "Anhören")
        play.click()  # the browser fetches the WAV with the desk's session and plays it
        expect(play).to_have_attribute("aria-pressed", "true")
        page.wait_for_function("(audio) => audio.currentTime > 0.2", arg=audio.element_handle(),
                               timeout=UI_TIMEOUT_MS)
        assert audio.evaluate("(audio) => audio.duration") > 1.0  # from the click to hang-up
        play.click()
        expect(play).to_have_attribute("aria-pressed", "false")
        page.locator("#search-text").fill("Muster")
        page.locator("#search-form button[type=submit]").click()
        found = page.locator(f'#search-results li[data-customer="{CUSTOMER_NO}"]')
        expect(found).to_contain_text(OLD_NAME)
        expect(found).to_contain_text(f"Kd.-Nr. {CUSTOMER_NO}")
        shot(page, artifacts, "history-search-de-1280x800")
        assert errors == [], errors
    except BaseException:
        try:
            page.screenshot(path=str(artifacts / "failure.png"), full_page=True, timeout=10_000)
        except Exception:  # the page may be gone; the original failure matters more
            pass
        raise
    finally:
        context.close()


# English words of the wallboard's own labels that must not show in the German wallboard.
WALLBOARD_ENGLISH = ("Wallboard", "Queues", "Agents", "Calls in progress", "Calls per interval",
                     "waiting", "longest wait", "service level", "agents available",
                     "calls in progress", "Waiting", "Longest wait", "Service level",
                     "Abandon rate", "Answered", "Abandoned", "Agents free / staffed", "State",
                     "Time in state", "Caller", "Talk time", "Supervise", "Recorded", "Move",
                     "Campaigns", "Campaign", "Progress", "Attempts", "Connected", "Dropped",
                     "Log out", "no phone", "available", "logged out", "paused", "idle",
                     "updated", "offline", "Language", "Sign in", "Extension", "Password",
                     "Listen", "Whisper", "Barge", "Stop", "calls", "Average speed of answer")

# The supervise cell the page draws for an agent on a connected call that 1009 listens to.
SUPERVISE_CELL_JS = """() => {
  const cell = Supervise.agentCell(
    { extension: "1001", name: "Anna", state: "on_call" },
    { calls: [{ call_id: "c1", agent: "1001", state: "connected" }],
      monitors: { c1: { supervisor: "1009", mode: "listen", ringing: false } } });
  return [...cell.children].map((node) => [node.textContent, node.title || ""]);
}"""


def test_german_wallboard(pbx: RunningPbx, chromium: Any, artifacts: Path) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=UI_TIMEOUT_MS)
    status, _, body = pbx.request("GET", "/wallboard")
    assert status == 200 and b'data-default-language="en"' in body, body[:300]
    context = chromium.new_context(viewport=SIZES["1280x800"], locale="fr-FR")
    page = context.new_page()
    try:
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{pbx.http}/wallboard")
        # Neither German nor English in the browser: the configured language (en).
        expect(page.locator("#login h2")).to_have_text("Sign in (supervisor)")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        page.locator("#language").select_option("de")
        expect(page.locator("#login h2")).to_have_text("Anmelden (Supervisor)")
        page.locator("#login-extension").fill(SUPERVISOR["extension"])
        page.locator("#login-password").fill("not-the-password")
        page.locator("#login-form button[type=submit]").click()
        expect(page.locator("#login-error")).to_have_text("Nebenstelle oder Passwort falsch.")
        sign_in(page, f"{pbx.http}/wallboard")  # an agent: refused, in German
        expect(page.locator("#login-error")).to_have_text(
            "Die Live-Übersicht ist nur für Supervisoren und Administratoren.")
        expect(page.locator("#board")).to_be_hidden()
        page.locator("#login-extension").fill(SUPERVISOR["extension"])
        page.locator("#login-password").fill(SUPERVISOR["password"])
        page.locator("#login-form button[type=submit]").click()
        expect(page.locator("#board")).to_be_visible()
        page.reload()  # the choice stays (localStorage), the session too (cookie)
        expect(page.locator("#board")).to_be_visible()
        expect(page.locator("#language")).to_have_value("de")
        expect(page.locator("html")).to_have_attribute("lang", "de")
        expect(page.locator("#updated")).to_have_text(re.compile(r"^aktualisiert \d"))
        expect(page.locator("h1")).to_have_text("Live-Übersicht")
        assert page.title() == "Live-Übersicht"
        for selector, text in (("#board .kpis div:nth-child(1) span", "wartend"),
                               ("#board .kpis div:nth-child(2) span", "längste Wartezeit"),
                               ("#board .kpis div:nth-child(4) span", "Agenten bereit"),
                               ("#queues th >> nth=0", "Warteschlange"),
                               ("#queues th >> nth=4", "Ø Annahme"),
                               ("#queues th >> nth=6", "Abbruchquote"),
                               ("#agents th >> nth=1", "Status"),
                               ("#agents th >> nth=2", "Zeit im Status"),
                               ("#agents th >> nth=5", "Eingreifen"),
                               ("#campaigns th >> nth=2", "Fortschritt")):
            expect(page.locator(selector)).to_have_text(text)
        expect(page.locator("#queues th >> nth=4")).to_have_attribute(
            "title", "Durchschnittliche Wartezeit bis zur Annahme (ASA)")
        # The supervisor's own seat: logged in, no phone; the agent's row in German words.
        ines = page.locator("#agents tbody tr", has_text=f"{SUPERVISOR['name']} (1009)")
        expect(ines.locator(".no-phone")).to_have_text("kein Telefon")
        expect(ines.locator("button.force-logout")).to_have_text("Ausloggen")
        expect(ines.locator("button.force-logout")).to_have_attribute(
            "title", "Den Agenten aus den Warteschlangen ausloggen")
        german_states = page.evaluate("DESK_STRINGS.de")
        for badge in page.locator("#agents tbody .state[data-state]").all():
            state = badge.get_attribute("data-state")
            assert badge.inner_text().startswith(german_states[f"state.{state}"]), state
        campaign = page.locator("#campaigns tbody tr", has_text="winteraktion")
        campaign_state = campaign.locator("td").nth(1).inner_text()
        assert campaign_state in {german_states[k] for k in german_states
                                  if k.startswith("campaign.state.")}, campaign_state
        axis = page.locator("#chart text[transform]")
        expect(axis).to_have_text(re.compile(r"^Anrufe / \d+ s$"))
        expect(page.locator("#chart")).to_have_attribute("aria-label", "Anrufe pro Intervall")
        assert page.evaluate(SUPERVISE_CELL_JS) == [
            ["Mithören", "Anrufer und Agent hören; niemand hört Sie"],
            ["Flüstern", "Beide hören; nur der Agent hört Sie"],
            ["Aufschalten", "Dem Gespräch beitreten: Anrufer und Agent hören Sie"],
            ["1009 hört mit", ""],
            ["Beenden", "Ihr Mithör-Telefon auflegen"],
            ["Ausloggen", "Den Agenten aus den Warteschlangen ausloggen"],
        ]
        assert labels_left(page, WALLBOARD_ENGLISH) == []
        # A call that ended before the click: the API's refusal, in German, in the notice.
        page.evaluate("""() => {
          const cell = Supervise.agentCell({ extension: "1001", name: "Anna", state: "on_call" },
            { calls: [{ call_id: "gone-1", agent: "1001", state: "connected" }], monitors: {} });
          cell.id = "gone-cell";
          document.body.append(cell);
        }""")
        page.locator("#gone-cell button.monitor[data-mode=listen]").click()
        expect(page.locator("#supervise-notice")).to_have_text("Kein Anruf 'gone-1' für Sie")
        page.evaluate("""() => {
          document.getElementById("gone-cell").remove();
          document.getElementById("supervise-notice").textContent = "";
        }""")
        for size_name, size in SIZES.items():
            page.set_viewport_size(size)
            shot(page, artifacts, f"wallboard-de-{size_name}")
        # … and English again.
        page.set_viewport_size(SIZES["1280x800"])
        page.locator("#language").select_option("en")
        expect(page.locator("h1")).to_have_text("Wallboard")
        expect(page.locator("#queues th >> nth=0")).to_have_text("Queue")
        expect(ines.locator(".no-phone")).to_have_text("no phone")
        expect(ines.locator("button.force-logout")).to_have_text("Log out")
        expect(axis).to_have_text(re.compile(r"^calls / \d+ s$"))
        expect(page.locator("#updated")).to_have_text(re.compile(r"^updated \d"))
        assert [text for text, _ in page.evaluate(SUPERVISE_CELL_JS)] == [
            "Listen", "Whisper", "Barge", "1009: listen", "Stop", "Log out"]
        shot(page, artifacts, "wallboard-en-1280x800")
        assert errors == [], errors
    except BaseException:
        try:
            page.screenshot(path=str(artifacts / "wallboard-failure.png"), full_page=True,
                            timeout=10_000)
        except Exception:  # the page may be gone; the original failure matters more
            pass
        raise
    finally:
        context.close()
