"""Every phase of a call answers what the phones send and follows what the engines decide, live
through `pbx run` with pjsua2 phones (and SIPp where a peer must misbehave): a caller's
re-INVITE (hold, resume) in the IVR and in the queue; the IVR `transfer` node ringing an agent;
ACD overflow, max wait and the exit key going to their configured targets; the IVR's skills
choosing the agent; a queued caller whose RTP died leaving the queue; an agent whose phone
vanished mid-call cleared and kept from offers."""

from __future__ import annotations

import re
import shutil
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.integration.carrier_sipp import carrier_scenario
from tests.integration.live_calls import agent_phone as agent
from tests.integration.live_calls import carrier_call as customer
from tests.integration.pbx_harness import RunningPbx, agent_entries, base_config, start_pbx
from tests.integration.sipp import run_sipp
from tests.support.softphone import Softphone, SoftphonePool, exchange_tones

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

FLOW_DID = "+4930300"  # greeting, then the queue "first" (1001, 1002; skills from the flow)
OPERATOR_DID = "+4930301"  # the IVR's transfer node to agent 1003
OVERFLOW_DID = "+4930302"  # queue "empty" (no member registered): max wait 3 s -> "second"
EXIT_DID = "+4930303"  # queue "empty_exit": key 0 -> agent 1003
ENGLISH_DID = "+4930304"  # the flow asks for the skill "english": only 1002 has it
UNSTAFFED_DID = "+4930305"  # queue "unstaffed" (join_when: staffed) -> overflow agent 1003
SMALL_DID = "+4930307"  # queue "small" (max_length: 1) -> overflow agent 1003
LONELY_DID = "+4930308"  # queue "lonely" (leave_when: unstaffed; only 1004) -> agent 1003


def phases_config() -> dict[str, Any]:
    config = base_config(agent_entries(4))
    config["agents"][0]["skills"] = {"german": 10}
    config["agents"][1]["skills"] = {"german": 5, "english": 8}
    config["media"] = {"rtp_timeout_s": 4}
    config["trunks"] = [{"name": "carrier", "host": "127.0.0.1", "port": 5070,
                         "inbound_addresses": ["127.0.0.1/32"]}]
    config["queues"] = [
        {"name": "first", "strategy": "linear", "ring_timeout_s": 4, "retry_delay_s": 1,
         "wrap_up_s": 1, "members": [{"agent": "1001"}, {"agent": "1002"}]},
        {"name": "second", "strategy": "linear", "ring_timeout_s": 5, "wrap_up_s": 1,
         "members": [{"agent": "1002"}]},
        {"name": "empty", "max_wait_s": 3, "overflow": "queue:second",
         "members": [{"agent": "1004"}]},
        {"name": "empty_exit", "exit_key": "0", "exit_target": "agent:1003",
         "members": [{"agent": "1004"}]},
        {"name": "unstaffed", "join_when": "staffed", "overflow": "agent:1003",
         "members": [{"agent": "1004"}]},
        {"name": "small", "max_length": 1, "overflow": "agent:1003",
         "members": [{"agent": "1004"}]},
        {"name": "lonely", "leave_when": "unstaffed", "overflow": "agent:1003",
         "ring_timeout_s": 30, "members": [{"agent": "1004"}]},
    ]
    config["flows"] = {
        "front": {"start": "hello", "nodes": {
            "hello": {"type": "play", "prompt": "de/greeting", "next": "q"},
            "q": {"type": "queue", "queue": "first", "skills": ["{wanted}"]}}},
        "english": {"start": "set", "nodes": {
            "set": {"type": "set", "variables": {"wanted": "english"}, "next": "q"},
            "q": {"type": "queue", "queue": "first", "skills": ["{wanted}"]}}},
        "operator": {"start": "op", "nodes": {
            "op": {"type": "transfer", "agent": "1003", "prompt": "de/transferring"}}},
    }
    config["dids"] = [{"number": FLOW_DID, "flow": "front"},
                      {"number": OPERATOR_DID, "flow": "operator"},
                      {"number": OVERFLOW_DID, "queue": "empty"},
                      {"number": EXIT_DID, "queue": "empty_exit"},
                      {"number": ENGLISH_DID, "flow": "english"},
                      {"number": UNSTAFFED_DID, "queue": "unstaffed"},
                      {"number": SMALL_DID, "queue": "small"},
                      {"number": LONELY_DID, "queue": "lonely"}]
    return config


@pytest.fixture
def pbx(tmp_path: Path):  # type: ignore[no-untyped-def]
    running = start_pbx(tmp_path / "pbx", phases_config())
    try:
        yield running
    finally:
        running.stop()


def queue_log(pbx: RunningPbx) -> list[tuple[str, str, str]]:
    with sqlite3.connect(pbx.workdir / "data" / "pbx.db") as db:
        return list(db.execute("SELECT event, queue, agent FROM queue_log ORDER BY id"))


def waiting(pbx: RunningPbx, queue: str) -> int:
    (row,) = [q for q in pbx.stats()["queues"] if q["queue"] == queue]
    return int(row["waiting"])


def agent_state(pbx: RunningPbx, ext: str) -> dict[str, Any]:
    (row,) = [a for a in pbx.stats()["agents"] if a["agent"] == ext]
    return row


def hold_and_resume(caller: Softphone, call: int) -> None:
    """The caller puts the PBX on hold and back (two re-INVITEs): both are answered and the
    call stays up."""
    caller.hold(call)
    caller.wait_for("media_state", call=call, status="local_hold", timeout=10)
    caller.unhold(call)
    caller.wait_for("media_state", call=call, status="active", timeout=10)
    caller.assert_no_event("disconnected", within=1.0, call=call)


def test_reinvite_is_answered_in_the_ivr_and_in_the_queue_then_the_agent_talks(
    pbx: RunningPbx, phones: SoftphonePool, tmp_path: Path
) -> None:
    caller, call = customer(phones, pbx, "caller", "+4917611110001", FLOW_DID)
    hold_and_resume(caller, call)  # during the greeting (IVR)
    pbx.wait_until(lambda: waiting(pbx, "first") == 1, 30, "the caller in the queue")
    hold_and_resume(caller, call)  # waiting in the queue (nobody registered yet)
    assert waiting(pbx, "first") == 1
    first = agent(phones, pbx, "1001")
    ringing = first.wait_for("incoming", timeout=20)["call"]
    first.wait_for("state", call=ringing, state="CONFIRMED", timeout=15)
    exchange_tones(caller, call, first, ringing, tmp_path, 700, 1300)
    hold_and_resume(caller, call)  # talking
    caller.hangup(call)
    first.wait_for("disconnected", call=ringing, timeout=15)
    cdr = pbx.wait_until(lambda: pbx.get("/api/cdrs")["cdrs"], 15, "a CDR")[0]
    assert cdr["disposition"] == "answered" and cdr["agent"] == "1001"


def test_ivr_transfer_node_rings_the_agent_and_they_talk(
    pbx: RunningPbx, phones: SoftphonePool, tmp_path: Path
) -> None:
    operator = agent(phones, pbx, "1003")
    caller, call = customer(phones, pbx, "caller", "+4917611110002", OPERATOR_DID)
    ringing = operator.wait_for("incoming", timeout=20)["call"]
    operator.wait_for("state", call=ringing, state="CONFIRMED", timeout=15)
    exchange_tones(caller, call, operator, ringing, tmp_path, 900, 1500)
    assert agent_state(pbx, "1003")["state"] != "available"  # busy on a direct call
    operator.hangup(ringing)
    caller.wait_for("disconnected", call=call, timeout=15)
    cdr = pbx.wait_until(lambda: pbx.get("/api/cdrs")["cdrs"], 15, "a CDR")[0]
    assert cdr["agent"] == "1003" and cdr["disposition"] == "answered"
    assert "agent:1003" in cdr["ivr_path"], cdr["ivr_path"]
    pbx.wait_until(lambda: agent_state(pbx, "1003")["state"] == "available", 10,
                   "1003 free again after the direct call")


def test_max_wait_goes_to_the_overflow_queue_and_the_exit_key_to_its_agent(
    pbx: RunningPbx, phones: SoftphonePool
) -> None:
    second = agent(phones, pbx, "1002")
    operator = agent(phones, pbx, "1003")
    # Nobody serves "empty": after max_wait_s (3 s) the caller goes to "second" (1002).
    caller, call = customer(phones, pbx, "caller", "+4917611110003", OVERFLOW_DID)
    rung = second.wait_for("incoming", timeout=20)["call"]
    second.wait_for("state", call=rung, state="CONFIRMED", timeout=15)
    caller.assert_no_event("disconnected", within=1.0, call=call)
    caller.hangup(call)
    second.wait_for("disconnected", call=rung, timeout=15)
    # In "empty_exit" the caller presses 0: the queue's exit target, agent 1003, rings.
    leaver, leaving = customer(phones, pbx, "leaver", "+4917611110004", EXIT_DID)
    pbx.wait_until(lambda: waiting(pbx, "empty_exit") == 1, 20, "the caller waiting")
    leaver.send_dtmf(leaving, "0")
    rung = operator.wait_for("incoming", timeout=20)["call"]
    operator.wait_for("state", call=rung, state="CONFIRMED", timeout=15)
    leaver.hangup(leaving)
    operator.wait_for("disconnected", call=rung, timeout=15)
    cdrs = pbx.wait_until(lambda: len(pbx.get("/api/cdrs")["cdrs"]) >= 2 and
                          pbx.get("/api/cdrs")["cdrs"], 15, "two CDRs")
    by_agent = {c["agent"]: c for c in cdrs}
    assert "overflow:queue:second" in by_agent["1002"]["ivr_path"]
    assert "overflow:agent:1003" in by_agent["1003"]["ivr_path"]
    events = [(e, q) for e, q, _ in queue_log(pbx)]
    assert ("overflow", "empty") in events and ("overflow", "empty_exit") in events
    # Nobody staffs "unstaffed" (join_when: staffed): the caller goes to its overflow at once.
    turned, turning = customer(phones, pbx, "turned", "+4917611110011", UNSTAFFED_DID)
    rung = operator.wait_for("incoming", timeout=20)["call"]
    operator.wait_for("state", call=rung, state="CONFIRMED", timeout=15)
    turned.hangup(turning)
    operator.wait_for("disconnected", call=rung, timeout=15)


def test_skills_from_the_ivr_choose_the_agent(pbx: RunningPbx, phones: SoftphonePool) -> None:
    german = agent(phones, pbx, "1001")
    english = agent(phones, pbx, "1002")
    caller, call = customer(phones, pbx, "caller", "+4917611110005", ENGLISH_DID)
    # "first" hunts 1001 before 1002, but only 1002 has the skill the flow asked for.
    rung = english.wait_for("incoming", timeout=20)["call"]
    english.wait_for("state", call=rung, state="CONFIRMED", timeout=15)
    german.assert_no_event("incoming", within=1.0)
    caller.hangup(call)
    english.wait_for("disconnected", call=rung, timeout=15)


def test_queued_caller_whose_rtp_died_leaves_the_queue(
    pbx: RunningPbx, tmp_path: Path
) -> None:
    # The carrier's RTP stops after 0.3 s and it never hangs up: the PBX notices the silence
    # (rtp_timeout_s: 4), takes the caller out of the queue and hangs up.
    scenario = carrier_scenario(tmp_path / "dead.xml", [], end="wait", tail_ms=300,
                                bye_timeout_ms=20000)
    result = run_sipp(tmp_path, str(scenario), pbx.sip_port, keys={"caller": "+4917699"},
                      extra=["-s", OVERFLOW_DID.replace("0302", "0303"), "-mi", "127.0.0.1"])
    assert result.successful == 1, str(result)
    cdr = pbx.wait_until(lambda: pbx.get("/api/cdrs")["cdrs"], 15, "a CDR")[0]
    assert cdr["queue"] == "empty_exit" and cdr["disposition"] == "abandoned"
    assert "rtp_timeout" in cdr["hangup_cause"]
    assert waiting(pbx, "empty_exit") == 0
    assert ("abandon", "empty_exit") in [(e, q) for e, q, _ in queue_log(pbx)]


def test_agent_whose_phone_vanished_is_cleared_and_gets_no_offers(
    pbx: RunningPbx, phones: SoftphonePool
) -> None:
    first = agent(phones, pbx, "1001")
    caller, call = customer(phones, pbx, "caller", "+4917611110006", FLOW_DID)
    rung = first.wait_for("incoming", timeout=30)["call"]
    first.wait_for("state", call=rung, state="CONFIRMED", timeout=15)
    caller.play_tone(call, 800)
    first.send_signal(signal.SIGKILL)  # no BYE, no more RTP, the registration stays
    caller.wait_for("disconnected", call=call, timeout=20)  # rtp_timeout_s is 4
    pbx.wait_until(lambda: agent_state(pbx, "1001")["state"] == "paused", 15, "1001 paused")
    assert any(e.get("event") == "agent_state" and e.get("agent") == "1001"
               and e.get("new") == "paused" and e.get("reason") == "phone_lost"
               for e in pbx.logs())
    cdr = pbx.wait_until(lambda: pbx.get("/api/cdrs")["cdrs"], 15, "a CDR")[0]
    assert cdr["hangup_cause"].startswith("pbx:agent rtp_timeout"), cdr


def _tone_wav(path: Path, hz: float, seconds: float) -> None:
    import wave

    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(8000 * seconds)) / 8000.0
    samples = (0.4 * 32767 * np.sin(2 * np.pi * hz * t)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(samples.tobytes())


def test_position_announcements_do_not_restart_the_hold_program(
    phones: SoftphonePool, tmp_path: Path
) -> None:
    # Music (500 Hz) with an ad (1500 Hz) after every 3 s of music; the position is announced
    # every 5 s (≈ 3.3 s of speech, so ≈ 1.7 s of music between two announcements). The
    # announcements go over the program, which goes on where it was: after two of them the ad
    # is heard. (Restarting the program after each announcement, as the PBX did, never got
    # past 1.7 s of music, so the ad never played.)
    root = Path(__file__).resolve().parents[2]
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    for lang in ("de", "en"):
        shutil.copytree(root / "prompts" / lang, prompts / lang)
    _tone_wav(prompts / "music" / "hold_music.wav", 500, 30)
    _tone_wav(prompts / "ads" / "ad_a.wav", 1500, 1.5)
    config = phases_config()
    config["media"]["prompts_dir"] = str(prompts)
    config["hold_programs"] = {"tones": {"music": ["music/hold_music"], "announcements": [],
                                         "ads": ["ads/ad_a"], "interval_s": 3}}
    config["queues"][2]["announce"] = {"hold_program": "tones", "position_every_s": 5,
                                       "ewt": True}
    config["queues"][2]["max_wait_s"] = 60
    running = start_pbx(tmp_path / "pbx", config)
    try:
        caller, call = customer(phones, running, "caller", "+4917611110007", OVERFLOW_DID)
        caller.record(call, str(tmp_path / "waiting.wav"))
        caller.assert_no_event("disconnected", within=16.0, call=call)
        caller.stop_record(call)
        caller.hangup(call)
        from tests.support.audio import analyze_wav

        windows = [analyze_wav(tmp_path / "waiting.wav", start_s=s / 4, end_s=s / 4 + 0.5)
                   for s in range(0, 60)]
        heard = [round(w.dominant_hz) for w in windows if w.rms_dbfs > -40]
        assert any(abs(hz - 1500) < 30 for hz in heard), heard  # the ad
        assert any(abs(hz - 500) < 30 for hz in heard), heard  # the music
        spoken = [e for e in running.logs() if e.get("event") == "queue_announcement"]
        assert spoken, "no announcement"
        assert any("de/you_are_caller" in e["prompts"] for e in spoken), spoken
    finally:
        running.stop()


def test_agent_phone_transfer_key_moves_the_caller_and_the_carrier_side_may_not(
    pbx: RunningPbx, phones: SoftphonePool, tmp_path: Path
) -> None:
    first = agent(phones, pbx, "1001")
    caller, call = customer(phones, pbx, "caller", "+4917611110008", FLOW_DID)
    rung = first.wait_for("incoming", timeout=30)["call"]
    first.wait_for("state", call=rung, state="CONFIRMED", timeout=15)
    # The caller's side (the carrier) tries to transfer the call out: refused.
    caller.xfer(call, f"sip:+4930999@127.0.0.1:{pbx.sip_port}")
    assert caller.wait_for("transfer_status", call=call, timeout=10)["code"] == 403
    # Agent 1001 presses the phone's transfer key and dials 1003 (blind transfer, REFER).
    third = agent(phones, pbx, "1003")
    first.xfer(rung, f"sip:1003@127.0.0.1:{pbx.sip_port}")
    status = first.wait_for("transfer_status", call=rung, final=True, timeout=10)
    assert status["code"] == 200
    first.wait_for("disconnected", call=rung, timeout=15)
    taken = third.wait_for("incoming", timeout=20)["call"]
    third.wait_for("state", call=taken, state="CONFIRMED", timeout=15)
    exchange_tones(caller, call, third, taken, tmp_path, 750, 1250)
    caller.hangup(call)
    third.wait_for("disconnected", call=taken, timeout=15)
    cdr = pbx.wait_until(lambda: pbx.get("/api/cdrs")["cdrs"], 15, "a CDR")[0]
    assert cdr["agent"] == "1003" and "transfer:extension:1003" in cdr["ivr_path"], cdr


def test_attended_transfer_from_the_agent_phone(
    pbx: RunningPbx, phones: SoftphonePool, tmp_path: Path
) -> None:
    # The agent holds the caller, calls a colleague through the PBX, then transfers with the
    # phone's own key: a REFER whose Refer-To replaces the consultation call (RFC 3891).
    first = agent(phones, pbx, "1001")
    third = agent(phones, pbx, "1003")
    caller, call = customer(phones, pbx, "caller", "+4917611110009", FLOW_DID)
    rung = first.wait_for("incoming", timeout=30)["call"]
    first.wait_for("state", call=rung, state="CONFIRMED", timeout=15)
    first.hold(rung)
    first.wait_for("media_state", call=rung, status="local_hold", timeout=10)
    consult = first.make_call(1, f"sip:1003@127.0.0.1:{pbx.sip_port}")
    consulted = third.wait_for("incoming", timeout=20)["call"]
    first.wait_for("state", call=consult, state="CONFIRMED", timeout=15)
    third.wait_for("state", call=consulted, state="CONFIRMED", timeout=15)
    first.xfer_replaces(rung, consult)
    status = first.wait_for("transfer_status", call=rung, final=True, timeout=10)
    assert status["code"] == 200
    first.wait_for("disconnected", call=rung, timeout=15)
    first.wait_for("disconnected", call=consult, timeout=15)
    # The caller now talks to 1003 on the leg 1003 already had.
    exchange_tones(caller, call, third, consulted, tmp_path, 650, 1450)
    caller.hangup(call)
    third.wait_for("disconnected", call=consulted, timeout=15)
    cdrs = pbx.wait_until(lambda: len(pbx.get("/api/cdrs")["cdrs"]) >= 2 and
                          pbx.get("/api/cdrs")["cdrs"], 15, "two CDRs")
    queued = [c for c in cdrs if c["queue"] == "first"][0]
    assert queued["agent"] == "1003" and "transfer:agent:1003" in queued["ivr_path"], queued
    pbx.wait_until(lambda: agent_state(pbx, "1003")["state"] == "available", 15, "1003 free")


def _dialog_tags(phone: Softphone, incoming: dict[str, Any]) -> tuple[str, str]:
    """(the PBX's tag, the phone's tag) of the dialog `incoming` created: the first from the
    INVITE the phone received, the second from the 200 OK it sent (pjsua logs its messages)."""
    call_id = incoming["sip_call_id"]
    pbx_tag = re.search(r"^From:.*;tag=([^;>\s]+)", incoming["message"], re.M | re.I)
    for chunk in phone.pjsua_log.read_text(errors="replace").split("SIP/2.0 200 OK")[1:]:
        head = chunk.split("--end msg--", 1)[0]  # this message only
        if call_id in head and re.search(r"^CSeq:\s*\d+ INVITE", head, re.M | re.I):
            own_tag = re.search(r"^To:.*;tag=([^;>\s]+)", head, re.M | re.I)
            if pbx_tag and own_tag:
                return pbx_tag.group(1), own_tag.group(1)
    raise AssertionError("the phone's 200 OK is not in its log")


def test_agent_moves_the_call_to_their_other_phone_and_nobody_else_may(
    pbx: RunningPbx, phones: SoftphonePool, tmp_path: Path
) -> None:
    # Agent 1001 has a desk phone and a softphone; the call is answered on the desk phone,
    # then the softphone takes it over with an INVITE carrying Replaces (RFC 3891).
    desk = agent(phones, pbx, "1001")
    soft = phones.start("soft1001")
    soft_account = soft.add_account("1001", "pw1001x", domain="hotline.example",
                                    registrar=f"127.0.0.1:{pbx.sip_port}", expires=300,
                                    register=True, auto_answer=486)
    assert soft.wait_for("reg_state", account=soft_account, timeout=20)["code"] == 200
    other = agent(phones, pbx, "1003", auto=False)
    caller, call = customer(phones, pbx, "caller", "+4917611110010", FLOW_DID)
    rung = desk.wait_for("incoming", timeout=30)
    desk.wait_for("state", call=rung["call"], state="CONFIRMED", timeout=15)
    pbx_tag, desk_tag = _dialog_tags(desk, rung)
    replaces = f"{rung['sip_call_id']};to-tag={pbx_tag};from-tag={desk_tag}"
    # Another agent cannot grab the call.
    grab = other.make_call(1, f"sip:1001@127.0.0.1:{pbx.sip_port}", {"Replaces": replaces})
    assert other.wait_for("disconnected", call=grab, timeout=15)["code"] == 403
    # The agent's own softphone can.
    moved = soft.make_call(soft_account, f"sip:1001@127.0.0.1:{pbx.sip_port}",
                           {"Replaces": replaces})
    soft.wait_for("state", call=moved, state="CONFIRMED", timeout=15)
    desk.wait_for("disconnected", call=rung["call"], timeout=15)
    soft.wait_for("media_active", call=moved, timeout=10)
    exchange_tones(caller, call, soft, moved, tmp_path, 850, 1350)
    caller.hangup(call)
    soft.wait_for("disconnected", call=moved, timeout=15)
    cdr = pbx.wait_until(lambda: pbx.get("/api/cdrs")["cdrs"], 15, "a CDR")[0]
    assert cdr["agent"] == "1001" and cdr["disposition"] == "answered"


def test_wait_estimate_is_spoken_when_the_queue_is_staffed(
    phones: SoftphonePool, tmp_path: Path
) -> None:
    config = phases_config()
    config["queues"][2]["announce"] = {"position_every_s": 30, "ewt": True}
    config["queues"][2]["max_wait_s"] = 60
    running = start_pbx(tmp_path / "pbx", config)
    try:
        # 1004 (the queue's only member) talks to 1003 on a direct call: the queue is staffed,
        # so there is a wait estimate, and nobody is offered the caller.
        busy = agent(phones, running, "1004", auto=False)
        agent(phones, running, "1003")
        internal = busy.make_call(1, f"sip:1003@127.0.0.1:{running.sip_port}")
        busy.wait_for("state", call=internal, state="CONFIRMED", timeout=15)
        caller, call = customer(phones, running, "caller", "+4917611110012", OVERFLOW_DID)
        spoken = running.wait_until(
            lambda: [e["prompts"] for e in running.logs()
                     if e.get("event") == "queue_announcement"], 15, "an announcement")
        assert spoken[0][:3] == ["de/you_are_caller", "de/numbers/1", "de/in_the_queue"]
        assert "de/estimated_wait" in spoken[0], spoken
        busy.assert_no_event("incoming", within=1.0)
        caller.hangup(call)
    finally:
        running.stop()


def test_ivr_transfer_node_to_an_outside_number_goes_out_through_the_trunk(
    phones: SoftphonePool, tmp_path: Path
) -> None:
    from tests.support.sipp import Sipp

    scenarios = Path(__file__).parent / "scenarios"
    log_file = tmp_path / "carrier.log"
    with Sipp(scenarios / "carrier_uas_answer.xml", tmp_path / "sipp",
              extra_args=("-trace_logs", "-log_file", str(log_file))) as carrier:
        config = phases_config()
        config["trunks"][0]["port"] = carrier.port
        config["trunks"][0]["caller_id"] = "+4930123456"
        config["flows"]["outside"] = {"start": "out", "nodes": {
            "out": {"type": "transfer", "number": "+4930555000",
                    "prompt": "de/transferring"}}}
        config["dids"].append({"number": "+4930306", "flow": "outside"})
        running = start_pbx(tmp_path / "pbx", config)
        try:
            caller, call = customer(phones, running, "caller", "+4917611110013", "+4930306")
            running.wait_until(lambda: log_file.exists() and "DIALLED" in log_file.read_text(),
                               20, "the carrier's INVITE")
            caller.assert_no_event("disconnected", within=1.5, call=call)
            caller.hangup(call)
            assert carrier.wait(20) == 0, carrier.output()  # our BYE reached the carrier
            assert "DIALLED +4930555000 " in log_file.read_text()
            cdr = running.wait_until(lambda: running.get("/api/cdrs")["cdrs"], 15, "a CDR")[0]
            assert "number:+4930555000" in cdr["ivr_path"], cdr
            assert cdr["disposition"] == "answered" and cdr["direction"] == "outbound", cdr
        finally:
            running.stop()


def test_max_length_and_leave_when_unstaffed_go_to_their_targets(
    pbx: RunningPbx, phones: SoftphonePool
) -> None:
    operator = agent(phones, pbx, "1003")
    # "small" holds one caller (nobody serves it): the second is sent to 1003 at once.
    first, first_call = customer(phones, pbx, "first", "+4917611110014", SMALL_DID)
    pbx.wait_until(lambda: waiting(pbx, "small") == 1, 20, "the first caller waiting")
    second, second_call = customer(phones, pbx, "second", "+4917611110015", SMALL_DID)
    rung = operator.wait_for("incoming", timeout=20)["call"]
    operator.wait_for("state", call=rung, state="CONFIRMED", timeout=15)
    assert waiting(pbx, "small") == 1  # the first caller still waits
    second.hangup(second_call)
    operator.wait_for("disconnected", call=rung, timeout=15)
    first.hangup(first_call)
    # "lonely" is staffed by 1004 alone; its phone rings for the caller, then unregisters:
    # the queue is unstaffed and the caller goes on to 1003.
    lonely = agent(phones, pbx, "1004", auto=False)
    caller, call = customer(phones, pbx, "caller", "+4917611110016", LONELY_DID)
    lonely.wait_for("incoming", timeout=20)
    lonely.unregister(1)
    rung = operator.wait_for("incoming", timeout=20)["call"]
    operator.wait_for("state", call=rung, state="CONFIRMED", timeout=15)
    caller.assert_no_event("disconnected", within=1.0, call=call)
    caller.hangup(call)
    events = [(e, q) for e, q, _ in queue_log(pbx)]
    assert ("overflow", "small") in events and ("overflow", "lonely") in events, events
