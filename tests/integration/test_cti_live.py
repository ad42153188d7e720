"""CTI against the live PBX: an agent logs in over HTTP, follows their calls on the WebSocket,
gets the screen pop for a customer put through by the IVR and the queue, holds and resumes the
call from the desktop (the customer hears the hold program, measured), and transfers it blind to
a colleague's phone."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from tests.integration.pbx_harness import RunningPbx, agent_entries, base_config, start_pbx
from tests.support.audio import analyze_wav
from tests.support.softphone import Softphone, SoftphonePool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

DID = "+4930300"
CALLER = "+4917612340000"


def cti_config() -> dict[str, Any]:
    config = base_config(agent_entries(2))
    config["trunks"] = [{"name": "carrier", "host": "127.0.0.1", "port": 5070,
                         "inbound_addresses": ["127.0.0.1/32"]}]
    config["queues"] = [{"name": "support", "ring_timeout_s": 10, "wrap_up_s": 1,
                         "members": [{"agent": "1001"}]}]
    config["customers"] = [{"customer_no": "555001", "name": "Erika Mustermann",
                            "phones": [CALLER], "status": "gold"}]
    config["flows"] = {"identify": {"start": "who", "nodes": {
        "who": {"type": "lookup", "by": "phone", "found": "q", "not_found": "q"},
        "q": {"type": "queue", "queue": "support"}}}}
    config["dids"] = [{"number": DID, "flow": "identify"}]
    config["forms"] = {"default": {"title": "Kunde", "fields": [
        {"name": "customer_no", "source": "customer.customer_no"},
        {"name": "customer_name", "label": "Name", "source": "customer.name"},
        {"name": "note", "type": "textarea"}]}}
    return config


def post(pbx: RunningPbx, path: str, body: dict[str, Any], session: dict[str, str] | None = None
         ) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if session:
        headers |= {"Authorization": f"Bearer {session['token']}",
                    session["csrf_header"]: session["csrf_token"]}
    request = urllib.request.Request(pbx.http + path, json.dumps(body).encode(), headers)
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        data: dict[str, Any] = json.loads(response.read() or b"{}")
        return data


def next_event(ws: Any, kind: str, timeout: float = 20.0) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(ws.recv(timeout=timeout))
        if message.get("type") == kind:
            return message


def phone(phones: SoftphonePool, pbx: RunningPbx, ext: str) -> Softphone:
    p = phones.start(f"agent{ext}")
    account = p.add_account(ext, f"pw{ext}x", domain="hotline.example",
                            registrar=f"127.0.0.1:{pbx.sip_port}", expires=300, register=True,
                            auto_answer=200, auto_answer_delay=0.3)
    assert p.wait_for("reg_state", account=account, timeout=20)["code"] == 200
    return p


def test_pop_hold_resume_and_blind_transfer_from_the_desktop(
    tmp_path: Path, phones: SoftphonePool
) -> None:
    pbx = start_pbx(tmp_path / "pbx", cti_config())
    try:
        agent1, agent2 = phone(phones, pbx, "1001"), phone(phones, pbx, "1002")
        session = post(pbx, "/api/cti/login", {"extension": "1001", "password": "pw1001x"})
        ws_url = f"ws://127.0.0.1:{pbx.http_port}/api/cti/ws?token={session['token']}"
        with connect(ws_url, open_timeout=10) as ws:
            next_event(ws, "snapshot")
            customer = phones.start("customer")
            account = customer.add_account(CALLER, domain="127.0.0.1")
            call = customer.make_call(account, f"sip:{DID}@127.0.0.1:{pbx.sip_port}")
            offered = next_event(ws, "offered")
            assert json.dumps(offered).count("Erika Mustermann") >= 1, offered
            call_id = offered["call"]["call_id"]
            next_event(ws, "answered")
            customer.wait_for("state", call=call, state="CONFIRMED", timeout=20)
            customer.wait_for("media_active", call=call, timeout=10)
            post(pbx, f"/api/cti/calls/{call_id}/hold", {}, session)
            next_event(ws, "held")
            customer.record(call, str(tmp_path / "held.wav"))
            customer.assert_no_event("disconnected", within=3.0)
            customer.stop_record(call)
            assert analyze_wav(tmp_path / "held.wav", start_s=0.5).rms_dbfs > -45
            post(pbx, f"/api/cti/calls/{call_id}/resume", {}, session)
            next_event(ws, "resumed")
            first_leg = agent1.wait_for("incoming", timeout=5)["call"]
            post(pbx, f"/api/cti/calls/{call_id}/transfer",
                 {"target": "agent:1002", "attended": False}, session)
            agent1.wait_for("disconnected", call=first_leg, timeout=15)
            second = agent2.wait_for("incoming", timeout=20)
            assert CALLER in second["from"]
            agent2.wait_for("state", call=second["call"], state="CONFIRMED", timeout=15)
            customer.hangup(call)
            agent2.wait_for("disconnected", call=second["call"], timeout=15)
        cdr = pbx.wait_until(lambda: pbx.get("/api/cdrs")["cdrs"], 15, "a CDR")[0]
        assert cdr["agent"] == "1002" and "transfer:agent:1002" in cdr["ivr_path"]
    finally:
        pbx.stop()


def test_attended_transfer_consults_then_completes(tmp_path: Path,
                                                   phones: SoftphonePool) -> None:
    pbx = start_pbx(tmp_path / "pbx", cti_config())
    try:
        agent1, agent2 = phone(phones, pbx, "1001"), phone(phones, pbx, "1002")
        session = post(pbx, "/api/cti/login", {"extension": "1001", "password": "pw1001x"})
        ws_url = f"ws://127.0.0.1:{pbx.http_port}/api/cti/ws?token={session['token']}"
        with connect(ws_url, open_timeout=10) as ws:
            next_event(ws, "snapshot")
            customer = phones.start("customer")
            account = customer.add_account(CALLER, domain="127.0.0.1")
            call = customer.make_call(account, f"sip:{DID}@127.0.0.1:{pbx.sip_port}")
            call_id = next_event(ws, "offered")["call"]["call_id"]
            next_event(ws, "answered")
            first_leg = agent1.wait_for("incoming", timeout=10)["call"]
            customer.wait_for("media_active", call=call, timeout=10)
            post(pbx, f"/api/cti/calls/{call_id}/transfer",
                 {"target": "agent:1002", "attended": True}, session)
            consult = agent2.wait_for("incoming", timeout=20)
            agent2.wait_for("state", call=consult["call"], state="CONFIRMED", timeout=15)
            agent1.assert_no_event("disconnected", within=1.0)  # 1001 talks to 1002 first
            post(pbx, f"/api/cti/calls/{call_id}/complete-transfer", {}, session)
            agent1.wait_for("disconnected", call=first_leg, timeout=15)
            agent2.play_tone(consult["call"], 900)
            customer.record(call, str(tmp_path / "after.wav"))
            customer.assert_no_event("disconnected", within=2.5)
            customer.stop_record(call)
            assert abs(analyze_wav(tmp_path / "after.wav", start_s=0.5).dominant_hz - 900) < 20
            customer.hangup(call)
            agent2.wait_for("disconnected", call=consult["call"], timeout=15)
        cdr = pbx.wait_until(lambda: pbx.get("/api/cdrs")["cdrs"], 15, "a CDR")[0]
        assert cdr["agent"] == "1002" and "transfer:agent:1002" in cdr["ivr_path"]
    finally:
        pbx.stop()
