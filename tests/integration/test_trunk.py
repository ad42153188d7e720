"""The carrier trunk with SIPp as the carrier: the PBX registers to it with digest auth (and
unregisters on shutdown), agents call out through it with the caller ID and E.164 number the
carrier expects and answer its digest challenge, and the dial plan refuses premium-rate and
(for plain agents) international numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.pbx_harness import RunningPbx, agent_entries, base_config, start_pbx
from tests.support.sipp import Sipp
from tests.support.softphone import Softphone, SoftphonePool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SCENARIOS = Path(__file__).parent / "scenarios"


def trunk_config(port: int, register: bool) -> dict[str, Any]:
    config = base_config(agent_entries(3) + [
        {"extension": "1009", "name": "Supervisor", "password": "pw1009x", "role": "supervisor"}
    ])
    trunk: dict[str, Any] = {
        "name": "carrier", "host": "127.0.0.1", "port": port,
        "inbound_addresses": ["127.0.0.2/32"], "username": "hotline", "password": "trunk-secret",
        "caller_id": "+4930123456", "from_domain": "carrier.test", "country_code": "49",
    }
    if register:
        trunk |= {"register": True, "register_expires": 120}
    config["trunks"] = [trunk]
    return config


def agent_phone(phones: SoftphonePool, pbx: RunningPbx, ext: str) -> tuple[Softphone, int]:
    phone = phones.start(f"agent{ext}")
    account = phone.add_account(ext, f"pw{ext}x", domain="hotline.example",
                                registrar=f"127.0.0.1:{pbx.sip_port}", expires=300,
                                register=True)
    assert phone.wait_for("reg_state", account=account, timeout=20)["code"] == 200
    return phone, account


def test_pbx_registers_to_the_carrier_and_unregisters_on_shutdown(tmp_path: Path) -> None:
    with Sipp("register_digest_uas.xml", tmp_path / "sipp",
              keys={"username": "hotline", "password": "trunk-secret", "expires": "120"}) as sipp:
        pbx = start_pbx(tmp_path / "pbx", trunk_config(sipp.port, register=True))
        try:
            status = pbx.wait_until(
                lambda: [t for t in pbx.stats()["trunks"] if t["state"] == "registered"],
                20, "trunk registered")[0]
            assert status["trunk"] == "carrier" and status["last_status"] == 200
        finally:
            assert pbx.stop() == 0
        # SIPp exits 0 only after the un-REGISTER (Expires: 0) was answered.
        assert sipp.wait(20) == 0, sipp.output()


def test_agent_calls_out_through_the_trunk_with_digest_auth(
    tmp_path: Path, phones: SoftphonePool
) -> None:
    log_file = tmp_path / "carrier.log"
    with Sipp(SCENARIOS / "carrier_uas_auth.xml", tmp_path / "sipp",
              keys={"username": "hotline", "password": "trunk-secret"},
              extra_args=("-trace_logs", "-log_file", str(log_file))) as sipp:
        pbx = start_pbx(tmp_path / "pbx", trunk_config(sipp.port, register=False))
        try:
            phone, account = agent_phone(phones, pbx, "1001")
            call = phone.make_call(account, f"sip:030 9876543@127.0.0.1:{pbx.sip_port}"
                                   .replace(" ", ""))
            phone.wait_for("state", call=call, state="CONFIRMED", timeout=20)
            phone.assert_no_event("disconnected", within=1.0)
            phone.hangup(call)
            phone.wait_for("disconnected", call=call, timeout=15)
            assert sipp.wait(20) == 0, sipp.output()
            logged = log_file.read_text()
            assert "DIALLED +49309876543 " in logged
            assert "CALLERID +4930123456 " in logged
            cdr = pbx.wait_until(lambda: pbx.get("/api/cdrs")["cdrs"], 15, "a CDR")[0]
            assert cdr["direction"] == "outbound" and cdr["disposition"] == "answered"
        finally:
            pbx.stop()


@pytest.mark.parametrize(("ext", "number", "allowed"), [
    ("1001", "09001234567", False),  # premium rate: nobody
    ("1001", "004412345678", False),  # international: not for agents
])
def test_dial_plan_refuses(tmp_path: Path, phones: SoftphonePool, ext: str, number: str,
                           allowed: bool) -> None:
    pbx = start_pbx(tmp_path / "pbx", trunk_config(5999, register=False))
    try:
        phone, account = agent_phone(phones, pbx, ext)
        call = phone.make_call(account, f"sip:{number}@127.0.0.1:{pbx.sip_port}")
        ended = phone.wait_for("disconnected", call=call, timeout=20)
        assert ended["code"] == 403
        refused = [e for e in pbx.logs() if e.get("event") == "dial_refused"]
        assert refused and refused[0]["dialled"] == number
    finally:
        pbx.stop()
