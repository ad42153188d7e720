"""The German catalogue of the API's error messages and the Accept-Language choice.

The sentences below are copied from the code that raises them (named per line) — those the
in-process API test (tests/integration/test_cti_api_messages.py) cannot reach because they
come from the switchboard, the admin routes or the login's lockout. And a scan of the code:
every refusal raised (``ApiError``, ``ControlRefused``, ``LoginRefused``, ``FormRejected``)
outside the admin/token-only routes has a German translation, so a new one needs one too."""

from __future__ import annotations

import ast
import string
from pathlib import Path

import pytest

from pbx.cti.messages import CATALOGUE, localized, preferred_language, translate

REAL = {
    # pbx/cti/admin.py (the wallboard forces a pause / logout / ready)
    "agent 1001 is not logged in": "Agent 1001 ist nicht angemeldet",
    "agent 1001 is wrap_up, not paused": "Agent 1001 ist in Nachbearbeitung, nicht in Pause",
    "agent 1001 is already logged in (available)": "Agent 1001 ist schon angemeldet (bereit)",
    "'reason' must be one of the pause codes: break, lunch":
        "Der Pausengrund muss einer dieser Codes sein: break, lunch",
    # pbx/switchboard/control.py, executor.py
    "the call is not on hold": "Der Anruf wird nicht gehalten",
    "the call is not connected to an agent": "Der Anruf ist mit keinem Agenten verbunden",
    "the call is not connected, or already consulting":
        "Der Anruf ist nicht verbunden oder schon in Rückfrage",
    "the caller is not waiting in a queue": "Der Anrufer wartet in keiner Warteschlange",
    "call 'c7' is not in progress": "Der Anruf 'c7' läuft nicht",
    "agent 1001 has no registered phone": "Agent 1001 hat kein angemeldetes Telefon",
    "number is empty": "Die Nummer ist leer",
    # pbx/switchboard/supervision.py, pbx/cti/supervise.py
    "this is your own call": "Das ist Ihr eigener Anruf",
    "supervisor 1003 is already on this call": "Supervisor 1003 ist schon in diesem Anruf",
    "your phone (extension 1003) is not registered: the PBX has nothing to ring":
        "Ihr Telefon (Nebenstelle 1003) ist nicht angemeldet: die Anlage kann nichts "
        "klingeln lassen",
    "your phone (extension 1003) is on a call": "Ihr Telefon (Nebenstelle 1003) ist im Gespräch",
    "nobody listens in on this call": "Niemand hört bei diesem Anruf mit",
    "cannot listen in on a call that is held (needs connected)":
        "Mithören geht nicht: der Anruf ist gehalten (nötig: verbunden)",
    # pbx/cti/api.py: hang-up and recording in the wrong state
    "cannot hang up a call that is ended (needs offered or dialing or connected or held)":
        "Auflegen geht nicht: der Anruf ist beendet (nötig: angeboten oder im Aufbau oder "
        "verbunden oder gehalten)",
    "cannot stop record a call that is queued (needs connected or held)":
        "Aufzeichnung beenden geht nicht: der Anruf ist wartend (nötig: verbunden oder "
        "gehalten)",
    "the call is being recorded already": "Der Anruf wird schon aufgezeichnet",
    # pbx/cti/auth.py
    "too many failed logins from this address or for this extension; try again later":
        "Zu viele fehlgeschlagene Anmeldungen von dieser Adresse oder für diese Nebenstelle; "
        "bitte später erneut versuchen",
    "the session has expired or was logged out; log in again":
        "Die Sitzung ist abgelaufen oder abgemeldet; bitte neu anmelden",
    # pbx/cti/forms.py: one field's problem inside the form's refusal
    "invalid values: contract: 'x' is not a date (YYYY-MM-DD); notes: longer than 500 characters":
        "Ungültige Werte: contract: 'x' ist kein Datum (JJJJ-MM-TT); notes: länger als 500 "
        "Zeichen",
    "this call is recorded always: only calls of on_demand queues and campaigns are recorded "
    "from the desk": "Dieser Anruf wird „always“ aufgezeichnet; manuell nur bei "
    "on_demand-Warteschlangen und Kampagnen",
    "'mode' must be one of listen, whisper, barge, not 'spy'":
        "Modus muss einer von listen, whisper, barge sein",
    "'q' must be 3 to 64 characters (customer number, phone, name)":
        "Suche mit 3 bis 64 Zeichen (Kundennummer, Telefon, Name)",
}


@pytest.mark.parametrize(("english", "german"), sorted(REAL.items()))
def test_real_messages_in_german(english: str, german: str) -> None:
    assert translate(english, "de") == german


def test_unknown_sentences_and_english_stay_as_they_are() -> None:
    assert translate("the dial plan does not allow 0900 numbers", "de") is None
    assert localized("the dial plan does not allow 0900 numbers", "de") == (
        "the dial plan does not allow 0900 numbers")
    assert translate("this is your own call", "en") is None
    assert localized("this is your own call", "fr") == "this is your own call"


def test_every_template_fills_only_groups_its_pattern_has() -> None:
    for pattern, template in CATALOGUE["de"]:
        names = set(pattern.groupindex)
        used = {field for _, field, _, _ in string.Formatter().parse(template) if field}
        assert used <= names, (pattern.pattern, template)


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, None),
        ("", None),
        ("de", "de"),
        ("de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7", "de"),
        ("en-US,en;q=0.9,de;q=0.8", "en"),
        ("en;q=0.5, de;q=0.8", "de"),
        ("DE-at", "de"),
        ("fr-FR, fr;q=0.9", "en"),  # nothing we speak: English
        ("fr, de;q=0", "en"),  # q=0 refuses German
        ("*", "en"),
        ("de;q=oops, en;q=0.1", "en"),  # a broken q-value counts as refused
        ("en, de", "en"),  # equal weight: the first listed
        ("de;q=2, en;q=0.5", "en"),  # q above 1 is not a q-value
        ("de;q=nan, en;q=0.5", "en"),
    ],
)
def test_accept_language(header: str | None, language: str | None) -> None:
    assert preferred_language(header) == language


# ------------------------------------------------------------------ every refusal in the code

REFUSALS = ("ApiError", "ControlRefused", "LoginRefused", "FormRejected")
WEBSOCKET = "pbx/cti/websocket.py"  # its _refuse(websocket, reason) too
# Routes no agent or supervisor page calls (admin, reports, reload, API tokens, operations) and
# recordings (the pages hide the list or the player; they never show its text): English only,
# for scripts and the CLI.
ENGLISH_ONLY_FILES = {"pbx/cti/admin.py", "pbx/cti/reports.py", "pbx/cti/reload.py",
                      "pbx/cti/operations.py", "pbx/cti/recordings.py"}
ENGLISH_ONLY = {
    "API tokens read the operations endpoints only (/api/stats, /api/cdrs, /metrics …); log in "
    "for the CTI API",
    "the Authorization header must be 'Bearer TOKEN'",
}
# Messages not written in the code: a dial plan's refusal names the rule (target.name).
NOT_LITERAL = {"pbx/switchboard/executor.py"}


def _samples(node: ast.expr) -> list[str] | None:
    """The sentences an argument can be, each formatted value as 1 (or '1' for !r)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        parts = [v.value if isinstance(v, ast.Constant)
                 else ("'1'" if isinstance(v, ast.FormattedValue) and v.conversion == ord("r")
                       else "1") for v in node.values]
        return ["".join(map(str, parts))]
    if isinstance(node, ast.IfExp):
        body, orelse = _samples(node.body), _samples(node.orelse)
        return body + orelse if body is not None and orelse is not None else None
    return None


def _refusals() -> list[tuple[str, int, ast.expr]]:
    root = Path(__file__).resolve().parents[3]
    found = []
    for path in sorted((root / "pbx").rglob("*.py")):
        name = path.relative_to(root).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            func = getattr(node, "func", None)
            called = getattr(func, "id", None) or getattr(func, "attr", None)
            refusal = called in REFUSALS or (name == WEBSOCKET and called == "_refuse")
            if isinstance(node, ast.Call) and refusal and len(node.args) >= 2:
                found.append((name, node.lineno, node.args[1]))
    return found


def test_every_refusal_an_agent_or_supervisor_meets_has_german() -> None:
    refusals = _refusals()
    assert len(refusals) > 80  # the scan found the code's refusals
    untranslated = []
    for name, line, argument in refusals:
        if name in ENGLISH_ONLY_FILES:
            continue
        samples = _samples(argument)
        if samples is None:
            if name not in NOT_LITERAL:
                untranslated.append(f"{name}:{line}: not a literal")
            continue
        untranslated += [f"{name}:{line}: {text}" for text in samples
                         if text not in ENGLISH_ONLY and translate(text, "de") is None]
    assert untranslated == []
