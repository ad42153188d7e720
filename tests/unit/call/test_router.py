"""ConfigRouter: trunk by source address, DID routing, internal dialling, queue members.

The configuration is built through `pbx.config.schema` from the shapes of config/pbx.yaml: the
carrier trunk on 127.0.0.1/::1, the Muster Hotline's DIDs, agents with the three roles and the
default (German) dial plan, which decides on the E.164 form of what was dialled.
"""

from __future__ import annotations

from typing import Any

import pytest

from pbx.call.router import ConfigRouter, RouteTarget, normalise_number
from pbx.config import PbxConfig


def agent(extension: str, role: str = "agent", groups: tuple[str, ...] = (),
          enabled: bool = True) -> dict[str, Any]:
    return {"extension": extension, "name": f"Agent {extension}",
            "password": f"secret-{extension}", "role": role, "groups": list(groups),
            "enabled": enabled}


AGENTS = [
    agent("1001", groups=("first-level", "billing")),
    agent("1002", groups=("first-level", "technik")),
    agent("1003", groups=("billing",)),
    agent("1008", groups=("first-level",), enabled=False),
    agent("1009", role="supervisor", groups=("first-level", "billing", "technik", "vip")),
    agent("1010", role="admin"),
]
CARRIER = {"name": "carrier", "host": "127.0.0.1", "port": 5070,
           "inbound_addresses": ["127.0.0.1", "::1"], "country_code": "49"}
BACKUP = {"name": "backup", "host": "192.0.2.10", "inbound_addresses": ["192.0.2.0/24"],
          "country_code": "43"}
DIDS = [
    {"number": "+4930123456", "flow": "hotline", "language": "de"},
    {"number": "+4930123457", "flow": "hotline", "language": "en"},
    {"number": "+4930123458", "flow": "hotline"},
    {"number": "4930999", "queue": "billing"},  # configured without the +
    {"number": "+4930777", "agent": "1003", "language": "de"},
]


def make_router(**sections: Any) -> ConfigRouter:
    data: dict[str, Any] = {
        "sip": {"domain": "hotline.example"},
        "agents": AGENTS,
        "trunks": [CARRIER, BACKUP],
        "dids": DIDS,
    }
    data.update(sections)
    return ConfigRouter(PbxConfig.model_validate(data))


@pytest.fixture
def router() -> ConfigRouter:
    return make_router()


# --- normalise_number ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("+4930123456", "+4930123456"),
        ("+49 30 123456", "+4930123456"),
        ("+49-30-123/456", "+4930123456"),
        ("(030) 123 456", "030123456"),
        ("004930123456", "+4930123456"),
        ("0030", "+30"),
        ("*21#", "*21#"),
        ("1002", "1002"),
        ("tel:1002", "1002"),
        ("%2B49%2030%20123456", "+4930123456"),
        ("", ""),
    ],
    ids=["e164", "spaces", "dashes-slash", "brackets", "00-prefix", "00-short", "star-hash",
         "extension", "letters-dropped", "uri-escaped", "empty"],
)
def test_normalise_number(written: str, expected: str) -> None:
    assert normalise_number(written) == expected


# --- trunk_for ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "carrier"),
        ("::1", "carrier"),
        ("192.0.2.77", "backup"),
        ("fe80::1%eth0", None),
        ("198.51.100.1", None),
        ("carrier.example", None),
        ("", None),
    ],
    ids=["ipv4-address", "ipv6-address", "cidr-network", "ipv6-zone-unknown", "unknown-address",
         "host-name", "empty"],
)
def test_trunk_for(router: ConfigRouter, host: str, expected: str | None) -> None:
    assert router.trunk_for(host) == expected


def test_trunk_for_strips_the_ipv6_zone_before_matching() -> None:
    router = make_router(trunks=[{**CARRIER, "inbound_addresses": ["fe80::/64"]}])
    assert router.trunk_for("fe80::1%eth0") == "carrier"


def test_trunk_for_first_configured_trunk_wins_on_overlap() -> None:
    router = make_router(trunks=[
        {**CARRIER, "inbound_addresses": ["192.0.2.7"]},
        BACKUP,
    ])
    assert router.trunk_for("192.0.2.7") == "carrier"
    assert router.trunk_for("192.0.2.8") == "backup"


def test_trunk_for_without_trunks_is_none() -> None:
    assert make_router(trunks=[]).trunk_for("127.0.0.1") is None


# --- route_did ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("did", "kind", "name", "language"),
    [
        ("+4930123456", "flow", "hotline", "de"),
        ("+4930123457", "flow", "hotline", "en"),
        ("+4930123458", "flow", "hotline", ""),
        ("4930123456", "flow", "hotline", "de"),
        ("004930123456", "flow", "hotline", "de"),
        ("+49 30 123456", "flow", "hotline", "de"),
        ("4930999", "queue", "billing", ""),
        ("+4930999", "queue", "billing", ""),
        ("+4930777", "agent", "1003", "de"),
    ],
    ids=["flow-de", "flow-en", "flow-no-language", "without-plus", "00-prefix", "with-spaces",
         "queue-as-configured", "queue-plus-added", "agent"],
)
def test_route_did(router: ConfigRouter, did: str, kind: str, name: str, language: str) -> None:
    target = router.route_did(did)
    assert target is not None
    assert target.kind == kind
    assert target.name == name
    assert target.language == language
    assert target.number == ""


@pytest.mark.parametrize(
    "did", ["+4930000000", "", "1001"], ids=["unknown-number", "empty", "extension"],
)
def test_route_did_unknown_is_none(router: ConfigRouter, did: str) -> None:
    assert router.route_did(did) is None


# --- route_internal -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("caller", "dialled", "expected"),
    [
        ("1001", "1002", RouteTarget("agent", "1002")),
        ("1001", " 1002 ", RouteTarget("agent", "1002")),
        ("1009", "1001", RouteTarget("agent", "1001")),
    ],
    ids=["colleague", "colleague-with-spaces", "supervisor-to-agent"],
)
def test_route_internal_colleague(router: ConfigRouter, caller: str, dialled: str,
                                  expected: RouteTarget) -> None:
    assert router.route_internal(caller, dialled) == expected


@pytest.mark.parametrize(
    ("dialled", "kind", "name", "language"),
    [
        ("+4930123456", "flow", "hotline", "de"),
        ("4930123457", "flow", "hotline", "en"),
        ("004930999", "queue", "billing", ""),
        ("+4930777", "agent", "1003", "de"),
        ("030 123456", "flow", "hotline", "de"),
        ("+49 (0) 30 123457", "flow", "hotline", "en"),
        ("030 999", "queue", "billing", ""),
        ("*31#030777", "agent", "1003", "de"),
    ],
    ids=["own-did-flow", "own-did-without-plus", "own-did-00-queue", "own-did-agent",
         "own-did-national", "own-did-trunk-zero", "own-did-national-configured-without-plus",
         "own-did-after-clir"],
)
def test_route_internal_own_did(router: ConfigRouter, dialled: str, kind: str, name: str,
                                language: str) -> None:
    target = router.route_internal("1001", dialled)
    assert target is not None
    assert target.kind == kind
    assert target.name == name
    assert target.language == language


@pytest.mark.parametrize(
    ("caller", "dialled", "number"),
    [
        ("1001", "030 1234567", "+49301234567"),
        ("1001", "+49 30 1234567", "+49301234567"),
        ("1001", "+49(0)30 1234567", "+49301234567"),
        ("1001", "0176 12345678", "+4917612345678"),
        ("1001", "*31#030%201234567", "+49301234567"),
        ("1001", "112", "112"),
        ("1002", "110", "110"),
        ("1009", "0044 20 7946 0000", "+442079460000"),
        ("1010", "+1 212 555 0100", "+12125550100"),
        ("1008", "0301234567", "+49301234567"),
        ("4711", "0301234567", "+49301234567"),
    ],
    ids=["domestic-national", "domestic-e164", "domestic-trunk-zero", "mobile", "after-clir",
         "emergency-112", "emergency-110",
         "international-supervisor", "international-admin", "disabled-agent-domestic",
         "unknown-caller-domestic"],
)
def test_route_internal_outside_through_the_first_trunk(router: ConfigRouter, caller: str,
                                                        dialled: str, number: str) -> None:
    target = router.route_internal(caller, dialled)
    assert target is not None
    assert target.kind == "trunk"
    assert target.name == "carrier"
    assert target.number == number
    assert target.language == ""


@pytest.mark.parametrize(
    ("caller", "dialled", "reason", "rule"),
    [
        ("1001", "0044 20 7946 0000", "number not allowed", "international"),
        ("4711", "+12125550100", "number not allowed", "international"),
        ("1001", "0900 123456", "number not allowed", "premium-rate"),
        ("1009", "0137 123456", "number not allowed", "mass-calling"),
        ("1010", "+49900123456", "number not allowed", "premium-rate"),
        ("1001", "1001", "number not allowed", ""),
        ("1001", "1008", "number not allowed", ""),
        ("1001", "4711", "number not allowed", ""),
        ("1001", "0800 1234567", "number not allowed", ""),
        ("1010", "0900-PREMIUM", "invalid number", ""),
        ("1010", "030 1234567890123", "invalid number", ""),
    ],
    ids=["international-agent", "international-unknown-caller", "premium-agent",
         "premium-supervisor", "premium-admin", "own-extension", "disabled-colleague",
         "unknown-extension", "no-rule-matches", "letters", "too-long"],
)
def test_route_internal_refused(router: ConfigRouter, caller: str, dialled: str, reason: str,
                                rule: str) -> None:
    assert router.route_internal(caller, dialled) == RouteTarget("refused", reason, rule=rule)


# Every blocked German range, each in the forms that used to pass as domestic numbers.
PREMIUM = [
    ("0900 1234567", "premium-rate"), ("+49 900 1234567", "premium-rate"),
    ("0049 900 1234567", "premium-rate"), ("+49 (0) 900 1234567", "premium-rate"),
    ("0049-900-1234567", "premium-rate"), ("+49(0)9001234567", "premium-rate"),
    ("*31#09001234567", "premium-rate"), ("+49137 1234567", "mass-calling"),
    ("0049138 1234567", "mass-calling"), ("+49 180 5123456", "service-number"),
    ("+49(0)1805 123456", "service-number"), ("0190 123456", "premium-rate"),
    ("11880", "directory-enquiries"), ("+49 11833", "directory-enquiries"),
    ("0700 12345678", "personal-number"), ("012 3456789", "innovative-services"),
]


@pytest.mark.parametrize("caller", ["1001", "1009", "1010"], ids=["agent", "supervisor", "admin"])
@pytest.mark.parametrize(("dialled", "rule"), PREMIUM, ids=[d for d, _ in PREMIUM])
def test_route_internal_refuses_premium_in_every_form_for_every_role(
    router: ConfigRouter, caller: str, dialled: str, rule: str
) -> None:
    target = router.route_internal(caller, dialled)
    assert target == RouteTarget("refused", "number not allowed", rule=rule)
    assert target is not None and rule not in target.name


def test_route_internal_without_trunks_is_refused() -> None:
    router = make_router(trunks=[])
    assert router.route_internal("1001", "0301234567") == RouteTarget(
        "refused", "no trunk is configured", rule="domestic")


def test_route_internal_configured_dial_plan_replaces_the_default() -> None:
    router = make_router(dial_plan=[
        {"name": "austria", "pattern": r"^\+43", "trunk": "backup"},
    ])
    assert router.route_internal("1001", "0043 1 234567") == RouteTarget(
        "trunk", "backup", number="+431234567")
    assert router.route_internal("1001", "112") == RouteTarget(
        "refused", "number not allowed")


def test_route_internal_national_numbers_take_the_first_trunks_country_code() -> None:
    router = make_router(trunks=[BACKUP, CARRIER])
    # 030… read as Austrian (+43 30…): international under the German default plan.
    assert router.route_internal("1001", "0301234567") == RouteTarget(
        "refused", "number not allowed", rule="international")
    assert router.route_internal("1009", "0301234567") == RouteTarget(
        "trunk", "backup", number="+43301234567")


# --- trunks, queue_members ----------------------------------------------------------------------


def test_trunks_by_name(router: ConfigRouter) -> None:
    assert list(router.trunks) == ["carrier", "backup"]
    assert router.trunks["carrier"].port == 5070
    assert router.trunks["backup"].country_code == "43"


@pytest.mark.parametrize(
    ("queue", "members"),
    [
        ("first-level", ["1001", "1002", "1009"]),
        ("billing", ["1001", "1003", "1009"]),
        ("technik", ["1002", "1009"]),
        ("vip", ["1009"]),
        ("nobody", []),
    ],
    ids=["disabled-left-out", "sorted", "technik", "single", "unknown-queue"],
)
def test_queue_members(router: ConfigRouter, queue: str, members: list[str]) -> None:
    assert router.queue_members(queue) == members


@pytest.mark.parametrize(
    ("number", "kind", "e164"),
    [
        pytest.param("+4930700001", "trunk", "+4930700001", id="domestic"),
        pytest.param("030 700001", "trunk", "+4930700001", id="national-written"),
        pytest.param("+442079460000", "trunk", "+442079460000", id="international"),
        pytest.param("0900 1234567", "refused", "", id="premium"),
        pytest.param("+49 (0) 137 123456", "refused", "", id="mass-calling"),
    ],
)
def test_route_campaign_goes_through_the_dial_plan(number: str, kind: str, e164: str) -> None:
    target = make_router().route_campaign("herbst", number)
    assert target.kind == kind
    assert target.number == e164
    if kind == "refused":
        assert target.rule and target.rule not in target.name  # the reason does not name it


@pytest.mark.parametrize(
    ("dialled", "withhold"),
    [("*31#030 9876543", True), ("030 9876543", False), ("#31#030 9876543", False)],
    ids=["clir", "plain", "clip-override"],
)
def test_route_internal_carries_the_withhold_code(dialled: str, withhold: bool) -> None:
    target = make_router().route_internal("1001", dialled)
    assert target is not None and target.kind == "trunk"
    assert target.number == "+49309876543"
    assert target.withhold_caller_id is withhold
