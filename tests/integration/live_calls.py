"""Phones for live call tests against a running PBX: an agent's pjsua2 phone registered with
digest auth, and a caller placing a call from an unregistered account (a call from a trunk
address counts as the carrier's)."""

from __future__ import annotations

from typing import Any

from tests.integration.pbx_harness import REALM, RunningPbx
from tests.support.softphone import Softphone, SoftphonePool


def register_agent(pbx: RunningPbx, phone: Softphone, ext: str, password: str | None = None,
                   **options: Any) -> int:
    """Register `phone` as agent `ext` (password ``pw<ext>x`` unless given); returns the
    account. `options` go to `Softphone.add_account` (auto_answer, auto_answer_delay …)."""
    account = phone.add_account(ext, password or f"pw{ext}x", domain=REALM,
                                registrar=f"127.0.0.1:{pbx.sip_port}", expires=300,
                                register=True, **options)
    assert phone.wait_for("reg_state", account=account, timeout=20)["code"] == 200
    return account


def agent_phone(phones: SoftphonePool, pbx: RunningPbx, ext: str, password: str | None = None,
                *, auto: bool = True, name: str | None = None) -> Softphone:
    """A new phone registered as agent `ext`; with `auto` it answers every call after 0.3 s."""
    phone = phones.start(name or f"agent{ext}")
    options: dict[str, Any] = {"auto_answer": 200, "auto_answer_delay": 0.3} if auto else {}
    register_agent(pbx, phone, ext, password, **options)
    return phone


def carrier_call(phones: SoftphonePool, pbx: RunningPbx, name: str, number: str,
                 did: str) -> tuple[Softphone, int]:
    """A caller `number` dials `did` and is answered by the PBX (media flowing)."""
    phone = phones.start(name)
    account = phone.add_account(number, domain="127.0.0.1")
    call = phone.make_call(account, f"sip:{did}@127.0.0.1:{pbx.sip_port}")
    phone.wait_for("state", call=call, state="CONFIRMED", timeout=20)
    phone.wait_for("media_active", call=call, timeout=10)
    return phone, call
