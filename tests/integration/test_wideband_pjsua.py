"""G.722 with real softphones (pjsua2): a G.722 agent phone talks to a G.711 customer through
the PBX's transcoding, and two G.722 agents keep wideband audio end to end (a 6 kHz tone, which
no 8 kHz codec can carry, arrives at the other phone)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.live_calls import register_agent
from tests.integration.pbx_harness import RunningPbx, agent_entries, base_config, start_pbx
from tests.support.audio import analyze_wav
from tests.support.softphone import Softphone, SoftphonePool, exchange_tones

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

DID = "+4930100"
G722 = "G722/16000"


@pytest.fixture
def wide_pbx(tmp_path: Path):  # type: ignore[no-untyped-def]
    config: dict[str, Any] = base_config(agent_entries(4))
    config["media"] = {"codecs": ["G722", "PCMU", "PCMA"]}
    config["trunks"] = [{"name": "carrier", "host": "127.0.0.1", "port": 5070,
                         "inbound_addresses": ["127.0.0.1/32"]}]
    config["dids"] = [{"number": DID, "agent": "1001"}]
    running = start_pbx(tmp_path / "pbx", config)
    try:
        yield running
    finally:
        running.stop()


def prefer(phone: Softphone, codec: str) -> None:
    """Make ``codec`` the phone's first choice and drop the other wideband codecs, so each
    test knows what the phone offers and answers."""
    priorities = phone.set_codec_priority(codec, 255)
    for other in priorities:
        if other != codec and not other.startswith(("PCMU", "PCMA", "G722", "telephone")):
            phone.set_codec_priority(other, 0)
    if codec != G722:
        phone.set_codec_priority(G722, 0)


def test_g722_agent_and_g711_customer_hear_each_other_through_transcoding(
    wide_pbx: RunningPbx, phones: SoftphonePool, tmp_path: Path
) -> None:
    agent = phones.start("agent1001")
    prefer(agent, G722)
    register_agent(wide_pbx, agent, "1001", auto_answer=200, auto_answer_delay=0.3)
    customer = phones.start("customer")
    prefer(customer, "PCMU/8000")
    account = customer.add_account("+4917612345678", domain="127.0.0.1")
    call = customer.make_call(account, f"sip:{DID}@127.0.0.1:{wide_pbx.sip_port}")
    agent_call = agent.wait_for("incoming", timeout=20)["call"]
    customer.wait_for("media_active", call=call, timeout=20)
    agent.wait_for("media_active", call=agent_call, timeout=10)
    assert customer.call_info(call)["codec"] == "PCMU/8000"
    assert agent.call_info(agent_call)["codec"] == G722
    exchange_tones(customer, call, agent, agent_call, tmp_path, 800, 1300)
    customer.hangup(call)
    agent.wait_for("disconnected", call=agent_call, timeout=15)


def test_two_g722_agents_keep_wideband_audio(
    wide_pbx: RunningPbx, phones: SoftphonePool, tmp_path: Path
) -> None:
    caller = phones.start("agent1001")
    prefer(caller, G722)
    account = register_agent(wide_pbx, caller, "1001")
    callee = phones.start("agent1002")
    prefer(callee, G722)
    register_agent(wide_pbx, callee, "1002", auto_answer=200)
    call = caller.make_call(account, f"sip:1002@127.0.0.1:{wide_pbx.sip_port}")
    incoming = callee.wait_for("incoming", timeout=20)["call"]
    caller.wait_for("media_active", call=call, timeout=20)
    callee.wait_for("media_active", call=incoming, timeout=10)
    assert caller.call_info(call)["codec"] == G722
    assert callee.call_info(incoming)["codec"] == G722
    caller.play_tone(call, 6000)  # above 4 kHz: only a wideband path carries it
    callee.record(incoming, str(tmp_path / "callee.wav"))
    callee.assert_no_event("disconnected", within=2.5)
    callee.stop_record(incoming)
    heard = analyze_wav(tmp_path / "callee.wav", start_s=0.5)
    assert abs(heard.dominant_hz - 6000) < 30, heard
    assert heard.rms_dbfs > -35, heard
    callee.hangup(incoming)
    caller.wait_for("disconnected", call=call, timeout=15)
