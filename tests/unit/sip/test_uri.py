"""URI and name-addr parsing and RFC 3261 §19.1.4 comparison."""

from __future__ import annotations

import pytest

from pbx.errors import SipParseError
from pbx.sip.uri import NameAddr, SipUri


def test_full_uri_roundtrip() -> None:
    text = "sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr?subject=hi&priority=urgent"
    uri = SipUri.parse(text)
    assert uri.scheme == "sips"
    assert (uri.user, uri.password, uri.host, uri.port) == ("alice", "secret", "2001:db8::1", 5061)
    assert uri.params == {"transport": "tcp", "lr": None}
    assert uri.headers == "subject=hi&priority=urgent"
    assert str(uri) == text


# The equivalent and non-equivalent pairs listed in RFC 3261 §19.1.4.
EQUIVALENT = [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
    ("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
     "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"),
    ("sip:alice@atlanta.com?subject=project%20x&priority=urgent",
     "sip:alice@atlanta.com?priority=urgent&subject=project%20x"),
]
DIFFERENT = [
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
    ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
]


@pytest.mark.parametrize(("a", "b"), EQUIVALENT)
def test_equivalent(a: str, b: str) -> None:
    assert SipUri.parse(a).equivalent(SipUri.parse(b))
    assert SipUri.parse(b).equivalent(SipUri.parse(a))


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_not_equivalent(a: str, b: str) -> None:
    # The first pair differs only in the user part's case, which is significant.
    assert not SipUri.parse(a).equivalent(SipUri.parse(b))


def test_name_addr_forms() -> None:
    a = NameAddr.parse('"Doe, John \\"JD\\"" <sip:jd@example.com;transport=tcp>;tag=1;x')
    assert a.display_name == 'Doe, John "JD"'
    assert a.uri is not None and a.uri.params == {"transport": "tcp"}
    assert a.params == {"tag": "1", "x": None}
    assert NameAddr.parse(str(a)).display_name == a.display_name
    b = NameAddr.parse("sip:bob@example.com;tag=2")  # addr-spec: params belong to the header
    assert b.uri is not None and b.uri.params == {}
    assert b.tag == "2"
    c = NameAddr.parse("<tel:+4930123456>")
    assert c.uri is None and c.raw_uri == "tel:+4930123456"


@pytest.mark.parametrize(
    "bad", ["", "http://x", "sip:", "sip:[::1", "sip:host:99999", "<sip:a@b", "sip:a@b:x"]
)
def test_bad_uris(bad: str) -> None:
    with pytest.raises(SipParseError):
        if bad.startswith("<"):
            NameAddr.parse(bad)
        else:
            SipUri.parse(bad)
