"""DialPlan: rules in order, the first match decides, allow lists by role and by agent, the
German default rules, and numbers normalised to E.164 for the trunk (`to_e164`).

Out of scope here (another issue): written forms the plan does not yet normalise, like
"+49(0)900…" or "0049137…".
"""

from __future__ import annotations

import pytest

from pbx.config import PbxConfig
from pbx.config.schema import DialRuleConfig
from pbx.trunk.dialplan import DialDecision, DialPlan, to_e164


def default_rules() -> tuple[DialRuleConfig, ...]:
    """The rules a configuration without a `dial_plan` section gets."""
    config = PbxConfig.model_validate({
        "sip": {"domain": "hotline.example"},
        "agents": [{"extension": "1001", "name": "Anna", "password": "secret-1"}],
    })
    return config.dial_plan


@pytest.fixture
def german() -> DialPlan:
    return DialPlan(default_rules(), "carrier", {"carrier": "49"})


# --- to_e164 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dialled", "country_code", "expected"),
    [
        ("+4930123456", "49", "+4930123456"),
        ("+44 20 7946 0000", "49", "+442079460000"),
        ("0044 20 7946 0000", "49", "+442079460000"),
        ("030 123456", "49", "+4930123456"),
        ("01 234567", "43", "+431234567"),
        ("0176-1234567", "49", "+491761234567"),
        ("112", "49", "112"),
        ("*21#", "49", "21"),
    ],
    ids=["e164-stays", "e164-spaces", "00-becomes-plus", "national-49", "national-43",
         "national-dash", "short-code-as-dialled", "star-hash-dropped"],
)
def test_to_e164(dialled: str, country_code: str, expected: str) -> None:
    assert to_e164(dialled, country_code) == expected


# --- the default (German) rules -----------------------------------------------------------------


def test_default_rules_names_in_order() -> None:
    assert [rule.name for rule in default_rules()] == [
        "emergency", "premium", "international", "domestic"]


@pytest.mark.parametrize(
    ("name", "allow"),
    [
        ("emergency", ("agent", "supervisor", "admin")),
        ("premium", ()),
        ("international", ("supervisor", "admin")),
        ("domestic", ("agent", "supervisor", "admin")),
    ],
    ids=["emergency-everyone", "premium-nobody", "international-supervisor-admin",
         "domestic-everyone"],
)
def test_default_rules_allow_lists(name: str, allow: tuple[str, ...]) -> None:
    rule = {rule.name: rule for rule in default_rules()}[name]
    assert rule.allow == allow
    assert rule.agents == ()
    assert rule.trunk is None


@pytest.mark.parametrize(
    ("role", "dialled", "rule", "number"),
    [
        ("agent", "112", "emergency", "112"),
        ("agent", "110", "emergency", "110"),
        ("agent", "030 1234567", "domestic", "+49301234567"),
        ("agent", "0176 12345678", "domestic", "+4917612345678"),
        ("agent", "+49 30 1234567", "domestic", "+49301234567"),
        ("supervisor", "0044 20 7946 0000", "international", "+442079460000"),
        ("admin", "+1 212 555 0100", "international", "+12125550100"),
        ("supervisor", "030 1234567", "domestic", "+49301234567"),
    ],
    ids=["emergency-112", "emergency-110", "domestic-national", "domestic-mobile",
         "domestic-e164", "international-00-supervisor", "international-plus-admin",
         "domestic-supervisor"],
)
def test_default_rules_allowed(german: DialPlan, role: str, dialled: str, rule: str,
                               number: str) -> None:
    decision = german.decide("1001", role, dialled)
    assert decision.allowed is True
    assert decision.rule == rule
    assert decision.trunk == "carrier"
    assert decision.number == number
    assert decision.reason == ""


@pytest.mark.parametrize(
    ("role", "dialled", "rule", "digits"),
    [
        ("agent", "0900 123456", "premium", "0900123456"),
        ("admin", "0900 123456", "premium", "0900123456"),
        ("supervisor", "0137 123456", "premium", "0137123456"),
        ("agent", "0138-123456", "premium", "0138123456"),
        ("agent", "0180 5 123456", "premium", "01805123456"),
        ("admin", "+49 900 123456", "premium", "+49900123456"),
        ("agent", "0044 20 7946 0000", "international", "00442079460000"),
        ("agent", "+1 212 555 0100", "international", "+12125550100"),
    ],
    ids=["premium-0900-agent", "premium-0900-admin", "premium-0137-supervisor",
         "premium-0138", "premium-0180", "premium-e164-admin", "international-00-agent",
         "international-plus-agent"],
)
def test_default_rules_refused_by_role(german: DialPlan, role: str, dialled: str, rule: str,
                                       digits: str) -> None:
    decision = german.decide("1001", role, dialled)
    assert decision.allowed is False
    assert decision.rule == rule
    assert decision.trunk == "carrier"
    assert decision.number == digits  # the digits as dialled, not E.164
    assert decision.reason == f"the dial plan's rule '{rule}' does not allow {role}s"


@pytest.mark.parametrize(
    "dialled",
    ["1002", "0", "0301", "11", "113", "112 0", "*21#"],
    ids=["extension", "lone-zero", "too-short-domestic", "short-11", "not-emergency-113",
         "emergency-with-suffix", "star-code"],
)
def test_default_rules_no_match_is_refused(german: DialPlan, dialled: str) -> None:
    decision = german.decide("1001", "admin", dialled)
    assert decision.allowed is False
    assert decision.rule == ""
    assert decision.trunk is None
    assert decision.number == "".join(ch for ch in dialled if ch != " ")
    assert decision.reason == "no dial plan rule matches this number"


# --- configured rules ---------------------------------------------------------------------------


def rule(name: str, pattern: str, **fields: object) -> DialRuleConfig:
    return DialRuleConfig.model_validate({"name": name, "pattern": pattern, **fields})


def test_first_match_decides_even_when_a_later_rule_would_allow() -> None:
    plan = DialPlan(
        (rule("blocked", r"^0301", allow=[]), rule("domestic", r"^0[1-9]")),
        "carrier", {"carrier": "49"},
    )
    refused = plan.decide("1001", "agent", "0301234567")
    assert refused.allowed is False
    assert refused.rule == "blocked"
    allowed = plan.decide("1001", "agent", "0401234567")
    assert allowed.allowed is True
    assert allowed.rule == "domestic"


def test_first_match_decides_even_when_a_later_rule_would_refuse() -> None:
    plan = DialPlan(
        (rule("domestic", r"^0[1-9]"), rule("blocked", r"^0301", allow=[])),
        "carrier", {"carrier": "49"},
    )
    decision = plan.decide("1001", "agent", "0301234567")
    assert decision.allowed is True
    assert decision.rule == "domestic"


def test_pattern_is_searched_not_anchored() -> None:
    plan = DialPlan((rule("has-999", r"999"),), "carrier", {"carrier": "49"})
    decision = plan.decide("1001", "agent", "0309991234")
    assert decision.allowed is True
    assert decision.rule == "has-999"


@pytest.mark.parametrize(
    ("agent", "role", "allowed"),
    [
        ("1001", "agent", True),
        ("1002", "agent", False),
        ("1002", "supervisor", True),
        ("1001", "admin", True),
    ],
    ids=["listed-agent", "other-agent", "allowed-role", "listed-and-other-role"],
)
def test_rule_agents_allowed_regardless_of_role(agent: str, role: str, allowed: bool) -> None:
    plan = DialPlan(
        (rule("international", r"^(00|\+)", allow=["supervisor"], agents=["1001"]),),
        "carrier", {"carrier": "49"},
    )
    decision = plan.decide(agent, role, "0044207946")
    assert decision.allowed is allowed
    assert decision.rule == "international"


@pytest.mark.parametrize(
    ("rule_trunk", "dialled", "trunk", "number"),
    [
        (None, "030 1234567", "carrier", "+49301234567"),
        ("vienna", "01 234567", "vienna", "+431234567"),
        ("unknown", "030 1234567", "unknown", "+49301234567"),
    ],
    ids=["default-trunk", "rule-trunk-country-code", "unknown-trunk-country-49"],
)
def test_trunk_and_its_country_code(rule_trunk: str | None, dialled: str, trunk: str,
                                    number: str) -> None:
    fields = {} if rule_trunk is None else {"trunk": rule_trunk}
    plan = DialPlan((rule("national", r"^0[1-9]", **fields),), "carrier",
                    {"carrier": "49", "vienna": "43"})
    decision = plan.decide("1001", "agent", dialled)
    assert decision.allowed is True
    assert decision.trunk == trunk
    assert decision.number == number


def test_no_trunk_configured_is_refused() -> None:
    plan = DialPlan(default_rules(), None, {})
    assert plan.decide("1001", "agent", "030 1234567") == DialDecision(
        False, "domestic", None, "0301234567", "no trunk is configured")


def test_role_is_checked_before_the_trunk() -> None:
    plan = DialPlan(default_rules(), None, {})
    decision = plan.decide("1001", "agent", "0900 123456")
    assert decision.allowed is False
    assert decision.reason == "the dial plan's rule 'premium' does not allow agents"


def test_star_and_hash_are_kept_for_matching() -> None:
    plan = DialPlan((rule("feature", r"^\*21#$"),), "carrier", {"carrier": "49"})
    decision = plan.decide("1001", "agent", "*21#")
    assert decision.allowed is True
    assert decision.rule == "feature"
    assert decision.number == "21"  # to_e164 keeps digits and + only


def test_empty_plan_refuses_everything() -> None:
    plan = DialPlan((), "carrier", {"carrier": "49"})
    assert plan.decide("1009", "admin", "112") == DialDecision(
        False, "", None, "112", "no dial plan rule matches this number")
