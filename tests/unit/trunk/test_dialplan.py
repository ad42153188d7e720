"""DialPlan: numbers normalised to E.164 before any rule sees them (`normalise_dialled`), rules
in order on that number, the first match decides, allow lists by role and by agent, neutral
refusal reasons, and the German default rules: every premium/special range refused in every
written form, for every role."""

from __future__ import annotations

import pytest

from pbx.config import PbxConfig
from pbx.config.schema import DialRuleConfig
from pbx.trunk.dialplan import (
    DialDecision,
    DialledNumber,
    DialPlan,
    InvalidNumber,
    normalise_dialled,
)

ROLES = ("agent", "supervisor", "admin")


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


# --- normalise_dialled --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dialled", "country_code", "expected"),
    [
        ("+4930123456", "49", "+4930123456"),
        ("+44 20 7946 0000", "49", "+442079460000"),
        ("0044 20 7946 0000", "49", "+442079460000"),
        ("030 123456", "49", "+4930123456"),
        ("01 234567", "43", "+431234567"),
        ("0176-1234567", "49", "+491761234567"),
        ("030/123.456", "49", "+4930123456"),
        ("(030) 123456", "49", "+4930123456"),
        ("+49 (0) 30 123456", "49", "+4930123456"),
        ("+49(0)30123456", "49", "+4930123456"),
        ("0049 (0) 30 123456", "49", "+4930123456"),
        ("+44 (0)20 7946 0000", "49", "+442079460000"),
        ("+1 (212) 555-0100", "49", "+12125550100"),
        ("%2B49%2030%20123456", "49", "+4930123456"),
        ("112", "49", "112"),
        ("110", "49", "110"),
        ("116117", "49", "116117"),
        ("11880", "49", "11880"),
        ("+49 1234567890123", "49", "+491234567890123"),
    ],
    ids=["e164-stays", "e164-spaces", "00-becomes-plus", "national-49", "national-43",
         "national-dash", "slash-and-dot", "brackets", "trunk-zero-spaced", "trunk-zero",
         "00-trunk-zero", "trunk-zero-other-country", "brackets-in-e164", "uri-escaped",
         "emergency-112", "emergency-110", "116-as-dialled", "118-as-dialled",
         "fifteen-digits"],
)
def test_normalise_dialled(dialled: str, country_code: str, expected: str) -> None:
    assert normalise_dialled(dialled, country_code) == DialledNumber(expected)


@pytest.mark.parametrize(
    ("dialled", "expected"),
    [
        ("*31#030123456", DialledNumber("+4930123456", ("*31#",))),
        ("#31# 0900 123456", DialledNumber("+49900123456", ("#31#",))),
        ("*31%230900123456", DialledNumber("+49900123456", ("*31#",))),
        ("*31##31#+49 (0) 900 123456", DialledNumber("+49900123456", ("*31#", "#31#"))),
        ("*31#112", DialledNumber("112", ("*31#",))),
    ],
    ids=["star-31", "hash-31", "uri-escaped-hash", "two-codes", "before-emergency"],
)
def test_normalise_dialled_removes_leading_feature_codes(dialled: str,
                                                         expected: DialledNumber) -> None:
    assert normalise_dialled(dialled, "49") == expected


@pytest.mark.parametrize(
    "dialled",
    ["", " ", "abc", "0900abc", "sip:0900123456", "*21#", "0", "00", "+", "+49", "+49 30",
     "030 12*34", "030#1234", "0049+30123456", "+0049301234567", "000049301234567",
     "+49 30 1234567890123", "0 30 1234567890123", "1234567", "030 (x) 1234"],
    ids=["empty", "blank", "letters", "digits-and-letters", "uri-scheme", "feature-code-only",
         "lone-zero", "lone-00", "lone-plus", "country-code-only", "too-short-e164",
         "star-inside", "hash-inside", "plus-inside", "plus-then-00", "triple-zero",
         "sixteen-digits", "sixteen-digits-national", "local-without-area-code",
         "letters-in-brackets"],
)
def test_normalise_dialled_refuses_what_is_not_a_number(dialled: str) -> None:
    with pytest.raises(InvalidNumber):
        normalise_dialled(dialled, "49")


# --- the default (German) rules -----------------------------------------------------------------


def test_default_rules_names_in_order() -> None:
    assert [rule.name for rule in default_rules()] == [
        "emergency", "public-service", "premium-rate", "mass-calling", "service-number",
        "directory-enquiries", "personal-number", "innovative-services", "international",
        "domestic"]


def test_default_rules_are_the_shipped_config() -> None:
    from pathlib import Path

    import yaml

    shipped = yaml.safe_load(
        (Path(__file__).parents[3] / "config" / "pbx.yaml").read_text())["dial_plan"]
    assert tuple(DialRuleConfig.model_validate(rule) for rule in shipped) == default_rules()


# Each blocked range as its national significant number (after the 0), with its rule.
BLOCKED = [
    ("900 1234567", "premium-rate"),
    ("9001 234567", "premium-rate"),
    ("190 123456", "premium-rate"),
    ("137 1234567", "mass-calling"),
    ("138 1234567", "mass-calling"),
    ("180 5 123456", "service-number"),
    ("180 2 123456", "service-number"),
    ("118 80", "directory-enquiries"),
    ("700 12345678", "personal-number"),
    ("12 3456789", "innovative-services"),
]

# Every written form of a German number, from its national significant number.
FORMS = {
    "national": lambda n: f"0{n}",
    "e164": lambda n: f"+49{n}",
    "00": lambda n: f"0049{n}",
    "trunk-zero-spaced": lambda n: f"+49 (0) {n}",
    "00-dashes": lambda n: "0049-" + n.replace(" ", "-"),
    "trunk-zero": lambda n: "+49(0)" + n.replace(" ", ""),
    "00-trunk-zero": lambda n: "0049(0)" + n.replace(" ", ""),
    "slashes-dots": lambda n: "0" + n.replace(" ", "/", 1).replace(" ", "."),
    "clir-national": lambda n: f"*31#0{n}",
    "clir-e164": lambda n: f"#31#+49{n}",
    "clir-trunk-zero": lambda n: "*31#+49(0)" + n.replace(" ", ""),
    "uri-escaped": lambda n: "*31%23%2B49%20%280%29%20" + n.replace(" ", "%20"),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize(("national", "rule"), BLOCKED, ids=[n for n, _ in BLOCKED])
def test_default_rules_refuse_every_blocked_range_in_every_form_for_every_role(
    german: DialPlan, national: str, rule: str, form: str, role: str
) -> None:
    decision = german.decide("1001", role, FORMS[form](national))
    assert decision.allowed is False
    assert decision.rule == rule
    assert decision.number == "+49" + national.replace(" ", "")
    assert decision.reason == "number not allowed"
    assert rule not in decision.reason


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("dialled", ["11880", "11833", "*31#11880", "118 33"])
def test_default_rules_refuse_directory_enquiries_as_dialled(german: DialPlan, role: str,
                                                            dialled: str) -> None:
    decision = german.decide("1001", role, dialled)
    assert decision.allowed is False
    assert decision.rule == "directory-enquiries"
    assert decision.number == dialled.removeprefix("*31#").replace(" ", "")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("dialled", "rule", "number"),
    [
        ("112", "emergency", "112"),
        ("110", "emergency", "110"),
        ("*31#112", "emergency", "112"),
        ("116117", "public-service", "116117"),
        ("115", "public-service", "115"),
        ("030 1234567", "domestic", "+49301234567"),
        ("030/123 45-67", "domestic", "+49301234567"),
        ("+49 (0) 30 1234567", "domestic", "+49301234567"),
        ("+49(0)89 123456", "domestic", "+4989123456"),
        ("0049 221 123456", "domestic", "+49221123456"),
        ("0711.123456", "domestic", "+49711123456"),
        ("*31#030 1234567", "domestic", "+49301234567"),
        ("0176 12345678", "domestic", "+4917612345678"),
        ("+49 151 23456789", "domestic", "+4915123456789"),
        ("0160 1234567", "domestic", "+491601234567"),
    ],
    ids=["emergency-112", "emergency-110", "emergency-after-clir", "116117", "115",
         "geographic-national", "geographic-separators", "geographic-trunk-zero",
         "geographic-trunk-zero-munich", "geographic-00", "geographic-dots",
         "geographic-after-clir", "mobile-0176", "mobile-e164", "mobile-0160"],
)
def test_default_rules_allow_everyone(german: DialPlan, role: str, dialled: str, rule: str,
                                      number: str) -> None:
    decision = german.decide("1001", role, dialled)
    assert decision == DialDecision(True, rule, "carrier", number, "",
                                    ("*31#",) if dialled.startswith("*31#") else ())


INTERNATIONAL = [
    ("0044 20 7946 0000", "+442079460000"),
    ("+44 (0) 20 7946 0000", "+442079460000"),
    ("+1 (212) 555-0100", "+12125550100"),
    ("001 212 555 0100", "+12125550100"),
    ("#31#0043 1 234567", "+431234567"),
]


@pytest.mark.parametrize("role", ["supervisor", "admin"])
@pytest.mark.parametrize(("dialled", "number"), INTERNATIONAL,
                         ids=[d for d, _ in INTERNATIONAL])
def test_default_rules_allow_international_for_supervisors_and_admins(
    german: DialPlan, role: str, dialled: str, number: str
) -> None:
    decision = german.decide("1009", role, dialled)
    assert decision.allowed is True
    assert decision.rule == "international"
    assert decision.trunk == "carrier"
    assert decision.number == number


@pytest.mark.parametrize(("dialled", "number"), INTERNATIONAL,
                         ids=[d for d, _ in INTERNATIONAL])
def test_default_rules_refuse_international_for_agents(german: DialPlan, dialled: str,
                                                       number: str) -> None:
    decision = german.decide("1001", "agent", dialled)
    assert decision == DialDecision(False, "international", "carrier", number,
                                    "number not allowed", decision.features)


@pytest.mark.parametrize(
    "dialled",
    ["1002", "11", "113", "19222", "0800 1234567", "+49 800 1234567", "010 12 030123456",
     "+49 110", "+49 30 12", "0301"],
    ids=["extension", "short-11", "not-emergency-113", "unknown-short-code", "freephone",
         "freephone-e164", "call-by-call-prefix", "emergency-in-e164", "too-short-domestic",
         "too-short-e164"],
)
def test_default_rules_refuse_what_no_rule_allows(german: DialPlan, dialled: str) -> None:
    decision = german.decide("1001", "admin", dialled)
    assert decision.allowed is False
    assert decision.rule == ""
    assert decision.trunk is None
    assert decision.reason in ("number not allowed", "invalid number")


@pytest.mark.parametrize(
    "dialled", ["", "abc", "*21#", "112 0x", "0900-PREMIUM", "+49 30 1234567890123", "1234567"],
    ids=["empty", "letters", "feature-code-only", "emergency-with-letters", "vanity",
         "sixteen-digits", "local-without-area-code"],
)
def test_implausible_numbers_are_refused_as_dialled(german: DialPlan, dialled: str) -> None:
    assert german.decide("1009", "admin", dialled) == DialDecision(
        False, "", None, dialled, "invalid number")


# --- configured rules ---------------------------------------------------------------------------


def rule(name: str, pattern: str, **fields: object) -> DialRuleConfig:
    return DialRuleConfig.model_validate({"name": name, "pattern": pattern, **fields})


def test_first_match_decides_even_when_a_later_rule_would_allow() -> None:
    plan = DialPlan(
        (rule("blocked", r"^\+49301", allow=[]), rule("domestic", r"^\+49[1-9]")),
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
        (rule("domestic", r"^\+49[1-9]"), rule("blocked", r"^\+49301", allow=[])),
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


def test_rules_written_for_national_digits_no_longer_match() -> None:
    # Rules see E.164 only: an old-style "^0900" rule matches none of the forms of 0900.
    plan = DialPlan((rule("old-premium", r"^0900", allow=[]), rule("any", r".")),
                    "carrier", {"carrier": "49"})
    decision = plan.decide("1001", "agent", "0900 123456")
    assert decision.rule == "any"
    assert decision.number == "+49900123456"


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
        (rule("international", r"^\+(?!49)", allow=["supervisor"], agents=["1001"]),),
        "carrier", {"carrier": "49"},
    )
    decision = plan.decide(agent, role, "0044207946")
    assert decision.allowed is allowed
    assert decision.rule == "international"
    assert decision.number == "+44207946"


@pytest.mark.parametrize(
    ("rule_trunk", "dialled", "trunk", "number"),
    [
        (None, "030 1234567", "carrier", "+49301234567"),
        ("vienna", "030 1234567", "vienna", "+49301234567"),
        ("vienna", "0043 1 234567", "vienna", "+431234567"),
        ("unknown", "030 1234567", "unknown", "+49301234567"),
    ],
    ids=["default-trunk", "rule-trunk-same-e164", "rule-trunk-foreign-number",
         "unknown-trunk"],
)
def test_rule_trunk_carries_the_number_normalised_in_the_home_country(
    rule_trunk: str | None, dialled: str, trunk: str, number: str
) -> None:
    fields = {} if rule_trunk is None else {"trunk": rule_trunk}
    plan = DialPlan((rule("any", r"^\+", **fields),), "carrier",
                    {"carrier": "49", "vienna": "43"})
    decision = plan.decide("1001", "agent", dialled)
    assert decision.allowed is True
    assert decision.trunk == trunk
    assert decision.number == number


@pytest.mark.parametrize(
    ("default_trunk", "country_codes", "number"),
    [
        ("vienna", {"carrier": "49", "vienna": "43"}, "+431234567"),
        ("carrier", {"carrier": "49", "vienna": "43"}, "+491234567"),
        (None, {}, "+491234567"),
    ],
    ids=["default-trunk-austrian", "default-trunk-german", "no-trunk-german-fallback"],
)
def test_national_numbers_take_the_default_trunks_country_code(
    default_trunk: str | None, country_codes: dict[str, str], number: str
) -> None:
    plan = DialPlan((rule("any", r"^\+"),), default_trunk, country_codes)
    assert plan.normalise("01 234567").number == number


def test_no_trunk_configured_is_refused() -> None:
    plan = DialPlan(default_rules(), None, {})
    assert plan.decide("1001", "agent", "030 1234567") == DialDecision(
        False, "domestic", None, "+49301234567", "no trunk is configured")


def test_role_is_checked_before_the_trunk() -> None:
    plan = DialPlan(default_rules(), None, {})
    decision = plan.decide("1001", "agent", "0900 123456")
    assert decision == DialDecision(False, "premium-rate", None, "+49900123456",
                                    "number not allowed")


def test_feature_codes_are_removed_before_matching() -> None:
    plan = DialPlan((rule("feature", r"\*|#"), rule("any", r".")), "carrier",
                    {"carrier": "49"})
    decision = plan.decide("1001", "agent", "*31#030 1234567")
    assert decision == DialDecision(True, "any", "carrier", "+49301234567", "", ("*31#",))


def test_empty_plan_refuses_everything() -> None:
    plan = DialPlan((), "carrier", {"carrier": "49"})
    assert plan.decide("1009", "admin", "112") == DialDecision(
        False, "", None, "112", "number not allowed")


def test_refusals_are_logged_with_the_rule(german: DialPlan,
                                           caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="pbx.trunk.dialplan"):
        german.decide("1001", "agent", "*31#+49 (0) 900 123456")
    text = caplog.text
    assert "'premium-rate'" in text and "+49900123456" in text and "*31#" in text
