"""The dial plan: which agent may dial which number, and through which trunk — L2, pure.

Theory of operation: every number an agent dials (phone, click-to-dial, blind and attended
transfer, the IVR's transfer node) comes here as written, and is first normalised to E.164 by
the home country's rules (`normalise_dialled`, the country code of the default trunk):

- percent escapes of the SIP URI are decoded; spaces, dashes, dots and slashes are dropped;
- leading feature codes such as CLIR `*31#` / `#31#` are removed (kept on the decision);
- `(0)` right after a country code is dropped (`+49(0)30…` → `+4930…`), other parentheses too;
- `00…` → `+…`; a national `0…` → `+<cc>…`; `+…` stays;
- a short number without prefix (`110`, `112`, `115`, `116117`, `11833`) stays as dialled;
- anything else — letters, a stray `*`/`#`, nothing left, more than 15 digits, an unprefixed
  long number — is not a plausible number and is refused.

The rules (`{name, pattern, allow}`) are then searched in order on that normalised number,
which is also exactly the number sent to the carrier: what is checked is what is dialled. The
first match decides; no match means refused. A refusal's `reason` is neutral (it is shown to
the caller); the rule that refused is in `rule` and in the log.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from urllib.parse import unquote

from pbx.config.schema import DialRuleConfig

log = logging.getLogger(__name__)

MAX_E164_DIGITS = 15  # ITU-T E.164 §6.1: country code + national number
MIN_E164_DIGITS = 7  # the shortest real international numbers (e.g. +290 xxxx, +683 xxxx)
MAX_SHORT_DIGITS = 6  # 110, 112, 115, 116xxx, 118xx: short codes go out as dialled
DEFAULT_COUNTRY_CODE = "49"

REFUSED = "number not allowed"  # neutral: the same for "a rule refused" and "no rule matched"
INVALID = "invalid number"
NO_TRUNK = "no trunk is configured"

_SEPARATORS = re.compile(r"[\s\-./]+")
_FEATURE_CODE = re.compile(r"^[*#][0-9]{1,3}#")  # *31#, #31#: CLIR and other per-call codes
WITHHOLD_CALLER_ID = "*31#"  # CLIR for one call (Germany): From anonymous, Privacy: id
_TRUNK_ZERO = re.compile(r"^(\+|00)([1-9][0-9]{0,2})\(0\)")  # +49(0)30 → +4930
_PLAUSIBLE = re.compile(r"^\+?[0-9]+$")


class InvalidNumber(ValueError):
    """The dialled string is not a plausible telephone number."""


@dataclass(frozen=True, slots=True)
class DialledNumber:
    number: str  # E.164 ("+4930…"), or a short code as dialled ("112")
    features: tuple[str, ...] = ()  # removed leading feature codes ("*31#")


def normalise_dialled(dialled: str, country_code: str) -> DialledNumber:
    """The number `dialled` means in the country `country_code`; raises `InvalidNumber`."""
    text = _SEPARATORS.sub("", unquote(dialled))
    features: list[str] = []
    while match := _FEATURE_CODE.match(text):
        features.append(match.group())
        text = text[match.end():]
    text = _TRUNK_ZERO.sub(r"\1\2", text).replace("(", "").replace(")", "")
    if not _PLAUSIBLE.match(text):
        raise InvalidNumber(f"not a telephone number: {dialled!r}")
    if text.startswith("00"):
        text = "+" + text[2:]
    elif text.startswith("0"):
        text = f"+{country_code}{text[1:]}"
    elif not text.startswith("+"):
        if len(text) > MAX_SHORT_DIGITS:
            # A local number without its area code: we cannot tell it from a mistyped
            # extension, so it is refused rather than sent out somewhere.
            raise InvalidNumber(f"no national or international prefix: {dialled!r}")
        return DialledNumber(text, tuple(features))
    digits = text[1:]
    if digits.startswith("0") or not MIN_E164_DIGITS <= len(digits) <= MAX_E164_DIGITS:
        raise InvalidNumber(f"not an E.164 number: {dialled!r}")
    return DialledNumber(text, tuple(features))


@dataclass(frozen=True, slots=True)
class DialDecision:
    allowed: bool
    rule: str  # the rule that decided ("" when none matched): for the log, not the caller
    trunk: str | None
    number: str  # the normalised number (E.164 or short code); the string as dialled if invalid
    reason: str = ""  # neutral, safe to show the caller
    features: tuple[str, ...] = ()  # feature codes removed before matching ("*31#")


class DialPlan:
    """Decides outside numbers for `ConfigRouter.route_internal`: `decide(agent, role, dialled)`
    returns a `DialDecision`; it raises nothing. Numbers are normalised with the country code of
    `default_trunk` (the PBX's home country), whichever trunk a rule then sends them through."""

    def __init__(self, rules: tuple[DialRuleConfig, ...], default_trunk: str | None,
                 country_codes: dict[str, str]) -> None:
        self._rules = [(rule, re.compile(rule.pattern)) for rule in rules]
        self._default_trunk = default_trunk
        self.country_code = country_codes.get(default_trunk or "", DEFAULT_COUNTRY_CODE)

    def normalise(self, dialled: str) -> DialledNumber:
        return normalise_dialled(dialled, self.country_code)

    def decide(self, agent: str, role: str, dialled: str) -> DialDecision:
        try:
            parsed = self.normalise(dialled)
        except InvalidNumber as exc:
            log.warning("dial plan: %s refused for agent %s: %s", dialled, agent, exc)
            return DialDecision(False, "", None, dialled, INVALID)
        if parsed.features:
            log.warning("dial plan: feature codes %s removed from %r (agent %s)",
                        "".join(parsed.features), dialled, agent)
        decision = self._match(agent, role, parsed)
        if not decision.allowed:
            log.warning("dial plan: %s (dialled %r) refused for %s %s by rule %r: %s",
                        parsed.number, dialled, role, agent, decision.rule or "(none matched)",
                        decision.reason)
        return decision

    def _match(self, agent: str, role: str, parsed: DialledNumber) -> DialDecision:
        number, features = parsed.number, parsed.features
        for rule, pattern in self._rules:
            if not pattern.search(number):
                continue
            trunk = rule.trunk or self._default_trunk
            if role not in rule.allow and agent not in rule.agents:
                return DialDecision(False, rule.name, trunk, number, REFUSED, features)
            if trunk is None:
                return DialDecision(False, rule.name, None, number, NO_TRUNK, features)
            return DialDecision(True, rule.name, trunk, number, "", features)
        return DialDecision(False, "", None, number, REFUSED, features)
