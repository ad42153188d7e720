"""ConfigRouter: trunk by source address, DID routing, internal dialling, queue members.

The configuration is built through `pbx.config.schema` from the shapes of config/pbx.yaml: the
carrier trunk on 127.0.0.1/::1, the Muster Hotline's DIDs, agents with the three roles and the
default (German) dial plan.
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
        ("", ""),
    ],
    ids=["e164", "spaces", "dashes-slash", "brackets", "00-prefix", "00-short", "star-hash",
         "extension", "letters-dropped", "empty"],
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
    ],
    ids=["own-did-flow", "own-did-without-plus", "own-did-00-queue", "own-did-agent"],
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
        ("1001", "112", "112"),
        ("1002", "110", "110"),
        ("1009", "0044 20 7946 0000", "+442079460000"),
        ("1010", "+1 212 555 0100", "+12125550100"),
        ("1008", "0301234567", "+49301234567"),
        ("4711", "0301234567", "+49301234567"),
    ],
    ids=["domestic-national", "domestic-e164", "emergency-112", "emergency-110",
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
    ("caller", "dialled", "reason"),
    [
        ("1001", "0044 20 7946 0000",
         "the dial plan's rule 'international' does not allow agents"),
        ("4711", "+12125550100", "the dial plan's rule 'international' does not allow agents"),
        ("1001", "0900 123456", "the dial plan's rule 'premium' does not allow agents"),
        ("1009", "0137 123456", "the dial plan's rule 'premium' does not allow supervisors"),
        ("1010", "+49900123456", "the dial plan's rule 'premium' does not allow admins"),
        ("1001", "1001", "no dial plan rule matches this number"),
        ("1001", "1008", "no dial plan rule matches this number"),
        ("1001", "4711", "no dial plan rule matches this number"),
    ],
    ids=["international-agent", "international-unknown-caller", "premium-agent",
         "premium-supervisor", "premium-admin", "own-extension", "disabled-colleague",
         "unknown-extension"],
)
def test_route_internal_refused(router: ConfigRouter, caller: str, dialled: str,
                                reason: str) -> None:
    target = router.route_internal(caller, dialled)
    assert target is not None
    assert target.kind == "refused"
    assert target.name == reason
    assert target.number == ""


def test_route_internal_without_trunks_is_refused() -> None:
    router = make_router(trunks=[])
    assert router.route_internal("1001", "0301234567") == RouteTarget(
        "refused", "no trunk is configured")


def test_route_internal_configured_dial_plan_replaces_the_default() -> None:
    router = make_router(dial_plan=[
        {"name": "austria", "pattern": r"^0[1-9]", "trunk": "backup"},
    ])
    assert router.route_internal("1001", "01 234567") == RouteTarget(
        "trunk", "backup", number="+431234567")
    assert router.route_internal("1001", "112") == RouteTarget(
        "refused", "no dial plan rule matches this number")


def test_route_internal_dial_plan_default_trunk_is_the_first_trunk() -> None:
    router = make_router(trunks=[BACKUP, CARRIER])
    assert router.route_internal("1001", "0301234567") == RouteTarget(
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
