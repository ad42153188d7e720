"""The German catalogue of the API's error messages and the Accept-Language choice.

The sentences below are copied from the code that raises them (named per line) — those the
in-process API test (tests/integration/test_cti_api_messages.py) cannot reach because they
come from the switchboard, the admin routes or the login's lockout."""

from __future__ import annotations

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
        used = {part.split("}")[0] for part in template.split("{")[1:]}
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
    ],
)
def test_accept_language(header: str | None, language: str | None) -> None:
    assert preferred_language(header) == language
