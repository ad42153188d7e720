"""A real softphone (PJSIP through pjsua2) registers to the PBX with digest auth, refreshes
its registration, and unregisters; a wrong password is refused."""

from __future__ import annotations

import pytest

from tests.integration.pbx_harness import RunningPbx
from tests.support.softphone import SoftphonePool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def registrar(pbx: RunningPbx) -> str:
    return f"127.0.0.1:{pbx.sip_port}"


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_softphone_registers_refreshes_and_unregisters(
    pbx: RunningPbx, phones: SoftphonePool, transport: str
) -> None:
    phone = phones.start("agent1001")
    account = phone.add_account(
        "1001", "pw1001x", domain="hotline.example", registrar=registrar(pbx),
        transport=transport, expires=12, register=True,
    )
    first = phone.wait_for("reg_state", account=account, timeout=20)
    assert first["code"] == 200 and first["expires"] > 0, first
    (binding,) = pbx.registrations("1001")
    assert binding["source_transport"] == transport
    assert "pjsua2" in binding["user_agent"]
    # pjsua refreshes before the 12 s lifetime runs out; the binding is replaced, not added.
    refreshed = phone.wait_for("reg_state", account=account, code=200, timeout=30)
    assert refreshed["expires"] > 0
    pbx.wait_until(lambda: pbx.stats()["registrar"]["refreshed"] >= 1, 20, "a refresh")
    assert len(pbx.registrations("1001")) == 1
    phone.unregister(account)
    gone = phone.wait_for("reg_state", account=account, expires=0, timeout=20)
    assert gone["code"] == 200
    assert pbx.registrations("1001") == []
    # The SHA-256 challenge was offered first; pjsua answered one of the offered algorithms.
    assert pbx.stats()["registrar"]["auth_failures"] == 0


def test_two_phones_for_one_agent_and_a_wrong_password(
    pbx: RunningPbx, phones: SoftphonePool
) -> None:
    desk, mobile, intruder = (phones.start(n) for n in ("desk", "mobile", "intruder"))
    for phone in (desk, mobile):
        account = phone.add_account("1002", "pw1002x", domain="hotline.example",
                                    registrar=registrar(pbx), expires=300, register=True)
        assert phone.wait_for("reg_state", account=account, timeout=20)["code"] == 200
    contacts = {b["contact"] for b in pbx.registrations("1002")}
    assert len(contacts) == 2
    bad = intruder.add_account("1003", "wrong-password", domain="hotline.example",
                               registrar=registrar(pbx), expires=300, register=True)
    assert intruder.wait_for("reg_state", account=bad, timeout=20)["code"] == 403
    assert pbx.registrations("1003") == []
