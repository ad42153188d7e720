"""Call routing policy from the configuration — L2, pure.

Which trunk a source address belongs to, where a dialled number (DID) goes, what an agent's
dialled digits mean, and which agents serve a queue. The switchboard asks; nothing here does
I/O. DIDs and extensions are compared after `normalise_number`; outside numbers are decided
by the dial plan on their E.164 form (pbx.trunk.dialplan), which is what the trunk then dials.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import unquote

from pbx.config.schema import PbxConfig
from pbx.trunk.dialplan import WITHHOLD_CALLER_ID as WITHHOLD
from pbx.trunk.dialplan import DialPlan, InvalidNumber


@dataclass(frozen=True, slots=True)
class RouteTarget:
    """Where a dialled number goes: `kind` is "agent", "flow", "queue", "trunk" (`name` is the
    trunk, `number` the E.164 number to dial) or "refused" (`name` is a neutral reason that may
    be shown to the caller; `rule` the dial plan rule that refused, for the log only)."""

    kind: str
    name: str
    language: str = ""
    number: str = ""
    rule: str = ""
    withhold_caller_id: bool = False  # dialled with *31# (CLIR for this call)


def normalise_number(number: str) -> str:
    """Strip visual separators from a dialled or calling number; a leading 00 becomes +. For
    matching DIDs and extensions only: the dial plan normalises outside numbers itself."""
    cleaned = "".join(ch for ch in unquote(number) if ch.isdigit() or ch in "+*#")
    if cleaned.startswith("00"):
        cleaned = "+" + cleaned[2:]
    return cleaned


class ConfigRouter:
    """`CallRouter` over a `PbxConfig`."""

    def __init__(self, config: PbxConfig) -> None:
        self._trunks = [
            (trunk.name, [ipaddress.ip_network(a, strict=False) for a in trunk.inbound_addresses])
            for trunk in config.trunks
        ]
        self._dids: dict[str, RouteTarget] = {}
        for did in config.dids:
            if did.flow:
                target = RouteTarget("flow", did.flow, did.language or "")
            elif did.queue:
                target = RouteTarget("queue", did.queue, did.language or "")
            else:
                target = RouteTarget("agent", did.agent or "", did.language or "")
            self._dids[normalise_number(did.number)] = target
        self._agents = {a.extension: a for a in config.agents if a.enabled}
        self.trunks = {t.name: t for t in config.trunks}
        self.dial_plan = DialPlan(
            config.dial_plan,
            config.trunks[0].name if config.trunks else None,
            {t.name: t.country_code for t in config.trunks},
        )
        codes = config.feature_codes
        self.pause_code = config.cti.pause_codes[0].code  # the pause a phone's code asks for
        self._features = {code: name for name, code in (
            ("login", codes.login), ("logout", codes.logout), ("pause", codes.pause),
            ("ready", codes.ready)) if code is not None}
        self._groups: dict[str, list[str]] = {}
        for agent in config.agents:
            if agent.enabled:
                for group in agent.groups:
                    self._groups.setdefault(group, []).append(agent.extension)

    def trunk_for(self, host: str) -> str | None:
        try:
            address = ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            return None
        for name, networks in self._trunks:
            if any(address in network for network in networks):
                return name
        return None

    def route_did(self, did: str) -> RouteTarget | None:
        did = normalise_number(did)
        target = self._dids.get(did)
        if target is None and did.startswith("+"):
            target = self._dids.get(did[1:])
        elif target is None:
            target = self._dids.get("+" + did)
        return target

    def route_internal(self, agent: str, dialled: str) -> RouteTarget | None:
        """An agent dialled `dialled` (as written: the phone's URI user part, a desk's number,
        a transfer target): a colleague, one of our own DIDs, or — if the dial plan allows
        this agent — an outside number through a trunk, as E.164."""
        extension = normalise_number(dialled)
        if extension in self._agents and extension != agent:
            return RouteTarget("agent", extension)
        own = self.route_did(extension) or self._own_did(dialled)
        if own is not None:
            return own
        caller = self._agents.get(agent)
        decision = self.dial_plan.decide(agent, caller.role if caller else "agent", dialled)
        if not decision.allowed or decision.trunk is None:
            return RouteTarget("refused", decision.reason, rule=decision.rule)
        return RouteTarget("trunk", decision.trunk, number=decision.number,
                           withhold_caller_id=WITHHOLD in decision.features)

    def feature_code(self, dialled: str) -> str | None:
        """What an agent's phone asks by dialling `dialled` (``feature_codes``): "login",
        "logout", "pause" or "ready"; None for anything else."""
        return self._features.get(dialled.strip())

    def route_campaign(self, campaign: str, number: str) -> RouteTarget:
        """A campaign dials a customer's number: through the dial plan like a supervisor's
        call (campaigns are a supervisor's to start), so premium and special ranges are never
        dialled whatever the customer list says; an allowed number goes out as E.164."""
        decision = self.dial_plan.decide(f"campaign:{campaign}", "supervisor", number)
        if not decision.allowed or decision.trunk is None:
            return RouteTarget("refused", decision.reason, rule=decision.rule)
        return RouteTarget("trunk", decision.trunk, number=decision.number)

    def _own_did(self, dialled: str) -> RouteTarget | None:
        # Our own number written nationally ("030 123456") or as "+49 (0) 30 …" stays inside.
        try:
            number = self.dial_plan.normalise(dialled).number
        except InvalidNumber:
            return None
        return self.route_did(number) if number.startswith("+") else None

    def queue_members(self, queue: str) -> list[str]:
        return sorted(self._groups.get(queue, []))
