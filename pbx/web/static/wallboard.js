// Supervisor wallboard: live queues, agents and calls over the CTI WebSocket (a "wallboard"
// message every 2 s, plus agent_state events in between). Plain JavaScript, no build step.
// Every word shown comes from i18n.js (t(key), the desk's table), loaded before this file; the
// language switch and the default (cti.language, <html data-default-language>) work as on the desk.
"use strict";

const $ = (id) => document.getElementById(id);
let board = null;      // the last wallboard message
let socket = null;
let retry = 1000;
let recorded = new Set();  // calls in progress being recorded: their end brings a new recording
let pauseLabels = {};      // pause code -> {de, en} (from /api/cti/me)
let connected = false;

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  return node;
}

function row(...cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) tr.append(cell instanceof Node ? cell : el("td", cell));
  return tr;
}

function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function timeOfDay(seconds, options) {
  return new Date(seconds * 1000).toLocaleTimeString(deskLocale(), options);
}

function percent(value) {
  return value === null || value === undefined ? "–" : `${Math.round(value * 100)} %`;
}

// A state-changing request with the session cookie and its CSRF header (the perimeter
// refuses cookie requests without it); the answer's error text on failure.
async function post(path, body) {
  const match = document.cookie.split("; ").find((c) => c.startsWith("pbx_csrf="));
  const response = await fetch(path, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", [csrfHeader]: match ? match.slice(9) : "",
               "Accept-Language": deskLanguage },
    body: JSON.stringify(body || {}),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.message || data.error || response.statusText);
  return data;
}
let csrfHeader = "X-CSRF-Token";

async function login(extension, password) {
  const response = await fetch("/api/cti/login", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "Accept-Language": deskLanguage },
    body: JSON.stringify({ extension, password }),
  });
  const data = await response.json().catch(() => ({}));
  if (response.status === 401) throw new Error(t("login.wrong"));
  if (response.status === 429) throw new Error(t("login.locked"));
  if (!response.ok) {
    throw new Error(data.message || data.error || t("error.status", { status: response.status }));
  }
  csrfHeader = data.csrf_header || csrfHeader;
  if (!["supervisor", "admin"].includes(data.session.role)) {
    throw new Error(t("wallboard.not_supervisor"));
  }
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await login($("login-extension").value.trim(), $("login-password").value);
    $("login-password").value = "";
    start();
  } catch (error) {
    $("login-error").textContent = error instanceof TypeError ? t("error.network") : error.message;
  }
});

async function start() {
  const response = await fetch("/api/cti/me", { credentials: "same-origin" });
  if (!response.ok) { $("login").hidden = false; $("board").hidden = true; return; }
  const me = await response.json();
  if (!["supervisor", "admin"].includes(me.session.role)) {
    $("login").hidden = false;
    $("login-error").textContent = t("wallboard.not_supervisor");
    return;
  }
  for (const code of me.pause_codes || []) pauseLabels[code.code] = code.labels || {};
  $("login").hidden = true;
  $("board").hidden = false;
  connect();
  loadRecordings();
  setInterval(loadRecordings, 30000);
}

// The newest recorded calls, each playable in place (the session cookie authorises the audio).
async function loadRecordings() {
  const response = await fetch("/api/recordings?limit=20", { credentials: "same-origin" });
  if (!response.ok) { $("recordings-panel").hidden = true; return; }
  const { recordings } = await response.json();
  $("recordings").tBodies[0].replaceChildren(...recordings.map((r) => {
    const listen = el("td");
    if (r.url) {
      const audio = el("audio", null, { controls: "", preload: "none", src: r.url });
      listen.append(audio);
    } else {
      listen.textContent = t("recordings.deleted");
    }
    return row(new Date(r.started_at * 1000).toLocaleString(deskLocale()), r.caller, r.agent, r.queue,
               listen);
  }));
  $("recordings-panel").hidden = recordings.length === 0;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/api/cti/ws`);
  socket.onopen = () => { retry = 1000; connected = true; };
  socket.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.type === "wallboard") { board = event; render(); }
    else if (event.type === "agent_state" && board) {
      board.agents = board.agents.map((a) => a.extension === event.agent.extension ? event.agent : a);
      render();
    } else if (event.type === "monitor" && board) { Supervise.onMonitor(board, event); render(); }
  };
  socket.onclose = (event) => {
    connected = false;
    $("updated").textContent = t("connection.offline");
    if (event.code === 4401) { $("login").hidden = false; $("board").hidden = true; return; }
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 30000);
  };
}

function render() {
  const now = Date.now() / 1000;
  const queues = board.queues;
  $("kpi-waiting").textContent = queues.reduce((n, q) => n + q.waiting, 0);
  $("kpi-longest").textContent = duration(Math.max(0, ...queues.map((q) => q.longest_wait_s)));
  const answered = queues.reduce((n, q) => n + q.answered, 0);
  const levels = queues.filter((q) => q.service_level !== null);
  const weighted = levels.reduce((n, q) => n + q.service_level * (q.answered + q.abandoned), 0);
  const total = levels.reduce((n, q) => n + q.answered + q.abandoned, 0);
  $("kpi-sl").textContent = total ? percent(weighted / total) : "–";
  $("kpi-available").textContent = board.agents.filter(
    (a) => a.state === "available" && a.device_available).length;
  $("kpi-calls").textContent = board.calls.length;
  $("queues").tBodies[0].replaceChildren(...queues.map((q) => {
    const limits = q.thresholds || {};
    return row(
      q.name,
      level(q.waiting, q.waiting, limits.waiting_warn, limits.waiting_alert),
      level(duration(q.longest_wait_s), q.longest_wait_s, limits.longest_wait_warn_s,
            limits.longest_wait_alert_s),
      serviceLevel(q),
      q.asa_s === null || q.asa_s === undefined ? "–" : duration(q.asa_s),
      q.aht_s === null || q.aht_s === undefined ? "–" : duration(q.aht_s),
      level(percent(q.abandon_rate), q.abandon_rate, limits.abandon_rate_warn, limits.abandon_rate_alert),
      q.answered, q.abandoned, `${q.agents_available} / ${q.agents_staffed}`);
  }));
  $("agents").tBodies[0].replaceChildren(...board.agents.map((a) => {
    const badge = el("td");
    // A supervisor listening in is on that call for the ACD (busy); the board says how.
    const monitoring = Object.values(board.monitors || {}).find(
      (m) => m.supervisor === a.extension && !m.ringing);
    if (monitoring) {
      badge.append(el("span", t(`supervise.mode.${monitoring.mode}`),
                      { class: "state", "data-state": "monitoring" }));
    } else {
      badge.append(el("span", tOr(`state.${a.state}`, a.state) + (a.reason && a.state === "paused"
        ? ` (${reasonLabel(a.reason)})` : ""), { class: "state", "data-state": a.state }));
    }
    if (!a.device_available && a.state !== "logged_out") {
      badge.append(" ", el("span", t("agent.no_phone"), { class: "state no-phone" }));
    }
    const caller = a.caller ? (a.customer_name ? `${a.customer_name} (${a.caller})` : a.caller)
      : "";
    const talking = a.talking_since ? duration(now - a.talking_since) : "";
    return row(`${a.name} (${a.extension})`, badge, duration(now - a.since), caller, talking,
      Supervise.agentCell(a, board));
  }));
  const moving = document.activeElement && document.activeElement.closest("#calls");
  if (!moving) {  // don't rebuild the row a supervisor is choosing a target in
    $("calls").tBodies[0].replaceChildren(...board.calls.map((c) => row(
      c.caller, c.queue, tOr(`call.state.${c.state}`, c.state), c.agent,
      c.recording ? el("td", "●", { title: t("wallboard.col.recorded") }) : "",
      c.state === "queued" ? moveControl(c) : "")));
  }
  const recordedNow = new Set(board.calls.filter((c) => c.recording).map((c) => c.call_id));
  if ([...recorded].some((id) => !recordedNow.has(id))) {
    // the CDR that links the file is written behind the call: look again shortly
    for (const delay of [1500, 5000]) setTimeout(loadRecordings, delay);
  }
  recorded = recordedNow;
  drawChart(board.calls_per_interval, board.interval_s);
  $("updated").textContent = t("wallboard.updated", { time: timeOfDay(board.at) });
}

// A pause code in the page's language: the configured label, else the table's reason, else
// the code itself.
function reasonLabel(code) {
  const labels = pauseLabels[code];
  if (labels && labels[deskLanguage]) return labels[deskLanguage];
  return tOr(`reason.${code}`, code);
}

// Move a waiting caller: to another queue, or straight to an agent.
function moveControl(call) {
  const cell = el("td");
  const select = el("select", null, { "aria-label": t("wallboard.move_label", { caller: call.caller }),
                                      "data-move": call.call_id });
  select.append(el("option", t("wallboard.move_to"), { value: "" }));
  for (const q of board.queues) {
    if (q.name !== call.queue) {
      select.append(el("option", t("wallboard.move_queue", { queue: q.name }),
                       { value: `queue:${q.name}` }));
    }
  }
  for (const a of board.agents) {
    select.append(el("option", `${a.name} (${a.extension})`, { value: `agent:${a.extension}` }));
  }
  select.addEventListener("change", async () => {
    if (!select.value) return;
    try {
      await post(`/api/cti/calls/${encodeURIComponent(call.call_id)}/move`, { target: select.value });
      $("board-error").textContent = "";
    } catch (error) {
      $("board-error").textContent = error.message;
    }
    select.blur();
  });
  cell.append(select);
  return cell;
}

// A cell coloured by its figure: amber from `warn`, red from `alert` (higher is worse).
function level(text, value, warn, alert) {
  const cell = el("td", text);
  if (value !== null && value !== undefined && warn !== undefined) {
    cell.dataset.level = value >= alert ? "alert" : value >= warn ? "warn" : "ok";
  }
  return cell;
}

// The service level against the queue's target: green at or above it, amber down to the
// alert threshold, red below; "80 % / 20 s (target 80 %)".
function serviceLevel(q) {
  const cell = el("td", q.service_level === null || q.service_level === undefined ? "–"
    : `${percent(q.service_level)} / ${Math.round(q.service_level_s)} s`);
  cell.title = t("wallboard.sl_target", { target: percent(q.service_level_target),
                                          seconds: q.service_level_s });
  if (q.service_level !== null && q.service_level !== undefined) {
    const alert = (q.thresholds || {}).service_level_alert ?? 0;
    cell.dataset.level = q.service_level >= q.service_level_target ? "ok"
      : q.service_level >= alert ? "warn" : "alert";
  }
  return cell;
}

function drawChart(intervals, width) {
  // Bars of calls per interval over the last 30 intervals, with a y axis (calls, 0 to the
  // highest bar) and an x axis (the time of the first, middle and last bar).
  const svg = $("chart");
  const ns = "http://www.w3.org/2000/svg";
  const node = (tag, attrs, text) => {
    const n = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
    if (text !== undefined) n.textContent = text;
    return n;
  };
  const shown = intervals.slice(-30);
  const max = Math.max(1, ...shown.map((i) => i.calls));
  const left = 34, right = 590, top = 8, bottom = 130;
  svg.setAttribute("viewBox", "0 0 600 160");
  const slot = (right - left) / 30;
  const y = (calls) => bottom - (calls / max) * (bottom - top);
  const nodes = [
    node("line", { x1: left, y1: top, x2: left, y2: bottom, class: "axis" }),
    node("line", { x1: left, y1: bottom, x2: right, y2: bottom, class: "axis" }),
    node("text", { x: left - 4, y: y(max) + 4, "text-anchor": "end", class: "tick" }, max),
    node("text", { x: left - 4, y: bottom + 4, "text-anchor": "end", class: "tick" }, 0),
    node("text", { x: 2, y: top + 2, class: "tick", transform: `rotate(90 2 ${top + 2})` },
      t("wallboard.chart_axis", { seconds: width })),
  ];
  shown.forEach((interval, index) => {
    const rect = node("rect", { x: left + index * slot + 1, width: slot * 0.8,
                                y: y(interval.calls), height: bottom - y(interval.calls) });
    rect.append(node("title", {}, t("wallboard.chart_bar", {
      time: timeOfDay(interval.start), n: interval.calls, seconds: width })));
    nodes.push(rect);
  });
  for (const index of [0, Math.floor((shown.length - 1) / 2), shown.length - 1]) {
    if (index < 0 || !shown[index]) continue;
    const time = timeOfDay(shown[index].start, { hour: "2-digit", minute: "2-digit" });
    nodes.push(node("text", { x: left + index * slot + slot * 0.4, y: bottom + 16,
                              "text-anchor": "middle", class: "tick" }, time));
  }
  svg.replaceChildren(...nodes);
}

// Campaign progress: contacts done of all, attempts, connects, drops (every 5 s).
async function refreshCampaigns() {
  if ($("board").hidden) return;
  const response = await fetch("/api/cti/campaigns", { credentials: "same-origin" });
  if (!response.ok) return;
  const rows = (await response.json()).campaigns || [];
  $("campaigns-panel").hidden = rows.length === 0;
  $("campaigns").tBodies[0].replaceChildren(...rows.map((c) => {
    const done = c.contacts ? (c.contacts - c.contacts_left) / c.contacts : 0;
    const bar = el("td");
    const meter = el("meter", null, { min: "0", max: "1", value: String(done) });
    bar.append(meter, ` ${c.contacts - c.contacts_left} / ${c.contacts}`);
    return row(c.campaign, tOr(`campaign.state.${c.state}`, c.state), bar, c.attempts, c.connects, c.drops,
               percent(c.abandon_rate));
  }));
}
setInterval(() => { refreshCampaigns().catch(() => {}); }, 5000);

// The language switch: every fixed word again, and the board in the new language.
$("language").addEventListener("change", () => {
  setDeskLanguage($("language").value);
  $("language").value = deskLanguage;
  if (board) render(); else if (!connected) $("updated").textContent = t("connection.offline");
  refreshCampaigns().catch(() => {});
  loadRecordings().catch(() => {});
});

setInterval(() => { if (board) render(); }, 1000);
applyStrings();
$("language").value = deskLanguage;
start();
