"""Honest agent state, live: an agent with `auto_login: false` is not offered calls although
their phone is registered, until they dial the login feature code (the PBX answers with the
confirmation tone, measured, and hangs up); then the waiting caller reaches them. After the
call, Ready from the desk ends the wrap-up early; a pause takes only a configured pause code;
the logout code logs them out. A seat logged in with no registered phone shows `no phone`
(device_available false) and is never offered."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.integration.live_calls import agent_phone, carrier_call
from tests.integration.pbx_harness import RunningPbx, agent_entries, base_config, start_pbx
from tests.support.audio import analyze_wav
from tests.support.softphone import SoftphonePool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

QUEUE_DID = "+4930300"


def config() -> dict[str, Any]:
    agents = agent_entries(2)
    agents[0]["auto_login"] = False  # 1001 logs in from the phone
    cfg = base_config(agents)  # 1002: logged in at start, never registers a phone
    cfg["trunks"] = [{"name": "carrier", "host": "127.0.0.1", "port": 5070,
                      "inbound_addresses": ["127.0.0.1/32"]}]
    cfg["queues"] = [{"name": "support", "strategy": "linear", "ring_timeout_s": 10,
                      "wrap_up_s": 120, "members": [{"agent": "1002"}, {"agent": "1001"}]}]
    cfg["dids"] = [{"number": QUEUE_DID, "queue": "support"}]
    cfg["cti"] = {"pause_codes": [{"code": "pause", "label": "Pause"},
                                  {"code": "coaching", "label": "Coaching",
                                   "productive": True}]}
    return cfg


def desk_login(pbx: RunningPbx, ext: str) -> dict[str, str]:
    status, _, body = pbx.request("POST", "/api/cti/login", {"Content-Type": "application/json"},
                                  json.dumps({"extension": ext, "password": f"pw{ext}x"}).encode())
    assert status == 200, body
    session: dict[str, str] = json.loads(body)
    return session


def desk_post(pbx: RunningPbx, session: dict[str, str], path: str,
              body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json",
               "Authorization": f"Bearer {session['token']}",
               session["csrf_header"]: session["csrf_token"]}
    status, _, raw = pbx.request("POST", path, headers, json.dumps(body or {}).encode())
    return status, json.loads(raw or b"{}")


def agents(pbx: RunningPbx, session: dict[str, str]) -> dict[str, dict[str, Any]]:
    request = urllib.request.Request(pbx.http + "/api/cti/agents",
                                     headers={"Authorization": f"Bearer {session['token']}"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return {a["extension"]: a for a in json.loads(response.read())["agents"]}


def test_login_by_feature_code_ready_ends_wrap_up_pause_codes_and_no_phone(
    tmp_path: Path, phones: SoftphonePool
) -> None:
    pbx = start_pbx(tmp_path / "pbx", config())
    try:
        phone = agent_phone(phones, pbx, "1001", auto=True)
        session = desk_login(pbx, "1001")
        seats = pbx.wait_until(lambda: (s := agents(pbx, session))["1001"]["device_available"]
                               and s, 15, "1001's phone seen")
        assert seats["1001"]["state"] == "logged_out"  # auto_login: false
        assert seats["1002"]["state"] == "available" and not seats["1002"]["device_available"]
        me = json.loads(pbx.request("GET", "/api/cti/me",
                                    {"Authorization": f"Bearer {session['token']}"})[2])
        assert [p["code"] for p in me["pause_codes"]] == ["pause", "coaching"]

        # A caller waits: 1002 has no phone, 1001 is logged out: nobody rings.
        caller, call = carrier_call(phones, pbx, "caller", "+4917611111111", QUEUE_DID)
        phone.assert_no_event("incoming", within=3.0)

        # *45 from the phone: answered, two high beeps, hung up by the PBX; now logged in.
        account = phone.events("reg_state")[0]["account"]
        code_call = phone.make_call(account, f"sip:*45@127.0.0.1:{pbx.sip_port}")
        phone.wait_for("media_active", call=code_call, timeout=15)
        phone.record(code_call, str(tmp_path / "login.wav"))
        phone.wait_for("disconnected", call=code_call, timeout=15)
        heard = analyze_wav(tmp_path / "login.wav")
        assert abs(heard.dominant_hz - 1400) < 30, heard

        # The waiting caller is offered to 1001 now (auto answer), and talks.
        incoming = phone.wait_for("incoming", timeout=20)
        phone.wait_for("state", call=incoming["call"], state="CONFIRMED", timeout=15)
        caller.hangup(call)
        phone.wait_for("disconnected", call=incoming["call"], timeout=15)
        seat = pbx.wait_until(lambda: (a := agents(pbx, session)["1001"])["state"] == "wrap_up"
                              and a, 15, "wrap-up")
        assert seat["until"] - seat["since"] == pytest.approx(120, abs=1)

        # Ready ends the 120 s wrap-up at once.
        assert desk_post(pbx, session, "/api/cti/agents/1001/ready")[0] == 202
        seat = pbx.wait_until(lambda: (a := agents(pbx, session)["1001"])["state"] == "available"
                              and a, 10, "available again")
        assert seat["reason"] == "wrap_up_ended" and seat["until"] is None

        # Pause only with a configured code; a stranger code says which ones there are.
        status, answer = desk_post(pbx, session, "/api/cti/agents/1001/pause", {"reason": "nap"})
        assert status == 400 and "pause, coaching" in answer["error"], answer
        assert desk_post(pbx, session, "/api/cti/agents/1001/pause",
                         {"reason": "coaching"})[0] == 202
        assert pbx.wait_until(lambda: agents(pbx, session)["1001"]["reason"] == "coaching",
                              10, "paused for coaching")

        # *46: logged out; a second *46 is refused with the low tone.
        out = phone.make_call(account, f"sip:*46@127.0.0.1:{pbx.sip_port}")
        phone.wait_for("disconnected", call=out, timeout=15)
        assert pbx.wait_until(lambda: agents(pbx, session)["1001"]["state"] == "logged_out",
                              10, "logged out")
        again = phone.make_call(account, f"sip:*46@127.0.0.1:{pbx.sip_port}")
        phone.wait_for("media_active", call=again, timeout=15)
        phone.record(again, str(tmp_path / "refused.wav"))
        phone.wait_for("disconnected", call=again, timeout=15)
        assert abs(analyze_wav(tmp_path / "refused.wav").dominant_hz - 400) < 30
        assert agents(pbx, session)["1002"]["state"] == "available"  # never offered
        offered = [e for e in pbx.logs() if e.get("event") == "agent_state"
                   and e.get("agent") == "1002" and e.get("new") == "ringing"]
        assert offered == []
    except urllib.error.HTTPError as exc:
        raise AssertionError(exc.read()) from exc
    finally:
        pbx.stop()


def test_a_supervisor_moves_a_waiting_caller_to_an_agent(
    tmp_path: Path, phones: SoftphonePool
) -> None:
    """The wallboard's move: a caller waiting in `support` (its only member has no phone) is
    sent by a supervisor straight to agent 1001, whose phone rings and talks to them; an agent
    may not move it (it is not theirs: 404; their own: 403, see the unit tests); a call that no
    longer waits cannot be moved (409)."""
    cfg = config()
    cfg["agents"][0]["auto_login"] = True
    cfg["agents"].append({"extension": "1009", "name": "Sandra Supervisor",
                          "password": "pw1009x", "role": "supervisor"})
    cfg["queues"][0]["members"] = [{"agent": "1002"}]  # never registers: nobody rings
    cfg["queues"].append({"name": "billing", "members": [{"agent": "1001"}]})
    pbx = start_pbx(tmp_path / "pbx", cfg)
    try:
        phone = agent_phone(phones, pbx, "1001", auto=True)
        supervisor, agent = desk_login(pbx, "1009"), desk_login(pbx, "1001")
        caller, call = carrier_call(phones, pbx, "caller", "+4917622222222", QUEUE_DID)
        waiting = pbx.wait_until(lambda: [c for c in calls(pbx, supervisor)
                                          if c["state"] == "queued"], 15, "the caller waits")
        call_id = waiting[0]["call_id"]
        phone.assert_no_event("incoming", within=1.0)
        move = f"/api/cti/calls/{call_id}/move"
        status, answer = desk_post(pbx, agent, move, {"target": "agent:1001"})
        assert status == 404, answer  # an agent does not even see a call that is not theirs
        status, answer = desk_post(pbx, supervisor, move, {"target": "number:+4930999"})
        assert status == 422 and "queue" in answer["error"], answer
        status, answer = desk_post(pbx, supervisor, move, {"target": "queue:support"})
        assert status == 409, answer
        assert desk_post(pbx, supervisor, move, {"target": "agent:1001"})[0] == 202
        incoming = phone.wait_for("incoming", timeout=20)
        phone.wait_for("state", call=incoming["call"], state="CONFIRMED", timeout=15)
        status, answer = desk_post(pbx, supervisor, move, {"target": "queue:billing"})
        assert status == 409, answer  # talking now: nothing to move
        caller.hangup(call)
        phone.wait_for("disconnected", call=incoming["call"], timeout=15)
        cdr = pbx.wait_until(lambda: pbx.get("/api/cdrs")["cdrs"], 15, "the CDR")[0]
        assert cdr["agent"] == "1001" and cdr["disposition"] == "answered", cdr
        moved = [e for e in pbx.logs() if e.get("event") == "call_move_ordered"]
        assert moved and moved[0]["supervisor"] == "1009" and moved[0]["target"] == "agent:1001"
    finally:
        pbx.stop()


def calls(pbx: RunningPbx, session: dict[str, str]) -> list[dict[str, Any]]:
    request = urllib.request.Request(pbx.http + "/api/cti/calls",
                                     headers={"Authorization": f"Bearer {session['token']}"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        result: list[dict[str, Any]] = json.loads(response.read())["calls"]
        return result
