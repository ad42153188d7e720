// Supervisor wallboard: live queues, agents and calls over the CTI WebSocket (a "wallboard"
// message every 2 s, plus agent_state events in between). Plain JavaScript, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
let board = null;      // the last wallboard message
let socket = null;
let retry = 1000;

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

function percent(value) {
  return value === null || value === undefined ? "–" : `${Math.round(value * 100)} %`;
}

async function login(extension, password) {
  const response = await fetch("/api/cti/login", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ extension, password }),
  });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  if (!["supervisor", "admin"].includes(data.session.role)) {
    throw new Error("The wallboard is for supervisors and admins.");
  }
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await login($("login-extension").value.trim(), $("login-password").value);
    $("login-password").value = "";
    start();
  } catch (error) {
    $("login-error").textContent = error.message;
  }
});

async function start() {
  const response = await fetch("/api/cti/me", { credentials: "same-origin" });
  if (!response.ok) { $("login").hidden = false; $("board").hidden = true; return; }
  const me = await response.json();
  if (!["supervisor", "admin"].includes(me.session.role)) {
    $("login").hidden = false;
    $("login-error").textContent = "The wallboard is for supervisors and admins.";
    return;
  }
  $("login").hidden = true;
  $("board").hidden = false;
  connect();
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/api/cti/ws`);
  socket.onopen = () => { retry = 1000; };
  socket.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.type === "wallboard") { board = event; render(); }
    else if (event.type === "agent_state" && board) {
      board.agents = board.agents.map((a) => a.extension === event.agent.extension ? event.agent : a);
      render();
    } else if (event.type === "monitor" && board) { Supervise.onMonitor(board, event); render(); }
  };
  socket.onclose = (event) => {
    $("updated").textContent = "offline";
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
  $("kpi-available").textContent = board.agents.filter((a) => a.state === "available").length;
  $("kpi-calls").textContent = board.calls.length;
  $("queues").tBodies[0].replaceChildren(...queues.map((q) => row(
    q.name, q.waiting, duration(q.longest_wait_s), percent(q.service_level), q.answered,
    q.abandoned)));
  $("agents").tBodies[0].replaceChildren(...board.agents.map((a) => {
    const badge = el("td");
    badge.append(el("span", a.state.replace("_", " ") + (a.reason && a.state === "paused"
      ? ` (${a.reason})` : ""), { class: "state", "data-state": a.state }));
    return row(`${a.name} (${a.extension})`, badge, duration(now - a.since), a.call || "",
      Supervise.agentCell(a, board));
  }));
  $("calls").tBodies[0].replaceChildren(...board.calls.map((c) => row(
    c.caller, c.queue, c.state, c.agent)));
  drawChart(board.calls_per_interval, board.interval_s);
  $("updated").textContent = `updated ${new Date(board.at * 1000).toLocaleTimeString()}`;
}

function drawChart(intervals, width) {
  const svg = $("chart");
  const ns = "http://www.w3.org/2000/svg";
  const shown = intervals.slice(-30);
  const max = Math.max(1, ...shown.map((i) => i.calls));
  const bar = 100 / 30;
  const nodes = shown.map((interval, index) => {
    const height = (interval.calls / max) * 130;
    const rect = document.createElementNS(ns, "rect");
    rect.setAttribute("x", `${index * bar}%`);
    rect.setAttribute("width", `${bar * 0.8}%`);
    rect.setAttribute("y", String(140 - height));
    rect.setAttribute("height", String(height));
    const title = document.createElementNS(ns, "title");
    title.textContent = `${new Date(interval.start * 1000).toLocaleTimeString()}: ` +
      `${interval.calls} call(s) per ${width} s`;
    rect.append(title);
    return rect;
  });
  const label = document.createElementNS(ns, "text");
  label.setAttribute("x", "0");
  label.setAttribute("y", "155");
  label.textContent = `max ${max} per ${width} s`;
  svg.replaceChildren(...nodes, label);
}

setInterval(() => { if (board) render(); }, 1000);
start();
