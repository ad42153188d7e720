"""Test doubles and a configuration for the CTI tests.

`FakeCallControl` / `FakeAgentControl` stand in for what the composition root implements over
the switchboard and the ACD: they record every request and can be told to refuse or fail.
Everything else in the CTI tests is real (desk, auth, forms, storage on a SQLite file).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pbx.config import PbxConfig, parse_config
from pbx.cti.control import ControlRefused
from pbx.repositories import Customer

CONFIG = """\
sip: {domain: hotline.example}
agents:
  - {extension: "1001", name: Anna, password: pw-anna-1001, groups: [billing]}
  - {extension: "1002", name: Ben, password: pw-ben-1002, groups: [matrix]}
  - {extension: "1003", name: Clara, password: pw-clara-1003, role: supervisor}
  - {extension: "1004", name: Dora, password: pw-dora-1004, role: admin}
  - {extension: "1009", name: Gone, password: pw-gone-1009, enabled: false}
cti:
  password_cost: 10
  session_lifetime_s: 3600
  max_login_failures: 3
  max_account_failures: 4
forms:
  default:
    title: Caller
    fields:
      - {name: customer_no, label: Customer no., source: customer.customer_no}
      - name: name
        source: customer.name
        permissions: {default: read_only, roles: {supervisor: read_write, admin: read_write}}
      - name: contract
        source: customer.fields.contract
        validation: {required: true, pattern: "[A-Z]{2}[0-9]{4}"}
        permissions: {default: read_write}
      - name: notes
        type: textarea
        source: customer.fields.notes
        validation: {max_length: 200}
        permissions: {default: read_write}
      - name: secret
        source: customer.fields.secret
        permissions: {default: hidden, roles: {supervisor: read_only, admin: read_write}}
      - name: concern
        source: concern
        permissions: {default: read_only, groups: {billing: read_write}}
      - {name: waited, source: call.waited_s}
      - name: tier
        type: select
        options: [bronze, silver, gold]
        source: customer.fields.tier
        permissions: {default: read_write, agents: {"1002": read_only}}
      - name: callback
        type: checkbox
        permissions: {default: read_write}
  matrix:
    fields:
      - name: open
        source: customer.fields.open
        permissions: {roles: {agent: read_write, supervisor: read_write, admin: read_write}}
      - name: locked
        source: customer.fields.locked
        permissions: {roles: {agent: read_only, supervisor: read_only, admin: read_only}}
      - name: hidden
        source: customer.fields.hidden
        permissions: {roles: {agent: hidden, supervisor: hidden, admin: hidden}}
"""

PASSWORDS = {
    "1001": "pw-anna-1001",
    "1002": "pw-ben-1002",
    "1003": "pw-clara-1003",
    "1004": "pw-dora-1004",
    "1009": "pw-gone-1009",
}
ROLE_AGENT = {"agent": "1002", "supervisor": "1003", "admin": "1004"}


def config() -> PbxConfig:
    return parse_config(CONFIG, "cti.yaml")


def customer(customer_no: str = "100001", **fields: Any) -> Customer:
    values: dict[str, Any] = {
        "customer_no": customer_no,
        "name": "Erika Muster",
        "phone_numbers": ("+4930111222",),
        "status": "gold",
        "fields": {
            "contract": "DE1234",
            "notes": "",
            "secret": "s3cret",
            "tier": "silver",
            "open": "o1",
            "locked": "l1",
            "hidden": "h1",
        },
    }
    values.update(fields)
    return Customer(**values)


class FakeClock:
    """Wall-clock time the test moves by hand."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeCallControl:
    requests: list[tuple[Any, ...]] = field(default_factory=list)
    refuse: ControlRefused | None = None
    fail: Exception | None = None
    next_call: int = 0

    def _record(self, *request: Any) -> None:
        if self.fail is not None:
            raise self.fail
        if self.refuse is not None:
            raise self.refuse
        self.requests.append(request)

    async def make_call(self, agent: str, number: str) -> str:
        self._record("make_call", agent, number)
        self.next_call += 1
        return f"out-{self.next_call}"

    async def hang_up(self, agent: str, call_id: str) -> None:
        self._record("hang_up", agent, call_id)

    async def hold(self, agent: str, call_id: str) -> None:
        self._record("hold", agent, call_id)

    async def resume(self, agent: str, call_id: str) -> None:
        self._record("resume", agent, call_id)

    async def transfer(self, agent: str, call_id: str, target: str, attended: bool) -> None:
        self._record("transfer", agent, call_id, target, attended)

    async def complete_transfer(self, agent: str, call_id: str) -> None:
        self._record("complete_transfer", agent, call_id)

    async def cancel_transfer(self, agent: str, call_id: str) -> None:
        self._record("cancel_transfer", agent, call_id)

    async def set_disposition(self, agent: str, call_id: str, disposition: str, note: str) -> None:
        self._record("set_disposition", agent, call_id, disposition, note)

    async def move(self, supervisor: str, call_id: str, target: str) -> None:
        self._record("move", supervisor, call_id, target)


@dataclass
class FakeAgentControl:
    requests: list[tuple[Any, ...]] = field(default_factory=list)

    async def login(self, agent: str, paused: bool, reason: str) -> None:
        self.requests.append(("login", agent, paused, reason))

    async def logout(self, agent: str) -> None:
        self.requests.append(("logout", agent))

    async def pause(self, agent: str, reason: str) -> None:
        self.requests.append(("pause", agent, reason))

    async def ready(self, agent: str) -> None:
        self.requests.append(("ready", agent))
