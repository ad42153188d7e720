"""The registrar's policy (RFC 3261 §10.3) with digest auth, driven without a network."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from pbx.registrar.registrar import (
    Registrar,
    RegistrarSettings,
    RegistrationChanged,
    SourceBanned,
)
from pbx.registrar.security import AuthFailureGuard
from pbx.sip import auth
from pbx.sip.endpoint import Address
from pbx.sip.message import Request, Response
from pbx.sip.parser import parse_message

REALM = "hotline.example"
PASSWORDS = {"1001": "secret1001", "1002": "secret1002"}
SRC = Address("udp", "127.0.0.1", 40000)


def ha1_lookup(user: str, algorithm: str) -> str | None:
    password = PASSWORDS.get(user)
    if password is None:
        return None
    return auth.ha1(algorithm.upper().removesuffix("-SESS"), user, REALM, password)


def make_registrar(**overrides: object) -> Registrar:
    settings = RegistrarSettings(domain=REALM, min_expires=60, default_expires=3600,
                                 max_expires=7200, max_contacts=3)
    guard = AuthFailureGuard(max_failures=3, window=60, ban_seconds=600)
    nonces = auth.NonceIssuer(b"k" * 32, lifetime=300)
    for key, value in overrides.items():
        settings = settings.__class__(**{**_fields(settings), key: value})
    return Registrar(settings, ha1_lookup, nonces, guard)


def _fields(settings: RegistrarSettings) -> dict[str, object]:
    return {name: getattr(settings, name) for name in settings.__slots__}


@dataclass
class Phone:
    """A minimal UA: builds REGISTERs, answers challenges."""

    user: str
    password: str
    contact: str = "<sip:{user}@127.0.0.1:40000>"
    call_id: str = "reg-call-1"
    cseq: int = 0
    nc: int = 0
    challenge: auth.DigestChallenge | None = None
    extra: list[str] = field(default_factory=list)

    def register(self, expires: int | None = 3600, contact: str | None = None) -> Request:
        self.cseq += 1
        lines = [
            f"REGISTER sip:{REALM} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK{self.call_id}{self.cseq};rport",
            f"From: <sip:{self.user}@{REALM}>;tag=ft",
            f"To: <sip:{self.user}@{REALM}>",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} REGISTER",
            "Max-Forwards: 70",
        ]
        contact = contact if contact is not None else self.contact.format(user=self.user)
        if contact:
            lines.append(f"Contact: {contact}")
        if expires is not None:
            lines.append(f"Expires: {expires}")
        if self.challenge is not None:
            self.nc += 1
            value = auth.build_authorization(
                self.challenge, self.user, self.password, "REGISTER", f"sip:{REALM}",
                f"cn{self.nc}", self.nc,
            )
            lines.append(f"Authorization: {value}")
        lines += self.extra
        msg = parse_message(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())
        assert isinstance(msg, Request)
        return msg

    def learn(self, response: Response) -> None:
        values = response.headers.get_all("www-authenticate")
        self.challenge = auth.parse_challenge(values[0])
        self.nc = 0


def do(reg: Registrar, phone: Phone, now: float, **kw: object) -> Response:
    """REGISTER, answering a 401 once, like a UA does."""
    out = reg.handle_register(phone.register(**kw), SRC, now)  # type: ignore[arg-type]
    assert out.response is not None
    if out.response.status == 401:
        phone.learn(out.response)
        out = reg.handle_register(phone.register(**kw), SRC, now)  # type: ignore[arg-type]
        assert out.response is not None
    return out.response


def test_challenge_offers_sha256_then_md5() -> None:
    reg = make_registrar()
    out = reg.handle_register(Phone("1001", "x").register(), SRC, 1000.0)
    assert out.response is not None and out.response.status == 401
    values = out.response.headers.get_all("www-authenticate")
    assert [auth.parse_challenge(v).algorithm for v in values] == ["SHA-256", "MD5"]
    assert all(auth.parse_challenge(v).realm == REALM for v in values)


def test_register_refresh_query_and_unregister() -> None:
    reg = make_registrar()
    phone = Phone("1001", PASSWORDS["1001"])
    ok = do(reg, phone, 1000.0)
    assert ok.status == 200
    assert ok.headers.get_all("contact") == ["<sip:1001@127.0.0.1:40000>;expires=3600"]
    (binding,) = reg.lookup("1001", 1000.0)
    assert binding.expires_at == 4600.0 and binding.source_port == 40000
    # Refresh with the same nonce and a higher nc: no new challenge needed.
    out = reg.handle_register(phone.register(expires=600), SRC, 1100.0)
    assert out.response is not None and out.response.status == 200
    assert isinstance(out.events[0], RegistrationChanged) and out.events[0].reason == "refreshed"
    assert reg.lookup("1001", 1100.0)[0].expires_at == 1700.0
    # A REGISTER without Contact is a query.
    out = reg.handle_register(phone.register(expires=None, contact=""), SRC, 1200.0)
    assert out.response is not None
    assert out.response.headers.get_all("contact") == ["<sip:1001@127.0.0.1:40000>;expires=500"]
    assert out.changes == {}
    # Expires: 0 removes the binding.
    out = reg.handle_register(phone.register(expires=0), SRC, 1300.0)
    assert out.response is not None and out.response.status == 200
    assert out.changes == {"1001": ()}
    assert reg.lookup("1001", 1300.0) == []


def test_several_contacts_and_star_removal() -> None:
    reg = make_registrar()
    phone = Phone("1001", PASSWORDS["1001"])
    do(reg, phone, 1000.0, contact="<sip:1001@127.0.0.1:40000>")
    do(reg, phone, 1000.0, contact="<sip:1001@[::1]:40002;transport=tcp>;q=0.5")
    assert len(reg.lookup("1001", 1000.0)) == 2
    assert reg.lookup("1001", 1000.0)[1].q == 0.5
    bad = reg.handle_register(phone.register(expires=3600, contact="*"), SRC, 1000.0)
    assert bad.response is not None and bad.response.status == 400
    out = reg.handle_register(phone.register(expires=0, contact="*"), SRC, 1000.0)
    assert out.response is not None and out.response.status == 200
    assert reg.lookup("1001", 1000.0) == []


def test_max_contacts_keeps_the_newest() -> None:
    reg = make_registrar()
    phone = Phone("1001", PASSWORDS["1001"])
    for port in range(5):
        do(reg, phone, 1000.0 + port, contact=f"<sip:1001@127.0.0.1:{41000 + port}>")
    ports = sorted(SipPort(b.contact) for b in reg.lookup("1001", 1010.0))
    assert ports == [41002, 41003, 41004]


def SipPort(contact: str) -> int:  # noqa: N802 - reads like a constructor in the test above
    return int(contact.rsplit(":", 1)[1].rstrip(">"))


def test_interval_too_brief_and_max_expires_cap() -> None:
    reg = make_registrar()
    phone = Phone("1001", PASSWORDS["1001"])
    brief = do(reg, phone, 1000.0, expires=30)
    assert brief.status == 423 and brief.headers.get("min-expires") == "60"
    capped = reg.handle_register(phone.register(expires=99999), SRC, 1000.0)
    assert capped.response is not None
    assert capped.response.headers.get("contact", ) == "<sip:1001@127.0.0.1:40000>;expires=7200"


def test_expiry_removes_bindings_and_reports_them() -> None:
    reg = make_registrar()
    do(reg, Phone("1001", PASSWORDS["1001"]), 1000.0, expires=60)
    changes, events = reg.expire(1059.0)
    assert changes == {}
    changes, events = reg.expire(1061.0)
    assert changes == {"1001": ()}
    assert isinstance(events[0], RegistrationChanged) and events[0].reason == "expired"


def test_unknown_user_and_wrong_password_look_the_same_and_get_banned() -> None:
    reg = make_registrar()
    wrong = do(reg, Phone("1001", "not-the-password"), 1000.0)
    unknown = do(reg, Phone("4711", "whatever"), 1000.0)
    assert (wrong.status, wrong.reason) == (unknown.status, unknown.reason) == (403, "Forbidden")
    # The third failure within the window bans the source.
    phone = Phone("1002", "bad", call_id="c3")
    first = reg.handle_register(phone.register(), SRC, 1001.0)
    assert first.response is not None
    phone.learn(first.response)
    out = reg.handle_register(phone.register(), SRC, 1001.0)
    assert any(isinstance(e, SourceBanned) for e in out.events)
    # Now even the right password from that address is dropped, other sources are served.
    good = Phone("1002", PASSWORDS["1002"], call_id="c4")
    assert reg.handle_register(good.register(), SRC, 1002.0).response is None
    other = reg.handle_register(good.register(), Address("udp", "127.0.0.2", 5060), 1002.0)
    assert other.response is not None and other.response.status == 401
    assert reg.stats.blocked == 1


def test_user_may_only_register_its_own_aor() -> None:
    reg = make_registrar()
    phone = Phone("1001", PASSWORDS["1001"])
    first = reg.handle_register(phone.register(), SRC, 1000.0)
    assert first.response is not None
    phone.learn(first.response)
    req = phone.register()
    req.headers.set("to", f"<sip:1002@{REALM}>")
    req._to = None
    out = reg.handle_register(req, SRC, 1000.0)
    assert out.response is not None and out.response.status == 403


def test_stale_nonce_gets_stale_challenge_and_replay_a_fresh_one() -> None:
    reg = make_registrar()
    phone = Phone("1001", PASSWORDS["1001"])
    assert do(reg, phone, 1000.0).status == 200
    stale = reg.handle_register(phone.register(), SRC, 1000.0 + 400)
    assert stale.response is not None and stale.response.status == 401
    assert auth.parse_challenge(stale.response.headers.get_all("www-authenticate")[0]).stale
    # Replaying the same nonce count is not accepted.
    phone2 = Phone("1002", PASSWORDS["1002"], call_id="r2")
    assert do(reg, phone2, 2000.0).status == 200
    phone2.nc -= 1
    replay = reg.handle_register(phone2.register(), SRC, 2000.0)
    assert replay.response is not None and replay.response.status == 401
    assert reg.stats.auth_failures == 0


def test_forged_nonce_is_rechallenged_not_counted() -> None:
    reg = make_registrar()
    phone = Phone("1001", PASSWORDS["1001"])
    phone.challenge = auth.DigestChallenge(realm=REALM, nonce="forged-nonce", algorithm="MD5")
    out = reg.handle_register(phone.register(), SRC, 1000.0)
    assert out.response is not None and out.response.status == 401
    assert reg.stats.auth_failures == 0


@pytest.mark.parametrize("uri", ["sip:other.example", "sip:evil.example.com"])
def test_foreign_domain_is_not_served(uri: str) -> None:
    reg = make_registrar()
    req = Phone("1001", "x").register()
    req.uri = uri
    req._parsed_uri = None
    out = reg.handle_register(req, SRC, 1000.0)
    assert out.response is not None and out.response.status == 404
