"""Reloading the configuration of a running PBX (SIGHUP, `pbx reload`, POST /api/admin/reload)
while a caller talks to an agent and another waits in the queue: both calls survive (the talking
one with its audio measured after the reload), and the change is in effect — a new agent
registers with its password and is offered the waiting caller, a new DID answers. An invalid
file is refused with file:line and the PBX goes on with the old configuration; who may reload
(no token 401, a token without ``control`` or an agent's session 403); uvicorn's log lines come
out as the PBX's JSON.

One PBX for the whole module (lean: the CI's time budget)."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.live_calls import register_agent
from tests.integration.pbx_harness import RunningPbx, agent_entries, base_config, start_pbx
from tests.support.softphone import Softphone, SoftphonePool, exchange_tones

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

QUEUE_DID = "+4930200"
NEW_DID = "+4930201"
OLD_DID = "+4930202"  # to the queue the reload removes
READER_TOKEN = secrets.token_hex(20)
OPS_TOKEN = secrets.token_hex(20)


def reload_config() -> dict[str, Any]:
    config = base_config(agent_entries(2))  # 1001, 1002
    config["agents"][0]["role"] = "admin"
    config["trunks"] = [{"name": "carrier", "host": "127.0.0.1", "port": 5070,
                         "inbound_addresses": ["127.0.0.1/32"]}]
    config["queues"] = [{"name": "support", "strategy": "linear", "ring_timeout_s": 5,
                         "retry_delay_s": 1, "wrap_up_s": 0,
                         "members": [{"agent": "1001"}]},
                        {"name": "old", "ring_timeout_s": 60, "overflow": "queue:support",
                         "members": [{"agent": "1002"}]}]
    config["dids"] = [{"number": QUEUE_DID, "queue": "support"},
                      {"number": OLD_DID, "queue": "old"}]
    config["http"] = {"api_tokens": [{
        "name": "reader", "scopes": ["stats"],
        "token_sha256": hashlib.sha256(READER_TOKEN.encode()).hexdigest()}]}
    return config


def write(pbx: RunningPbx, config: dict[str, Any]) -> None:
    # The harness put its own token in http.api_tokens: keep it beside the test's.
    current = yaml.safe_load(pbx.config_path.read_text())
    harness = [t for t in current["http"]["api_tokens"] if t["name"] == "harness"]
    http = {**config.get("http", {})}
    http["api_tokens"] = [*http.get("api_tokens", []), *harness]
    pbx.config_path.write_text(yaml.safe_dump({**config, "http": http}, sort_keys=False))


def cli_reload(pbx: RunningPbx, *extra: str,
               token_file: Path | None = None) -> subprocess.CompletedProcess[str]:
    token_file = token_file or pbx.workdir / "harness-api.token"
    return subprocess.run(
        [sys.executable, "-m", "pbx.cli", "reload", "--url", pbx.http,
         "--token-file", str(token_file), *extra],
        capture_output=True, text=True, timeout=60,
        env={k: v for k, v in os.environ.items() if k != "PBX_API_TOKEN"},
    )


def reloads(pbx: RunningPbx, event: str = "config_reloaded") -> list[dict[str, Any]]:
    return [e for e in pbx.logs() if e.get("event") == event]


def test_reload_keeps_a_talking_and_a_waiting_call_and_applies_the_change(
    tmp_path: Path, phones: SoftphonePool
) -> None:
    config = reload_config()
    pbx = start_pbx(tmp_path / "pbx", config)
    try:
        agents = phones.start("agents")
        register_agent(pbx, agents, "1001", auto_answer=200, auto_answer_delay=0.3)
        removed = (agents, register_agent(pbx, agents, "1002"))
        callers = phones.start("callers")
        uri = f"127.0.0.1:{pbx.sip_port}"
        talking = callers.add_account("+4917611111111", domain="127.0.0.1")
        waiting = callers.add_account("+4917622222222", domain="127.0.0.1")
        late = callers.add_account("+4917633333333", domain="127.0.0.1")
        moved = callers.add_account("+4917644444444", domain="127.0.0.1")
        # The new DID does not exist yet.
        early = callers.make_call(late, f"sip:{NEW_DID}@{uri}")
        assert callers.wait_for("disconnected", call=early, timeout=20)["code"] == 404
        # Caller 1 talks to agent 1001; caller 2 waits in the queue (1001 is busy).
        first = callers.make_call(talking, f"sip:{QUEUE_DID}@{uri}")
        first_agent = agents.wait_for("incoming", timeout=20)["call"]
        callers.wait_for("state", call=first, state="CONFIRMED", timeout=20)
        agents.wait_for("media_active", call=first_agent, timeout=10)
        second = callers.make_call(waiting, f"sip:{QUEUE_DID}@{uri}")
        callers.wait_for("state", call=second, state="CONFIRMED", timeout=20)
        pbx.wait_until(lambda: [q for q in pbx.stats()["queues"]
                                if q["queue"] == "support" and q["waiting"] == 1], 15,
                       "caller 2 waiting")
        # Caller 4 waits in the queue "old", ringing 1002 (who does not answer).
        fourth = callers.make_call(moved, f"sip:{OLD_DID}@{uri}")
        callers.wait_for("state", call=fourth, state="CONFIRMED", timeout=20)
        ringing_1002 = agents.wait_for("incoming", from_=lambda f: "+4917644444444" in f,
                                       timeout=20)["call"]
        # Agent 1003 cannot register before the reload.
        newcomer = phones.start("newcomer")
        account = newcomer.add_account("1003", "pw1003-new", domain="hotline.example",
                                       registrar=uri, expires=300, register=True,
                                       auto_answer=200, auto_answer_delay=0.3)
        assert newcomer.wait_for("reg_state", account=account, timeout=20)["code"] != 200

        # The new file: agent 1003 joins the queue, a new DID, the queue "old" goes; SIGHUP.
        changed = reload_config()
        changed["agents"].append({"extension": "1003", "name": "Agent 1003",
                                  "password": "pw1003-new"})
        changed["queues"][0]["members"].append({"agent": "1003"})
        changed["queues"].pop(1)
        changed["dids"] = [changed["dids"][0], {"number": NEW_DID, "queue": "support"}]
        changed["customers"] = [{"customer_no": "900001", "name": "Neu Kunde",
                                 "phones": ["+4917699999999"], "groups": ["winback"]}]
        changed["campaigns"] = [{"name": "winback", "enabled": False,
                                 "caller_id": "+4930200", "target": {"groups": ["winback"]},
                                 "mode": "progressive", "queue": "support"}]
        write(pbx, changed)
        pbx.proc.send_signal(signal.SIGHUP)
        done = pbx.wait_until(lambda: reloads(pbx), 30, "the reload")[0]
        assert done["by"] == "SIGHUP"
        assert done["changes"]["agents"] == {"added": ["1003"]}
        assert done["changes"]["queues"] == {"changed": ["support"], "removed": ["old"]}
        assert done["changes"]["dids"] == {"added": [NEW_DID], "removed": [OLD_DID]}
        assert done["changes"]["customers"] == {"added": ["900001"]}
        assert done["changes"]["campaigns"] == {"added": ["winback"]}
        campaigns = pbx.get("/api/campaigns")["campaigns"]
        assert [(c["campaign"], c["state"]) for c in campaigns] == [("winback", "idle")]
        # The seed's new customer was stored first: the new campaign found it in its group.
        loaded = [e for e in pbx.logs() if e.get("event") == "campaign_loaded"]
        assert [(e["campaign"], e["contacts"]) for e in loaded] == [("winback", 1)]
        assert "needs_restart" not in done or not done["needs_restart"]
        # The desk knows the new agent at once: logged in by the reload, no phone yet.
        status, _, body = pbx.request("GET", "/api/cti/agents",
                                      {"Authorization": f"Bearer {login(pbx, '1001')}"})
        desk = {a["extension"]: a for a in json.loads(body)["agents"]}
        assert status == 200 and desk["1003"]["state"] == "available", desk
        assert desk["1003"]["device_available"] is False, desk

        # Caller 4's queue is gone: 1002 stops ringing, the caller overflows into support.
        agents.wait_for("disconnected", call=ringing_1002, timeout=15)
        pbx.wait_until(lambda: [q for q in pbx.stats()["queues"]
                                if q["queue"] == "support" and q["waiting"] == 2], 15,
                       "callers 2 and 4 waiting in support")
        assert "old" not in {q["queue"] for q in pbx.stats()["queues"]}
        # The new agent registers with its password and is offered the first waiting caller.
        newcomer.register(account)
        assert newcomer.wait_for("reg_state", account=account, code=200, timeout=20)
        offered = newcomer.wait_for("incoming", timeout=20)
        assert "+4917622222222" in offered["from"]
        newcomer.wait_for("state", call=offered["call"], state="CONFIRMED", timeout=15)
        # The call that talked through the reload still carries audio both ways.
        exchange_tones(callers, first, agents, first_agent, tmp_path, 700, 1300, seconds=2.0)

        session = check_refusals(pbx)
        check_cli(pbx, changed, session, removed, (newcomer, account))

        # The calls end normally (BYE from the callers); 1001, free again, takes caller 4.
        callers.hangup(first)
        agents.wait_for("disconnected", call=first_agent, timeout=15)
        later = agents.wait_for("incoming", from_=lambda f: "+4917644444444" in f,
                                timeout=20)["call"]
        agents.wait_for("state", call=later, state="CONFIRMED", timeout=15)
        # The new DID answers (into the queue: both agents are busy, so it waits).
        third = callers.make_call(late, f"sip:{NEW_DID}@{uri}")
        callers.wait_for("state", call=third, state="CONFIRMED", timeout=20)
        pbx.wait_until(lambda: [c for c in pbx.get("/api/calls")["calls"]
                                if c["did"] == NEW_DID and c["queue"] == "support"], 15,
                       "the new DID's caller in the queue")
        for call in (second, fourth, third):
            callers.hangup(call)
        newcomer.wait_for("disconnected", call=offered["call"], timeout=15)
        agents.wait_for("disconnected", call=later, timeout=15)

        def ended() -> dict[str, Any]:
            rows = {c["caller"]: c for c in pbx.get("/api/cdrs")["cdrs"]}
            wanted = {"+4917611111111", "+4917622222222", "+4917644444444"}
            return rows if wanted <= set(rows) else {}

        by_caller = pbx.wait_until(ended, 20, "the CDRs of the three calls")
        for caller, agent in (("+4917611111111", "1001"), ("+4917622222222", "1003"),
                              ("+4917644444444", "1001")):
            assert by_caller[caller]["agent"] == agent, by_caller[caller]
            assert by_caller[caller]["disposition"] == "answered", by_caller[caller]
        assert by_caller["+4917644444444"]["queue"] == "support"
        check_uvicorn_logs(pbx)
    finally:
        assert pbx.stop() == 0


def login(pbx: RunningPbx, extension: str) -> str:
    status, _, body = pbx.request(
        "POST", "/api/cti/login", {"Content-Type": "application/json"},
        json.dumps({"extension": extension, "password": f"pw{extension}x"}).encode())
    assert status == 200, body
    return str(json.loads(body)["token"])


def check_refusals(pbx: RunningPbx) -> str:
    """Who may reload: no token 401, a token without 'control' 403, an agent's session 403;
    an admin's session may. Returns the agent's session."""
    status, headers, _ = pbx.request("POST", "/api/admin/reload")
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    status, _, body = pbx.request("POST", "/api/admin/reload",
                                  {"Authorization": f"Bearer {READER_TOKEN}"})
    assert status == 403 and "control" in json.loads(body)["error"]
    session = login(pbx, "1002")
    status, _, body = pbx.request("POST", "/api/admin/reload",
                                  {"Authorization": f"Bearer {session}"})
    assert status == 403 and "admins" in json.loads(body)["error"]
    status, _, _ = pbx.request("GET", "/api/admin/reload", pbx.api_headers)
    assert status == 405
    reader = pbx.workdir / "reader.token"
    reader.write_text(READER_TOKEN)
    result = cli_reload(pbx, token_file=reader)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("pbx reload: 403 ") and result.stderr.count("\n") == 1
    assert len(reloads(pbx)) == 1  # none of these reloaded anything
    admin = login(pbx, "1001")
    status, _, body = pbx.request("POST", "/api/admin/reload",
                                  {"Authorization": f"Bearer {admin}"})
    assert status == 200, body
    assert json.loads(body) == {"applied": True, "file": str(pbx.config_path), "changes": {},
                                "needs_restart": []}
    assert reloads(pbx)[-1]["by"] == "admin:1001"
    return session


def check_cli(pbx: RunningPbx, valid: dict[str, Any], session: str,
              removed: tuple[Softphone, int], renamed: tuple[Softphone, int]) -> None:
    """`pbx reload`: an invalid file is refused with file:line, exit 1, the PBX goes on with
    the old configuration; a valid one prints what changed and what needs a restart, the
    agent it removes is logged out of the desk and can no longer register, and a new password
    counts from the next REGISTER."""
    broken = json.loads(json.dumps(valid))
    broken["queues"][0]["strategy"] = "loudest"
    broken["dids"].append({"number": "+4930209", "queue": "nowhere"})
    write(pbx, broken)
    lines = pbx.config_path.read_text().splitlines()
    strategy_line = 1 + next(i for i, line in enumerate(lines) if "loudest" in line)
    result = cli_reload(pbx)
    assert result.returncode == 1, result
    assert f"{pbx.config_path}:{strategy_line}: queues[0].strategy:" in result.stderr
    assert "refused" in result.stderr
    refused = reloads(pbx, "config_reload_refused")
    assert refused and any(f":{strategy_line}:" in e for e in refused[-1]["errors"])
    stats = pbx.stats()  # still running, on the old configuration
    assert {q["queue"] for q in stats["queues"]} == {"support"}
    assert len(reloads(pbx)) == 2
    me = {"Authorization": f"Bearer {session}"}
    assert pbx.request("GET", "/api/cti/me", me)[0] == 200
    # A token file the PBX cannot read refuses the reload too, as it stops `pbx run`.
    unreadable = json.loads(json.dumps(valid))
    missing = pbx.workdir / "missing.token"
    unreadable["http"]["api_tokens"] = [{"name": "lost", "scopes": ["stats"],
                                         "token_file": str(missing)}]
    write(pbx, unreadable)
    result = cli_reload(pbx)
    assert result.returncode == 1, result
    assert f"http.api_tokens[0].token_file: cannot read {missing}" in result.stderr
    assert len(reloads(pbx)) == 2

    valid = json.loads(json.dumps(valid))
    valid["sip"]["user_agent"] = "Reloaded PBX"  # cannot change live
    valid["queues"][0]["ring_timeout_s"] = 8
    valid["agents"] = [a for a in valid["agents"] if a["extension"] != "1002"]
    valid["campaigns"] = []
    valid["agents"][-1]["password"] = "pw1003-newer"
    valid["http"]["api_tokens"] = [{
        "name": "ops", "scopes": ["control"],
        "token_sha256": hashlib.sha256(OPS_TOKEN.encode()).hexdigest()}]
    write(pbx, valid)
    result = cli_reload(pbx)
    assert result.returncode == 0, result
    assert "queues: changed support" in result.stdout
    assert "agents: removed 1002; changed 1003 (password)" in result.stdout
    assert "campaigns: removed winback" in result.stdout
    assert "api_tokens: added ops; removed reader" in result.stdout
    # Tokens change at once: the new one may reload, the removed one is unknown.
    status, _, body = pbx.request("POST", "/api/admin/reload",
                                  {"Authorization": f"Bearer {OPS_TOKEN}"})
    assert status == 200, body
    assert pbx.request("GET", "/api/stats", {"Authorization": f"Bearer {READER_TOKEN}"})[0] == 401
    assert pbx.get("/api/campaigns")["campaigns"] == []
    assert pbx.request("GET", "/api/cti/me", me)[0] == 401  # logged out of the desk
    assert "1002" not in {a["agent"] for a in pbx.stats()["agents"]}
    assert pbx.registrations("1002") == []  # its phone takes no more calls ...
    phone, account = removed
    phone.register(account)  # ... and cannot register again
    assert phone.wait_for("reg_state", account=account, code=lambda c: c != 200, timeout=20)
    phone, account = renamed  # 1003, talking: its phone refreshes with the old password
    phone.register(account)
    assert phone.wait_for("reg_state", account=account, code=lambda c: c != 200, timeout=20)
    assert "needs a restart (not applied): sip.user_agent" in result.stdout
    answer = json.loads(cli_reload(pbx, "--json").stdout)
    assert answer["applied"] is True and answer["changes"] == {}, answer
    assert answer["needs_restart"] == ["sip.user_agent"]
    warned = reloads(pbx, "config_reload_needs_restart")
    assert warned and warned[-1]["keys"] == ["sip.user_agent"]


def check_uvicorn_logs(pbx: RunningPbx) -> None:
    """A request uvicorn cannot parse is logged by uvicorn itself, as one JSON line."""
    with socket.create_connection(("127.0.0.1", pbx.http_port), timeout=5) as sock:
        sock.sendall(b"\x16\x03\x01 not http\r\n\r\n")
        sock.recv(1024)
    line = pbx.wait_until(lambda: [e for e in pbx.logs() if e.get("logger") == "uvicorn.error"],
                          10, "uvicorn's warning")[0]
    assert line["level"] == "warning" and "Invalid HTTP request" in line["event"]
