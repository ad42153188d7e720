"""Digest authentication: RFC test vectors, parsing, nonces, replay protection, verification."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pbx.sip import auth
from pbx.sip.auth import (
    ALGORITHMS,
    AuthParseError,
    AuthResult,
    DigestChallenge,
    DigestCredentials,
    NonceCounts,
    NonceIssuer,
    NonceStatus,
    build_authorization,
    expected_response,
    ha1,
    parse_challenge,
    parse_credentials,
    preferred_challenge,
    verify,
)

# RFC 7616 §3.9.1
RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC7616_REALM = "http-auth@example.org"
RFC7616_EXPECTED = {
    "MD5": "8ca523f5e9506fed4657c9700eebdbec",
    "SHA-256": "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
}
RFC7616_AUTHORIZATION = """Digest username="Mufasa",
       realm="http-auth@example.org",
       uri="/dir/index.html",
       algorithm=MD5,
       nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
       nc=00000001,
       cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
       qop=auth,
       response="8ca523f5e9506fed4657c9700eebdbec",
       opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""""
RFC7616_CHALLENGE = """Digest
       realm="http-auth@example.org",
       qop="auth, auth-int",
       algorithm=SHA-256,
       nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
       opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""""
# RFC 2617 §3.5 (note the capital O in the password)
RFC2617_AUTHORIZATION = """Digest username="Mufasa",
                 realm="testrealm@host.com",
                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                 uri="/dir/index.html",
                 qop=auth,
                 nc=00000001,
                 cnonce="0a4f113b",
                 response="6629fae49393a05397450978507c4ef1",
                 opaque="5ccc069c403ebaf9f0171e9517f40e41\""""

SECRET = b"0123456789abcdef0123456789abcdef"
REALM = "pbx.example"
T0 = 1_700_000_000.0


def _h(name: str, text: str) -> str:
    make = hashlib.md5 if name == "MD5" else hashlib.sha256
    return make(text.encode()).hexdigest()


# --- RFC vectors ------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_rfc7616_example(algorithm: str) -> None:
    key = ha1(algorithm, "Mufasa", RFC7616_REALM, "Circle of Life")
    response = expected_response(
        algorithm, key, RFC7616_NONCE, "00000001", RFC7616_CNONCE, "auth", "GET", "/dir/index.html"
    )
    assert response == RFC7616_EXPECTED[algorithm]


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_rfc7616_example_built_by_uac(algorithm: str) -> None:
    challenge = DigestChallenge(
        realm=RFC7616_REALM, nonce=RFC7616_NONCE, algorithm=algorithm, opaque=RFC7616_OPAQUE
    )
    value = build_authorization(
        challenge, "Mufasa", "Circle of Life", "GET", "/dir/index.html", RFC7616_CNONCE, 1
    )
    creds = parse_credentials(value)
    assert creds == DigestCredentials(
        username="Mufasa",
        realm=RFC7616_REALM,
        nonce=RFC7616_NONCE,
        uri="/dir/index.html",
        response=RFC7616_EXPECTED[algorithm],
        algorithm=algorithm,
        cnonce=RFC7616_CNONCE,
        nc="00000001",
        qop="auth",
        opaque=RFC7616_OPAQUE,
    )


def test_rfc7616_authorization_header_parses_field_by_field() -> None:
    creds = parse_credentials(RFC7616_AUTHORIZATION)
    assert creds.username == "Mufasa"
    assert creds.realm == RFC7616_REALM
    assert creds.uri == "/dir/index.html"
    assert creds.algorithm == "MD5"
    assert creds.nonce == RFC7616_NONCE
    assert creds.nc == "00000001"
    assert creds.nc_value == 1
    assert creds.cnonce == RFC7616_CNONCE
    assert creds.qop == "auth"
    assert creds.response == RFC7616_EXPECTED["MD5"]
    assert creds.opaque == RFC7616_OPAQUE
    assert creds.userhash is False


def test_rfc7616_challenge_parses() -> None:
    challenge = parse_challenge(RFC7616_CHALLENGE)
    assert challenge == DigestChallenge(
        realm=RFC7616_REALM,
        nonce=RFC7616_NONCE,
        algorithm="SHA-256",
        qop=("auth", "auth-int"),
        opaque=RFC7616_OPAQUE,
    )
    assert challenge.is_supported


def test_rfc2617_example() -> None:
    creds = parse_credentials(RFC2617_AUTHORIZATION)
    assert creds.algorithm == "MD5"  # absent means MD5
    key = ha1("MD5", "Mufasa", "testrealm@host.com", "Circle Of Life")
    assert creds.cnonce is not None
    assert creds.response == expected_response(
        "MD5", key, creds.nonce, creds.nc, creds.cnonce, creds.qop, "GET", creds.uri
    )
    assert creds.response == "6629fae49393a05397450978507c4ef1"


@pytest.mark.parametrize("base", ["MD5", "SHA-256"])
def test_sess_variant_matches_rfc7616_formula(base: str) -> None:
    key = _h(base, "alice:pbx:pw")
    assert ha1(f"{base}-sess", "alice", "pbx", "pw") == key  # stored HA1 is the plain one
    session = _h(base, f"{key}:N:C")
    ha2 = _h(base, "REGISTER:sip:pbx")
    want = _h(base, f"{session}:N:0000000a:C:auth:{ha2}")
    got = expected_response(
        f"{base}-sess", key, "N", "0000000a", "C", "auth", "REGISTER", "sip:pbx"
    )
    assert got == want


def test_rfc2069_form_without_qop() -> None:
    key = _h("MD5", "alice:pbx:pw")
    want = _h("MD5", f"{key}:N:{_h('MD5', 'REGISTER:sip:pbx')}")
    assert expected_response("MD5", key, "N", None, None, None, "REGISTER", "sip:pbx") == want


def test_expected_response_refuses_what_it_cannot_compute() -> None:
    with pytest.raises(ValueError, match="unsupported digest algorithm"):
        expected_response("SHA-512-256", "00", "n", "00000001", "c", "auth", "GET", "/")
    with pytest.raises(ValueError, match="unsupported qop"):
        expected_response("MD5", "00", "n", "00000001", "c", "auth-int", "GET", "/")
    with pytest.raises(ValueError, match="needs a cnonce"):
        expected_response("MD5-sess", "00", "n", None, None, None, "GET", "/")
    with pytest.raises(ValueError, match="needs nc and cnonce"):
        expected_response("MD5", "00", "n", None, None, "auth", "GET", "/")
    with pytest.raises(ValueError, match="unsupported digest algorithm"):
        ha1("SHA-1", "a", "b", "c")


# --- parsing --------------------------------------------------------------------------------


def test_parse_is_lenient_where_peers_differ() -> None:
    value = (
        '  digest  USERNAME = "al\\"ice" ,Realm="pbx",, nonce= "n" , uri ="sip:pbx;transport=udp",'
        ' response="ABCDEF0123456789abcdef0123456789", algorithm="md5-SESS", cnonce="c",'
        ' qop="AUTH", nc=0000000A, extension=whatever, ,'
    )
    creds = parse_credentials(value)
    assert creds.username == 'al"ice'
    assert creds.realm == "pbx"
    assert creds.uri == "sip:pbx;transport=udp"
    assert creds.algorithm == "MD5-sess"
    assert creds.qop == "auth"
    assert creds.nc == "0000000A"
    assert creds.nc_value == 10


def test_parse_keeps_unknown_algorithm_for_verify_to_refuse() -> None:
    value = 'Digest username="a", realm="r", nonce="n", uri="u", response="00", algorithm=SHA-1'
    assert parse_credentials(value).algorithm == "SHA-1"


def test_parse_extended_username() -> None:
    value = (
        'Digest username*=UTF-8\'\'J%C3%A4s%C3%B8n%20Doe, realm="r", nonce="n", uri="u",'
        ' response="00"'
    )
    creds = parse_credentials(value)
    assert creds.username == "Jäsøn Doe"
    assert parse_credentials(creds.header_value()) == creds


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "empty credential"),
        ("   ", "empty credential"),
        ("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", "scheme is 'Basic', not Digest"),
        ('Digest realm="r", nonce="n", uri="u", response="00"', "missing 'username'"),
        ('Digest username="a", nonce="n", uri="u", response="00"', "missing 'realm'"),
        ('Digest username="a", realm="r", uri="u", response="00"', "missing 'nonce'"),
        ('Digest username="a", realm="r", nonce="n", response="00"', "missing 'uri'"),
        ('Digest username="a", realm="r", nonce="n", uri="u"', "missing 'response'"),
        (
            'Digest username="a", realm="r", nonce="n", uri="u", response="xyz"',
            "response must be hex",
        ),
        ('Digest username="a", realm="r", nonce="n", uri="u", response=""', "response must be hex"),
        (
            'Digest username="a", realm="r", nonce="n", uri="u", response="00", qop=auth, nc=1,'
            ' cnonce="c"',
            "nc must be 8 hex digits, got '1'",
        ),
        (
            'Digest username="a", realm="r", nonce="n", uri="u", response="00", qop=auth,'
            ' nc=0000000g, cnonce="c"',
            "nc must be 8 hex digits",
        ),
        (
            'Digest username="a", realm="r", nonce="n", uri="u", response="00", qop=auth,'
            " nc=00000001",
            "missing 'cnonce'",
        ),
        (
            'Digest username="a", realm="r", nonce="n", uri="u", response="00", qop=auth,'
            ' cnonce="c"',
            "missing 'nc'",
        ),
        ('Digest username="a", username="b"', "duplicate 'username'"),
        ('Digest username="a", USERNAME="b"', "duplicate 'username'"),
        ('Digest username="a', "unterminated quoted string in 'username'"),
        ('Digest username="a\\"', "unterminated quoted string in 'username'"),
        ('Digest username="a" realm="r"', "expected ',' after 'username'"),
        ("Digest username", "expected name=value"),
        ('Digest user name="a"', "bad parameter name 'user name'"),
        ('Digest ="a"', "bad parameter name ''"),
        ("Digest username=, realm=r", "empty value for 'username'"),
        ('Digest username=a"b', "bad unquoted value for 'username'"),
        ("Digest username=a b", "bad unquoted value for 'username'"),
        (
            'Digest username="a", realm="r", nonce="n", uri="u", response="00", userhash=maybe',
            "userhash must be true or false",
        ),
        (
            'Digest username="a", username*=UTF-8\'\'b, realm="r"',
            "both 'username' and 'username*'",
        ),
        ("Digest username*=latin-1''b", "username* must be UTF-8''percent-encoded"),
        ("Digest username*=UTF-8''%zz", "bad percent-escape in username*"),
        ("Digest username*=UTF-8''%ff", "username* is not valid UTF-8"),
    ],
)
def test_parse_errors_say_what_is_wrong(value: str, reason: str) -> None:
    with pytest.raises(AuthParseError) as caught:
        parse_credentials(value)
    assert reason in str(caught.value)
    assert caught.value.status == 400
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('Basic realm="r"', "scheme is 'Basic', not Digest"),
        ('Digest nonce="n"', "missing 'realm'"),
        ('Digest realm="r"', "missing 'nonce'"),
    ],
)
def test_parse_challenge_errors(value: str, reason: str) -> None:
    with pytest.raises(AuthParseError, match=reason):
        parse_challenge(value)


def test_challenge_flags_and_rfc2069_challenge() -> None:
    challenge = parse_challenge('Digest realm="r", nonce="n", stale=TRUE, userhash=true')
    assert challenge.stale and challenge.userhash
    assert challenge.qop == ()
    assert challenge.algorithm == "MD5"
    assert challenge.is_supported
    assert not parse_challenge('Digest realm="r", nonce="n", stale=no').stale  # RFC 7616 §3.3


def test_challenge_header_value() -> None:
    challenge = DigestChallenge(
        realm=REALM, nonce="abc", algorithm="SHA-256", opaque="op", stale=True
    )
    assert challenge.header_value() == (
        'Digest realm="pbx.example", nonce="abc", opaque="op", stale=true, algorithm=SHA-256,'
        ' qop="auth"'
    )
    assert parse_challenge(challenge.header_value()) == challenge


_text = st.text(max_size=20)
_hex = st.text(alphabet="0123456789abcdefABCDEF", min_size=1, max_size=64)


@st.composite
def _credentials(draw: st.DrawFn) -> DigestCredentials:
    qop = draw(st.sampled_from([None, "auth", "auth-int"]))
    with_counts = qop is not None or draw(st.booleans())
    return DigestCredentials(
        username=draw(_text),
        realm=draw(_text),
        nonce=draw(_text),
        uri=draw(_text),
        response=draw(_hex),
        algorithm=draw(st.sampled_from(ALGORITHMS)),
        cnonce=draw(_text) if with_counts else None,
        nc=draw(st.text(alphabet="0123456789abcdef", min_size=8, max_size=8))
        if with_counts
        else None,
        qop=qop,
        opaque=draw(st.none() | _text),
        userhash=draw(st.booleans()),
    )


@given(_credentials())
def test_credentials_round_trip(creds: DigestCredentials) -> None:
    assert parse_credentials(creds.header_value()) == creds


@given(
    realm=_text,
    nonce=_text,
    algorithm=st.sampled_from(ALGORITHMS),
    qop=st.lists(st.sampled_from(["auth", "auth-int", "x-token"]), max_size=3, unique=True),
    opaque=st.none() | _text,
    stale=st.booleans(),
    userhash=st.booleans(),
    domain=st.none() | _text,
)
def test_challenge_round_trip(
    realm: str,
    nonce: str,
    algorithm: str,
    qop: list[str],
    opaque: str | None,
    stale: bool,
    userhash: bool,
    domain: str | None,
) -> None:
    challenge = DigestChallenge(
        realm, nonce, algorithm, tuple(qop), opaque, stale, userhash, domain
    )
    assert parse_challenge(challenge.header_value()) == challenge


_garbage = st.text() | st.text(alphabet="Digest usernamrlcoqp*=,\"\\ \t\r\n%'U8-TF", max_size=60)


@given(_garbage)
def test_parse_credentials_raises_only_auth_parse_error(value: str) -> None:
    try:
        parse_credentials(value)
    except AuthParseError:
        pass


@given(st.text(alphabet='=,"\\ \tabcdnoquiprstehxlm0123456789', max_size=80))
def test_parse_of_digest_garbage_raises_only_auth_parse_error(tail: str) -> None:
    for value in ("Digest " + tail, 'Digest username="a", realm="r", ' + tail):
        try:
            creds = parse_credentials(value)
        except AuthParseError:
            continue
        # Whatever parses, verify must digest without raising.
        issuer = NonceIssuer(SECRET, 60)
        result = verify(
            creds, "REGISTER", lambda u, a: None, issuer, NonceCounts(60), T0, creds.realm
        )
        assert result is AuthResult.BAD


@given(_garbage)
def test_parse_challenge_raises_only_auth_parse_error(value: str) -> None:
    try:
        parse_challenge(value)
    except AuthParseError:
        pass


# --- UAC side -------------------------------------------------------------------------------


def test_preferred_challenge_takes_topmost_supported() -> None:
    values = [
        "Basic realm=x",
        'Digest realm="r", nonce="n1", algorithm=SHA-512-256, qop="auth"',
        "Digest garbage",
        'Digest realm="r", nonce="n2", algorithm=SHA-256, qop="auth"',
        'Digest realm="r", nonce="n3", algorithm=MD5, qop="auth"',
    ]
    chosen = preferred_challenge(values)
    assert chosen is not None and chosen.nonce == "n2"
    assert preferred_challenge(values[:3]) is None


def test_build_authorization_for_rfc2069_carrier() -> None:
    challenge = parse_challenge('Digest realm="carrier", nonce="abc"')
    value = build_authorization(challenge, "trunk", "pw", "REGISTER", "sip:carrier", "cn", 1)
    creds = parse_credentials(value)
    assert creds.qop is None and creds.nc is None and creds.cnonce is None
    key = _h("MD5", "trunk:carrier:pw")
    assert creds.response == _h("MD5", f"{key}:abc:{_h('MD5', 'REGISTER:sip:carrier')}")


def test_build_authorization_hashes_username_when_asked() -> None:
    challenge = DigestChallenge(realm="r", nonce="n", algorithm="SHA-256", userhash=True)
    creds = parse_credentials(
        build_authorization(challenge, "bob", "pw", "INVITE", "sip:x", "c", 2)
    )
    assert creds.userhash
    assert creds.username == _h("SHA-256", "bob:r")  # RFC 7616 §3.4.4
    assert creds.nc == "00000002"


def test_build_authorization_refuses_unanswerable_challenges() -> None:
    with pytest.raises(AuthParseError, match="unsupported digest algorithm 'SHA-512-256'"):
        build_authorization(DigestChallenge("r", "n", "SHA-512-256"), "a", "p", "GET", "/", "c", 1)
    with pytest.raises(AuthParseError, match="unsupported qop 'auth-int'"):
        build_authorization(
            DigestChallenge("r", "n", qop=("auth-int",)), "a", "p", "GET", "/", "c", 1
        )
    with pytest.raises(ValueError, match="nc out of range"):
        build_authorization(DigestChallenge("r", "n"), "a", "p", "GET", "/", "c", 0)


# --- nonces ---------------------------------------------------------------------------------


def test_nonce_lifecycle_with_fake_clock() -> None:
    issuer = NonceIssuer(SECRET, lifetime=30.0)
    nonce = issuer.issue(T0)
    assert issuer.check(nonce, T0) is NonceStatus.VALID
    assert issuer.check(nonce, T0 + 29.9) is NonceStatus.VALID
    assert issuer.check(nonce, T0 + 30.0) is NonceStatus.VALID
    assert issuer.check(nonce, T0 + 30.01) is NonceStatus.STALE
    assert issuer.check(nonce, T0 + 86400) is NonceStatus.STALE
    # Another process with the same secret agrees; one with another secret does not.
    assert NonceIssuer(SECRET, 30.0).check(nonce, T0 + 1) is NonceStatus.VALID
    assert NonceIssuer(b"x" * 32, 30.0).check(nonce, T0 + 1) is NonceStatus.INVALID


def test_nonce_from_the_future_is_tolerated_within_skew_only() -> None:
    issuer = NonceIssuer(SECRET, lifetime=30.0, max_skew=2.0)
    nonce = issuer.issue(T0)
    assert issuer.check(nonce, T0 - 1.5) is NonceStatus.VALID
    assert issuer.check(nonce, T0 - 5.0) is NonceStatus.STALE
    assert issuer.max_age == 32.0


def test_forged_nonces_are_invalid() -> None:
    issuer = NonceIssuer(SECRET, lifetime=30.0)
    nonce = issuer.issue(T0)
    for i in range(len(nonce)):
        flipped = "A" if nonce[i] != "A" else "B"
        forged = nonce[:i] + flipped + nonce[i + 1 :]
        assert issuer.check(forged, T0) is NonceStatus.INVALID, i
    for garbage in ["", "x", nonce[:-1], nonce + "A", "é" * 48, "=" * 48, "*" * 48, " " * 48]:
        assert issuer.check(garbage, T0) is NonceStatus.INVALID, garbage


def test_a_nonce_bound_to_an_address_is_unknown_anywhere_else() -> None:
    issuer = NonceIssuer(SECRET, lifetime=30.0)
    nonce = issuer.issue(T0, "192.0.2.10")
    assert len(nonce) == 48  # the address is in the MAC, not in the nonce
    assert issuer.check(nonce, T0, "192.0.2.10") is NonceStatus.VALID
    assert issuer.check(nonce, T0 + 31, "192.0.2.10") is NonceStatus.STALE
    assert issuer.check(nonce, T0, "203.0.113.66") is NonceStatus.INVALID
    assert issuer.check(nonce, T0) is NonceStatus.INVALID
    assert issuer.check(issuer.issue(T0), T0, "192.0.2.10") is NonceStatus.INVALID


@given(st.text())
def test_nonce_check_never_raises(nonce: str) -> None:
    assert NonceIssuer(SECRET, 30.0).check(nonce, T0) is NonceStatus.INVALID


def test_nonces_are_distinct_and_quotable() -> None:
    issuer = NonceIssuer(SECRET, lifetime=30.0)
    nonces = {issuer.issue(T0) for _ in range(1000)}
    assert len(nonces) == 1000
    assert all('"' not in n and "\\" not in n and len(n) == 48 for n in nonces)
    salted = NonceIssuer(SECRET, 30.0, salt=lambda n: bytes(range(n)))
    assert salted.check(salted.issue(T0), T0) is NonceStatus.VALID


def test_nonce_issuer_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        NonceIssuer(b"short", 30.0)
    with pytest.raises(ValueError, match="lifetime must be positive"):
        NonceIssuer(SECRET, 0)
    with pytest.raises(ValueError, match="non-negative"):
        NonceIssuer(SECRET, 30.0).issue(-1.0)
    long_secret = NonceIssuer(b"k" * 100, 30.0)
    assert long_secret.check(long_secret.issue(T0), T0) is NonceStatus.VALID


# --- nonce counts ---------------------------------------------------------------------------


def test_nonce_counts_reject_replays_and_lower_counts() -> None:
    counts = NonceCounts(60.0)
    assert counts.accept("n", 1, T0)
    assert not counts.accept("n", 1, T0)  # replay
    assert counts.accept("n", 3, T0)
    assert not counts.accept("n", 2, T0)  # strict by default
    assert counts.accept("n", 0xFFFFFFFF, T0)  # big jumps are fine
    assert not counts.accept("n", 4, T0)
    assert counts.accept("other", 1, T0)  # per nonce
    assert not counts.accept("new", 0, T0)


def test_nonce_counts_out_of_order_window() -> None:
    counts = NonceCounts(60.0, out_of_order=2)
    assert counts.accept("n", 5, T0)
    assert counts.accept("n", 4, T0)
    assert counts.accept("n", 3, T0)
    assert not counts.accept("n", 2, T0)  # beyond the window
    assert not counts.accept("n", 4, T0)  # seen
    assert counts.accept("n", 7, T0)
    assert counts.accept("n", 6, T0)
    assert not counts.accept("n", 5, T0)  # seen before the shift
    assert counts.accept("n", 100, T0)
    assert counts.accept("n", 98, T0)


def test_nonce_counts_forget_after_retention() -> None:
    counts = NonceCounts(60.0)
    assert counts.accept("n", 1, T0)
    assert not counts.accept("n", 1, T0 + 59.0)
    assert counts.accept("n", 2, T0 + 59.0)  # does not refresh the first-use time
    assert counts.accept("n", 1, T0 + 60.0)  # forgotten: the issuer calls it stale by now
    assert len(counts) == 1


def test_nonce_counts_memory_is_bounded_by_retention() -> None:
    counts = NonceCounts(10.0)
    for i in range(10_000):
        assert counts.accept(f"n{i}", 1, T0 + i * 0.01)
        assert len(counts) <= 1001
    assert counts.evicted == 0


def test_nonce_counts_evict_oldest_beyond_capacity() -> None:
    counts = NonceCounts(60.0, max_nonces=3)
    for name in "abcd":
        assert counts.accept(name, 1, T0)
    assert len(counts) == 3
    assert counts.evicted == 1
    assert counts.accept("a", 1, T0)  # "a" was evicted: the documented cost
    assert not counts.accept("d", 1, T0)


def test_nonce_counts_reject_bad_configuration() -> None:
    with pytest.raises(ValueError):
        NonceCounts(0)
    with pytest.raises(ValueError):
        NonceCounts(1, out_of_order=-1)
    with pytest.raises(ValueError):
        NonceCounts(1, max_nonces=0)


# --- verify ---------------------------------------------------------------------------------


class Directory:
    """HA1 store keyed by (user, hash) that records lookups."""

    def __init__(self) -> None:
        self.lookups: list[tuple[str, str]] = []
        self.users = {"alice": "s3cret", "bob": "hunter2"}

    def __call__(self, username: str, hash_name: str) -> str | None:
        self.lookups.append((username, hash_name))
        password = self.users.get(username)
        return None if password is None else ha1(hash_name, username, REALM, password)


class Registrar:
    def __init__(self, lifetime: float = 30.0) -> None:
        self.issuer = NonceIssuer(SECRET, lifetime)
        self.counts = NonceCounts(self.issuer.max_age)
        self.directory = Directory()

    def challenge(self, now: float, algorithm: str = "MD5") -> DigestChallenge:
        return DigestChallenge(realm=REALM, nonce=self.issuer.issue(now), algorithm=algorithm)

    def verify(self, value: str, now: float, **kwargs: bool) -> AuthResult:
        creds = parse_credentials(value)
        return verify(
            creds, "REGISTER", self.directory, self.issuer, self.counts, now, REALM, **kwargs
        )


def _answer(
    challenge: DigestChallenge, user: str = "alice", password: str = "s3cret", nc: int = 1
) -> str:
    return build_authorization(challenge, user, password, "REGISTER", "sip:pbx.example", "cn", nc)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_verify_ok_for_every_algorithm(algorithm: str) -> None:
    registrar = Registrar()
    challenge = registrar.challenge(T0, algorithm)
    assert registrar.verify(_answer(challenge), T0 + 1) is AuthResult.OK
    assert registrar.directory.lookups == [("alice", algorithm.removesuffix("-sess"))]
    assert registrar.verify(_answer(challenge, nc=2), T0 + 2) is AuthResult.OK


def test_verify_accepts_upper_case_response() -> None:
    registrar = Registrar()
    value = _answer(registrar.challenge(T0))
    creds = parse_credentials(value)
    upper = value.replace(creds.response, creds.response.upper())
    assert registrar.verify(upper, T0) is AuthResult.OK


def test_unknown_user_and_wrong_password_look_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    registrar = Registrar()
    computed: list[str] = []
    real = auth.expected_response

    def spy(*args: str | None) -> str:
        computed.append(str(args[1]))
        return real(*args)  # type: ignore[arg-type]

    challenge = registrar.challenge(T0)
    answers = [_answer(challenge, "alice", "guess"), _answer(challenge, "mallory", "guess")]
    monkeypatch.setattr(auth, "expected_response", spy)
    wrong_password = registrar.verify(answers[0], T0)
    unknown_user = registrar.verify(answers[1], T0)
    assert wrong_password is unknown_user is AuthResult.BAD
    assert len(computed) == 2  # the unknown user's digest is computed too, with a dummy HA1
    assert computed[1] == auth._DUMMY_HA1["MD5"]


def test_unknown_user_with_the_dummy_password_is_still_bad() -> None:
    registrar = Registrar()
    challenge = registrar.challenge(T0)
    dummy = auth._DUMMY_HA1["MD5"]
    response = expected_response(
        "MD5", dummy, challenge.nonce, "00000001", "c", "auth", "REGISTER", "sip:pbx.example"
    )
    creds = DigestCredentials(
        "mallory",
        REALM,
        challenge.nonce,
        "sip:pbx.example",
        response,
        "MD5",
        "c",
        "00000001",
        "auth",
    )
    result = verify(
        creds, "REGISTER", registrar.directory, registrar.issuer, registrar.counts, T0, REALM
    )
    assert result is AuthResult.BAD


def test_verify_stale_only_with_the_right_password() -> None:
    registrar = Registrar(lifetime=30.0)
    challenge = registrar.challenge(T0)
    assert registrar.verify(_answer(challenge), T0 + 31) is AuthResult.STALE
    assert registrar.verify(_answer(challenge, password="x"), T0 + 31) is AuthResult.BAD
    assert len(registrar.counts) == 0  # stale answers are not recorded


def test_verify_forged_nonce_is_bad_without_touching_the_directory() -> None:
    registrar = Registrar()
    forged = DigestChallenge(realm=REALM, nonce=NonceIssuer(b"y" * 32, 30).issue(T0))
    assert registrar.verify(_answer(forged), T0) is AuthResult.BAD
    assert registrar.directory.lookups == []


def test_verify_replay() -> None:
    registrar = Registrar()
    value = _answer(registrar.challenge(T0))
    assert registrar.verify(value, T0) is AuthResult.OK
    assert registrar.verify(value, T0 + 1) is AuthResult.REPLAY


def test_wrong_password_is_not_recorded_as_a_count() -> None:
    registrar = Registrar()
    challenge = registrar.challenge(T0)
    assert registrar.verify(_answer(challenge, password="x"), T0) is AuthResult.BAD
    assert len(registrar.counts) == 0
    assert registrar.verify(_answer(challenge), T0) is AuthResult.OK


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda v: v.replace('realm="pbx.example"', 'realm="other"'), id="realm"),
        pytest.param(lambda v: v.replace('uri="sip:pbx.example"', 'uri=""'), id="empty-uri"),
        pytest.param(lambda v: v.replace("algorithm=MD5", "algorithm=SHA-1"), id="algorithm"),
        pytest.param(lambda v: v.replace("qop=auth", "qop=auth-int"), id="auth-int"),
        pytest.param(lambda v: v + ", userhash=true", id="userhash"),
    ],
)
def test_verify_refuses_unacceptable_parameters(mutate: object) -> None:
    registrar = Registrar()
    value = _answer(registrar.challenge(T0))
    assert callable(mutate)
    assert registrar.verify(mutate(value), T0) is AuthResult.BAD


def test_rfc2069_refused_by_default_and_single_use_when_allowed() -> None:
    registrar = Registrar()
    legacy = DigestChallenge(realm=REALM, nonce=registrar.issuer.issue(T0), qop=())
    value = _answer(legacy)
    assert "qop" not in value
    assert registrar.verify(value, T0) is AuthResult.BAD
    assert registrar.verify(value, T0, allow_rfc2069=True) is AuthResult.OK
    assert registrar.verify(value, T0 + 1, allow_rfc2069=True) is AuthResult.REPLAY
    # An nc is not covered by an RFC 2069 digest: adding one must not reopen the nonce.
    assert registrar.verify(value + ", nc=00000009", T0 + 1, allow_rfc2069=True) is (
        AuthResult.REPLAY
    )
    sess = DigestChallenge(
        realm=REALM, nonce=registrar.issuer.issue(T0), algorithm="MD5-sess", qop=()
    )
    assert registrar.verify(_answer(sess), T0, allow_rfc2069=True) is AuthResult.BAD
