"""The dial plan: which agent may dial which number, and through which trunk — L2, pure.

Rules are tried in order against the digits as dialled; the first match decides; no match means
refused. Allowed numbers are normalised to E.164 for the carrier (`to_e164`): "00…" becomes
"+…", a national "0…" gets the trunk's country code, "+…" stays.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pbx.config.schema import DialRuleConfig


@dataclass(frozen=True, slots=True)
class DialDecision:
    allowed: bool
    rule: str
    trunk: str | None
    number: str  # E.164 when allowed
    reason: str = ""


def to_e164(dialled: str, country_code: str) -> str:
    digits = "".join(ch for ch in dialled if ch.isdigit() or ch == "+")
    if digits.startswith("+"):
        return digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    if digits.startswith("0"):
        return f"+{country_code}{digits[1:]}"
    return digits  # short codes (110, 112) go out as dialled


class DialPlan:
    def __init__(self, rules: tuple[DialRuleConfig, ...], default_trunk: str | None,
                 country_codes: dict[str, str]) -> None:
        self._rules = [(rule, re.compile(rule.pattern)) for rule in rules]
        self._default_trunk = default_trunk
        self._country_codes = country_codes

    def decide(self, agent: str, role: str, dialled: str) -> DialDecision:
        digits = "".join(ch for ch in dialled if ch.isdigit() or ch in "+*#")
        for rule, pattern in self._rules:
            if not pattern.search(digits):
                continue
            trunk = rule.trunk or self._default_trunk
            if role not in rule.allow and agent not in rule.agents:
                return DialDecision(False, rule.name, trunk, digits,
                                    f"the dial plan's rule '{rule.name}' does not allow {role}s")
            if trunk is None:
                return DialDecision(False, rule.name, None, digits, "no trunk is configured")
            number = to_e164(digits, self._country_codes.get(trunk, "49"))
            return DialDecision(True, rule.name, trunk, number)
        return DialDecision(False, "", None, digits, "no dial plan rule matches this number")
