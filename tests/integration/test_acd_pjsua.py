"""The ACD with real softphones: hunting rolls from a seat that does not answer to the next;
with every agent busy the caller hears the hold program (measured at the caller) and is
connected when an agent becomes free; a VIP caller reaches their pinned agent ahead of a
standard caller who waited longer."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.integration.live_calls import agent_phone
from tests.integration.pbx_harness import RunningPbx, agent_entries, base_config, start_pbx
from tests.support.audio import analyze_wav
from tests.support.softphone import Softphone, SoftphonePool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

QUEUE_DID = "+4930200"
VIP_DID = "+4930201"
VIP_NUMBER = "+4917000000001"


def acd_config() -> dict[str, Any]:
    config = base_config(agent_entries(2))
    config["trunks"] = [{"name": "carrier", "host": "127.0.0.1", "port": 5070,
                         "inbound_addresses": ["127.0.0.1/32"]}]
    config["queues"] = [{"name": "support", "strategy": "linear", "ring_timeout_s": 3,
                         "retry_delay_s": 1, "wrap_up_s": 1,
                         "members": [{"agent": "1001"}, {"agent": "1002"}]}]
    config["customer_statuses"] = {"standard": {"priority": 0},
                                   "vip": {"priority": 10,
                                           "pinning": {"wait_for_pinned_s": 60}}}
    config["customers"] = [{"customer_no": "900001", "name": "Very Important",
                            "phones": [VIP_NUMBER], "status": "vip",
                            "pinned_agents": ["1002"]}]
    config["flows"] = {"identify": {"start": "who", "nodes": {
        "who": {"type": "lookup", "by": "phone", "found": "q", "not_found": "q"},
        "q": {"type": "queue", "queue": "support"}}}}
    config["dids"] = [{"number": QUEUE_DID, "queue": "support"},
                      {"number": VIP_DID, "flow": "identify"}]
    return config


@pytest.fixture
def acd_pbx(tmp_path: Path):  # type: ignore[no-untyped-def]
    running = start_pbx(tmp_path / "pbx", acd_config())
    try:
        yield running
    finally:
        running.stop()


def queue_log(pbx: RunningPbx) -> list[tuple[str, str]]:
    with sqlite3.connect(pbx.workdir / "data" / "pbx.db") as db:
        return [(e, a) for e, a in db.execute("SELECT event, agent FROM queue_log ORDER BY id")]


def agent(phones: SoftphonePool, pbx: RunningPbx, ext: str, auto: bool) -> Softphone:
    return agent_phone(phones, pbx, ext, auto=auto)


def customer(phones: SoftphonePool, pbx: RunningPbx, name: str, number: str,
             did: str) -> tuple[Softphone, int]:
    phone = phones.start(name)
    account = phone.add_account(number, domain="127.0.0.1")
    return phone, phone.make_call(account, f"sip:{did}@127.0.0.1:{pbx.sip_port}")


def test_first_seat_does_not_answer_and_the_call_rolls_to_the_second(
    acd_pbx: RunningPbx, phones: SoftphonePool
) -> None:
    first = agent(phones, acd_pbx, "1001", auto=False)
    second = agent(phones, acd_pbx, "1002", auto=True)
    caller, call = customer(phones, acd_pbx, "caller", "+4917611111111", QUEUE_DID)
    rang = first.wait_for("incoming", timeout=20)
    # Nobody answers at seat 1: after the 3 s ring timeout the ring is cancelled ...
    first.wait_for("disconnected", call=rang["call"], timeout=15)
    # ... and seat 2 gets the call and answers.
    answered = second.wait_for("incoming", timeout=15)
    second.wait_for("state", call=answered["call"], state="CONFIRMED", timeout=15)
    caller.wait_for("state", call=call, state="CONFIRMED", timeout=15)
    caller.hangup(call)
    second.wait_for("disconnected", call=answered["call"], timeout=15)
    cdr = acd_pbx.wait_until(lambda: acd_pbx.get("/api/cdrs")["cdrs"], 15, "a CDR")[0]
    assert cdr["agent"] == "1002" and cdr["queue"] == "support"
    assert cdr["disposition"] == "answered"
    stats = acd_pbx.stats()
    (support,) = [q for q in stats["queues"] if q["queue"] == "support"]
    assert support["offered"] == 1 and support["answered"] == 1 and support["no_answers"] >= 1
    agents = {a["agent"]: a for a in stats["agents"]}
    assert agents["1001"]["missed"] >= 1 and agents["1002"]["calls"] == 1
    # The queue log in storage tells the same story, in order.
    events = acd_pbx.wait_until(lambda: [e for e in queue_log(acd_pbx) if e[0] == "wrap_up"]
                                and queue_log(acd_pbx), 15, "the queue log")
    story = [(event, agent) for event, agent in events if event != "wrap_up"]
    assert story[:5] == [("enqueue", ""), ("offer", "1001"), ("no_answer", "1001"),
                         ("offer", "1002"), ("answer", "1002")], events


def test_all_busy_caller_hears_hold_audio_then_gets_the_free_agent(
    acd_pbx: RunningPbx, phones: SoftphonePool, tmp_path: Path
) -> None:
    only = agent(phones, acd_pbx, "1001", auto=True)
    first, first_call = customer(phones, acd_pbx, "first", "+4917622222222", QUEUE_DID)
    first.wait_for("state", call=first_call, state="CONFIRMED", timeout=20)
    only_first = only.wait_for("incoming", timeout=5)["call"]
    second, second_call = customer(phones, acd_pbx, "second", "+4917633333333", QUEUE_DID)
    second.wait_for("state", call=second_call, state="CONFIRMED", timeout=20)
    second.wait_for("media_active", call=second_call, timeout=10)
    second.send_dtmf(second_call, "5")  # a key with no exit configured changes nothing
    second.record(second_call, str(tmp_path / "waiting.wav"))
    second.assert_no_event("disconnected", within=4.0)
    second.stop_record(second_call)
    heard = analyze_wav(tmp_path / "waiting.wav", start_s=0.5)
    assert heard.rms_dbfs > -45, heard  # the hold program, not silence
    only.assert_no_event("incoming", within=0.5)  # one agent, one call
    first.hangup(first_call)
    only.wait_for("disconnected", call=only_first, timeout=15)
    # After the 1 s wrap-up the waiting caller is put through.
    later = only.wait_for("incoming", timeout=20)
    assert "+4917633333333" in later["from"]
    only.wait_for("state", call=later["call"], state="CONFIRMED", timeout=15)
    second.hangup(second_call)


def test_vip_reaches_the_pinned_agent_ahead_of_an_earlier_caller(
    acd_pbx: RunningPbx, phones: SoftphonePool
) -> None:
    pinned = agent(phones, acd_pbx, "1002", auto=True)
    warmup, warm_call = customer(phones, acd_pbx, "warmup", "+4917644444444", QUEUE_DID)
    busy_call = pinned.wait_for("incoming", timeout=20)["call"]  # 1002 is now busy
    standard, standard_call = customer(phones, acd_pbx, "standard", "+4917655555555",
                                       QUEUE_DID)
    standard.wait_for("state", call=standard_call, state="CONFIRMED", timeout=20)
    vip, vip_call = customer(phones, acd_pbx, "vip", VIP_NUMBER, VIP_DID)
    vip.wait_for("state", call=vip_call, state="CONFIRMED", timeout=20)
    vip.assert_no_event("disconnected", within=1.0)
    warmup.hangup(warm_call)
    pinned.wait_for("disconnected", call=busy_call, timeout=15)
    nxt = pinned.wait_for("incoming", timeout=20)
    assert VIP_NUMBER in nxt["from"], nxt
    vip.hangup(vip_call)
    standard.hangup(standard_call)
