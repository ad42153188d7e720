"""The dial plan on E.164, live: a pjsua agent dials through `pbx run` with SIPp as the carrier.

Premium-rate numbers are refused with 403 in every written form that used to pass as a
domestic number (`+49 (0) 900…`, `0049-137…`, `*31#0900…`), the reason phrase does not name the
rule (the log does), and a domestic number dialled in national format reaches the carrier as
E.164 (the carrier scenario logs the Request-URI's user part)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.pbx_harness import start_pbx
from tests.integration.test_trunk import SCENARIOS, agent_phone, trunk_config
from tests.support.sipp import Sipp
from tests.support.softphone import SoftphonePool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

# As the phone puts them in the Request-URI's user part: spaces as %20, "#" as %23.
REFUSED = [
    ("0900%201234567", "premium-rate"),
    ("+49%20(0)%20900%201234567", "premium-rate"),
    ("+49(0)9001234567", "premium-rate"),
    ("0049-137-1234567", "mass-calling"),
    ("+49138%201234567", "mass-calling"),
    ("*31%2301805123456", "service-number"),
    ("11880", "directory-enquiries"),
    ("070012345678", "personal-number"),
]


@pytest.mark.parametrize("ext", ["1001", "1009"], ids=["agent", "supervisor"])
def test_premium_numbers_are_refused_in_every_form(tmp_path: Path, phones: SoftphonePool,
                                                   ext: str) -> None:
    pbx = start_pbx(tmp_path / "pbx", trunk_config(5999, register=False))
    try:
        phone, account = agent_phone(phones, pbx, ext)
        for number, rule in REFUSED:
            call = phone.make_call(account, f"sip:{number}@127.0.0.1:{pbx.sip_port}")
            ended = phone.wait_for("disconnected", call=call, timeout=20)
            assert ended["code"] == 403, (number, ended)
            assert rule not in ended["reason"], (number, ended)
        refused = [e for e in pbx.logs() if e.get("event") == "dial_refused"]
        assert [e["dialled"] for e in refused] == [number for number, _ in REFUSED]
        log_text = pbx.log_path.read_text(errors="replace")
        for _number, rule in REFUSED:  # the rule that refused is in the log
            assert f"by rule '{rule}'" in log_text
    finally:
        pbx.stop()


def test_domestic_number_goes_to_the_carrier_as_e164(tmp_path: Path,
                                                     phones: SoftphonePool) -> None:
    log_file = tmp_path / "carrier.log"
    # The carrier also logs the From and Privacy headers of our INVITE.
    scenario = tmp_path / "carrier_logging.xml"
    scenario.write_text((SCENARIOS / "carrier_uas_answer.xml").read_text().replace(
        '<log message="DIALLED [$dialled] ([$whole])"/>',
        '<log message="DIALLED [$dialled] ([$whole])"/>'
        '<ereg regexp="From: ([^\\r\\n]*)" search_in="msg" assign_to="fromline,from"/>'
        '<log message="FROM [$from]"/>'
        '<ereg regexp="Privacy: ([^\\r\\n]*)" search_in="msg" assign_to="privline,privacy"/>'
        '<log message="PRIVACY [$privacy]"/>').replace(
        '</scenario>', '<Reference variables="fromline,privline"/></scenario>'))
    with Sipp(scenario, tmp_path / "sipp",
              extra_args=("-trace_logs", "-log_file", str(log_file))) as sipp:
        pbx = start_pbx(tmp_path / "pbx", trunk_config(sipp.port, register=False))
        try:
            phone, account = agent_phone(phones, pbx, "1001")
            # *31# in front: withhold the caller ID on this call (CLIR).
            call = phone.make_call(account,
                                   f"sip:*31%23030%20987%2065-43@127.0.0.1:{pbx.sip_port}")
            phone.wait_for("state", call=call, state="CONFIRMED", timeout=20)
            phone.hangup(call)
            phone.wait_for("disconnected", call=call, timeout=15)
            assert sipp.wait(20) == 0, sipp.output()
            assert "DIALLED +49309876543 " in log_file.read_text()
            dialled = [e for e in pbx.logs() if e.get("event") == "trunk_dialled"]
            assert dialled and dialled[0]["number"] == "+49309876543"
            carrier = log_file.read_text()
            assert "FROM \"Anonymous\" <sip:anonymous@anonymous.invalid>" in carrier, carrier
            assert "PRIVACY id" in carrier, carrier
        finally:
            pbx.stop()
