"""The API's error messages in the agent's language (pure: no I/O, no web framework).

The CTI API answers a refused request with ``{"error": "<English>", "status": N}``; scripts and
the CLI read that English text. A request that carries ``Accept-Language`` (the desk and the
wallboard send the page's language) also gets ``"message"``: the same sentence in the language
it prefers of those we speak (`LANGUAGES`). `translate` looks the English sentence up in
`CATALOGUE` (a pattern with named groups for the variable parts -> a German template); a
sentence the catalogue does not know stays English. Groups named ``action``, ``state`` or
``states`` carry words of the API (``hang up``, ``wrap_up``, ``connected or held``) and are
translated word by word; every other group is copied as it is (numbers, names, codes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

LANGUAGES = ("en", "de")

_STATES = {
    # calls
    "queued": "wartend", "offered": "angeboten", "dialing": "im Aufbau",
    "connected": "verbunden", "held": "gehalten", "ended": "beendet",
    # agents
    "logged_out": "abgemeldet", "available": "bereit", "ringing": "klingelnd",
    "reserved": "reserviert", "on_call": "im Gespräch", "wrap_up": "in Nachbearbeitung",
    "paused": "in Pause", "busy_direct": "im Direktgespräch",
}
_ACTIONS = {
    "hang up": "Auflegen", "hold": "Halten", "resume": "Fortsetzen",
    "transfer": "Weiterleiten", "complete transfer": "Weiterleiten abschließen",
    "cancel transfer": "Weiterleiten abbrechen", "record": "Aufzeichnen",
    "stop record": "Aufzeichnung beenden", "move": "Umleiten", "listen in on": "Mithören",
}

# English sentence (fullmatch) -> German template ({group} filled from the match).
_DE: tuple[tuple[str, str], ...] = (
    # call actions
    (r"cannot (?P<action>.+) a call that is (?P<state>\w+) \(needs (?P<states>.+)\)",
     "{action} geht nicht: der Anruf ist {state} (nötig: {states})"),
    (r"no call (?P<call>'.*') of yours", "Kein Anruf {call} für Sie"),
    (r"call (?P<call>'.*') is not in progress", "Der Anruf {call} läuft nicht"),
    (r"the call is not connected to an agent", "Der Anruf ist mit keinem Agenten verbunden"),
    (r"the call is not on hold", "Der Anruf wird nicht gehalten"),
    (r"the call is not connected, or already consulting",
     "Der Anruf ist nicht verbunden oder schon in Rückfrage"),
    (r"no attended transfer is in progress on this call",
     "Bei diesem Anruf läuft keine Weiterleitung mit Rückfrage"),
    (r"only a connected call can be transferred",
     "Nur ein verbundener Anruf kann weitergeleitet werden"),
    (r"an attended transfer goes to agent:EXT",
     "Eine Weiterleitung mit Rückfrage geht an agent:NEBENSTELLE"),
    (r"(?P<target>'.*') is not a transfer target \(agent:EXT, queue:NAME or number:DIGITS\)",
     "{target} ist kein Weiterleitungsziel (agent:NEBENSTELLE, queue:NAME oder number:ZIFFERN)"),
    (r"target must be agent:EXT, queue:NAME or number:DIGITS",
     "Ziel muss agent:NEBENSTELLE, queue:NAME oder number:ZIFFERN sein"),
    (r"no agent (?P<agent>'.*')", "Kein Agent {agent}"),
    (r"no queue (?P<queue>'.*')", "Keine Warteschlange {queue}"),
    (r"no route to (?P<number>.+)", "Kein Weg zu {number}"),
    (r"a waiting caller moves to a queue \(queue:NAME\) or an agent \(agent:EXT\)",
     "Ein wartender Anrufer geht an eine Warteschlange (queue:NAME) oder einen Agenten "
     "(agent:NEBENSTELLE)"),
    (r"the caller is not waiting in a queue", "Der Anrufer wartet in keiner Warteschlange"),
    (r"the caller is waiting in (?P<queue>'.*') already",
     "Der Anrufer wartet schon in {queue}"),
    (r"the call is being recorded already", "Der Anruf wird schon aufgezeichnet"),
    (r"the call is not being recorded", "Der Anruf wird nicht aufgezeichnet"),
    (r"this call is recorded (?P<mode>\w+): only (?P<rest>.+)",
     "Dieser Anruf wird „{mode}“ aufgezeichnet; manuell nur bei on_demand-Warteschlangen "
     "und Kampagnen"),
    # listening in
    (r"this is your own call", "Das ist Ihr eigener Anruf"),
    (r"supervisor (?P<who>\S+) is already on this call",
     "Supervisor {who} ist schon in diesem Anruf"),
    (r"your phone \(extension (?P<ext>\S+)\) is not registered: the PBX has nothing to ring",
     "Ihr Telefon (Nebenstelle {ext}) ist nicht angemeldet: die Anlage kann nichts klingeln "
     "lassen"),
    (r"your phone \(extension (?P<ext>\S+)\) is on a call",
     "Ihr Telefon (Nebenstelle {ext}) ist im Gespräch"),
    (r"nobody listens in on this call", "Niemand hört bei diesem Anruf mit"),
    (r"listening in is not available on this PBX",
     "Mithören ist auf dieser Anlage nicht verfügbar"),
    (r"'?mode'? must be one of (?P<modes>.+?)(?:, not (?P<mode>'.*'))?",
     "Modus muss einer von {modes} sein"),
    # agent state
    (r"agent (?P<agent>\S+) is not logged in", "Agent {agent} ist nicht angemeldet"),
    (r"agent (?P<agent>\S+) is already logged in \((?P<state>\w+)\)",
     "Agent {agent} ist schon angemeldet ({state})"),
    (r"agent (?P<agent>\S+) is (?P<state>\w+), not paused",
     "Agent {agent} ist {state}, nicht in Pause"),
    (r"agent (?P<agent>\S+) has no registered phone",
     "Agent {agent} hat kein angemeldetes Telefon"),
    (r"agents may only change their own state",
     "Agenten dürfen nur ihren eigenen Status ändern"),
    (r"'reason' must be one of the pause codes: (?P<codes>.+)",
     "Der Pausengrund muss einer dieser Codes sein: {codes}"),
    # dialling, disposition, preview
    (r"(?P<number>'.*') is not a phone number \(digits, optionally \+\)",
     "{number} ist keine Telefonnummer (Ziffern, optional +)"),
    (r"number is empty", "Die Nummer ist leer"),
    (r"(?P<number>.+) is on the configuration's dnc list \(dnc\.numbers\), (?P<rest>.+)",
     "{number} steht auf der Sperrliste der Konfiguration (dnc.numbers)"),
    (r"(?P<value>'.*') is not a disposition \((?P<choices>.*)\)",
     "{value} ist kein Gesprächsergebnis ({choices})"),
    (r"call (?P<call>'.*') ended too long ago to take a disposition",
     "Der Anruf {call} ist zu lange vorbei für ein Gesprächsergebnis"),
    (r"customer (?P<customer>'.*') is not reserved for your preview",
     "Kunde {customer} ist nicht für Ihre Vorschau reserviert"),
    # campaigns (the wallboard's progress, the desk's preview)
    (r"no campaigns", "Keine Kampagnen"),
    (r"no campaign named (?P<name>'.*')", "Keine Kampagne {name}"),
    (r"action must be start, pause or stop", "Aktion muss start, pause oder stop sein"),
    # forms and customers
    (r"no form (?P<name>'.*') \(yours: (?P<mine>.*)\)", "Kein Formular {name} (Ihre: {mine})"),
    (r"the form (?P<name>'.*') is not assigned to you \(yours: (?P<mine>.*)\)",
     "Das Formular {name} ist Ihnen nicht zugewiesen (Ihre: {mine})"),
    (r"no form is configured for this call", "Für diesen Anruf ist kein Formular eingerichtet"),
    (r"'values' must be a non-empty object of field name -> value",
     "'values' muss ein nicht leeres Objekt Feldname -> Wert sein"),
    (r"no such field in this form: (?P<fields>.+)", "Diese Felder gibt es im Formular nicht: "
     "{fields}"),
    (r"you may not change: (?P<fields>.+)", "Diese Felder dürfen Sie nicht ändern: {fields}"),
    (r"no customer record to store (?P<fields>.+) in",
     "Kein Kundendatensatz, um {fields} zu speichern"),
    (r"only a call can store (?P<fields>.+)", "Nur ein Anruf kann {fields} speichern"),
    (r"invalid values: (?P<problems>.+)", "Ungültige Werte: {problems}"),
    (r"(?P<problem>.+); nothing was saved", "{problem}; nichts wurde gespeichert"),
    (r"no customer (?P<customer>'.*')", "Kein Kunde {customer}"),
    (r"'q' must be (?P<n>\d+) to 64 characters \(customer number, phone, name\)",
     "Suche mit {n} bis 64 Zeichen (Kundennummer, Telefon, Name)"),
    (r"your form shows no customer number, phone or name to search by",
     "Ihr Formular zeigt keine Kundennummer, kein Telefon und keinen Namen zum Suchen"),
    # one field's problem (also inside "invalid values: ...")
    (r"expected true or false", "erwartet ja oder nein"),
    (r"expected text, got (?P<kind>\w+)", "erwartet Text, nicht {kind}"),
    (r"longer than (?P<n>\d+) characters", "länger als {n} Zeichen"),
    (r"shorter than (?P<n>\d+) characters", "kürzer als {n} Zeichen"),
    (r"required", "Pflichtfeld"),
    (r"(?P<value>'.*') is not a number", "{value} ist keine Zahl"),
    (r"(?P<value>'.*') is not a date \(YYYY-MM-DD\)", "{value} ist kein Datum (JJJJ-MM-TT)"),
    (r"(?P<value>'.*') is not one of (?P<options>.+)", "{value} ist keiner von {options}"),
    (r"(?P<value>'.*') does not match (?P<pattern>.+)", "{value} passt nicht zu {pattern}"),
    # requests the page itself got wrong (an outdated page)
    (r"no (?P<kind>call|agent) action (?P<action>'.*') \(one of (?P<known>.*)\)",
     "Unbekannte Aktion {action} (bekannt: {known})"),
    (r"'(?P<key>\w+)' must be an integer (?P<low>\d+)\.\.(?P<high>\d+)",
     "'{key}' muss eine ganze Zahl von {low} bis {high} sein"),
    (r"the body is not valid JSON: (?P<why>.+)", "Der Inhalt ist kein gültiges JSON: {why}"),
    # request bodies
    (r"'(?P<key>\w+)' is required", "'{key}' fehlt"),
    (r"'(?P<key>\w+)' is longer than (?P<n>\d+) characters", "'{key}' ist länger als {n} Zeichen"),
    (r"'(?P<key>\w+)' must be a string, got (?P<kind>\w+)",
     "'{key}' muss Text sein, nicht {kind}"),
    (r"'(?P<key>\w+)' must be true or false", "'{key}' muss true oder false sein"),
    (r"send the body as JSON \(Content-Type: application/json\)",
     "Bitte den Inhalt als JSON senden (Content-Type: application/json)"),
    (r"the body must be a JSON object", "Der Inhalt muss ein JSON-Objekt sein"),
    # sessions and permissions
    (r"wrong extension or password", "Nebenstelle oder Passwort falsch"),
    (r"too many failed logins from this address or for this extension; try again later",
     "Zu viele fehlgeschlagene Anmeldungen von dieser Adresse oder für diese Nebenstelle; "
     "bitte später erneut versuchen"),
    (r"the session has expired or was logged out; log in again",
     "Die Sitzung ist abgelaufen oder abgemeldet; bitte neu anmelden"),
    (r"log in first \(POST /api/cti/login\).*", "Bitte zuerst anmelden"),
    # the WebSocket's refusals (pbx/cti/websocket.py)
    (r"unknown or expired session; log in again",
     "Unbekannte oder abgelaufene Sitzung; bitte neu anmelden"),
    (r"the session has expired or was logged out",
     "Die Sitzung ist abgelaufen oder abgemeldet"),
    (r"the session was logged out", "Die Sitzung wurde abgemeldet"),
    (r"cross-site WebSocket with the session cookie refused",
     "Fremde WebSocket-Verbindung mit dem Sitzungs-Cookie abgelehnt"),
    (r'send \{"type": "auth", "token": TOKEN\} first',
     'Bitte zuerst {{"type": "auth", "token": TOKEN}} senden'),
    (r"missing or wrong (?P<header>\S+) header .*",
     "Fehlender oder falscher {header}-Header; bitte die Seite neu laden"),
    (r"only supervisors and admins may do this", "Nur Supervisoren und Admins dürfen das"),
    (r"only supervisors and admins \(or an API token .*\) may read this",
     "Nur Supervisoren und Admins dürfen das lesen"),
    (r"unknown API token, or the session has expired",
     "Unbekannter API-Token, oder die Sitzung ist abgelaufen"),
    (r"the database is not available; try again",
     "Die Datenbank ist nicht erreichbar; bitte erneut versuchen"),
    (r"the PBX could not carry this out \((?P<kind>\w+)\)",
     "Die Anlage konnte das nicht ausführen ({kind})"),
)

CATALOGUE: Mapping[str, tuple[tuple[re.Pattern[str], str], ...]] = {
    "de": tuple((re.compile(pattern), template) for pattern, template in _DE),
}


def preferred_language(header: str | None) -> str | None:
    """The language of `LANGUAGES` an ``Accept-Language`` header prefers most (q-values
    honoured, ``q=0`` or a broken q refuses, ``*`` takes English; English when it names none
    we speak), or None without a header."""
    if header is None or not header.strip():
        return None
    best, best_q = "en", 0.0
    for item in header.split(","):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
                if not 0.0 <= quality <= 1.0:  # out of range (or nan): refused
                    quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        language = "en" if primary == "*" else primary
        if language in LANGUAGES and quality > best_q:  # ties: the one listed first wins
            best, best_q = language, quality
    return best


def translate(message: str, language: str) -> str | None:
    """`message` (an English sentence of the API) in `language`, None when the catalogue has
    no pattern for it (or the language is English)."""
    for pattern, template in CATALOGUE.get(language, ()):
        found = pattern.fullmatch(message)
        if found is not None:
            parts = {name: _part(name, value or "", language)
                     for name, value in found.groupdict().items()}
            return template.format(**parts)
    return None


def localized(message: str, language: str) -> str:
    """`message` in `language` where the catalogue knows it, else as it is (English)."""
    return translate(message, language) or message


def _part(name: str, value: str, language: str) -> str:
    if name in ("state", "states"):
        words = [_STATES.get(word, word) for word in value.split(" or ")]
        return " oder ".join(words)
    if name == "action":
        return _ACTIONS.get(value, value)
    if name == "problem":
        return localized(value, language)
    if name == "problems":  # "field: problem; field: problem" from a form
        return "; ".join(_field_problem(item, language) for item in value.split("; "))
    return value


def _field_problem(item: str, language: str) -> str:
    field, sep, problem = item.partition(": ")
    return f"{field}{sep}{localized(problem, language)}" if sep else item
