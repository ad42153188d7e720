"""The outbound dialer on the live PBX: a progressive campaign over one customer group dials
through the trunk (SIPp as the carrier, answering), hands every answered customer to the free
agent (a pjsua2 phone) through the ACD, never dials a number on the do-not-call list or a
customer outside the group, and stores every attempt."""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.integration.pbx_harness import RunningPbx, agent_entries, base_config, start_pbx
from tests.support.sipp import Sipp
from tests.support.softphone import SoftphonePool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SCENARIOS = Path(__file__).parent / "scenarios"
CUSTOMERS = [
    ("700001", "+4930700001", ["kampagne"]),
    ("700002", "+4930700002", ["kampagne"]),
    ("700003", "+4930700003", ["kampagne"]),  # on the do-not-call list
    ("700004", "+4930700004", ["andere"]),  # another group: never dialled
    ("700005", "+49900123456", ["kampagne"]),  # premium rate: the dial plan never dials it
]


def login(pbx: RunningPbx, extension: str, password: str) -> dict[str, str]:
    body = json.dumps({"extension": extension, "password": password}).encode()
    request = urllib.request.Request(pbx.http + "/api/cti/login", body,
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        session: dict[str, str] = json.loads(response.read())
        return session


def api_status(pbx: RunningPbx, path: str, session: dict[str, str] | None = None,
               body: dict[str, Any] | None = None) -> int:
    headers = {"Content-Type": "application/json"}
    if session:
        headers |= {"Authorization": f"Bearer {session['token']}",
                    session["csrf_header"]: session["csrf_token"]}
    request = urllib.request.Request(pbx.http + path, json.dumps(body or {}).encode(), headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def dialer_config(carrier_port: int) -> dict[str, Any]:
    config = base_config(agent_entries(1))
    config["trunks"] = [{"name": "carrier", "host": "127.0.0.1", "port": carrier_port,
                         "inbound_addresses": ["127.0.0.2/32"]}]
    config["queues"] = [{"name": "outbound", "ring_timeout_s": 10, "wrap_up_s": 1,
                         "members": [{"agent": "1001"}]}]
    config["customers"] = [{"customer_no": no, "name": f"Kunde {no}", "phones": [phone],
                            "groups": groups} for no, phone, groups in CUSTOMERS]
    config["dnc"] = {"numbers": ["+4930700003"]}
    config["campaigns"] = [{
        "name": "herbst", "caller_id": "+4930123456", "queue": "outbound",
        "mode": "progressive", "target": {"groups": ["kampagne"]}, "max_attempts": 1,
        "drop_after_s": 8,
        "calling_hours": {"windows": [{"days": "mon-sun", "start": "00:00",
                                       "end": "23:59"}]},
    }]
    return config


def test_progressive_campaign_reaches_the_agent_and_honours_dnc_and_groups(
    tmp_path: Path, phones: SoftphonePool
) -> None:
    log_file = tmp_path / "carrier.log"
    with Sipp(SCENARIOS / "carrier_uas_answer.xml", tmp_path / "sipp", calls=2,
              extra_args=("-trace_logs", "-log_file", str(log_file))) as sipp:
        agent = phones.start("agent1001")
        pbx = start_pbx(tmp_path / "pbx", dialer_config(sipp.port))
        try:
            account = agent.add_account("1001", "pw1001x", domain="hotline.example",
                                        registrar=f"127.0.0.1:{pbx.sip_port}", expires=300,
                                        register=True, auto_answer=200)
            assert agent.wait_for("reg_state", account=account, timeout=20)["code"] == 200
            reached = []
            for _ in range(2):
                incoming = agent.wait_for("incoming", timeout=40)
                agent.wait_for("state", call=incoming["call"], state="CONFIRMED", timeout=15)
                reached.append(incoming["from"])
                agent.assert_no_event("disconnected", within=1.0)
                agent.hangup(incoming["call"])
                agent.wait_for("disconnected", call=incoming["call"], timeout=15)
            assert sipp.wait(30) == 0, sipp.output()
            dialled = log_file.read_text()
            assert "+4930700001" in dialled and "+4930700002" in dialled
            assert "+4930700003" not in dialled and "+4930700004" not in dialled
            assert "+49900123456" not in dialled
            status = pbx.wait_until(
                lambda: [c for c in pbx.get("/api/campaigns")["campaigns"]
                         if c["campaign"] == "herbst"], 10, "campaign status")[0]
            assert status["campaign"] == "herbst"
            # Starting, pausing and stopping campaigns takes a supervisor's desktop session.
            assert api_status(pbx, "/api/cti/campaigns/herbst/pause") == 401
            session = login(pbx, "1001", "pw1001x")
            assert api_status(pbx, "/api/cti/campaigns/herbst/pause", session) == 403

            def attempts() -> list[tuple[str, str]]:
                with sqlite3.connect(pbx.workdir / "data" / "pbx.db") as db:
                    return sorted(db.execute(
                        "SELECT customer_no, result FROM dialer_attempts").fetchall())
            rows = pbx.wait_until(lambda: len(attempts()) == 3 and attempts(), 15, "attempts")
            assert [no for no, _ in rows] == ["700001", "700002", "700005"]
            assert dict(rows)["700005"] == "failed"  # refused by the dial plan, not dialled
            assert any(e.get("event") == "campaign_dial_refused" and e.get("customer") == "700005"
                       for e in pbx.logs())
        finally:
            pbx.stop()


MIX = [("710001", "+4930710001"),  # answers
       ("710002", "+4930710002"),  # busy
       ("710003", "+4930710003"),  # does not answer
       ("710004", "+4930710004")]  # answers after 3 s


def test_outcome_mix_ends_every_contact_with_the_right_attempts(
    tmp_path: Path, phones: SoftphonePool
) -> None:
    log_file = tmp_path / "carrier.log"
    # 1 + 2 (busy, retried) + 2 (no answer, retried) + 1 = 6 calls reach the carrier.
    with Sipp(SCENARIOS / "carrier_uas_mix.xml", tmp_path / "sipp", calls=6, timeout_s=90,
              extra_args=("-trace_logs", "-log_file", str(log_file))) as sipp:
        config = dialer_config(sipp.port)
        config["customers"] = [{"customer_no": no, "name": f"Kunde {no}", "phones": [phone],
                                "groups": ["mix"]} for no, phone in MIX]
        config["dnc"] = {"numbers": []}
        campaign = config["campaigns"][0]
        campaign.update({"target": {"groups": ["mix"]}, "max_attempts": 2,
                         "ring_timeout_s": 5, "drop_after_s": 8,
                         "retry": {"busy": {"delay_s": 2}, "no_answer": {"delay_s": 2}}})
        agent = phones.start("agent1001")
        pbx = start_pbx(tmp_path / "pbx", config)
        try:
            account = agent.add_account("1001", "pw1001x", domain="hotline.example",
                                        registrar=f"127.0.0.1:{pbx.sip_port}", expires=300,
                                        register=True, auto_answer=200)
            assert agent.wait_for("reg_state", account=account, timeout=20)["code"] == 200
            for _ in range(2):  # the two customers who answer reach the agent
                incoming = agent.wait_for("incoming", timeout=60)
                agent.wait_for("state", call=incoming["call"], state="CONFIRMED", timeout=15)
                agent.hangup(incoming["call"])
                agent.wait_for("disconnected", call=incoming["call"], timeout=15)
            assert sipp.wait(60) == 0, sipp.output()

            def contacts() -> dict[str, tuple[str, int]]:
                with sqlite3.connect(pbx.workdir / "data" / "pbx.db") as db:
                    return {no: (state, attempts) for no, state, attempts in db.execute(
                        "SELECT customer_no, state, attempts FROM campaign_contacts")}

            final = pbx.wait_until(
                lambda: (c := contacts()) and all(s in ("done", "exhausted")
                                                  for s, _ in c.values()) and c,
                30, "every contact in a final state")
            assert final == {"710001": ("done", 1), "710002": ("exhausted", 2),
                             "710003": ("exhausted", 2), "710004": ("done", 1)}, final
        finally:
            pbx.stop()


def test_answering_machine_is_detected_and_not_put_through(
    tmp_path: Path, phones: SoftphonePool
) -> None:
    from media.sources import read_wav
    from tests.integration.rtp_pcap import write_audio_pcap

    samples, _rate = read_wav(Path(__file__).parents[2] / "prompts" / "de" / "ad_1.wav")
    greeting = write_audio_pcap(tmp_path / "greeting.pcap", samples[: 8000 * 6])
    with Sipp(SCENARIOS / "carrier_uas_machine.xml", tmp_path / "sipp", calls=1,
              keys={"greeting": str(greeting)}, extra_args=("-mi", "127.0.0.1")) as sipp:
        config = dialer_config(sipp.port)
        config["customers"] = [{"customer_no": "720001", "name": "Anrufbeantworter",
                                "phones": ["+4930720001"], "groups": ["kampagne"]}]
        config["dnc"] = {"numbers": []}
        config["campaigns"][0].update({"max_attempts": 1,
                                       "amd": {"enabled": True, "action": "hangup"}})
        agent = phones.start("agent1001")
        pbx = start_pbx(tmp_path / "pbx", config)
        try:
            account = agent.add_account("1001", "pw1001x", domain="hotline.example",
                                        registrar=f"127.0.0.1:{pbx.sip_port}", expires=300,
                                        register=True, auto_answer=200)
            assert agent.wait_for("reg_state", account=account, timeout=20)["code"] == 200
            assert sipp.wait(40) == 0, sipp.output()
            decided = pbx.wait_until(
                lambda: [e for e in pbx.logs() if e.get("event") == "amd_decided"], 15, "AMD")
            assert decided[0]["verdict"] == "machine", decided
            agent.assert_no_event("incoming", within=1.0)

            def results() -> list[str]:
                with sqlite3.connect(pbx.workdir / "data" / "pbx.db") as db:
                    return [r for (r,) in db.execute("SELECT result FROM dialer_attempts")]
            assert pbx.wait_until(results, 15, "the attempt") == ["machine"]
        finally:
            pbx.stop()


def test_preview_agent_sees_the_customer_then_skips_or_dials(
    tmp_path: Path, phones: SoftphonePool
) -> None:
    from websockets.sync.client import connect

    log_file = tmp_path / "carrier.log"
    with Sipp(SCENARIOS / "carrier_uas_answer.xml", tmp_path / "sipp", calls=1,
              extra_args=("-trace_logs", "-log_file", str(log_file))) as sipp:
        config = dialer_config(sipp.port)
        config["customers"] = [{"customer_no": no, "name": f"Kunde {no}", "phones": [phone],
                                "groups": ["kampagne"]}
                               for no, phone in (("730001", "+4930730001"),
                                                 ("730002", "+4930730002"))]
        config["dnc"] = {"numbers": []}
        config["campaigns"][0].update({"mode": "preview", "max_attempts": 1,
                                       "preview": {"timeout_s": 60}})
        agent = phones.start("agent1001")
        pbx = start_pbx(tmp_path / "pbx", config)
        try:
            account = agent.add_account("1001", "pw1001x", domain="hotline.example",
                                        registrar=f"127.0.0.1:{pbx.sip_port}", expires=300,
                                        register=True, auto_answer=200)
            assert agent.wait_for("reg_state", account=account, timeout=20)["code"] == 200
            session = login(pbx, "1001", "pw1001x")
            url = f"ws://127.0.0.1:{pbx.http_port}/api/cti/ws?token={session['token']}"
            with connect(url, open_timeout=10) as ws:
                def preview() -> dict[str, Any]:
                    while True:
                        event: dict[str, Any] = json.loads(ws.recv(timeout=30))
                        if event.get("type") == "preview":
                            return event
                first = preview()
                assert first["name"] == f"Kunde {first['customer_no']}"
                # Skip the first customer: nothing is dialled for them.
                assert api_status(pbx, f"/api/cti/preview/{first['customer_no']}", session,
                                  {"dial": False}) == 200
                second = preview()
                assert second["customer_no"] != first["customer_no"]
                assert api_status(pbx, f"/api/cti/preview/{second['customer_no']}", session,
                                  {"dial": True}) == 200
                incoming = agent.wait_for("incoming", timeout=30)
                agent.wait_for("state", call=incoming["call"], state="CONFIRMED", timeout=15)
                agent.hangup(incoming["call"])
            assert sipp.wait(30) == 0, sipp.output()
            dialled = log_file.read_text()
            skipped = "+49307" + first["customer_no"][2:]
            assert second["phone"] in dialled and skipped not in dialled
        finally:
            pbx.stop()
