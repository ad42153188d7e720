// The supervisor's actions on the wallboard: listen in on a talking call, whisper to the
// agent, barge in, stop; pause or log out an agent. Every action is a CTI API request, which
// checks the supervisor role and audits it; the PBX rings the supervisor's own phone.
// Loaded after i18n.js (t(key): every word shown) and before wallboard.js, which calls
// Supervise.agentCell() for each agent row.
"use strict";

const Supervise = (() => {
  // mode, its button's words, the button's tooltip (keys of i18n.js)
  const MODES = [
    ["listen", "supervise.listen", "supervise.listen_title"],
    ["whisper", "supervise.whisper", "supervise.whisper_title"],
    ["barge", "supervise.barge", "supervise.barge_title"],
  ];
  const modeName = (mode) => tOr(`supervise.mode.${mode}`, mode);
  const TALKING = ["connected", "held"];

  function cookie(name) {
    const found = document.cookie.split("; ").find((c) => c.startsWith(`${name}=`));
    return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
  }

  function notice(text, error) {
    const node = document.getElementById("supervise-notice");
    if (!node) return;
    node.textContent = text;
    node.dataset.kind = error ? "error" : "info";
  }

  async function send(method, path, body) {
    const headers = { "Content-Type": "application/json", "X-CSRF-Token": cookie("pbx_csrf"),
                      "Accept-Language": deskLanguage };
    const response = await fetch(path, {
      method, credentials: "same-origin", headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(data.message || data.error || t("error.status", { status: response.status }));
    }
    return data;
  }

  function button(label, title, onClick, attrs) {
    const node = document.createElement("button");
    node.type = "button";
    node.textContent = label;
    node.title = title;
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    node.addEventListener("click", async () => {
      node.disabled = true;
      try { notice(await onClick(), false); } catch (error) {
        notice(error instanceof TypeError ? t("error.network") : error.message, true);
      }
      finally { node.disabled = false; }
    });
    return node;
  }

  function callButtons(call, monitor) {
    const path = `/api/cti/calls/${encodeURIComponent(call.call_id)}/monitor`;
    const nodes = MODES.map(([mode, label, title]) => button(t(label), t(title), async () => {
      await send("POST", path, { mode });
      return t(monitor ? "supervise.mode_changed" : "supervise.phone_rings", { mode: t(label) });
    }, {
      class: "monitor", "data-mode": mode,
      "aria-pressed": String(Boolean(monitor && monitor.mode === mode)),
    }));
    if (monitor) {
      const state = document.createElement("span");
      state.className = "monitoring";
      state.textContent = monitor.ringing
        ? t("supervise.ringing", { supervisor: monitor.supervisor })
        : t("supervise.active", { supervisor: monitor.supervisor, mode: modeName(monitor.mode) });
      nodes.push(state, button(t("supervise.stop"), t("supervise.stop_title"), async () => {
        await send("DELETE", path);
        return t("supervise.stopped");
      }, { class: "monitor-stop" }));
    }
    return nodes;
  }

  function agentButtons(agent) {
    const nodes = [];
    const path = `/api/cti/agents/${encodeURIComponent(agent.extension)}`;
    if (["available", "wrap_up", "ringing"].includes(agent.state)) {
      nodes.push(button(t("action.pause"), t("supervise.pause_title"), async () => {
        await send("POST", `${path}/pause`, {});
        return t("supervise.paused", { name: agent.name });
      }, { class: "force-pause" }));
    }
    if (agent.state !== "logged_out") {
      nodes.push(button(t("supervise.logout"), t("supervise.logout_title"), async () => {
        await send("POST", `${path}/logout`);
        return t("supervise.logged_out", { name: agent.name });
      }, { class: "force-logout" }));
    }
    return nodes;
  }

  // The "Supervise" cell of an agent's row: call buttons while they talk, agent buttons.
  function agentCell(agent, board) {
    const cell = document.createElement("td");
    cell.className = "supervise";
    const call = (board.calls || []).find(
      (c) => c.agent === agent.extension && TALKING.includes(c.state));
    if (call) cell.append(...callButtons(call, (board.monitors || {})[call.call_id]));
    cell.append(...agentButtons(agent));
    return cell;
  }

  // A "monitor" event: who listens in on which call (mode "" : nobody any more).
  function onMonitor(board, event) {
    board.monitors = board.monitors || {};
    if (event.mode) {
      board.monitors[event.call_id] = {
        supervisor: event.supervisor, mode: event.mode, ringing: event.ringing,
      };
    } else {
      delete board.monitors[event.call_id];
    }
  }

  return { agentCell, onMonitor };
})();
