// Agent desktop: plain JavaScript, no build step. Talks to /api/cti with the session cookie
// (HttpOnly, SameSite=Strict) and echoes the CSRF token in a header on every change; live
// events arrive over the WebSocket /api/cti/ws. All text goes through textContent (no HTML
// built from data).
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
  popMode: "call",     // "call" | "customer"
};

function cookie(name) {
  const found = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : null;
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers[state.csrfHeader] = state.csrf || cookie("pbx_csrf") || "";
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = {};
  try { data = await response.json(); } catch (e) { data = {}; }
  if (!response.ok) {
    const error = new Error(data.error || response.statusText);
    error.status = response.status;
    error.fields = data.fields || {};
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
  return seconds ? new Date(seconds * 1000).toLocaleString() : "";
}

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
  $("pause-reason").replaceChildren(...(pauseCodes || []).map(
    (p) => el("option", { value: p.code, text: p.label })));
  state.csrf = state.csrf || cookie("pbx_csrf");
  show("login", false); show("desk", true); show("who", true);
  say("agent-name", `${session.name} (${session.extension}, ${session.role})`);
  const select = $("disposition");
  select.replaceChildren(...state.dispositions.map((d) => el("option", { value: d, text: d })));
  connect();
  loadRecordings();
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  say("login-error", "");
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
    say("login-error", error.message);
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
  socket.onopen = () => { say("connection", "live"); state.retry = 1000; };
  socket.onmessage = (message) => handle(JSON.parse(message.data));
  socket.onclose = (event) => {
    state.socket = null;
    say("connection", "offline");
    if (event.code === 4401) { showLogin(); return; }
    setTimeout(connect, state.retry);
    state.retry = Math.min(state.retry * 2, 30000);
  };
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
    case "answered": case "held": case "resumed": case "transferred": case "recording":
      if (state.call && event.call.call_id === state.call.call_id) updateCall(event.call);
      break;
    case "ended":
      if (state.call && event.call.call_id === state.call.call_id) updateCall(event.call);
      if (event.call.recording) setTimeout(loadRecordings, 2000);  // its CDR is written behind
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
      say("call-error", event.error);
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
  const label = $("pause-reason").querySelector(`option[value="${CSS.escape(agent.reason || "")}"]`);
  badge.textContent = agent.state.replace("_", " ") + (agent.reason && agent.state === "paused"
    ? ` (${label ? label.textContent : agent.reason})` : "");
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
  const seconds = (t) => Math.max(0, Math.round(t));
  const clock = (s) => `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  const timer = $("state-timer");
  if (agent.state === "wrap_up" && agent.until) {
    timer.textContent = `wrap-up ${clock(seconds(agent.until - now))} left`;
  } else if (agent.since) {
    timer.textContent = clock(seconds(now - agent.since));
  } else {
    timer.textContent = "";
  }
}
setInterval(tickAgent, 1000);

document.querySelectorAll("[data-agent-action]").forEach((button) => {
  button.addEventListener("click", async () => {
    const action = button.dataset.agentAction;
    say("state-error", "");
    const body = action === "pause" ? { reason: $("pause-reason").value } : {};
    try {
      await api("POST", `/api/cti/agents/${state.session.extension}/${action}`, body);
    } catch (error) {
      say("state-error", error.message);
    }
  });
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
  show("call-panel", false);
  if (state.popMode === "call") show("pop-panel", false);
}

function updateCall(call) {
  state.call = call;
  show("call-panel", true);
  const badge = $("call-state");
  badge.dataset.state = call.state;
  badge.textContent = call.state;
  const rows = [
    ["Caller", call.caller], ["Dialled", call.did], ["Queue", call.queue],
    ["Waited", call.waited_s == null ? "" : `${Math.round(call.waited_s)} s`],
    ["Answered", when(call.answered_at)], ["Ended", when(call.ended_at)],
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
  // The agent starts and stops the recording only where the queue or campaign says on_demand.
  for (const action of ["record", "stop-record"]) {
    document.querySelector(`[data-call-action="${action}"]`).hidden =
      call.recording_mode !== "on_demand";
  }
  show("call-recording", Boolean(call.recording) && call.state !== "ended");
  if (call.state === "ended" && !call.disposition) show("wrapup-panel", true);
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

function renderForm(form) {
  const target = $("pop-form");
  say("pop-message", "");
  if (!form) { show("pop-panel", false); return; }
  show("pop-panel", true);
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
  return el("div", { class: `field ${field.access}`, "data-field": field.name },
    el("label", { for: id, text: field.label },
      readOnly ? el("span", { class: "lock", text: "read-only" }) : null),
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
  if (Object.keys(values).length === 0) { say("pop-message", "Nothing changed."); return; }
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
    say("pop-message", `Saved ${result.saved.length} change(s).`);
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
    say("wrapup-message", `Disposition: ${$("disposition").value}`);
    state.call.disposition = $("disposition").value;
  } catch (error) {
    say("wrapup-message", error.message);
  }
});

// ------------------------------------------------------------------ history, dialing, search

async function loadHistory(customerNo) {
  if (!customerNo) { show("history-panel", false); return; }
  try {
    const result = await api("GET",
      `/api/cti/customers/${encodeURIComponent(customerNo)}/calls?limit=20`);
    const rows = result.calls.map((c) => el("tr", {},
      el("td", { text: when(c.started_at) }), el("td", { text: c.direction }),
      el("td", {}, dialLink(c.caller)), el("td", {}, dialLink(c.callee)),
      el("td", { text: c.agent }), el("td", { text: c.disposition }),
      el("td", { text: c.agent_disposition || "" }), el("td", { text: c.agent_notes || "" })));
    $("history").tBodies[0].replaceChildren(...rows);
    show("history-panel", true);
  } catch (error) {
    show("history-panel", false);
  }
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
                         : document.createTextNode("deleted (retention)"))));
    $("recordings").tBodies[0].replaceChildren(...rows);
    show("recordings-panel", rows.length > 0);
  } catch (error) {
    show("recordings-panel", false);
  }
}

function dialLink(number) {
  if (!number || !/^\+?[0-9]{3,}$/.test(number)) return document.createTextNode(number || "");
  const link = el("a", { class: "dial", title: "Call this number", text: number });
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

$("search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const list = $("search-results");
  try {
    const result = await api("GET",
      `/api/cti/customers?q=${encodeURIComponent($("search-text").value.trim())}`);
    list.replaceChildren(...result.customers.map((c) => {
      const name = (c.fields || []).find((f) => f.name === "name");
      const item = el("li", {}, el("a", { class: "dial",
        text: `${c.customer_no}${name && name.value ? " — " + name.value : ""}` }));
      item.firstChild.addEventListener("click", () => openCustomer(c.customer_no));
      return item;
    }));
    if (!result.customers.length) list.replaceChildren(el("li", { text: "No customer found." }));
  } catch (error) {
    list.replaceChildren(el("li", { class: "error", text: error.message }));
  }
});

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

start();
