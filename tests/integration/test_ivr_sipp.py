"""The IVR with SIPp as the carrier: keys pressed as RFC 4733 events walk a two-level menu and a
customer-number collection; the path, the collected variables and the CDR are checked. Also the
invalid and timeout paths, a caller hanging up mid-prompt, and a queue call answered by a
pjsua2 agent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.carrier_sipp import Pause, Press, carrier_scenario
from tests.integration.pbx_harness import RunningPbx, agent_entries, base_config, start_pbx
from tests.integration.sipp import run_sipp
from tests.support.softphone import SoftphonePool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

DID = "+4930123456"
CALLER = "+4917612345678"

FLOW: dict[str, Any] = {
    "language": "de",
    "start": "greeting",
    "nodes": {
        "greeting": {"type": "play", "prompt": "de/greeting", "barge_in": True,
                     "next": "concern"},
        "concern": {"type": "menu", "prompt": "de/main_menu",
                    "options": {"1": "billing", "2": "technik"}, "timeout_s": 4,
                    "max_retries": 1, "invalid_prompt": "de/invalid_entry",
                    "timeout_prompt": "de/invalid_entry", "on_failure": "bye"},
        "billing": {"type": "set", "variables": {"concern": "billing"}, "next": "number"},
        "technik": {"type": "set", "variables": {"concern": "technik"}, "next": "number"},
        "number": {"type": "collect", "prompt": "de/enter_customer_number",
                   "variable": "customer_no", "min_digits": 6, "max_digits": 6,
                   "inter_digit_timeout_s": 4, "first_digit_timeout_s": 8, "next": "lookup"},
        "lookup": {"type": "lookup", "by": "customer_no", "variable": "customer_no",
                   "found": "known", "not_found": "bye"},
        "known": {"type": "branch",
                  "cases": [{"when": {"var": "concern", "equals": "billing"},
                             "next": "to_billing"}],
                  "default": "bye"},
        "to_billing": {"type": "queue", "queue": "billing", "priority": 5},
        "bye": {"type": "hangup", "prompt": "de/goodbye"},
    },
}


def ivr_config() -> dict[str, Any]:
    agents = agent_entries(2)
    for agent in agents:
        agent["groups"] = ["billing"]
    config = base_config(agents)
    config["trunks"] = [{"name": "carrier", "host": "127.0.0.1", "port": 5070,
                         "inbound_addresses": ["127.0.0.1/32"]}]
    config["dids"] = [{"number": DID, "flow": "hotline", "language": "de"}]
    config["flows"] = {"hotline": FLOW}
    config["customers"] = [{"customer_no": "123456", "name": "Erika Mustermann",
                            "phones": [CALLER], "status": "gold"}]
    return config


@pytest.fixture(scope="module")
def ivr_pbx(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    running = start_pbx(tmp_path_factory.mktemp("ivr") / "pbx", ivr_config())
    try:
        yield running
    finally:
        running.stop()


def place_call(pbx: RunningPbx, workdir: Path, steps: list[Press | Pause], end: str,
               timeout: int = 60) -> None:
    scenario = carrier_scenario(workdir / "carrier.xml", steps, end=end)
    result = run_sipp(workdir, str(scenario), pbx.sip_port, calls=1, rate=1,
                      keys={"caller": CALLER}, timeout=timeout,
                      extra=["-s", DID, "-mi", "127.0.0.1"])
    assert result.successful == 1, str(result)


def last_cdr(pbx: RunningPbx, count_before: int) -> dict[str, Any]:
    cdrs = pbx.wait_until(lambda: (lambda c: c if len(c) > count_before else None)(
        pbx.get("/api/cdrs")["cdrs"]), 20, "a new CDR")
    return dict(cdrs[0])


def cdr_count(pbx: RunningPbx) -> int:
    return len(pbx.get("/api/cdrs")["cdrs"])


def test_menu_and_customer_number_reach_the_lookup_and_are_recorded(
    ivr_pbx: RunningPbx, tmp_path: Path, phones: SoftphonePool
) -> None:
    before = cdr_count(ivr_pbx)
    # Press 2 (technik) during the greeting (barge-in), then the customer number: the lookup
    # finds Erika, the branch sends non-billing concerns to the goodbye, the PBX hangs up.
    place_call(ivr_pbx, tmp_path, [Pause(1500), Press("2"), Pause(1500), Press("123456")],
               end="wait")
    cdr = last_cdr(ivr_pbx, before)
    assert cdr["did"] == DID and cdr["caller"] == CALLER
    assert cdr["variables"]["concern"] == "technik"
    assert cdr["variables"]["customer_no"] == "123456"
    assert cdr["variables"]["customer.name"] == "Erika Mustermann"
    path = cdr["ivr_path"]
    for node in ("greeting", "concern", "technik", "number", "lookup", "known", "bye"):
        assert node in path, path
    assert cdr["hangup_cause"].startswith("pbx:")


def test_invalid_key_then_timeout_ends_at_goodbye(ivr_pbx: RunningPbx, tmp_path: Path) -> None:
    before = cdr_count(ivr_pbx)
    place_call(ivr_pbx, tmp_path, [Pause(1500), Press("9")], end="wait", timeout=90)
    cdr = last_cdr(ivr_pbx, before)
    assert cdr["ivr_path"][-1] == "bye" and "concern" in cdr["ivr_path"]
    assert "concern" not in cdr["variables"]


def test_caller_hangs_up_mid_prompt(ivr_pbx: RunningPbx, tmp_path: Path) -> None:
    before = cdr_count(ivr_pbx)
    place_call(ivr_pbx, tmp_path, [Pause(800)], end="bye")
    cdr = last_cdr(ivr_pbx, before)
    assert cdr["hangup_cause"].startswith("caller") or cdr["disposition"] in (
        "abandoned", "hung_up"), cdr
    assert cdr["ivr_path"][:2] == ["flow:hotline", "greeting"]
    assert ivr_pbx.stats()["calls"]["active"] == 0


def test_billing_customer_is_queued_and_answered_by_an_agent(
    ivr_pbx: RunningPbx, tmp_path: Path, phones: SoftphonePool
) -> None:
    agent = phones.start("agent1001")
    account = agent.add_account("1001", "pw1001x", domain="hotline.example",
                                registrar=f"127.0.0.1:{ivr_pbx.sip_port}", expires=300,
                                register=True, auto_answer=200)
    assert agent.wait_for("reg_state", account=account, timeout=20)["code"] == 200
    before = cdr_count(ivr_pbx)
    place_call(ivr_pbx, tmp_path, [Pause(1500), Press("1"), Pause(1500), Press("123456"),
                                   Pause(4000)], end="bye")
    incoming = agent.wait_for("incoming", timeout=5)
    assert CALLER in incoming["from"]
    cdr = last_cdr(ivr_pbx, before)
    assert cdr["disposition"] == "answered" and cdr["agent"] == "1001"
    assert cdr["queue"] == "billing" and cdr["variables"]["concern"] == "billing"
    agent.wait_for("disconnected", call=incoming["call"], timeout=15)
