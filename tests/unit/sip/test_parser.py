"""Parser and serializer: real message fixtures asserted field by field and round-tripped."""

from __future__ import annotations

from pathlib import Path

import pytest

from pbx.errors import SipParseError
from pbx.sip.message import Request, Response, make_response
from pbx.sip.parser import StreamFramer, parse_message

DATA = Path(__file__).parents[2] / "data" / "sip"


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


def test_register_from_pjsua_fields_and_roundtrip() -> None:
    raw = load("register_pjsua.txt")
    msg = parse_message(raw)
    assert isinstance(msg, Request)
    assert msg.method == "REGISTER"
    assert msg.uri == "sip:hotline.example"
    assert msg.call_id == "8d3e2f1a-4b5c-4d6e-8f7a-9b0c1d2e3f4a"
    assert (msg.cseq.number, msg.cseq.method) == (47816, "REGISTER")
    via = msg.top_via
    assert (via.transport, via.host, via.port) == ("UDP", "127.0.0.1", 40123)
    assert via.branch == "z9hG4bKPj3c1f0a2e-8b2d-4a4e-9d0e-1b3c5d7f9a11"
    assert "rport" in via.params and via.params["rport"] is None
    assert msg.from_addr.tag == "5f1c2a9b-77d1-4e0b-a3c2-2d4e6f8a0b1c"
    assert msg.to_addr.tag is None
    assert msg.to_addr.uri is not None and msg.to_addr.uri.user == "1001"
    (contact,) = msg.contacts()
    assert contact.uri is not None
    assert (contact.uri.host, contact.uri.port) == ("127.0.0.1", 40123)
    assert contact.uri.params == {"ob": None}
    assert msg.headers.get("expires") == "300"
    assert len(msg.headers.get_all("allow")) == 12
    assert msg.body == b""
    # Allow values are split into entries; apart from that the bytes round-trip.
    again = parse_message(msg.to_bytes())
    assert isinstance(again, Request)
    assert again.headers.get_all("allow") == msg.headers.get_all("allow")
    assert again.to_bytes() == msg.to_bytes()


def test_invite_with_sdp_body_and_two_vias_roundtrips_byte_for_byte() -> None:
    raw = load("invite_carrier.txt")
    msg = parse_message(raw)
    assert isinstance(msg, Request)
    assert msg.to_bytes() == raw
    assert [v.host for v in msg.vias] == ["127.0.0.1", "10.0.0.7"]
    assert msg.vias[1].params["received"] == "192.0.2.7"
    assert msg.from_addr.display_name == "Erika Mustermann"
    assert msg.from_addr.uri is not None and msg.from_addr.uri.user == "+4917612345678"
    assert msg.parsed_uri.user == "+4930123456"
    assert msg.headers.get("P-Asserted-Identity") == "<sip:+4917612345678@carrier.example>"
    assert msg.body.startswith(b"v=0\r\n") and msg.body.endswith(b"telephone-event/8000\r\n")
    assert msg.headers.get("content-type") == "application/sdp"


def test_compact_forms_folded_lines_multi_value_and_ipv6() -> None:
    msg = parse_message(load("invite_compact.txt"))
    assert isinstance(msg, Request)
    assert msg.call_id == "compact-call-id@example"
    assert [v.transport for v in msg.vias] == ["TCP", "UDP"]
    assert msg.top_via.host == "::1" and msg.top_via.port == 5062
    assert msg.vias[1].sent_by == ("192.0.2.1", 5060)
    assert msg.from_addr.display_name == "Agent One"
    assert msg.to_addr.uri is not None and msg.to_addr.uri.user == "1002"
    assert msg.headers.get("subject") == "multi line folded"
    assert msg.headers.get_all("supported") == ["timer", "100rel"]
    (contact,) = msg.contacts()
    assert contact.uri is not None and contact.uri.host == "::1"
    assert contact.uri.transport == "tcp"
    out = msg.to_bytes()
    assert b"\r\nCall-ID: compact-call-id@example\r\n" in out
    assert b"Via: SIP/2.0/TCP [::1]:5062;branch=z9hG4bKcompact1\r\n" in out


def test_response_with_two_challenges() -> None:
    raw = load("response_401.txt")
    msg = parse_message(raw)
    assert isinstance(msg, Response)
    assert (msg.status, msg.reason) == (401, "Unauthorized")
    assert len(msg.headers.get_all("www-authenticate")) == 2
    assert msg.top_via.params["rport"] == "40123"
    assert msg.to_bytes() == raw


def test_make_response_copies_the_right_headers_and_adds_a_to_tag() -> None:
    request = parse_message(load("invite_carrier.txt"))
    assert isinstance(request, Request)
    resp = make_response(request, 180, to_tag="t1")
    assert resp.headers.get_all("via") == request.headers.get_all("via")
    assert resp.to_addr.tag == "t1"
    assert resp.cseq == request.cseq
    trying = make_response(request, 100, to_tag="t1")
    assert trying.to_addr.tag is None


GOOD = load("register_pjsua.txt")


@pytest.mark.parametrize(
    ("data", "status", "fragment"),
    [
        (GOOD[:120], 400, "truncated"),
        (GOOD.replace(b"Content-Length: 0", b"Content-Length: 50"), 400, "Content-Length 50"),
        (GOOD.replace(b"Content-Length: 0", b"Content-Length: x"), 400, "Content-Length"),
        (GOOD.replace(b"CSeq: 47816 REGISTER\r\n", b""), 400, "missing CSeq"),
        (GOOD.replace(b"Call-ID: ", b"X-Call-ID: "), 400, "missing Call-ID"),
        (GOOD.replace(b"47816 REGISTER", b"47816 INVITE"), 400, "does not match"),
        (GOOD.replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1), 505, "version"),
        (GOOD.replace(b"Max-Forwards: 70", b"Max-Forwards: abc"), 400, "Max-Forwards"),
        (GOOD.replace(b"Via: SIP/2.0/UDP 127.0.0.1:40123", b"Via: HTTP/1.1 x"), 400, "Via"),
        (GOOD.replace(b"From: <sip:1001@hotline.example>", b"From: <sip:1001@x"), 400, "'>'"),
        (b"\x00\xff\xfe garbage\r\n\r\n", 400, ""),
        (GOOD + b"x" * 70000, 513, "exceeds"),
        (GOOD.replace(b"User-Agent:", b"User Agent:"), 400, "malformed header"),
    ],
)
def test_malformed_messages_raise_with_status(data: bytes, status: int, fragment: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.status == status
    assert fragment in info.value.reason


def test_stream_framer_splits_by_content_length_and_skips_keepalives() -> None:
    invite = load("invite_carrier.txt")
    register = load("register_pjsua.txt")
    framer = StreamFramer()
    stream = b"\r\n\r\n" + invite + register
    out: list[bytes] = []
    for i in range(0, len(stream), 37):  # arbitrary chunking
        out += framer.feed(stream[i : i + 37])
    assert out == [invite, register]
    assert framer.keepalives == 1


def test_stream_framer_requires_content_length() -> None:
    framer = StreamFramer()
    with pytest.raises(SipParseError, match="missing Content-Length"):
        framer.feed(load("register_pjsua.txt").replace(b"Content-Length: 0\r\n", b""))
