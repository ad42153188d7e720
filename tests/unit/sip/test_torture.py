"""RFC 4475 and RFC 5118 torture messages (tests/data/torture/): each is accepted or refused
with the status `expected.yaml` names, by the parser and by the sans-IO endpoint; the valid ones
with tricky syntax are also read field by field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pbx.clock import SystemIds
from pbx.errors import SipParseError
from pbx.sip.endpoint import Address, RequestReceived, ResponseReceived, SipEndpoint
from pbx.sip.message import Request, Response
from pbx.sip.parser import parse_message

TORTURE = Path(__file__).parents[2] / "data" / "torture"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load((TORTURE / "expected.yaml").read_text())
SOURCE = Address("udp", "192.0.2.99", 5060)


def load(name: str) -> bytes:
    return (TORTURE / name).read_bytes()


def test_every_fixture_has_an_expectation_and_back() -> None:
    assert {p.name for p in TORTURE.glob("*.sip")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parser_accepts_or_rejects_with_the_status(name: str) -> None:
    expected = EXPECTED[name]
    answer = expected["endpoint"]
    if isinstance(answer, int) and answer >= 400 and answer not in (483, 501):
        with pytest.raises(SipParseError) as info:
            parse_message(load(name))
        assert info.value.status == answer
        assert info.value.reason
    elif answer == "drop":
        with pytest.raises(SipParseError):
            parse_message(load(name))
    else:
        message = parse_message(load(name))
        assert isinstance(message, Response if answer == "response" else Request)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_endpoint_answers_passes_up_or_drops(name: str) -> None:
    endpoint = SipEndpoint(SystemIds())
    endpoint.receive_datagram(load(name), SOURCE, 0.0)
    sent = [data for data, _ in endpoint.datagrams_to_send()]
    events = list(iter(endpoint.next_event, None))
    # Status lines only: a 400 echoes the sender's Via and CSeq as they came, bad or not.
    finals = [data for data in sent if not data.startswith(b"SIP/2.0 100 ")]
    answer = EXPECTED[name]["endpoint"]
    if answer == "tu":
        assert finals == [] and [type(e) for e in events] == [RequestReceived]
    elif answer == "response":
        assert sent == [] and [type(e) for e in events] == [ResponseReceived]
    elif answer == "drop":
        assert sent == [] and events == []
        assert endpoint.stats.malformed_dropped == 1
    else:
        (response,) = finals
        status_line, _, head = response.partition(b"\r\n")
        assert status_line.startswith(f"SIP/2.0 {answer} ".encode())
        assert len(status_line) > len("SIP/2.0 400 ")  # a reason phrase that says what
        head = b"\r\n" + head.lower()
        assert b"\r\nvia: " in head and b"\r\ncseq: " in head
        assert events == []


def test_wsinv_reads_through_folding_and_whitespace() -> None:
    msg = parse_message(load("rfc4475_3.1.1.1_wsinv.sip"))
    assert isinstance(msg, Request)
    assert msg.uri == "sip:vivekg@chair-dnrc.example.com;unknownparam"
    assert msg.to_addr.tag == "1918181833n"
    assert msg.from_addr.display_name == 'J Rosenberg \\"'
    assert msg.from_addr.tag == "98asjd8"
    assert msg.headers.get("max-forwards") == "0068"
    assert (msg.cseq.number, msg.cseq.method) == (9, "INVITE")
    assert [(v.transport, v.host, v.branch) for v in msg.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert msg.headers.get("newfangledheader") == "newfangled value continued newfangled value"
    assert msg.headers.get("unknownheaderwithunusualvalue") == ";;,,;;,;"
    (contact,) = msg.contacts()
    assert contact.display_name == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert msg.body.startswith(b"v=0\r\n") and len(msg.body) == 150


def test_intmeth_keeps_the_method_and_the_odd_uri_as_written() -> None:
    msg = parse_message(load("rfc4475_3.1.1.2_intmeth.sip"))
    assert isinstance(msg, Request)
    assert msg.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert msg.cseq.method == msg.method
    uri = msg.parsed_uri
    assert uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert uri.host == "example.com"
    assert msg.to_addr.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert msg.from_addr.display_name == "token1~` token2'+_ token3*%!.-"
    assert msg.from_addr.tag == "_token~1'+`*%!-."
    assert msg.headers.get("extensionHeader-!.%*+_`'~") == "大停電"


def test_escaped_uris_and_user_parameters() -> None:
    esc = parse_message(load("rfc4475_3.1.1.3_esc01.sip"))
    assert isinstance(esc, Request)
    assert esc.parsed_uri.user == "sips%3Auser%40example.com"
    assert esc.parsed_uri.host == "example.net"
    (contact,) = esc.contacts()
    assert contact.uri is not None and contact.uri.params["%6c%72"] is None
    semi = parse_message(load("rfc4475_3.1.1.9_semiuri.sip"))
    assert isinstance(semi, Request)
    assert (semi.parsed_uri.user, semi.parsed_uri.host) == ("user;par=u%40example.net",
                                                            "example.com")
    assert len(semi.headers.get_all("accept")) == 6


@pytest.mark.parametrize(
    ("name", "host", "port"),
    [
        ("rfc5118_4.1_ipv6-good.sip", "2001:db8::10", None),
        ("rfc5118_4.3_port-ambiguous.sip", "2001:db8::10:5070", None),
        ("rfc5118_4.4_port-unambiguous.sip", "2001:db8::10", 5070),
        ("rfc5118_4.10_ipv6-correct-abnf-2-colons.sip", "2001:db8::192.0.2.1", None),
    ],
)
def test_ipv6_references(name: str, host: str, port: int | None) -> None:
    msg = parse_message(load(name))
    assert isinstance(msg, Request)
    assert (msg.parsed_uri.host, msg.parsed_uri.port) == (host, port)


def test_ipv6_received_with_and_without_brackets() -> None:
    with_delim = parse_message(load("rfc5118_4.5_via-received-param-with-delim.sip"))
    without = parse_message(load("rfc5118_4.5_via-received-param-no-delim.sip"))
    assert with_delim.top_via.params["received"] == "[2001:db8::9:255]"
    assert without.top_via.params["received"] == "2001:db8::9:255"
    assert with_delim.top_via.host == "2001:db8::9:1"


def test_a_duplicate_answered_with_one_of_each_header() -> None:
    endpoint = SipEndpoint(SystemIds())
    endpoint.receive_datagram(load("rfc4475_3.3.8_multi01.sip"), SOURCE, 0.0)
    ((data, destination),) = endpoint.datagrams_to_send()
    response = parse_message(data)  # parses: no duplicates copied into the 400
    assert isinstance(response, Response) and response.status == 400
    assert destination == SOURCE
    assert response.call_id == "multi01.98asdh@192.0.2.1"
