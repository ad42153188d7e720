"""Calls through the B2BUA with real softphones: a customer (pjsua2, calling from the trunk's
address) dials a DID that is routed to an agent's registered pjsua2 phone; each side plays a
tone and the other side's recording shows that tone's frequency."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.carrier_sipp import carrier_scenario
from tests.integration.live_calls import register_agent
from tests.integration.pbx_harness import RunningPbx, agent_entries, base_config, start_pbx
from tests.integration.sipp import run_sipp
from tests.support.audio import analyze_wav
from tests.support.softphone import SoftphonePool, exchange_tones

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

DIRECT_DID = "+4930100"


def call_config() -> dict[str, Any]:
    config = base_config(agent_entries(4))
    config["trunks"] = [{"name": "carrier", "host": "127.0.0.1", "port": 5070,
                         "inbound_addresses": ["127.0.0.1/32", "::1/128"]}]
    config["dids"] = [{"number": DIRECT_DID, "agent": "1001"}]
    return config


@pytest.fixture
def call_pbx(tmp_path: Path):  # type: ignore[no-untyped-def]
    running = start_pbx(tmp_path / "pbx", call_config())
    try:
        yield running
    finally:
        running.stop()


def test_customer_reaches_agent_with_two_way_audio(
    call_pbx: RunningPbx, phones: SoftphonePool, tmp_path: Path
) -> None:
    agent = phones.start("agent1001")
    register_agent(call_pbx, agent, "1001", auto_answer=200, auto_answer_delay=0.5)
    customer = phones.start("customer")
    account = customer.add_account("+4917612345678", domain="127.0.0.1")
    call = customer.make_call(account, f"sip:{DIRECT_DID}@127.0.0.1:{call_pbx.sip_port}")
    incoming = agent.wait_for("incoming", timeout=20)
    assert "+4917612345678" in incoming["from"]
    customer.wait_for("state", call=call, state="CONFIRMED", timeout=20)
    agent_call = incoming["call"]
    customer.wait_for("media_active", call=call, timeout=10)
    agent.wait_for("media_active", call=agent_call, timeout=10)
    exchange_tones(customer, call, agent, agent_call, tmp_path, 800, 1300)
    customer.hangup(call)
    agent.wait_for("disconnected", call=agent_call, timeout=15)
    cdr = call_pbx.wait_until(lambda: call_pbx.get("/api/cdrs")["cdrs"], 15, "a CDR")[0]
    assert cdr["disposition"] == "answered" and cdr["agent"] == "1001"
    assert cdr["caller"] == "+4917612345678" and cdr["did"] == DIRECT_DID
    assert cdr["hangup_cause"].startswith("caller:")


def test_unknown_source_is_refused_and_unrouted_number_gets_404(
    call_pbx: RunningPbx, phones: SoftphonePool
) -> None:
    customer = phones.start("customer")
    account = customer.add_account("+4917600000000", domain="127.0.0.1")
    call = customer.make_call(account, f"sip:+4930999999@127.0.0.1:{call_pbx.sip_port}")
    assert customer.wait_for("disconnected", call=call, timeout=20)["code"] == 404


def test_agent_hold_plays_hold_music_to_the_customer_and_resume_reconnects(
    call_pbx: RunningPbx, phones: SoftphonePool, tmp_path: Path
) -> None:
    agent = phones.start("agent1001")
    register_agent(call_pbx, agent, "1001", auto_answer=200)
    customer = phones.start("customer")
    account = customer.add_account("+4917612345678", domain="127.0.0.1")
    call = customer.make_call(account, f"sip:{DIRECT_DID}@127.0.0.1:{call_pbx.sip_port}")
    agent_call = agent.wait_for("incoming", timeout=20)["call"]
    customer.wait_for("state", call=call, state="CONFIRMED", timeout=20)
    agent.wait_for("media_active", call=agent_call, timeout=10)
    agent.play_tone(agent_call, 1300)
    agent.hold(agent_call)
    agent.wait_for("media_state", call=agent_call, status="local_hold", timeout=10)
    customer.record(call, str(tmp_path / "held.wav"))
    customer.assert_no_event("disconnected", within=3.0)
    customer.stop_record(call)
    held = analyze_wav(tmp_path / "held.wav", start_s=0.5)
    # Hold music, not the agent's 1300 Hz tone and not silence.
    assert held.rms_dbfs > -45, held
    assert abs(held.dominant_hz - 1300) > 30, held
    agent.unhold(agent_call)
    agent.wait_for("media_active", call=agent_call, timeout=10)
    customer.record(call, str(tmp_path / "resumed.wav"))
    customer.assert_no_event("disconnected", within=3.0)
    customer.stop_record(call)
    resumed = analyze_wav(tmp_path / "resumed.wav", start_s=0.5)
    assert abs(resumed.dominant_hz - 1300) < 20, resumed
    events = {e.get("event") for e in call_pbx.logs()}
    assert {"call_held", "call_resumed"} <= events
    customer.hangup(call)


def test_call_from_an_unknown_address_gets_403(call_pbx: RunningPbx, tmp_path: Path) -> None:
    # 127.0.0.2 is neither a trunk address (the trunk accepts 127.0.0.1 only) nor a phone.
    scenario = carrier_scenario(tmp_path / "stranger.xml", [], end="bye")
    result = run_sipp(tmp_path, str(scenario), call_pbx.sip_port, keys={"caller": "+491"},
                      extra=["-s", DIRECT_DID], bind="127.0.0.2", timeout=20)
    assert result.successful == 0
    assert "SIP/2.0 403 Forbidden" in result.errors
    refused = [e for e in call_pbx.logs() if e.get("event") == "call_refused"]
    assert refused and refused[0]["source"] == "127.0.0.2"


def test_caller_cancels_while_the_agent_rings(
    call_pbx: RunningPbx, phones: SoftphonePool
) -> None:
    agent = phones.start("agent1001")
    register_agent(call_pbx, agent, "1001")  # rings, never answers
    customer = phones.start("customer")
    account = customer.add_account("+4917612345678", domain="127.0.0.1")
    call = customer.make_call(account, f"sip:{DIRECT_DID}@127.0.0.1:{call_pbx.sip_port}")
    ringing = agent.wait_for("incoming", timeout=20)
    customer.wait_for("state", call=call, state="EARLY", timeout=10)
    customer.hangup(call)  # CANCEL
    assert agent.wait_for("disconnected", call=ringing["call"], timeout=15)["code"] == 487
    cdr = call_pbx.wait_until(lambda: call_pbx.get("/api/cdrs")["cdrs"], 15, "a CDR")[0]
    assert cdr["disposition"] == "cancelled" and cdr["answered_at"] is None
    assert call_pbx.stats()["calls"]["active"] == 0


def test_sigterm_ends_calls_with_bye_and_exits_cleanly(
    call_pbx: RunningPbx, phones: SoftphonePool
) -> None:
    agent = phones.start("agent1001")
    register_agent(call_pbx, agent, "1001", auto_answer=200)
    customer = phones.start("customer")
    account = customer.add_account("+4917612345678", domain="127.0.0.1")
    call = customer.make_call(account, f"sip:{DIRECT_DID}@127.0.0.1:{call_pbx.sip_port}")
    customer.wait_for("state", call=call, state="CONFIRMED", timeout=20)
    agent_call = agent.wait_for("incoming", timeout=5)["call"]
    assert call_pbx.stop() == 0
    customer.wait_for("disconnected", call=call, timeout=10)
    agent.wait_for("disconnected", call=agent_call, timeout=10)


def test_agents_call_each_other_by_extension(
    call_pbx: RunningPbx, phones: SoftphonePool, tmp_path: Path
) -> None:
    caller = phones.start("agent1001")
    account = register_agent(call_pbx, caller, "1001")
    callee = phones.start("agent1002")
    register_agent(call_pbx, callee, "1002", auto_answer=200)
    call = caller.make_call(account, f"sip:1002@127.0.0.1:{call_pbx.sip_port}")
    incoming = callee.wait_for("incoming", timeout=20)
    assert "1001" in incoming["from"]
    caller.wait_for("state", call=call, state="CONFIRMED", timeout=20)
    callee.wait_for("media_active", call=incoming["call"], timeout=10)
    caller.play_tone(call, 700)
    callee.record(incoming["call"], str(tmp_path / "callee.wav"))
    callee.assert_no_event("disconnected", within=2.5)
    callee.stop_record(incoming["call"])
    assert abs(analyze_wav(tmp_path / "callee.wav", start_s=0.5).dominant_hz - 700) < 20
    callee.hangup(incoming["call"])
    caller.wait_for("disconnected", call=call, timeout=15)
    cdr = call_pbx.wait_until(lambda: call_pbx.get("/api/cdrs")["cdrs"], 15, "a CDR")[0]
    assert cdr["direction"] == "internal" and cdr["agent"] == "1002"
    assert cdr["hangup_cause"].startswith("agent:")
    # pjsua answered the PBX's 407 with 1001's credentials (issue 12: no call on address alone).
    callers = call_pbx.stats()["callers"]
    assert callers["challenges"] >= 1 and callers["agents"] >= 1, callers


def test_media_in_a_worker_process_carries_both_directions(
    phones: SoftphonePool, tmp_path: Path
) -> None:
    # media.workers: 1 moves every RTP socket into a child process; the call's two legs are
    # opened in the same worker (bridging across workers is impossible) and the tones still
    # arrive both ways.
    config = call_config()
    config["media"] = {"workers": 1}
    pbx = start_pbx(tmp_path / "pbx", config)
    try:
        children = [
            int(path.name) for path in Path("/proc").iterdir() if path.name.isdigit()
            and _parent_pid(path) == pbx.proc.pid
        ]
        assert children, "no media worker process under the PBX"
        agent = phones.start("agent1001")
        register_agent(pbx, agent, "1001", auto_answer=200, auto_answer_delay=0.3)
        customer = phones.start("customer")
        account = customer.add_account("+4917612345678", domain="127.0.0.1")
        call = customer.make_call(account, f"sip:{DIRECT_DID}@127.0.0.1:{pbx.sip_port}")
        agent_call = agent.wait_for("incoming", timeout=20)["call"]
        customer.wait_for("media_active", call=call, timeout=20)
        agent.wait_for("media_active", call=agent_call, timeout=10)
        exchange_tones(customer, call, agent, agent_call, tmp_path, 900, 1400)
        customer.hangup(call)
        agent.wait_for("disconnected", call=agent_call, timeout=15)
        media = pbx.wait_until(
            lambda: (m := pbx.stats()["media"])["sessions_opened"] >= 2
            and m["sessions_open"] == 0 and m,
            15, "the worker's counters",
        )
        assert media["sessions"]["packets_in"] > 100 and media["sessions"]["packets_out"] > 100
    finally:
        pbx.stop()


def _parent_pid(proc_dir: Path) -> int:
    try:
        return int((proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def test_calls_beyond_max_calls_get_503_and_the_talking_call_is_untouched(
    phones: SoftphonePool, tmp_path: Path
) -> None:
    config = call_config()
    config["sip"]["max_calls"] = 1
    pbx = start_pbx(tmp_path / "pbx", config)
    try:
        agent = phones.start("agent1001")
        register_agent(pbx, agent, "1001", auto_answer=200)
        customer = phones.start("customer")
        account = customer.add_account("+4917612345678", domain="127.0.0.1")
        target = f"sip:{DIRECT_DID}@127.0.0.1:{pbx.sip_port}"
        first = customer.make_call(account, target)
        customer.wait_for("state", call=first, state="CONFIRMED", timeout=20)
        second = customer.make_call(account, target)
        refused = customer.wait_for("disconnected", call=second, timeout=20)
        assert refused["code"] == 503, refused
        stats = pbx.stats()
        assert stats["calls"]["rejected"] == 1
        assert stats["admission"]["refused"] == {"max_calls": 1, "rate": 0, "overload": 0,
                                                 "queue": 0}
        customer.assert_no_event("disconnected", within=1.0, call=first)
        customer.hangup(first)
        customer.wait_for("disconnected", call=first, timeout=15)
        pbx.wait_until(lambda: pbx.stats()["calls"]["active"] == 0, 15, "the call to end")
        third = customer.make_call(account, target)  # room again
        customer.wait_for("state", call=third, state="CONFIRMED", timeout=20)
        customer.hangup(third)
    finally:
        pbx.stop()
