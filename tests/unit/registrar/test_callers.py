"""Who may place a call (pbx.registrar.callers), decided without a network: agents' phones by
digest as their From user, trunks by address (and digest with inbound_auth), strangers 403,
failures counted toward the same bans as REGISTER."""

from __future__ import annotations

import pytest

from pbx.registrar.bindings import LocationTable
from pbx.registrar.callers import CallerCheck, CallerOutcome, CallerVerdict, TrunkSecret
from pbx.registrar.registrar import Registrar, RegistrarSettings, SourceBanned
from pbx.registrar.security import AuthFailureGuard
from pbx.repositories import Binding
from pbx.sip import auth
from pbx.sip.endpoint import Address
from pbx.sip.message import Request
from pbx.sip.parser import parse_message
from tests.unit.registrar.test_registrar import PASSWORDS, REALM, Phone, ha1_lookup

PHONE = Address("udp", "192.0.2.10", 40000)  # where 1001's phone registered from
CARRIER = Address("udp", "198.51.100.5", 5060)
STRANGER = Address("udp", "203.0.113.66", 5060)
NOW = 1_000_000.0


def trunk_for(host: str) -> str | None:
    return "carrier" if host in ("198.51.100.5", "192.0.2.10") else None


def make_check(**trunk_secrets: TrunkSecret) -> tuple[CallerCheck, Registrar]:
    guard = AuthFailureGuard(max_failures=3, window=60, ban_seconds=600)
    nonces = auth.NonceIssuer(b"k" * 32, lifetime=300)
    registrar = Registrar(RegistrarSettings(domain=REALM), ha1_lookup, nonces, guard)
    registrar.table.replace("1001", [Binding(
        aor="1001", contact="sip:1001@192.0.2.10:40000", expires_at=NOW + 3600, call_id="r",
        cseq=1, source_transport="udp", source_host=PHONE.host, source_port=PHONE.port)])
    check = CallerCheck(registrar.digest, registrar.ha1_lookup, registrar.table, trunk_for,
                        trunk_secrets)
    return check, registrar


def invite(from_user: str = "1001", authorization: str | None = None, cseq: int = 1,
           branch: str = "z9hG4bKinv1") -> Request:
    lines = [
        f"INVITE sip:030123456@{REALM} SIP/2.0",
        f"Via: SIP/2.0/UDP 192.0.2.10:40000;branch={branch};rport",
        f"From: <sip:{from_user}@{REALM}>;tag=ft1",
        f"To: <sip:030123456@{REALM}>",
        "Call-ID: call-1@phone",
        f"CSeq: {cseq} INVITE",
        "Contact: <sip:1001@192.0.2.10:40000>",
        "Max-Forwards: 70",
    ]
    if authorization is not None:
        lines.append(f"Proxy-Authorization: {authorization}")
    message = parse_message(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())
    assert isinstance(message, Request)
    return message


def answer(outcome: CallerOutcome, user: str, password: str, nc: int = 1,
           algorithm: str | None = None) -> str:
    """The Proxy-Authorization a phone sends for the 407 in `outcome`."""
    assert outcome.response is not None and outcome.response.status == 407
    values = outcome.response.headers.get_all("proxy-authenticate")
    challenges = [auth.parse_challenge(v) for v in values]
    challenge = next(c for c in challenges if algorithm in (None, c.algorithm))
    return auth.build_authorization(challenge, user, password, "INVITE",
                                    f"sip:030123456@{REALM}", f"cn{nc}", nc)


def test_a_stranger_gets_403_without_a_challenge() -> None:
    check, _ = make_check()
    outcome = check.check(invite(), STRANGER, NOW)
    assert outcome.verdict is CallerVerdict.REFUSED
    assert outcome.response is not None and outcome.response.status == 403
    assert "proxy-authenticate" not in outcome.response.headers
    assert check.stats.unknown_source == 1 and check.stats.challenges == 0


def test_a_trunk_address_is_the_carrier_without_a_challenge() -> None:
    check, _ = make_check()
    outcome = check.check(invite("+4917612345"), CARRIER, NOW)
    assert (outcome.verdict, outcome.trunk, outcome.agent) == (CallerVerdict.TRUNK, "carrier",
                                                               None)
    assert outcome.accepted and outcome.response is None


def test_a_registered_phone_source_is_challenged_407_per_algorithm() -> None:
    # The forged INVITE: right source address, right From user, no credentials.
    check, _ = make_check()
    outcome = check.check(invite(), PHONE, NOW)
    assert outcome.verdict is CallerVerdict.CHALLENGED and not outcome.accepted
    response = outcome.response
    assert response is not None and (response.status, response.reason) == (
        407, "Proxy Authentication Required")
    challenges = [auth.parse_challenge(v) for v in response.headers.get_all("proxy-authenticate")]
    assert [c.algorithm for c in challenges] == ["SHA-256", "MD5"]
    assert {c.realm for c in challenges} == {REALM} and len({c.nonce for c in challenges}) == 1
    assert "www-authenticate" not in response.headers
    # A retransmission (the 407 was lost) gets the same To tag.
    again = check.check(invite(), PHONE, NOW + 0.5).response
    assert again is not None and again.to_addr.tag == response.to_addr.tag
    assert check.stats.challenges == 2


def test_the_phone_sharing_the_trunk_address_is_still_challenged() -> None:
    # 192.0.2.10 is also a trunk address here: the registered phone's address wins.
    check, _ = make_check()
    assert check.check(invite(), PHONE, NOW).verdict is CallerVerdict.CHALLENGED
    other_port = Address("udp", PHONE.host, 5060)
    assert check.check(invite("+4930999"), other_port, NOW).verdict is CallerVerdict.TRUNK


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_the_right_answer_makes_it_the_agents_call(algorithm: str) -> None:
    check, _ = make_check()
    challenged = check.check(invite(), PHONE, NOW)
    value = answer(challenged, "1001", PASSWORDS["1001"], algorithm=algorithm)
    outcome = check.check(invite(authorization=value, cseq=2, branch="z9hG4bKinv2"), PHONE,
                          NOW + 0.1)
    assert (outcome.verdict, outcome.agent, outcome.trunk) == (CallerVerdict.AGENT, "1001", None)
    assert outcome.response is None and check.stats.agents == 1
    # The same answer once more is a replay: challenged again, not counted as a failure.
    replay = check.check(invite(authorization=value, cseq=3, branch="z9hG4bKinv3"), PHONE,
                         NOW + 0.2)
    assert replay.verdict is CallerVerdict.CHALLENGED and check.stats.auth_failures == 0


def test_another_agents_password_for_this_from_user_is_403() -> None:
    # Agent 1001's phone authenticates correctly as 1001 but says it is 1002.
    check, _ = make_check()
    challenged = check.check(invite("1002"), PHONE, NOW)
    value = answer(challenged, "1001", PASSWORDS["1001"])
    outcome = check.check(invite("1002", value, 2, "z9hG4bKinv2"), PHONE, NOW + 0.1)
    assert outcome.verdict is CallerVerdict.REFUSED
    assert outcome.response is not None and outcome.response.status == 403
    assert "1002" in outcome.reason and check.stats.auth_failures == 1


def test_wrong_passwords_ban_the_source_for_invites_and_registers_alike() -> None:
    check, registrar = make_check()
    outcomes = []
    for n in range(3):
        challenged = check.check(invite(cseq=2 * n + 1), PHONE, NOW + n)
        value = answer(challenged, "1001", "guess", nc=1)
        outcomes.append(check.check(invite(authorization=value, cseq=2 * n + 2,
                                           branch=f"z9hG4bKg{n}"), PHONE, NOW + n + 0.1))
    assert [o.verdict for o in outcomes] == [CallerVerdict.REFUSED] * 3
    assert [o.response.status for o in outcomes if o.response] == [403] * 3
    (banned,) = outcomes[-1].events
    assert isinstance(banned, SourceBanned) and banned.host == PHONE.host
    dropped = check.check(invite(cseq=9), PHONE, NOW + 5)
    assert dropped.verdict is CallerVerdict.DROPPED and dropped.response is None
    assert check.stats.blocked == 1
    # The same ban holds for REGISTER: one guard for both.
    assert registrar.handle_register(Phone("1001", "x").register(), PHONE, NOW + 6).response \
        is None


def test_register_failures_count_toward_the_invite_ban_too() -> None:
    check, registrar = make_check()
    phone = Phone("1001", "wrong")
    for _ in range(3):
        phone.challenge = None
        challenge = registrar.handle_register(phone.register(), PHONE, NOW).response
        assert challenge is not None and challenge.status == 401
        phone.learn(challenge)
        refused = registrar.handle_register(phone.register(), PHONE, NOW).response
        assert refused is not None and refused.status == 403
    assert check.check(invite(), PHONE, NOW + 1).verdict is CallerVerdict.DROPPED


def test_a_stale_nonce_is_challenged_again_with_stale_true() -> None:
    check, _ = make_check()
    challenged = check.check(invite(), PHONE, NOW)
    value = answer(challenged, "1001", PASSWORDS["1001"])
    outcome = check.check(invite(authorization=value, cseq=2), PHONE, NOW + 301)
    assert outcome.verdict is CallerVerdict.CHALLENGED and outcome.response is not None
    assert "stale=true" in (outcome.response.headers.get("proxy-authenticate") or "")
    assert check.stats.stale_challenges == 1 and check.stats.auth_failures == 0


def test_unparseable_credentials_are_400_and_foreign_realms_are_challenged() -> None:
    check, _ = make_check()
    bad = check.check(invite(authorization="Digest username=1001"), PHONE, NOW)
    assert bad.verdict is CallerVerdict.MALFORMED
    assert bad.response is not None and bad.response.status == 400
    foreign = ('Digest username="1001", realm="elsewhere", nonce="abc", uri="sip:x", '
               'response="00"')
    other = check.check(invite(authorization=foreign), PHONE, NOW)
    assert other.verdict is CallerVerdict.CHALLENGED and check.stats.auth_failures == 0


def test_a_trunk_with_inbound_auth_must_answer_with_its_own_credentials() -> None:
    secret = TrunkSecret("carrier-user", {
        name: auth.ha1(name, "carrier-user", REALM, "trunk-pw") for name in ("MD5", "SHA-256")})
    check, _ = make_check(carrier=secret)
    challenged = check.check(invite("+4917612345"), CARRIER, NOW)
    assert challenged.verdict is CallerVerdict.CHALLENGED and challenged.trunk == "carrier"
    right = answer(challenged, "carrier-user", "trunk-pw")
    outcome = check.check(invite("+4917612345", right, 2, "z9hG4bKt2"), CARRIER, NOW + 0.1)
    assert (outcome.verdict, outcome.trunk) == (CallerVerdict.TRUNK, "carrier")
    # An agent's credentials are no trunk's.
    again = check.check(invite("+4917612345", cseq=3), CARRIER, NOW + 0.2)
    agent_answer = answer(again, "1001", PASSWORDS["1001"], nc=1)
    refused = check.check(invite("+4917612345", agent_answer, 4, "z9hG4bKt4"), CARRIER, NOW + 0.3)
    assert refused.verdict is CallerVerdict.REFUSED and refused.trunk == "carrier"
    assert check.stats.trunk_by_digest == 1 and check.stats.trunk_by_address == 0


def test_a_nonce_fetched_elsewhere_cannot_get_the_phone_banned() -> None:
    # An off-path forger gets nonces only at its own address (here from a REGISTER's 401) and
    # spoofs the phone's address with wrong answers: each is a fresh challenge, never a failure.
    check, registrar = make_check()
    forger = Phone("1001", "guess")
    own = registrar.handle_register(forger.register(), STRANGER, NOW).response
    assert own is not None and own.status == 401
    challenge = auth.parse_challenge(own.headers.get_all("www-authenticate")[0])
    for n in range(1, 6):
        value = auth.build_authorization(challenge, "1001", "guess", "INVITE",
                                         f"sip:030123456@{REALM}", f"cn{n}", n)
        outcome = check.check(invite(authorization=value, cseq=n, branch=f"z9hG4bKf{n}"),
                              PHONE, NOW + n)
        assert outcome.verdict is CallerVerdict.CHALLENGED, n
    assert check.stats.auth_failures == 0 and not registrar.digest.is_banned(PHONE.host, NOW)
    # The same nonce answered right from the phone's own address is not accepted either.
    right = auth.build_authorization(challenge, "1001", PASSWORDS["1001"], "INVITE",
                                     f"sip:030123456@{REALM}", "cn9", 9)
    assert check.check(invite(authorization=right, cseq=9), PHONE, NOW + 9).verdict \
        is CallerVerdict.CHALLENGED


def test_the_registered_sources_follow_registrations_and_expiry() -> None:
    table = LocationTable()

    def binding(aor: str, port: int, expires_at: float) -> Binding:
        return Binding(aor=aor, contact=f"sip:{aor}@192.0.2.10:{port}", expires_at=expires_at,
                       call_id="r", cseq=1, source_host="192.0.2.10", source_port=port)

    assert table.load([binding("1001", 40000, NOW + 60), binding("1002", 40000, NOW - 1)],
                      NOW) == 1
    assert table.has_source("192.0.2.10", 40000)
    table.replace("1002", [binding("1002", 40000, NOW + 30)])  # two phones, one socket
    table.replace("1001", [])
    assert table.has_source("192.0.2.10", 40000) and not table.has_source("192.0.2.10", 5060)
    table.expire(NOW + 31)
    assert not table.has_source("192.0.2.10", 40000)
