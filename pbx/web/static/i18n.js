// The agent desktop's words in German and English, and how the page picks its language.
//
// The table between the two markers is plain JSON (double quotes, no trailing commas):
// tests/unit/cti/test_desk_strings.py parses it and checks that both languages have the same
// keys and that every key desk.html and desk.js use is in it. "{name}" in a string is filled in
// by t(key, {name: …}).
//
// The language: the agent's own choice on the page (kept in localStorage), else the first of the
// browser's languages (navigator.languages) the desk speaks, else the installation's
// (cti.language, which the server writes into <html data-default-language>).
"use strict";

const DESK_STRINGS = /* STRINGS-BEGIN */ {
  "de": {
    "page.title": "Agentenplatz",
    "language.label": "Sprache",
    "login.title": "Anmelden",
    "login.extension": "Nebenstelle",
    "login.password": "Passwort",
    "login.submit": "Anmelden",
    "login.wrong": "Nebenstelle oder Passwort falsch.",
    "login.locked": "Zu viele Fehlversuche: bitte einige Minuten warten.",
    "error.network": "Keine Verbindung zur Telefonanlage.",
    "error.status": "Die Telefonanlage antwortet mit Fehler {status}.",
    "session.sign_out": "Abmelden",
    "session.role.agent": "Agent",
    "session.role.supervisor": "Supervisor",
    "session.role.admin": "Administrator",
    "connection.live": "verbunden",
    "connection.offline": "getrennt",
    "agent.time_in_state": "Zeit im Status",
    "agent.no_phone": "kein Telefon",
    "agent.wrap_up_left": "noch {time}",
    "state.logged_out": "abgemeldet",
    "state.available": "bereit",
    "state.ringing": "klingelt",
    "state.reserved": "reserviert",
    "state.on_call": "im Gespräch",
    "state.wrap_up": "Nachbearbeitung",
    "state.paused": "Pause",
    "state.busy_direct": "direktes Gespräch",
    "reason.auto_pause": "nicht angenommen",
    "reason.phone_lost": "Telefon getrennt",
    "reason.no_answer": "nicht angenommen",
    "panel.state": "Mein Status",
    "action.login": "Einloggen",
    "action.login_title": "In die Warteschlangen einloggen",
    "action.ready": "Bereit",
    "action.pause": "Pause",
    "action.logout": "Ausloggen",
    "action.logout_title": "Aus den Warteschlangen ausloggen (keine Anrufe mehr)",
    "action.pause_reason": "Pausengrund",
    "panel.preview": "Vorschau",
    "preview.dial": "Anrufen",
    "preview.skip": "Überspringen",
    "panel.dial": "Anrufen",
    "dial.number": "Rufnummer",
    "dial.submit": "Wählen",
    "dial.link_title": "Diese Nummer anrufen",
    "panel.call": "Aktueller Anruf",
    "call.none": "kein Anruf",
    "call.talk_time": "Gesprächszeit",
    "call.ring_time": "Klingelzeit",
    "call.state.queued": "in Warteschlange",
    "call.state.offered": "klingelt",
    "call.state.dialing": "wählt",
    "call.state.connected": "verbunden",
    "call.state.held": "gehalten",
    "call.state.ended": "beendet",
    "call.caller": "Anrufer",
    "call.dialled": "Gewählt",
    "call.queue": "Warteschlange",
    "call.waited": "Gewartet",
    "call.answered": "Angenommen",
    "call.ended": "Beendet",
    "call.seconds": "{n} s",
    "call.hangup": "Auflegen",
    "call.hold": "Halten",
    "call.resume": "Fortsetzen",
    "call.transfer_target": "Ziel der Weiterleitung",
    "call.transfer_placeholder": "agent:1002, queue:billing, number:+49…",
    "call.attended": "mit Rückfrage",
    "call.transfer": "Weiterleiten",
    "call.complete_transfer": "Übergeben",
    "call.cancel_transfer": "Zurückholen",
    "call.record": "Aufnehmen",
    "call.stop_record": "Aufnahme beenden",
    "call.recording": "● Aufnahme",
    "panel.recordings": "Aufnahmen",
    "recordings.listen": "Anhören",
    "recordings.deleted": "gelöscht (Aufbewahrungsfrist)",
    "shortcuts.help": "Tasten (außer beim Tippen in einem Feld; Esc verlässt das Feld): H Halten/Fortsetzen · T Weiterleiten · W Nachbearbeitung · R Bereit · P Pause",
    "ring.title": "Anruf für Sie",
    "ring.body": "{caller} über {queue}",
    "ring.unknown": "unbekannt",
    "panel.pop": "Anrufer",
    "pop.empty": "Kein Anruf. Die Daten des Anrufers erscheinen hier, sobald ein Anruf kommt.",
    "pop.save": "Speichern",
    "pop.read_only": "nur lesen",
    "pop.nothing_changed": "Nichts geändert.",
    "pop.saved": "{n} Änderung(en) gespeichert.",
    "panel.wrapup": "Nachbearbeitung",
    "wrapup.disposition": "Ergebnis",
    "wrapup.note": "Notiz",
    "wrapup.submit": "Ergebnis speichern",
    "wrapup.done": "Ergebnis: {disposition}",
    "disposition.resolved": "erledigt",
    "disposition.callback": "Rückruf",
    "disposition.escalated": "weitergegeben",
    "disposition.wrong_number": "falsch verbunden",
    "panel.history": "Anrufverlauf des Kunden",
    "history.start": "Beginn",
    "history.direction": "Richtung",
    "history.from": "Von",
    "history.to": "An",
    "history.agent": "Agent",
    "history.duration": "Dauer",
    "history.outcome": "Anrufstatus",
    "history.disposition": "Ergebnis",
    "history.note": "Notiz",
    "history.none": "Noch keine Anrufe.",
    "history.recording": "Aufnahme",
    "direction.inbound": "eingehend",
    "direction.outbound": "ausgehend",
    "direction.internal": "intern",
    "outcome.answered": "angenommen",
    "outcome.no_answer": "keine Antwort",
    "outcome.busy": "besetzt",
    "outcome.failed": "fehlgeschlagen",
    "outcome.abandoned": "aufgelegt",
    "panel.search": "Kunden",
    "search.text": "Kunden suchen",
    "search.placeholder": "Kundennummer, Telefon oder Name",
    "search.submit": "Suchen",
    "search.none": "Kein Kunde gefunden.",
    "search.customer_no": "Kd.-Nr. {customer_no}"
  },
  "en": {
    "page.title": "Agent desktop",
    "language.label": "Language",
    "login.title": "Sign in",
    "login.extension": "Extension",
    "login.password": "Password",
    "login.submit": "Sign in",
    "login.wrong": "Wrong extension or password.",
    "login.locked": "Too many failed attempts: please wait a few minutes.",
    "error.network": "No connection to the PBX.",
    "error.status": "The PBX answered with error {status}.",
    "session.sign_out": "Sign out",
    "session.role.agent": "agent",
    "session.role.supervisor": "supervisor",
    "session.role.admin": "admin",
    "connection.live": "live",
    "connection.offline": "offline",
    "agent.time_in_state": "Time in state",
    "agent.no_phone": "no phone",
    "agent.wrap_up_left": "{time} left",
    "state.logged_out": "logged out",
    "state.available": "available",
    "state.ringing": "ringing",
    "state.reserved": "reserved",
    "state.on_call": "on call",
    "state.wrap_up": "wrap-up",
    "state.paused": "paused",
    "state.busy_direct": "direct call",
    "reason.auto_pause": "not answered",
    "reason.phone_lost": "phone lost",
    "reason.no_answer": "not answered",
    "panel.state": "My state",
    "action.login": "Log in to queues",
    "action.login_title": "Log in to the queues",
    "action.ready": "Ready",
    "action.pause": "Pause",
    "action.logout": "Log out of queues",
    "action.logout_title": "Log out of the queues (no more calls)",
    "action.pause_reason": "Pause reason",
    "panel.preview": "Preview",
    "preview.dial": "Dial",
    "preview.skip": "Skip",
    "panel.dial": "Call",
    "dial.number": "Number to dial",
    "dial.submit": "Dial",
    "dial.link_title": "Call this number",
    "panel.call": "Current call",
    "call.none": "no call",
    "call.talk_time": "Talk time",
    "call.ring_time": "Ringing for",
    "call.state.queued": "queued",
    "call.state.offered": "ringing",
    "call.state.dialing": "dialing",
    "call.state.connected": "connected",
    "call.state.held": "on hold",
    "call.state.ended": "ended",
    "call.caller": "Caller",
    "call.dialled": "Dialled",
    "call.queue": "Queue",
    "call.waited": "Waited",
    "call.answered": "Answered",
    "call.ended": "Ended",
    "call.seconds": "{n} s",
    "call.hangup": "Hang up",
    "call.hold": "Hold",
    "call.resume": "Resume",
    "call.transfer_target": "Transfer target",
    "call.transfer_placeholder": "agent:1002, queue:billing, number:+49…",
    "call.attended": "attended",
    "call.transfer": "Transfer",
    "call.complete_transfer": "Complete",
    "call.cancel_transfer": "Cancel",
    "call.record": "Record",
    "call.stop_record": "Stop recording",
    "call.recording": "● recording",
    "panel.recordings": "Recordings",
    "recordings.listen": "Listen",
    "recordings.deleted": "deleted (retention)",
    "shortcuts.help": "Keys (not while typing in a field; Esc leaves the field): H hold/resume · T transfer · W wrap-up · R ready · P pause",
    "ring.title": "Call for you",
    "ring.body": "{caller} via {queue}",
    "ring.unknown": "unknown",
    "panel.pop": "Caller",
    "pop.empty": "No call. The caller's data appears here when a call comes in.",
    "pop.save": "Save",
    "pop.read_only": "read-only",
    "pop.nothing_changed": "Nothing changed.",
    "pop.saved": "Saved {n} change(s).",
    "panel.wrapup": "Wrap-up",
    "wrapup.disposition": "Disposition",
    "wrapup.note": "Note",
    "wrapup.submit": "Set disposition",
    "wrapup.done": "Disposition: {disposition}",
    "disposition.resolved": "resolved",
    "disposition.callback": "callback",
    "disposition.escalated": "escalated",
    "disposition.wrong_number": "wrong number",
    "panel.history": "Customer's call history",
    "history.start": "Start",
    "history.direction": "Direction",
    "history.from": "From",
    "history.to": "To",
    "history.agent": "Agent",
    "history.duration": "Duration",
    "history.outcome": "Outcome",
    "history.disposition": "Disposition",
    "history.note": "Note",
    "history.none": "No calls yet.",
    "history.recording": "Recording",
    "direction.inbound": "inbound",
    "direction.outbound": "outbound",
    "direction.internal": "internal",
    "outcome.answered": "answered",
    "outcome.no_answer": "no answer",
    "outcome.busy": "busy",
    "outcome.failed": "failed",
    "outcome.abandoned": "abandoned",
    "panel.search": "Customers",
    "search.text": "Search customers",
    "search.placeholder": "number, phone or name",
    "search.submit": "Search",
    "search.none": "No customer found.",
    "search.customer_no": "no. {customer_no}"
  }
} /* STRINGS-END */;

const DESK_LANGUAGES = Object.keys(DESK_STRINGS);
const LANGUAGE_KEY = "pbx.desk.language";
const LOCALES = { de: "de-DE", en: "en-GB" };

// The agent's choice, else the browser's first language we speak, else the installation's.
function pickLanguage() {
  let chosen = null;
  try { chosen = localStorage.getItem(LANGUAGE_KEY); } catch (e) { chosen = null; }
  if (DESK_LANGUAGES.includes(chosen)) return chosen;
  for (const tag of navigator.languages || [navigator.language || ""]) {
    const primary = String(tag).toLowerCase().split("-")[0];
    if (DESK_LANGUAGES.includes(primary)) return primary;
  }
  const fallback = document.documentElement.dataset.defaultLanguage;
  return DESK_LANGUAGES.includes(fallback) ? fallback : "de";
}

let deskLanguage = pickLanguage();

// The text of `key` in the current language, "{name}"s filled from `params`; a key missing
// from the table shows as itself (the unit test keeps that from happening).
function t(key, params) {
  const table = DESK_STRINGS[deskLanguage] || DESK_STRINGS.de;
  const text = key in table ? table[key] : key;
  return text.replace(/\{(\w+)\}/g, (all, name) =>
    params && params[name] !== undefined && params[name] !== null ? String(params[name]) : all);
}

// `key` if the table has it, else `fallback` (codes from the configuration the table may not
// know, like a disposition the admin added).
function tOr(key, fallback) {
  const table = DESK_STRINGS[deskLanguage] || DESK_STRINGS.de;
  return key in table ? table[key] : fallback;
}

function deskLocale() { return LOCALES[deskLanguage] || deskLanguage; }

// The static text of the page: data-i18n (text), data-i18n-placeholder, data-i18n-title,
// data-i18n-aria-label.
function applyStrings(root) {
  document.documentElement.lang = deskLanguage;
  (root || document).querySelectorAll("[data-i18n]").forEach((node) => {
    node.textContent = t(node.dataset.i18n);
  });
  for (const [attribute, name] of [["i18nPlaceholder", "placeholder"], ["i18nTitle", "title"],
                                   ["i18nAriaLabel", "aria-label"]]) {
    const selector = `[data-${attribute.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())}]`;
    (root || document).querySelectorAll(selector).forEach((node) => {
      node.setAttribute(name, t(node.dataset[attribute]));
    });
  }
}

// The agent switched the language on the page: remembered in this browser.
function setDeskLanguage(language) {
  if (!DESK_LANGUAGES.includes(language)) return;
  deskLanguage = language;
  try { localStorage.setItem(LANGUAGE_KEY, language); } catch (e) { /* private mode */ }
  applyStrings();
}
