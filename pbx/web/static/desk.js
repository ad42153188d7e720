// Agent desktop: plain JavaScript, no build step. Talks to /api/cti with the session cookie
// (HttpOnly, SameSite=Strict) and echoes the CSRF token in a header on every change; live
// events arrive over the WebSocket /api/cti/ws. All text goes through textContent (no HTML
// built from data). Every word shown comes from i18n.js (t(key)), loaded before this file.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  session: null,
  csrfHeader: "X-CSRF-Token",
  csrf: null,
  socket: null,
  retry: 1000,
  call: null,          // the call shown in the call panel (summary)
  pop: null,           // its pop payload
  customerNo: null,    // the customer shown in the pop (call or search)
  dispositions: [],
  pauseCodes: [],      // [{code, label, labels: {de, en}}] from /api/cti/me
  popMode: "call",     // "call" | "customer"
  form: null,          // the form shown in the pop
  connection: "offline",
  history: null,       // the customer's calls shown in the history panel
  found: null,         // the last customer search's results
};

function cookie(name) {
  const found = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : null;
}

async function api(method, path, body) {
  const headers = { Accept: "application/json", "Accept-Language": deskLanguage };
  if (method !== "GET") headers[state.csrfHeader] = state.csrf || cookie("pbx_csrf") || "";
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    const error = new Error(t("error.network"));
    error.status = 0;
    error.fields = {};
    throw error;
  }
  let data = {};
  try { data = await response.json(); } catch (e) { data = {}; }
  if (!response.ok) {
    // The API's message in the desk's language (it says it in English where it has no
    // translation); the desk's own words when the answer carries none.
    const error = new Error(data.message || data.error
                            || t("error.status", { status: response.status }));
    error.status = response.status;
    error.fields = data.field_messages || data.fields || {};
    throw error;
  }
  return data;
}

function show(id, visible) { $(id).hidden = !visible; }

// ------------------------------------------------------------------ preview dialling

function showPreview(event) {
  state.preview = event;
  $("preview-campaign").textContent = event.campaign;
  $("preview-name").textContent = event.name || "";
  $("preview-phone").textContent = event.phone;
  $("preview-customer").textContent = event.customer_no;
  say("preview-error", "");
  show("preview-panel", true);
}

function hidePreview() {
  state.preview = null;
  show("preview-panel", false);
}

async function decidePreview(dial) {
  if (!state.preview) return;
  try {
    await api("POST", `/api/cti/preview/${encodeURIComponent(state.preview.customer_no)}`,
              { dial });
    hidePreview();
  } catch (error) {
    say("preview-error", error.message);
  }
}
function say(id, text) { $(id).textContent = text || ""; }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString(deskLocale()) : "";
}

function timeOf(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleTimeString(deskLocale()) : "";
}

// m:ss (h:mm:ss from an hour on) of a number of seconds.
function clock(total) {
  const s = Math.max(0, Math.floor(total));
  const ss = String(s % 60).padStart(2, "0");
  if (s < 3600) return `${Math.floor(s / 60)}:${ss}`;
  return `${Math.floor(s / 3600)}:${String(Math.floor(s / 60) % 60).padStart(2, "0")}:${ss}`;
}

// ------------------------------------------------------------------ language

// The page's fixed words, plus the key of each shortcut in its element's tooltip.
function applyDeskStrings() {
  applyStrings();
  document.querySelectorAll("[data-shortcut]").forEach((node) => {
    const name = t(node.dataset.i18n || node.dataset.i18nAriaLabel || "");
    node.title = `${name} (${node.dataset.shortcut})`;
    node.setAttribute("aria-keyshortcuts", node.dataset.shortcut);
  });
}

// Everything on the page again in the current language (values the agent typed stay).
function rerender() {
  applyDeskStrings();
  $("language").value = deskLanguage;
  renderPauseCodes();
  renderDispositions();
  if (state.session) renderSession(state.session);
  say("connection", t(`connection.${state.connection}`));
  if (state.agent) renderAgent(state.agent);
  if (state.call) updateCall(state.call); else renderIdleCall();
  if (!state.form) renderForm(null);
  renderHistory();
  renderSearchResults();
}

$("language").addEventListener("change", () => {
  setDeskLanguage($("language").value);
  rerender();
});

// ------------------------------------------------------------------ session

async function start() {
  try {
    const me = await api("GET", "/api/cti/me");
    begin(me.session, me.dispositions, me.pause_codes);
    renderAgent(me.agent);
    const current = me.calls.find((c) => c.call.state !== "ended") || me.calls[me.calls.length - 1];
    if (current) showCall(current);
  } catch (error) {
    showLogin();
  }
}

function showLogin() {
  show("login", true); show("desk", false); show("who", false);
  if (state.socket) { state.socket.onclose = null; state.socket.close(); state.socket = null; }
}

function begin(session, dispositions, pauseCodes) {
  state.session = session;
  state.dispositions = dispositions || [];
  state.pauseCodes = pauseCodes || [];
  renderPauseCodes();
  state.csrf = state.csrf || cookie("pbx_csrf");
  show("login", false); show("desk", true); show("who", true);
  renderSession(session);
  renderDispositions();
  if (!state.call) renderIdleCall();
  if (!state.form) renderForm(null);
  connect();
  loadRecordings();
}

function renderSession(session) {
  say("agent-name", `${session.name} (${session.extension}, ${t(`session.role.${session.role}`)})`);
}

function pauseLabel(code) {
  const found = state.pauseCodes.find((p) => p.code === code);
  if (!found) return tOr(`reason.${code}`, code);
  return (found.labels && found.labels[deskLanguage]) || found.label;
}

function renderPauseCodes() {
  const select = $("pause-reason");
  const chosen = select.value;
  select.replaceChildren(...state.pauseCodes.map(
    (p) => el("option", { value: p.code, text: pauseLabel(p.code) })));
  if (chosen) select.value = chosen;
}

function renderDispositions() {
  const select = $("disposition");
  const chosen = select.value;
  select.replaceChildren(...state.dispositions.map(
    (d) => el("option", { value: d, text: tOr(`disposition.${d}`, d) })));
  if (chosen) select.value = chosen;
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  say("login-error", "");
  unlockAlerts();  // a click: the browser lets the page make sound and ask for notifications
  try {
    const result = await api("POST", "/api/cti/login", {
      extension: $("login-extension").value.trim(),
      password: $("login-password").value,
    });
    state.csrf = result.csrf_token;
    state.csrfHeader = result.csrf_header || state.csrfHeader;
    $("login-password").value = "";
    await start();
  } catch (error) {
    const known = { 401: "login.wrong", 429: "login.locked" }[error.status];
    say("login-error", known ? t(known) : error.message);
  }
});

$("preview-dial").addEventListener("click", () => decidePreview(true));
$("preview-skip").addEventListener("click", () => decidePreview(false));

$("sign-out").addEventListener("click", async () => {
  try { await api("POST", "/api/cti/logout"); } catch (e) { /* already gone */ }
  state.csrf = null;
  showLogin();
});

// ------------------------------------------------------------------ live events

function connect() {
  if (state.socket) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/api/cti/ws`);
  state.socket = socket;
  socket.onopen = () => { setConnection("live"); state.retry = 1000; };
  socket.onmessage = (message) => handle(JSON.parse(message.data));
  socket.onclose = (event) => {
    state.socket = null;
    setConnection("offline");
    if (event.code === 4401) { showLogin(); return; }
    setTimeout(connect, state.retry);
    state.retry = Math.min(state.retry * 2, 30000);
  };
}

function setConnection(what) {
  state.connection = what;
  say("connection", t(`connection.${what}`));
}

function handle(event) {
  const mine = (agent) => state.session && agent === state.session.extension;
  switch (event.type) {
    case "snapshot":
      for (const agent of event.agents) if (mine(agent.extension)) renderAgent(agent);
      for (const item of event.calls) if (item.call.state !== "ended") showCall(item);
      break;
    case "agent_state":
      if (mine(event.agent.extension)) renderAgent(event.agent);
      break;
    case "offered":
    case "dialing":
      if (mine(event.call.agent)) showCall(event.pop);
      break;
    case "answered": case "held": case "resumed": case "transferred": case "ended":
    case "recording":
      if (state.call && event.call.call_id === state.call.call_id) {
        updateCall(event.call);
        if (event.type === "ended") reloadHistorySoon();
      }
      if (event.type === "ended" && event.call.recording) {
        setTimeout(loadRecordings, 2000);  // its CDR is written behind
      }
      break;
    case "offer_cancelled":
      if (state.call && event.call_id === state.call.call_id && mine(event.agent)) clearCall();
      break;
    case "wrapup_started":
      if (mine(event.agent)) show("wrapup-panel", true);
      break;
    case "wrapup_ended":
      if (mine(event.agent)) show("wrapup-panel", false);
      break;
    case "preview":
      showPreview(event);
      break;
    case "preview_cancelled":
      if (state.preview && state.preview.customer_no === event.customer_no) hidePreview();
      break;
    case "error":
      say("call-error", event.message || event.error);
      break;
    default:
      break;
  }
}

// ------------------------------------------------------------------ agent state

function renderAgent(agent) {
  if (!agent) return;
  state.agent = agent;
  const badge = $("agent-state");
  badge.dataset.state = agent.state;
  const name = tOr(`state.${agent.state}`, agent.state.replace("_", " "));
  const reason = agent.reason && agent.state === "paused" ? pauseLabel(agent.reason) : "";
  badge.textContent = reason && reason !== name ? `${name} (${reason})` : name;
  // No registered phone: no call can reach this seat, whatever the state says.
  show("no-phone", !agent.device_available && agent.state !== "logged_out");
  tickAgent();
}

// Time in state, and the wrap-up counting down, once a second (`since` and `until` are the
// server's wall times; desk and server clocks are NTP-synchronised in any call center).
function tickAgent() {
  const agent = state.agent;
  if (!agent) return;
  const now = Date.now() / 1000;
  const timer = $("state-timer");
  if (agent.state === "wrap_up" && agent.until) {
    timer.textContent = t("agent.wrap_up_left", { time: clock(agent.until - now) });
  } else if (agent.since) {
    timer.textContent = clock(now - agent.since);
  } else {
    timer.textContent = "";
  }
}

// The call's running time: talk time once answered (frozen when it ends), ringing before.
function tickCall() {
  const call = state.call;
  const timer = $("call-timer");
  const now = Date.now() / 1000;
  if (call && call.answered_at) {
    timer.textContent = clock((call.ended_at || now) - call.answered_at);
    timer.title = t("call.talk_time");
  } else if (call && call.offered_at && ["offered", "dialing"].includes(call.state)) {
    timer.textContent = clock(now - call.offered_at);
    timer.title = t("call.ring_time");
  } else {
    timer.textContent = "";
    timer.title = "";
  }
}
setInterval(() => { tickAgent(); tickCall(); }, 1000);

async function agentAction(action) {
  if (!state.session) return;
  say("state-error", "");
  const body = action === "pause" ? { reason: $("pause-reason").value } : {};
  try {
    await api("POST", `/api/cti/agents/${state.session.extension}/${action}`, body);
  } catch (error) {
    say("state-error", error.message);
  }
}

document.querySelectorAll("[data-agent-action]").forEach((button) => {
  button.addEventListener("click", () => agentAction(button.dataset.agentAction));
});

// ------------------------------------------------------------------ ring alert

// A call ringing here: two short tones every two seconds (WebAudio, no sound file) and a
// browser notification when the agent allowed them; both stop when the call is answered,
// taken elsewhere or gone.
const ring = { audio: null, timer: null, callId: null, notification: null, beeps: 0,
               asked: false };

function unlockAlerts() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (Context && !ring.audio) {
    try { ring.audio = new Context(); } catch (e) { ring.audio = null; }
  }
  if (ring.audio && ring.audio.state === "suspended") ring.audio.resume().catch(() => {});
  if (!ring.asked && "Notification" in window && Notification.permission === "default") {
    ring.asked = true;  // once per page: a dismissed prompt is not repeated at every key
    try { Notification.requestPermission().catch(() => {}); } catch (e) { /* old API */ }
  }
}
document.addEventListener("pointerdown", unlockAlerts);
document.addEventListener("keydown", unlockAlerts);

function beep() {
  const audio = ring.audio;
  if (!audio) return;
  const start = audio.currentTime + 0.01;
  for (const [frequency, offset] of [[880, 0], [660, 0.25]]) {
    const tone = audio.createOscillator();
    const gain = audio.createGain();
    tone.type = "sine";
    tone.frequency.value = frequency;
    gain.gain.setValueAtTime(0.0001, start + offset);
    gain.gain.exponentialRampToValueAtTime(0.3, start + offset + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.2);
    tone.connect(gain).connect(audio.destination);
    tone.start(start + offset);
    tone.stop(start + offset + 0.22);
  }
  ring.beeps += 1;
}

function startRing(call) {
  if (ring.callId === call.call_id) return;
  stopRing();
  ring.callId = call.call_id;
  $("call-panel").classList.add("ringing");
  beep();
  ring.timer = setInterval(beep, 2000);
  if ("Notification" in window && Notification.permission === "granted") {
    try {
      ring.notification = new Notification(t("ring.title"), {
        body: t("ring.body", { caller: call.caller || t("ring.unknown"), queue: call.queue || "—" }),
        tag: `pbx-call-${call.call_id}`,
      });
      ring.notification.onclick = () => { window.focus(); };
    } catch (e) { ring.notification = null; }
  }
}

function stopRing() {
  if (ring.timer) clearInterval(ring.timer);
  if (ring.notification) ring.notification.close();
  ring.timer = null; ring.notification = null; ring.callId = null;
  $("call-panel").classList.remove("ringing");
}

// ------------------------------------------------------------------ keyboard shortcuts

// One key each, never while the agent types in a field (Esc leaves the field first).
const SHORTCUTS = {
  h: () => { if (state.call) callAction(state.call.state === "held" ? "resume" : "hold"); },
  t: () => { if (state.call) $("transfer-target").focus(); },
  w: () => { if (!$("wrapup-panel").hidden) $("disposition").focus(); },
  r: () => agentAction("ready"),
  p: () => agentAction("pause"),
};

function typing(target) {
  return target instanceof HTMLElement
    && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && typing(event.target)) { event.target.blur(); return; }
  if (event.ctrlKey || event.altKey || event.metaKey || event.repeat) return;
  if (typing(event.target) || $("desk").hidden) return;
  const shortcut = SHORTCUTS[event.key.toLowerCase()];
  if (!shortcut) return;
  event.preventDefault();
  shortcut();
});

// ------------------------------------------------------------------ the call and its pop

function showCall(pop) {
  state.call = pop.call;
  state.pop = pop;
  state.popMode = "call";
  state.customerNo = pop.customer_no;
  updateCall(pop.call);
  renderForm(pop.form);
  show("wrapup-panel", pop.call.state === "ended" && !pop.call.disposition);
  loadHistory(pop.customer_no);
}

function clearCall() {
  state.call = null;
  stopRing();
  renderIdleCall();
  if (state.popMode === "call") renderForm(null);
}

// No call: the panel stays where it is, its buttons off.
function renderIdleCall() {
  $("call-panel").classList.add("idle");
  const badge = $("call-state");
  badge.dataset.state = "none";
  badge.textContent = t("call.none");
  $("call-info").replaceChildren();
  document.querySelectorAll("[data-call-action]").forEach((button) => { button.disabled = true; });
  for (const action of ["record", "stop-record"]) {
    document.querySelector(`[data-call-action="${action}"]`).classList.add("reserved");
  }
  show("call-recording", false);
  $("transfer-submit").disabled = true;
  tickCall();
}

function updateCall(call) {
  state.call = call;
  show("call-panel", true);
  $("call-panel").classList.remove("idle");
  if (call.state === "offered" && call.direction !== "outbound") startRing(call);
  else stopRing();
  const badge = $("call-state");
  badge.dataset.state = call.state;
  badge.textContent = tOr(`call.state.${call.state}`, call.state);
  const waited = call.waited_s == null ? "" : t("call.seconds", { n: Math.round(call.waited_s) });
  const rows = [
    [t("call.caller"), call.caller], [t("call.dialled"), call.did], [t("call.queue"), call.queue],
    [t("call.waited"), waited],
    [t("call.answered"), timeOf(call.answered_at)], [t("call.ended"), timeOf(call.ended_at)],
  ].filter(([, value]) => value);
  $("call-info").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { text: k }),
                                                              el("dd", { text: v })]));
  const can = { hangup: ["offered", "dialing", "connected", "held"], hold: ["connected"],
                resume: ["held"], "complete-transfer": ["connected", "held"],
                "cancel-transfer": ["connected", "held"],
                record: call.recording ? [] : ["connected", "held"],
                "stop-record": call.recording ? ["connected", "held"] : [] };
  document.querySelectorAll("[data-call-action]").forEach((button) => {
    button.disabled = !(can[button.dataset.callAction] || []).includes(call.state);
  });
  // The agent starts and stops the recording only where the queue or campaign says on_demand;
  // elsewhere the buttons keep their place, unseen, so that no control moves.
  for (const action of ["record", "stop-record"]) {
    document.querySelector(`[data-call-action="${action}"]`).classList.toggle(
      "reserved", call.recording_mode !== "on_demand");
  }
  show("call-recording", Boolean(call.recording) && call.state !== "ended");
  $("transfer-submit").disabled = !["connected", "held"].includes(call.state);
  if (call.state === "ended" && !call.disposition) show("wrapup-panel", true);
  tickCall();
}

document.querySelectorAll("[data-call-action]").forEach((button) => {
  button.addEventListener("click", () => callAction(button.dataset.callAction));
});

async function callAction(action, body) {
  if (!state.call) return;
  say("call-error", "");
  try {
    await api("POST", `/api/cti/calls/${encodeURIComponent(state.call.call_id)}/${action}`, body);
  } catch (error) {
    say("call-error", error.message);
  }
}

$("transfer-form").addEventListener("submit", (event) => {
  event.preventDefault();
  callAction("transfer", { target: $("transfer-target").value.trim(),
                           attended: $("transfer-attended").checked });
});

// The pop never leaves its place: without a form it says so and keeps its space.
function renderForm(form) {
  const target = $("pop-form");
  state.form = form;
  say("pop-message", "");
  show("pop-panel", true);
  show("pop-empty", !form);
  if (!form) {
    say("pop-title", t("panel.pop"));
    target.replaceChildren();
    $("pop-save").disabled = true;
    return;
  }
  say("pop-title", form.title);
  target.replaceChildren(...form.fields.map(renderField));
  $("pop-save").disabled = !form.fields.some((f) => f.access === "read_write");
}

function renderField(field) {
  const id = `field-${field.name}`;
  const readOnly = field.access !== "read_write";
  const value = field.value == null ? "" : String(field.value);
  let input;
  if (field.type === "textarea") {
    input = el("textarea", { id, name: field.name, rows: 3 });
    input.value = value;
  } else if (field.type === "select") {
    input = el("select", { id, name: field.name },
      el("option", { value: "", text: "—" }),
      ...field.options.map((o) => el("option", { value: o, text: o })));
    input.value = value;
  } else if (field.type === "checkbox") {
    input = el("input", { id, name: field.name, type: "checkbox" });
    input.checked = value === "true";
  } else {
    const type = { number: "number", date: "date" }[field.type] || "text";
    input = el("input", { id, name: field.name, type });
    input.value = value;
    if (field.pattern && !readOnly) input.pattern = field.pattern;
    if (field.max_length) input.maxLength = field.max_length;
  }
  input.dataset.original = field.type === "checkbox" ? String(input.checked) : value;
  input.dataset.kind = field.type;
  if (readOnly) {
    input.readOnly = true;
    input.disabled = true;
    input.setAttribute("aria-readonly", "true");
  }
  if (field.required && !readOnly) input.required = true;
  const wide = field.type === "textarea" ? " wide" : "";
  return el("div", { class: `field ${field.access}${wide}`, "data-field": field.name },
    el("label", { for: id, text: field.label },
      readOnly ? el("span", { class: "lock", "data-i18n": "pop.read_only",
                              text: t("pop.read_only") }) : null),
    input,
    el("div", { class: "problem" }));
}

function changedValues() {
  const values = {};
  $("pop-form").querySelectorAll("input, select, textarea").forEach((input) => {
    if (input.disabled) return;  // read-only fields are never sent
    const now = input.dataset.kind === "checkbox" ? String(input.checked) : input.value;
    if (now !== input.dataset.original) {
      values[input.name] = input.dataset.kind === "checkbox" ? input.checked : now;
    }
  });
  return values;
}

$("pop-save").addEventListener("click", async () => {
  const values = changedValues();
  $("pop-form").querySelectorAll(".problem").forEach((p) => { p.textContent = ""; });
  if (Object.keys(values).length === 0) { say("pop-message", t("pop.nothing_changed")); return; }
  try {
    let result;
    if (state.popMode === "call" && state.call) {
      result = await api("POST",
        `/api/cti/calls/${encodeURIComponent(state.call.call_id)}/form`, { values });
      renderForm(result.pop.form);
    } else {
      result = await api("PATCH", `/api/cti/customers/${encodeURIComponent(state.customerNo)}`,
                         { values });
      renderForm(result.form);
    }
    say("pop-message", t("pop.saved", { n: result.saved.length }));
  } catch (error) {
    say("pop-message", "");
    for (const [name, problem] of Object.entries(error.fields || {})) {
      const box = document.querySelector(`[data-field="${CSS.escape(name)}"] .problem`);
      if (box) box.textContent = problem;
    }
    const message = $("pop-message");
    message.textContent = error.message;
    message.className = "error";
    setTimeout(() => { message.className = "message"; }, 4000);
  }
});

$("wrapup-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!state.call) return;
  try {
    await api("POST", `/api/cti/calls/${encodeURIComponent(state.call.call_id)}/disposition`,
              { disposition: $("disposition").value, note: $("disposition-note").value });
    const chosen = $("disposition").selectedOptions[0];
    say("wrapup-message", t("wrapup.done", { disposition: chosen ? chosen.textContent : "" }));
    state.call.disposition = $("disposition").value;
  } catch (error) {
    say("wrapup-message", error.message);
  }
});

// ------------------------------------------------------------------ history, dialing, search

// The customer's calls (GET /api/cti/customers/{no}/calls: the same columns a form hides from
// this agent are left out by the server).
async function loadHistory(customerNo) {
  if (!customerNo) { state.history = null; renderHistory(); return; }
  try {
    const result = await api("GET",
      `/api/cti/customers/${encodeURIComponent(customerNo)}/calls?limit=20`);
    if (customerNo !== state.customerNo) return;  // another customer was opened meanwhile
    state.history = result.calls;
  } catch (error) {
    state.history = null;
  }
  renderHistory();
}

// Recorded calls this session may hear (supervisors: all; agents: their own, when the admin
// allows it); the panel stays hidden when the PBX says no (403).
async function loadRecordings() {
  try {
    const result = await api("GET", "/api/recordings?limit=20");
    const rows = result.recordings.map((r) => el("tr", {},
      el("td", { text: when(r.started_at) }), el("td", { text: r.caller }),
      el("td", { text: r.agent }), el("td", { text: r.queue }),
      el("td", {}, r.url ? el("audio", { controls: true, preload: "none", src: r.url })
                         : document.createTextNode(t("recordings.deleted")))));
    $("recordings").tBodies[0].replaceChildren(...rows);
    show("recordings-panel", rows.length > 0);
  } catch (error) {
    show("recordings-panel", false);
  }
}

// The call just ended is in the history once its record is written.
function reloadHistorySoon() {
  const customerNo = state.customerNo;
  for (const delay of [1000, 4000, 10000]) {
    setTimeout(() => { if (state.customerNo === customerNo) loadHistory(customerNo); }, delay);
  }
}

function renderHistory() {
  if (!state.history) { show("history-panel", false); return; }
  const rows = state.history.map((c) => el("tr", {},
    el("td", { text: when(c.started_at) }),
    el("td", { text: tOr(`direction.${c.direction}`, c.direction) }),
    el("td", {}, dialLink(c.caller)), el("td", {}, dialLink(c.callee)),
    el("td", { text: c.agent }),
    el("td", { text: c.answered_at && c.ended_at ? clock(c.ended_at - c.answered_at) : "" }),
    el("td", { text: tOr(`outcome.${c.disposition}`, c.disposition) }),
    el("td", { text: c.agent_disposition
      ? tOr(`disposition.${c.agent_disposition}`, c.agent_disposition) : "" }),
    el("td", { text: c.agent_notes || "" }),
    // a small player where the PBX says this session may hear the call (recording_url)
    el("td", {}, c.recording_url ? historyPlayer(c.recording_url)
      : c.recording_expired ? el("span", { class: "muted", text: t("recordings.deleted") })
      : null)));
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 10, text: t("history.none") })));
  $("history").tBodies[0].replaceChildren(...rows);
  show("history-panel", true);
}

// A play/pause button over a hidden <audio> (the session cookie authorises the WAV).
function historyPlayer(url) {
  const audio = el("audio", { preload: "none", src: url });
  const button = el("button", { type: "button", class: "history-play", "aria-pressed": "false",
                                title: t("recordings.listen"), "aria-label": t("recordings.listen"),
                                text: "▶" });
  const shown = (playing) => {
    button.textContent = playing ? "❚❚" : "▶";
    button.setAttribute("aria-pressed", String(playing));
  };
  audio.addEventListener("play", () => shown(true));
  audio.addEventListener("pause", () => shown(false));
  audio.addEventListener("ended", () => shown(false));
  button.addEventListener("click", () => {
    if (audio.paused) audio.play().catch(() => shown(false)); else audio.pause();
  });
  const player = el("span", { class: "history-player" }, audio, button);
  return player;
}

function dialLink(number) {
  if (!number || !/^\+?[0-9]{3,}$/.test(number)) return document.createTextNode(number || "");
  const link = el("a", { class: "dial", title: t("dial.link_title"), text: number });
  link.addEventListener("click", () => dial(number));
  return link;
}

async function dial(number) {
  say("dial-error", "");
  try {
    await api("POST", "/api/cti/calls", { number });
  } catch (error) {
    say("dial-error", error.message);
  }
}

$("dial-form").addEventListener("submit", (event) => {
  event.preventDefault();
  dial($("dial-number").value.trim());
});

// Search results: the name (when the agent's form shows names; the server leaves it out
// otherwise) with the customer number; a click opens the customer in the pop.
$("search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const result = await api("GET",
      `/api/cti/customers?q=${encodeURIComponent($("search-text").value.trim())}`);
    state.found = result.customers;
  } catch (error) {
    state.found = null;
    $("search-results").replaceChildren(el("li", { class: "error", text: error.message }));
    return;
  }
  renderSearchResults();
});

function renderSearchResults() {
  const list = $("search-results");
  if (!state.found) return;
  list.replaceChildren(...state.found.map((c) => {
    const link = el("a", { class: "dial", text: c.name || c.customer_no });
    link.addEventListener("click", () => openCustomer(c.customer_no));
    return el("li", { "data-customer": c.customer_no }, link,
      c.name ? el("span", { class: "customer-no",
                            text: t("search.customer_no", { customer_no: c.customer_no }) })
        : null);
  }));
  if (!state.found.length) list.replaceChildren(el("li", { text: t("search.none") }));
}

async function openCustomer(customerNo) {
  try {
    const result = await api("GET", `/api/cti/customers/${encodeURIComponent(customerNo)}`);
    state.popMode = "customer";
    state.customerNo = customerNo;
    renderForm(result.form);
    loadHistory(customerNo);
  } catch (error) {
    say("pop-message", error.message);
  }
}

$("language").value = deskLanguage;
applyDeskStrings();
start();
